// TCP listener (and TLS, RFC 5425): accepts connections and drains them as fast as the kernel hands data
// over. A socket is never paused for the journal's sake; what the journal cannot take yet goes to the
// spool. With TLS, limits and allow-lists are checked on the raw connection, before the handshake.

import { chmodSync, lstatSync, readFileSync, type Stats, unlinkSync } from 'node:fs'
import type { BlockList } from 'node:net'
import { connect, createServer, type Server, type Socket } from 'node:net'
import {
  createServer as createTlsServer,
  type SecureContextOptions,
  type TLSSocket,
  type Server as TlsServer,
} from 'node:tls'
import type { Router } from '../buffer/router.js'
import { type ListenerConfig, usesTls } from '../config/load.js'
import { ErrorCodes, SpillwayError } from '../errors.js'
import { logEvent } from '../log.js'
import type { Counters } from '../metrics/counters.js'
import { type StreamConn, TcpConn } from './conn.js'
import { allowList, type ConnectionGate } from './gate.js'
import { adoptWithReadBuffer } from './read-buffer.js'
import { stillAccepting } from './socket-state.js'

export interface TcpLimits {
  maxMessageBytes: number
  frameTimeoutSeconds: number
  idleTimeoutSeconds: number
  keepAliveSeconds: number
}

/** Makes the connection object for an accepted socket: what it speaks is the factory's business. */
export type ConnFactory = (socket: Socket, tls: boolean) => StreamConn

export class TcpListener {
  readonly config: ListenerConfig
  readonly conns = new Set<StreamConn>()
  private readonly server: Server
  private readonly router: Router
  private readonly counters: Counters
  private readonly limits: TcpLimits
  private readonly gate: ConnectionGate
  private readonly allow: BlockList | null
  private readonly name: string
  private readonly makeConn: ConnFactory
  private stopping = false
  private serverClosed: Promise<void> = Promise.resolve()
  private readonly subjects = new Set<string>()
  /** Sweeps connections for frames unfinished past limits.frameTimeoutSeconds. */
  private frameSweep: NodeJS.Timeout | null = null
  /** Connections in the middle of a frame, and since when (as far as the sweeps saw, and reading went). */
  private readonly inFrameSince = new Map<StreamConn, number>()
  private frameLog = { at: 0, since: 0 }
  /** Every plain-TCP read of this listener lands here; the framer and router copy what they keep. */
  private readonly readBuffer = Buffer.allocUnsafe(64 * 1024)

  /** Listening, and its socket still accepts: one destroyed from outside (ss -K) gives Node no event. */
  get up(): boolean {
    if (!this.server.listening) return false
    const fd = (this.server as unknown as { _handle?: { fd?: number } })._handle?.fd
    return stillAccepting(fd)
  }

  constructor(
    config: ListenerConfig,
    router: Router,
    counters: Counters,
    limits: TcpLimits,
    gate: ConnectionGate,
    makeConn?: ConnFactory,
  ) {
    this.config = config
    this.router = router
    this.counters = counters
    this.limits = limits
    this.gate = gate
    this.makeConn =
      makeConn ??
      ((socket, tls) =>
        new TcpConn(
          socket,
          router,
          limits.maxMessageBytes,
          tls ? counters.framingTls : counters.framing,
          tls ? 'tls' : 'tcp',
        ))
    this.allow = allowList(config.allow)
    this.name =
      config.transport === 'unix-stream'
        ? `unix-stream ${config.path}`
        : `${config.transport} ${config.host}:${config.port}`
    if (usesTls(config)) {
      const auth = config.tls.clientAuth
      const server = createTlsServer(
        {
          ...secureOptions(config),
          requestCert: auth !== 'none',
          rejectUnauthorized: auth === 'require',
          noDelay: true,
        },
        (s) => this.accept(s, true),
      )
      server.on('connection', (raw: Socket) => {
        const address = raw.remoteAddress ?? ''
        if (this.stopping || this.gate.admit(address, this.allow, this.name) !== null) {
          raw.destroy()
          return
        }
        raw.once('close', () => this.gate.release(address))
      })
      server.on('tlsClientError', (err, s) => {
        this.counters.tlsHandshakeFailures++
        this.gate.refuse('tls_handshake', s.remoteAddress ?? '', this.name, 0, err.message)
      })
      this.server = server
    } else {
      // Paused on accept: listen/read-buffer.ts moves each connection to a socket with a shared read buffer.
      this.server = createServer({ noDelay: true, pauseOnConnect: true }, (s) => this.accept(s, false))
    }
  }

  // A client certificate's subject is logged the first time it is seen (not per connection): who
  // may send is then on record without a line per reconnect.
  private noteSubject(socket: TLSSocket, peer: string): void {
    if (!socket.authorized) return
    const subject = socket.getPeerCertificate().subject
    if (subject === undefined) return
    const s = Object.entries(subject)
      .map(([k, v]) => `${k}=${v}`)
      .join(',')
    if (s === '' || this.subjects.has(s)) return
    this.subjects.add(s)
    logEvent('tls-client', { listener: this.name, peer, subject: s })
  }

  /** Re-reads the certificate, key and CA (SIGHUP); established connections keep theirs. */
  reloadTls(): void {
    if (!usesTls(this.config)) return
    try {
      ;(this.server as TlsServer).setSecureContext(secureOptions(this.config))
      logEvent('tls-reloaded', { listener: this.name, cert: this.config.tls.cert })
    } catch (err) {
      logEvent('tls-reload-failed', {
        listener: this.name,
        error: (err as Error).message,
        keeping: 'the previous certificate',
      })
    }
  }

  async listen(): Promise<{ host: string; port: number }> {
    const { host, port, path } = this.config
    const unix = this.config.transport === 'unix-stream'
    if (unix) await clearStaleSocket(path, this.name)
    return new Promise((resolve, reject) => {
      const onError = (err: Error) =>
        reject(
          new SpillwayError(ErrorCodes.listen, `${this.name}: cannot listen: ${err.message}`, {
            cause: err,
          }),
        )
      this.server.once('error', onError)
      const at = unix ? { path, backlog: 4096 } : { host, port, backlog: 4096 }
      this.server.listen(at, () => {
        this.server.off('error', onError)
        this.server.on('error', (err) => this.acceptError(err))
        const secs = this.limits.frameTimeoutSeconds
        if (secs > 0) {
          this.frameSweep = setInterval(() => this.closeStalledFrames(), Math.min(1000, secs * 250))
          this.frameSweep.unref()
        }
        if (unix) {
          try {
            chmodSync(path, Number.parseInt(this.config.mode, 8))
          } catch (err) {
            onError(err as Error)
            return
          }
          resolve({ host: path, port: 0 })
          return
        }
        const a = this.server.address()
        resolve({ host, port: typeof a === 'object' && a !== null ? a.port : port })
      })
    })
  }

  /**
   * A connection whose message has been unfinished past limits.frameTimeoutSeconds is closed: a sender
   * trickling a byte now and then would otherwise hold its connection (and the memory of the unfinished
   * frame) for as long as it likes, and a few addresses could take every connection. What it sent is
   * kept, as at EOF. Logged at most once per 10 s, with how many since. Timed here, by the sweep (up to
   * a second late), so reading pays nothing for it; a connection the router is not reading (spool full,
   * disk behind) has its clock started again: its sender could not send.
   */
  private closeStalledFrames(): void {
    const now = Date.now()
    const ms = this.limits.frameTimeoutSeconds * 1000
    for (const conn of this.conns) {
      if (!conn.inFrame) {
        this.inFrameSince.delete(conn)
        continue
      }
      const since = this.inFrameSince.get(conn)
      if (since === undefined || conn.socket.isPaused()) {
        this.inFrameSince.set(conn, now)
        continue
      }
      if (now - since <= ms) continue
      this.inFrameSince.delete(conn)
      this.counters.frameTimeouts++
      if (now - this.frameLog.at >= 10_000) {
        logEvent('connection-closed', {
          reason: 'frame_timeout',
          peer: conn.peer,
          listener: this.name,
          seconds: this.limits.frameTimeoutSeconds,
          closedSinceLastLine: this.frameLog.since,
        })
        this.frameLog = { at: now, since: 0 }
      } else {
        this.frameLog.since++
      }
      conn.finish(true)
      conn.socket.destroy()
    }
  }

  /**
   * accept() failed. EMFILE and ENFILE (no descriptor left) pause accepting briefly (gate.acceptFailed);
   * anything else is logged. Neither stops the listener, and neither is left unhandled: an 'error' no one
   * listens to would end the process.
   */
  private acceptError(err: NodeJS.ErrnoException): void {
    if (err.code === 'EMFILE' || err.code === 'ENFILE') this.gate.acceptFailed(this.name, err.code)
    else logEvent('accept-error', { listener: this.name, error: err.code ?? err.message })
  }

  private accept(accepted: Socket, tls: boolean): void {
    const address = accepted.remoteAddress ?? ''
    if (!tls && (this.stopping || this.gate.admit(address, this.allow, this.name) !== null)) {
      accepted.destroy()
      return
    }
    const conn = this.makeConn(accepted, tls)
    const adopted = tls ? null : adoptWithReadBuffer(accepted, this.readBuffer, conn.onRead)
    if (adopted !== null) {
      conn.socket = adopted
    } else {
      accepted.on('data', conn.onData)
      accepted.resume() // plain TCP is accepted paused
    }
    const socket = conn.socket
    if (tls) this.noteSubject(socket as TLSSocket, conn.peer)
    this.conns.add(conn)
    this.counters.connectionsOpened++
    if (this.limits.keepAliveSeconds > 0) socket.setKeepAlive(true, this.limits.keepAliveSeconds * 1000)
    if (this.limits.idleTimeoutSeconds > 0) {
      socket.setTimeout(this.limits.idleTimeoutSeconds * 1000, () => {
        // Silent for too long: what it sent is kept (an unfinished last line too, as at EOF).
        this.counters.idleTimeouts++
        conn.finish(true)
        socket.destroy()
      })
    }
    socket.on('end', () => {
      // The peer finished sending: its last frame may lack a terminator (nc without a final newline).
      conn.finish(true)
      socket.end()
    })
    socket.on('error', () => {
      // A reset mid-frame: keep what arrived; the close handler below forgets the connection.
      this.counters.connectionErrors++
      conn.finish(true)
    })
    socket.on('close', () => {
      if (!tls) this.gate.release(address)
      this.router.closeLane(conn)
      this.conns.delete(conn)
      this.inFrameSince.delete(conn)
      conn.closed?.()
      this.counters.connectionsClosed++
    })
  }

  /**
   * Stops accepting, then closes every connection. Frames already read are kept; an unfinished frame is
   * dropped and counted (its sender never finished it). Sessions that answer what they read (RELP) only
   * stop reading here: afterDrain() closes them once their messages are written and answered.
   */
  close(): Promise<void> {
    this.stopping = true
    if (this.frameSweep !== null) clearInterval(this.frameSweep)
    this.serverClosed = new Promise<void>((resolve) => this.server.close(() => resolve()))
    let sessions = false
    for (const conn of this.conns) {
      if (conn.stopReading !== undefined) {
        conn.stopReading()
        sessions = true
        continue
      }
      // destroy() below stops the reads; nothing runs between here and there.
      conn.socket.removeAllListeners('data')
      conn.finish(false)
      conn.socket.destroy()
    }
    return sessions ? Promise.resolve() : this.serverClosed
  }

  /** The spool has written everything read: sessions still open are closed (at most 2 s each). */
  async afterDrain(): Promise<void> {
    await Promise.all([...this.conns].map((c) => c.closeSession?.(2000)))
    await this.serverClosed
  }
}

/**
 * A socket file left at `path` by an earlier run is removed; a socket another process accepts on (a
 * running syslog daemon), or anything that is not a socket, is refused, never replaced.
 */
async function clearStaleSocket(path: string, name: string): Promise<void> {
  let st: Stats
  try {
    st = lstatSync(path)
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return
    throw new SpillwayError(ErrorCodes.listen, `${name}: cannot look at ${path}: ${(err as Error).message}`)
  }
  if (!st.isSocket())
    throw new SpillwayError(
      ErrorCodes.listen,
      `${name}: ${path} exists and is not a socket; not replacing it`,
    )
  const live = await new Promise<boolean>((resolve) => {
    const c = connect({ path }, () => {
      c.destroy()
      resolve(true)
    })
    // ECONNREFUSED: nobody is there (stale). EPROTOTYPE: a datagram socket, alive.
    c.on('error', (err: NodeJS.ErrnoException) =>
      resolve(err.code !== 'ECONNREFUSED' && err.code !== 'ENOENT'),
    )
  })
  if (live)
    throw new SpillwayError(
      ErrorCodes.listen,
      `${name}: ${path} is a socket another process receives on; not replacing it`,
    )
  unlinkSync(path)
}

function secureOptions(config: ListenerConfig): SecureContextOptions {
  const read = (what: string, file: string) => {
    try {
      return readFileSync(file)
    } catch (err) {
      throw new SpillwayError(
        ErrorCodes.listen,
        `tls ${config.host}:${config.port}: cannot read ${what} ${file}: ${(err as Error).message}`,
      )
    }
  }
  const o: SecureContextOptions = { cert: read('cert', config.tls.cert), key: read('key', config.tls.key) }
  if (config.tls.ca !== '') o.ca = read('ca', config.tls.ca)
  return o
}
