// Incremental RELP framing (librelp, as rsyslog's omrelp speaks it): the frames a client sends.
//
//   TXNR SP COMMAND SP DATALEN [SP DATA] LF
//   1 open 85 relp_version=0\nrelp_software=librelp,1.11.0,https://...\ncommands=syslog
//   2 syslog 31 <13>Nov 23 10:00:00 web1 app: hi
//   3 close 0
//
// TXNR: 1-9 digits. COMMAND: 1-32 letters. DATALEN: 1-9 digits; DATA is exactly DATALEN bytes (any bytes,
// LF included), present only when DATALEN > 0; one LF ends the frame. Anything else is a protocol error:
// the sink is told once and the framer reads nothing more (the session is over, as in librelp).
//
// As framer.ts does for syslog frames, DATA is handed over as a (buf, start, end) triple into the read
// whenever it lies in one read, and copied into `carry` only when it straddles reads. A DATA longer than
// `maxMessageBytes` is cut to that size and handed over once with its original length; the rest is
// skipped exactly. The frame's trailer is checked before the frame is handed over.

import { appendCarry } from './framer.js'

export interface RelpSink {
  /** One whole frame: buf[start, end) is its DATA (cut to the limit when origLen > 0). */
  onRelpFrame(txnr: number, command: string, buf: Buffer, start: number, end: number, origLen: number): void
  /** The stream is not RELP; nothing after this is read. */
  onRelpError(reason: string): void
}

const S_TXNR = 0
const S_CMD = 1
const S_LEN = 2
const S_LEN_END = 3 // DATALEN read: SP before DATA, or the LF of a frame without data
const S_DATA = 4
const S_TRAILER = 5
const S_FAILED = 6

const kLF = 0x0a
const kSP = 0x20
const kMaxDigits = 9
const kMaxCommand = 32
const kEmpty = Buffer.alloc(0)

function isLetter(b: number): boolean {
  return (b >= 0x41 && b <= 0x5a) || (b >= 0x61 && b <= 0x7a)
}

export class RelpFramer {
  readonly max: number
  private state = S_TXNR
  private txnr = 0
  private digits = 0
  private command = ''
  private readonly cmdBytes = Buffer.alloc(kMaxCommand)
  private cmdLen = 0
  private len = 0
  private need = 0
  /** DATA of the current frame that did not fit one read (at most max bytes). */
  private carry: Buffer = kEmpty
  private carryLen = 0
  /** DATA in this read, when it lies in one: [dataStart, dataEnd) of the chunk. */
  private dataStart = -1
  private dataEnd = -1

  constructor(maxMessageBytes: number) {
    this.max = maxMessageBytes
  }

  /** Bytes of an unfinished frame held between reads. */
  get pendingBytes(): number {
    return this.carryLen
  }

  /** Whether a frame has begun and not ended: what a peer leaves when it vanishes mid-frame. */
  get midFrame(): boolean {
    return this.state !== S_TXNR || this.digits > 0
  }

  /** Frames chunk[0, n). */
  push(chunk: Buffer, sink: RelpSink, n = chunk.length): void {
    let pos = 0
    while (pos < n) {
      switch (this.state) {
        case S_TXNR: {
          const b = chunk[pos++]!
          if (b >= 0x30 && b <= 0x39 && this.digits < kMaxDigits) {
            this.txnr = this.txnr * 10 + (b - 0x30)
            this.digits++
          } else if (b === kSP && this.digits > 0) {
            this.state = S_CMD
            this.cmdLen = 0
          } else {
            this.fail(sink, `bad transaction number (byte 0x${b.toString(16)})`)
            return
          }
          break
        }
        case S_CMD: {
          const b = chunk[pos++]!
          if (isLetter(b) && this.cmdLen < kMaxCommand) {
            this.cmdBytes[this.cmdLen++] = b
          } else if (b === kSP && this.cmdLen > 0) {
            this.command = this.cmdBytes.toString('latin1', 0, this.cmdLen)
            this.state = S_LEN
            this.len = 0
            this.digits = 0
          } else {
            this.fail(sink, `bad command (byte 0x${b.toString(16)})`)
            return
          }
          break
        }
        case S_LEN: {
          const b = chunk[pos]!
          if (b >= 0x30 && b <= 0x39 && this.digits < kMaxDigits) {
            this.len = this.len * 10 + (b - 0x30)
            this.digits++
            pos++
          } else if (this.digits === 0) {
            this.fail(sink, 'missing data length')
            return
          } else {
            this.state = S_LEN_END
          }
          break
        }
        case S_LEN_END: {
          const b = chunk[pos++]!
          if (this.len === 0) {
            if (b !== kLF) {
              this.fail(sink, 'no LF after a frame without data')
              return
            }
            this.emit(sink, kEmpty, 0, 0)
          } else if (b === kSP) {
            this.need = this.len
            this.carryLen = 0
            this.dataStart = this.dataEnd = -1
            this.state = S_DATA
          } else {
            this.fail(sink, 'no space before data')
            return
          }
          break
        }
        case S_DATA: {
          const take = Math.min(n - pos, this.need)
          const got = this.len - this.need // DATA bytes before this read
          if (got === 0 && take === this.need) {
            this.dataStart = pos // whole DATA in this read: no copy
            this.dataEnd = pos + take
          } else if (got < this.max) {
            this.append(chunk, pos, pos + Math.min(take, this.max - got))
          }
          this.need -= take
          pos += take
          if (this.need === 0) this.state = S_TRAILER
          break
        }
        case S_TRAILER: {
          if (chunk[pos++] !== kLF) {
            this.fail(sink, 'no LF after the data')
            return
          }
          if (this.dataStart >= 0) {
            const end = Math.min(this.dataEnd, this.dataStart + this.max)
            this.emit(sink, chunk, this.dataStart, end)
          } else {
            this.emit(sink, this.carry, 0, this.carryLen)
          }
          break
        }
        case S_FAILED:
          return
      }
    }
    // DATA of this read that lies whole in it but whose trailer is in the next read: keep a copy.
    if (this.state === S_TRAILER && this.dataStart >= 0) {
      this.carryLen = 0
      this.append(chunk, this.dataStart, Math.min(this.dataEnd, this.dataStart + this.max))
      this.dataStart = this.dataEnd = -1
    }
  }

  private emit(sink: RelpSink, buf: Buffer, start: number, end: number): void {
    const origLen = this.len > this.max ? this.len : 0
    const txnr = this.txnr
    this.state = S_TXNR
    this.txnr = 0
    this.digits = 0
    this.dataStart = this.dataEnd = -1
    sink.onRelpFrame(txnr, this.command, buf, start, end, origLen)
    this.carryLen = 0
  }

  private fail(sink: RelpSink, reason: string): void {
    this.state = S_FAILED
    sink.onRelpError(reason)
  }

  private append(src: Buffer, a: number, b: number): void {
    if (b <= a) return
    this.carry = appendCarry(this.carry, this.carryLen, src, a, b, this.max)
    this.carryLen += b - a
  }
}
