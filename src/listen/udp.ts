// Datagram listeners: UDP, and unix datagram sockets (/dev/log). One datagram is one message. Trailing
// LF/CR (which many senders append) are not part of the message; a datagram longer than
// limits.maxMessageBytes is cut and flagged like a TCP frame. A unix datagram's peer is its sender's
// credentials as the kernel attests them ("pid=P,uid=U,gid=G"), never anything from its text.
// The socket itself is read by a thread of its own, in C (native/udp_receiver.c: why, and the batch
// format); this side, on the socket thread, takes the batches it hands over and routes each datagram
// like a TCP frame.

import { lookup } from 'node:dns/promises'
import type { BlockList } from 'node:net'
import { type Lane, LaneState, type Router } from '../buffer/router.js'
import type { ListenerConfig } from '../config/load.js'
import { ErrorCodes, SpillwayError } from '../errors.js'
import { logEvent } from '../log.js'
import type { Counters } from '../metrics/counters.js'
import { loadNative } from '../native.js'
import { connPrefix } from '../spool/record.js'
import { formatPeer } from './conn.js'
import { allowed, allowList, type ConnectionGate, RefusalReason } from './gate.js'

interface NativeReceiver {
  /** Binds and starts the receive thread; returns [handle, bound port, SO_RCVBUF as Linux reports it]. */
  open(
    address: string,
    port: number,
    ipv6: boolean,
    recvBufferBytes: number,
    onBatch: (batch: Buffer | null, dropped: number, errors: number) => void,
  ): [unknown, number, number]
  /**
   * Binds a unix datagram socket at `path` (replacing a stale socket file, refusing anything else), with
   * file mode `mode`, and starts the receive thread; returns [handle, 0, SO_RCVBUF as Linux reports it].
   */
  openUnix(
    path: string,
    mode: number,
    recvBufferBytes: number,
    onBatch: (batch: Buffer | null, dropped: number, errors: number) => void,
  ): [unknown, number, number]
  /** Stops the thread; onBatch's last call, with null, follows every batch it read. */
  close(handle: unknown): void
}

const native = loadNative<NativeReceiver>('udp_receiver')

/** Bytes before the address in each batch entry: u32 length, u16 port, u8 address length. */
const kEntryHeader = 7

export class UdpListener extends LaneState implements Lane {
  readonly config: ListenerConfig
  prefix: Buffer = Buffer.alloc(0)
  private readonly router: Router
  private readonly counters: Counters
  private readonly max: number
  /** Bound and not closed, its receive thread running. */
  up = false
  private lastAddress = ''
  private lastPort = -1
  /** Whether lastAddress passes the allow list. */
  private lastAllowed = true

  private readonly recvBufferBytes: number
  private readonly gate: ConnectionGate
  private readonly allow: BlockList | null
  private readonly name: string
  /** A unix datagram socket: peers are credentials, and there is no allow-list. */
  private readonly unix: boolean
  private handle: unknown = null
  private onClosed: (() => void) | null = null
  private closing: Promise<void> | null = null

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
    this.unix = config.transport === 'unix'
    this.allow = this.unix ? null : allowList(config.allow)
    this.name = this.unix ? `unix ${config.path}` : `udp ${config.host}:${config.port}`
    this.recvBufferBytes = recvBufferBytes
    this.router = router
    this.counters = counters
    this.max = maxMessageBytes
  }

  async listen(): Promise<{ host: string; port: number; recvBufferBytes: number }> {
    const { host, port } = this.config
    let opened: [unknown, number, number]
    const onBatch = (batch: Buffer | null, dropped: number, errors: number) =>
      this.onBatch(batch, dropped, errors)
    try {
      if (this.unix) {
        opened = native.openUnix(
          this.config.path,
          Number.parseInt(this.config.mode, 8),
          this.recvBufferBytes,
          onBatch,
        )
      } else {
        const { address, family } = await lookup(host)
        opened = native.open(address, port, family === 6, this.recvBufferBytes, onBatch)
      }
    } catch (err) {
      throw new SpillwayError(ErrorCodes.listen, `${this.name}: cannot bind: ${(err as Error).message}`, {
        cause: err,
      })
    }
    if (this.unix) return { host: this.config.path, port: 0, recvBufferBytes: opened[2] >> 1 }
    this.handle = opened[0]
    this.up = true
    // Linux reports twice what it grants (it counts its bookkeeping overhead), see socket(7).
    return { host, port: opened[1], recvBufferBytes: this.checkReceiveBuffer(opened[1], opened[2] >> 1) }
  }

  // UDP cannot push back: whatever arrives while the kernel buffer is full is lost before Spillway sees
  // a byte. Say plainly when the kernel gave less than the configured size.
  private checkReceiveBuffer(port: number, effective: number): number {
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

  private onBatch(buf: Buffer | null, dropped: number, errors: number): void {
    this.counters.udpQueueDrops += dropped
    this.counters.connectionErrors += errors
    if (buf === null) {
      this.up = false
      this.handle = null
      this.onClosed?.()
      return
    }
    this.router.setNow(Date.now())
    const len = buf.length
    let p = 0
    while (p < len) {
      const n = buf.readUInt32LE(p)
      const addrLen = buf[p + 6]!
      p += kEntryHeader
      if (addrLen > 0) {
        this.peer(buf.toString('latin1', p, p + addrLen), buf.readUInt16LE(p - 3))
        p += addrLen
      }
      this.onDatagram(buf, p, p + n)
      p += n
    }
    this.router.sourcesDone()
  }

  private peer(address: string, port: number): void {
    if (port === this.lastPort && address === this.lastAddress) return
    this.lastAddress = address
    this.lastPort = port
    this.lastAllowed = this.allow === null || allowed(this.allow, address)
    this.prefix = this.unix ? connPrefix('unix', address) : connPrefix('udp', formatPeer(address, port))
  }

  private onDatagram(buf: Buffer, start: number, stop: number): void {
    if (!this.lastAllowed) {
      this.gate.refuse(RefusalReason.notAllowed, this.lastAddress, this.name, 0)
      return
    }
    let end = stop
    while (end > start && (buf[end - 1] === 0x0a || buf[end - 1] === 0x0d)) end--
    if (end === start) {
      this.counters.udpEmpty++
      return
    }
    this.counters.receivedUdp++
    this.counters.bytesUdp += stop - start
    if (end - start > this.max) {
      this.counters.udpTruncated++
      this.router.route(this, buf, start, start + this.max, end - start)
    } else {
      this.router.route(this, buf, start, end, 0)
    }
  }

  /** Stops the receive thread; resolves once every datagram it read has been routed. */
  close(): Promise<void> {
    if (this.closing === null) {
      const handle = this.handle
      this.closing =
        handle === null
          ? Promise.resolve()
          : new Promise((resolve) => {
              this.onClosed = resolve
              native.close(handle)
            })
    }
    return this.closing
  }
}
