// Per-connection state: framing state, the header prefix of its records, and its lane in the router.
// One object per connection; its handlers are bound once here, never per message.

import type { Socket } from 'node:net'
import { type Lane, LaneState, type Router } from '../buffer/router.js'
import { Framer, type FrameSink, type FramingCounters } from '../framing/framer.js'
import { connPrefix } from '../spool/record.js'

/** What a stream listener (listen/tcp.ts) needs of a connection, whatever it speaks. */
export interface StreamConn extends Lane {
  /** Replaced once, when the listener moves the connection into a socket with a reused read buffer. */
  socket: Socket
  readonly peer: string
  /** For a socket reading into a shared buffer (listen/read-buffer.ts): buf[0, n) is this read. */
  readonly onRead: (n: number, buf: Buffer) => void
  /** For a socket read the usual way ('data'). */
  readonly onData: (chunk: Buffer) => void
  /**
   * No more bytes will come: with `flush` the peer finished (an unfinished frame is kept as it is);
   * without, the server is closing the connection (an unfinished frame is dropped and counted).
   */
  finish(flush: boolean): void
  /**
   * Sessions that answer what they read (RELP): at stop, reading ends first, and the session is closed
   * only once what was read is written and answered (closeSession).
   */
  stopReading?(): void
  closeSession?(ms: number): Promise<void>
  /** The socket has closed. */
  closed?(): void
  /** Bytes of an unfinished frame held between reads (stats: partial_frame_bytes). */
  readonly pendingBytes: number
  /** A frame has begun and not ended: limits.frameTimeoutSeconds runs (listen/tcp.ts). */
  readonly inFrame: boolean
}

export class TcpConn extends LaneState implements FrameSink, StreamConn {
  /** Replaced once, when the listener moves the connection into a socket with a reused read buffer. */
  socket: Socket
  readonly peer: string
  readonly framer: Framer
  prefix: Buffer
  private readonly router: Router
  readonly onData: (chunk: Buffer) => void
  /** For a socket reading into a shared buffer (listen/read-buffer.ts): buf[0, n) is this read. */
  readonly onRead: (n: number, buf: Buffer) => void
  /** The buffer of the read being framed: frames in it stay put until the read is done. */
  private chunk: Buffer | null = null

  constructor(
    socket: Socket,
    router: Router,
    maxMessageBytes: number,
    counters: FramingCounters,
    transport: 'tcp' | 'tls' | 'unix' = 'tcp',
    peer = formatPeer(socket.remoteAddress, socket.remotePort),
  ) {
    super()
    this.socket = socket
    this.router = router
    this.peer = peer
    this.prefix = connPrefix(transport, this.peer)
    this.framer = new Framer(maxMessageBytes, counters)
    this.onData = (chunk: Buffer) => this.onRead(chunk.length, chunk)
    this.onRead = (n: number, buf: Buffer) => {
      this.router.setNow(Date.now())
      this.chunk = buf
      this.framer.push(buf, this, n)
      this.router.readDone(this, n)
    }
  }

  finish(flush: boolean): void {
    this.framer.finish(this, flush)
  }

  get pendingBytes(): number {
    return this.framer.pendingBytes
  }

  get inFrame(): boolean {
    return this.framer.inFrame
  }

  pauseReading(): void {
    this.socket.pause()
  }

  resumeReading(): void {
    this.socket.resume()
  }

  onFrame(buf: Buffer, start: number, end: number, origLen: number): void {
    this.router.route(this, buf, start, end, origLen)
    // The router copies messages when the read is done; a frame assembled in the framer's carry (it
    // straddled reads) can be overwritten before that, by the next frame's start in the same read.
    if (buf !== this.chunk) this.router.sourcesDone()
  }
}

export function formatPeer(address: string | undefined, port: number | undefined): string {
  if (address === undefined) return 'unknown'
  return address.includes(':') ? `[${address}]:${port}` : `${address}:${port}`
}
