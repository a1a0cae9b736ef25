// A RELP session (librelp's protocol, as rsyslog's omrelp speaks it), on the socket thread: one per
// connection of a "relp" listener (listen/tcp.ts accepts them, with TLS when the listener has a cert).
//
// The acknowledgement is the point of RELP: `TXNR rsp 6 200 OK` tells the sender it may forget the message.
// So every message goes to the spool (the lane is `alwaysSpool`, whatever spool.thresholdBytes says) and
// its acknowledgement is sent only once the spool writer reports the write holding its record complete
// (synced too, with spool.fsync "batch"). A kill -9 then loses nothing a sender was told was received:
// what it sent and had no answer for is sent again when it reconnects. That makes duplicates possible,
// only of messages written but not yet acknowledged when the process died: the interval between a
// write's completion and its acknowledgement, one event-loop turn.
//
// Answers go out in the order of the frames they answer, each `syslog` as soon as its record is written,
// batched into one socket write per spool write. A message dropped by spool.whenFull "drop" is answered
// `500`, so the sender keeps it. At stop, reading ends, what was read is written, answered, and the
// session is closed with `serverclose`, as librelp's server does.

import type { Socket } from 'node:net'
import { type Lane, LaneState, type Router } from '../buffer/router.js'
import { RelpFramer, type RelpSink } from '../framing/relp.js'
import { logEvent } from '../log.js'
import { connPrefix } from '../spool/record.js'
import { formatPeer, type StreamConn } from './conn.js'

const kVersion = '0.1.0'
const kOffers = `200 OK\nrelp_version=0\nrelp_software=spillway,${kVersion},https://github.com/spillway\ncommands=syslog`

const kLF = 0x0a
const kCR = 0x0d

/** What an entry of the answer queue waits for. */
const A_WRITTEN = 0 // a syslog message: 200 OK once its record is on disk
const A_FAILED = 1 // a syslog message that was not kept: 500 at its turn
const A_CLOSE = 2 // the client's close: an empty rsp, then the end of the connection
const A_TEXT = 3 // any other answer, sent at its turn

/** Counters of every RELP listener; plain fields, as counters.ts. */
export class RelpCounters {
  received = 0
  sessions = 0
  acked = 0
  refusedAcks = 0
  protocolErrors = 0
}

/** Protocol errors are logged at most this often (a scanner must not flood the log). */
const kErrorLogEveryMs = 10_000
let lastErrorLog = 0
let errorsSinceLog = 0

export class RelpConn extends LaneState implements RelpSink, StreamConn, Lane {
  socket: Socket
  readonly peer: string
  readonly prefix: Buffer
  readonly alwaysSpool = true
  readonly onRead: (n: number, buf: Buffer) => void
  readonly onData: (chunk: Buffer) => void
  private readonly framer: RelpFramer
  private readonly router: Router
  private readonly counters: RelpCounters
  private readonly sessions: Set<RelpConn>
  private opened = false
  private closing = false
  /** The answer queue, oldest first, from `head`: kind, txnr, and where the record ends in the spool. */
  private kinds: number[] = []
  private txnrs: number[] = []
  private segs: number[] = []
  private offs: number[] = []
  private texts: string[] = []
  private head = 0
  private ended: (() => void) | null = null

  constructor(
    socket: Socket,
    router: Router,
    maxMessageBytes: number,
    counters: RelpCounters,
    sessions: Set<RelpConn>,
    tls: boolean,
  ) {
    super()
    this.socket = socket
    this.router = router
    this.counters = counters
    this.sessions = sessions
    this.peer = formatPeer(socket.remoteAddress, socket.remotePort)
    this.prefix = connPrefix(tls ? 'relp-tls' : 'relp', this.peer)
    this.framer = new RelpFramer(maxMessageBytes)
    this.onData = (chunk: Buffer) => this.onRead(chunk.length, chunk)
    this.onRead = (n: number, buf: Buffer) => {
      this.router.setNow(Date.now())
      this.framer.push(buf, this, n)
      this.router.readDone(this, n)
    }
  }

  get pendingBytes(): number {
    return this.framer.pendingBytes
  }

  get inFrame(): boolean {
    return this.framer.midFrame
  }

  /** The socket closed (the listener calls this: the socket object is replaced at accept). */
  closed(): void {
    this.sessions.delete(this)
    this.ended?.()
  }

  onRelpFrame(txnr: number, command: string, buf: Buffer, start: number, end: number, origLen: number): void {
    if (command === 'syslog') {
      if (!this.opened) {
        this.refuse(txnr, '500 session not open')
        return
      }
      this.counters.received++
      // rsyslog's RFC 5424 template ends the message with LF: framing, not content (as in framer.ts).
      while (end > start && (buf[end - 1] === kLF || buf[end - 1] === kCR)) end--
      const kept = this.router.route(this, buf, start, end, origLen)
      if (kept) this.queue(A_WRITTEN, txnr, '')
      else this.queue(A_FAILED, txnr, '500 spool full: message not kept')
      return
    }
    if (command === 'open') {
      if (this.opened) {
        this.refuse(txnr, '500 protocol error: connection already open')
        return
      }
      const offers = buf.toString('latin1', start, end)
      if (!/(^|\n)commands=([^\n]*,)?syslog(,|\n|$)/.test(offers)) {
        this.refuse(txnr, '500 required command not supported by client')
        return
      }
      this.opened = true
      this.counters.sessions++
      this.sessions.add(this)
      this.queue(A_TEXT, txnr, kOffers)
      return
    }
    if (command === 'close') {
      this.closing = true
      this.queue(A_CLOSE, txnr, '')
      return
    }
    this.queue(A_TEXT, txnr, '500 command not supported')
  }

  onRelpError(reason: string): void {
    this.counters.protocolErrors++
    const now = Date.now()
    if (now - lastErrorLog >= kErrorLogEveryMs) {
      logEvent('relp-error', {
        peer: this.peer,
        reason,
        errorsSinceLastLine: errorsSinceLog,
        action: 'closed',
      })
      lastErrorLog = now
      errorsSinceLog = 0
    } else {
      errorsSinceLog++
    }
    // Answers owed are still sent (their records are being written); then the connection ends.
    this.closing = true
    this.queue(A_CLOSE, -1, '')
  }

  /** A refusal that ends the session: librelp's server closes it too. */
  private refuse(txnr: number, text: string): void {
    this.queue(A_TEXT, txnr, text)
    this.closing = true
    this.queue(A_CLOSE, -1, '')
  }

  private queue(kind: number, txnr: number, text: string): void {
    this.kinds.push(kind)
    this.txnrs.push(txnr)
    this.segs.push(this.spoolSeg)
    this.offs.push(this.spoolOff)
    this.texts.push(text)
    // Answers that wait for nothing go out now if nothing is ahead of them; written ones at spoolWritten.
    if (kind !== A_WRITTEN) this.written(-1, -1)
  }

  /** The spool writer has everything before (seg, off) on disk: answer what that covers, in order. */
  written(seg: number, off: number): void {
    let out = ''
    let end = false
    let i = this.head
    for (; i < this.kinds.length; i++) {
      const kind = this.kinds[i]!
      const txnr = this.txnrs[i]!
      if (kind === A_WRITTEN) {
        const s = this.segs[i]!
        if (seg < s || (seg === s && off < this.offs[i]!)) break
        out += `${txnr} rsp 6 200 OK\n`
        this.counters.acked++
      } else if (kind === A_FAILED) {
        out += rsp(txnr, this.texts[i]!)
        this.counters.refusedAcks++
      } else if (kind === A_TEXT) {
        out += rsp(txnr, this.texts[i]!)
      } else {
        if (txnr >= 0) out += `${txnr} rsp 0\n`
        end = true
        i++
        break
      }
    }
    this.head = i
    if (this.head === this.kinds.length || this.head > 1024) this.compact()
    if (out !== '' && !this.socket.destroyed) this.socket.write(out)
    if (end) this.end()
  }

  /** Whether answers are still owed for messages being written. */
  get owes(): boolean {
    return this.head < this.kinds.length
  }

  finish(_flush: boolean): void {
    // An unfinished frame is no message: RELP answers whole frames only, and the sender still has it.
  }

  pauseReading(): void {
    this.socket.pause()
  }

  resumeReading(): void {
    if (!this.closing) this.socket.resume()
  }

  /** Stop: read nothing more (what was read is being written and will be answered). */
  stopReading(): void {
    this.closing = true
    this.socket.pause()
    this.socket.removeAllListeners('data')
  }

  /**
   * Stop, once everything read is written and answered: `serverclose`, then the end of the connection.
   * Resolves when the socket has closed, or after `ms`, when it is destroyed.
   */
  closeSession(ms: number): Promise<void> {
    if (this.socket.destroyed) return Promise.resolve()
    return new Promise((resolve) => {
      const timer = setTimeout(() => this.socket.destroy(), ms)
      timer.unref()
      this.ended = () => {
        clearTimeout(timer)
        resolve()
      }
      if (this.opened) this.socket.write('0 serverclose 0\n')
      this.socket.end()
    })
  }

  private end(): void {
    this.closing = true
    this.socket.end()
  }

  private compact(): void {
    this.kinds = this.kinds.slice(this.head)
    this.txnrs = this.txnrs.slice(this.head)
    this.segs = this.segs.slice(this.head)
    this.offs = this.offs.slice(this.head)
    this.texts = this.texts.slice(this.head)
    this.head = 0
  }
}

function rsp(txnr: number, text: string): string {
  return `${txnr} rsp ${Buffer.byteLength(text)} ${text}\n`
}
