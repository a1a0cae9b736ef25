// TCP listener: accepts connections and drains them as fast as the kernel hands data over. A socket is
// never paused for the journal's sake; what the journal cannot take yet goes to the spool.

import { createServer, type Server, type Socket } from 'node:net'
import type { Router } from '../buffer/router.js'
import type { ListenerConfig } from '../config/load.js'
import { ErrorCodes, SpillwayError } from '../errors.js'
import type { Counters } from '../metrics/counters.js'
import { TcpConn } from './conn.js'

export class TcpListener {
  readonly config: ListenerConfig
  readonly conns = new Set<TcpConn>()
  private readonly server: Server
  private readonly router: Router
  private readonly counters: Counters
  private readonly maxMessageBytes: number
  private stopping = false

  constructor(config: ListenerConfig, router: Router, counters: Counters, maxMessageBytes: number) {
    this.config = config
    this.router = router
    this.counters = counters
    this.maxMessageBytes = maxMessageBytes
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
    const conn = new TcpConn(socket, this.router, this.maxMessageBytes, this.counters.framing)
    this.conns.add(conn)
    this.counters.connectionsOpened++
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
      this.router.closeLane(conn)
      this.conns.delete(conn)
      this.counters.connectionsClosed++
    })
    if (this.stopping) socket.destroy()
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
