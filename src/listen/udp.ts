// UDP listener: one datagram is one message. Trailing LF/CR (which many senders append) are not part of
// the message; a datagram longer than limits.maxMessageBytes is cut and flagged like a TCP frame.

import { createSocket, type RemoteInfo, type Socket } from 'node:dgram'
import { type BlockList, isIPv6 } from 'node:net'
import { type Lane, LaneState, type Router } from '../buffer/router.js'
import type { ListenerConfig } from '../config/load.js'
import { ErrorCodes, SpillwayError } from '../errors.js'
import { logEvent } from '../log.js'
import type { Counters } from '../metrics/counters.js'
import { connPrefix } from '../spool/record.js'
import { formatPeer } from './conn.js'
import { allowed, allowList, type ConnectionGate, RefusalReason } from './gate.js'

export class UdpListener extends LaneState implements Lane {
  readonly config: ListenerConfig
  prefix: Buffer = Buffer.alloc(0)
  private readonly socket: Socket
  private readonly router: Router
  private readonly counters: Counters
  private readonly max: number
  /** Bound and not closed. */
  up = false
  private lastAddress = ''
  private lastPort = -1

  private readonly recvBufferBytes: number
  private readonly gate: ConnectionGate
  private readonly allow: BlockList | null
  private readonly name: string

  constructor(
    config: ListenerConfig,
    router: Router,
    counters: Counters,
    maxMessageBytes: number,
    recvBufferBytes: number,
    gate: ConnectionGate,
  ) {
    super()
    this.config = config
    this.gate = gate
    this.allow = allowList(config.allow)
    this.name = `udp ${config.host}:${config.port}`
    this.recvBufferBytes = recvBufferBytes
    this.router = router
    this.counters = counters
    this.max = maxMessageBytes
    this.socket = createSocket({ type: isIPv6(config.host) ? 'udp6' : 'udp4', reuseAddr: false })
    this.socket.on('message', (msg, rinfo) => this.onMessage(msg, rinfo))
  }

  listen(): Promise<{ host: string; port: number; recvBufferBytes: number }> {
    const { host, port } = this.config
    return new Promise((resolve, reject) => {
      const onError = (err: Error) =>
        reject(
          new SpillwayError(ErrorCodes.listen, `udp ${host}:${port}: cannot bind: ${err.message}`, {
            cause: err,
          }),
        )
      this.socket.once('error', onError)
      this.socket.bind(port, host, () => {
        this.socket.off('error', onError)
        this.socket.on('error', () => this.counters.connectionErrors++)
        this.up = true
        this.socket.once('close', () => {
          this.up = false
        })
        const bound = this.socket.address().port
        resolve({ host, port: bound, recvBufferBytes: this.sizeReceiveBuffer(bound) })
      })
    })
  }

  // UDP cannot push back: whatever arrives while the kernel buffer is full is lost before Spillway sees
  // a byte. Ask for the configured size and say plainly when the kernel gave less.
  private sizeReceiveBuffer(port: number): number {
    if (this.recvBufferBytes > 0) this.socket.setRecvBufferSize(this.recvBufferBytes)
    // Linux reports twice what it grants (it counts its bookkeeping overhead), see socket(7).
    const effective = Math.floor(this.socket.getRecvBufferSize() / 2)
    if (this.recvBufferBytes > 0 && effective < this.recvBufferBytes) {
      logEvent('udp-recv-buffer-capped', {
        port,
        requested: this.recvBufferBytes,
        effective,
        hint: 'raise net.core.rmem_max (sysctl) or lower udp.recvBufferBytes',
      })
    }
    return effective
  }

  private onMessage(msg: Buffer, rinfo: RemoteInfo): void {
    if (this.allow !== null && !allowed(this.allow, rinfo.address)) {
      this.gate.refuse(RefusalReason.notAllowed, rinfo.address, this.name, 0)
      return
    }
    let end = msg.length
    while (end > 0 && (msg[end - 1] === 0x0a || msg[end - 1] === 0x0d)) end--
    if (end === 0) {
      this.counters.udpEmpty++
      return
    }
    if (rinfo.port !== this.lastPort || rinfo.address !== this.lastAddress) {
      this.lastAddress = rinfo.address
      this.lastPort = rinfo.port
      this.prefix = connPrefix('udp', formatPeer(rinfo.address, rinfo.port))
    }
    this.counters.receivedUdp++
    this.counters.bytesUdp += msg.length
    this.router.setNow(Date.now())
    if (end > this.max) {
      this.counters.udpTruncated++
      this.router.route(this, msg, 0, this.max, end)
    } else {
      this.router.route(this, msg, 0, end, 0)
    }
  }

  close(): Promise<void> {
    return new Promise((resolve) => this.socket.close(() => resolve()))
  }
}
