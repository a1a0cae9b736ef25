// TCP listener: accepts connections and drains them as fast as the kernel hands data over. A socket is
// never paused for the journal's sake; what the journal cannot take yet goes to the spool.

import type { BlockList } from 'node:net'
import { createServer, type Server, type Socket } from 'node:net'
import type { Router } from '../buffer/router.js'
import type { ListenerConfig } from '../config/load.js'
import { ErrorCodes, SpillwayError } from '../errors.js'
import type { Counters } from '../metrics/counters.js'
import { TcpConn } from './conn.js'
import { allowList, type ConnectionGate } from './gate.js'

export interface TcpLimits {
  maxMessageBytes: number
  idleTimeoutSeconds: number
  keepAliveSeconds: number
}

export class TcpListener {
  readonly config: ListenerConfig
  readonly conns = new Set<TcpConn>()
  private readonly server: Server
  private readonly router: Router
  private readonly counters: Counters
  private readonly limits: TcpLimits
  private readonly gate: ConnectionGate
  private readonly allow: BlockList | null
  private readonly name: string
  private stopping = false

  get up(): boolean {
    return this.server.listening
  }

  constructor(
    config: ListenerConfig,
    router: Router,
    counters: Counters,
    limits: TcpLimits,
    gate: ConnectionGate,
  ) {
    this.config = config
    this.router = router
    this.counters = counters
    this.limits = limits
    this.gate = gate
    this.allow = allowList(config.allow)
    this.name = `tcp ${config.host}:${config.port}`
    this.server = createServer({ noDelay: true }, (s) => this.accept(s))
  }

  listen(): Promise<{ host: string; port: number }> {
    const { host, port } = this.config
    return new Promise((resolve, reject) => {
      const onError = (err: Error) =>
        reject(
          new SpillwayError(ErrorCodes.listen, `tcp ${host}:${port}: cannot listen: ${err.message}`, {
            cause: err,
          }),
        )
      this.server.once('error', onError)
      this.server.listen({ host, port, backlog: 4096 }, () => {
        this.server.off('error', onError)
        const a = this.server.address()
        resolve({ host, port: typeof a === 'object' && a !== null ? a.port : port })
      })
    })
  }

  private accept(socket: Socket): void {
    const address = socket.remoteAddress ?? ''
    if (this.stopping || this.gate.admit(address, this.allow, this.name) !== null) {
      socket.destroy()
      return
    }
    const conn = new TcpConn(socket, this.router, this.limits.maxMessageBytes, this.counters.framing)
    this.conns.add(conn)
    this.counters.connectionsOpened++
    if (this.limits.keepAliveSeconds > 0) socket.setKeepAlive(true, this.limits.keepAliveSeconds * 1000)
    if (this.limits.idleTimeoutSeconds > 0) {
      socket.setTimeout(this.limits.idleTimeoutSeconds * 1000, () => {
        // Silent for too long: what it sent is kept (an unfinished last line too, as at EOF).
        this.counters.idleTimeouts++
        conn.framer.finish(conn, true)
        socket.destroy()
      })
    }
    socket.on('data', conn.onData)
    socket.on('end', () => {
      // The peer finished sending: its last frame may lack a terminator (nc without a final newline).
      conn.framer.finish(conn, true)
      socket.end()
    })
    socket.on('error', () => {
      // A reset mid-frame: keep what arrived; the close handler below forgets the connection.
      this.counters.connectionErrors++
      conn.framer.finish(conn, true)
    })
    socket.on('close', () => {
      this.gate.release(address)
      this.router.closeLane(conn)
      this.conns.delete(conn)
      this.counters.connectionsClosed++
    })
  }

  /**
   * Stops accepting, then closes every connection. Frames already read are kept; an unfinished frame is
   * dropped and counted (its sender never finished it).
   */
  close(): Promise<void> {
    this.stopping = true
    const closed = new Promise<void>((resolve) => this.server.close(() => resolve()))
    for (const conn of this.conns) {
      conn.socket.removeAllListeners('data')
      conn.framer.finish(conn, false)
      conn.socket.destroy()
    }
    return closed
  }
}
