// Incremental stream framing (TCP, TLS, unix stream): RFC 6587 octet-counted frames, and frames ended by
// a trailer byte, LF or NUL, per connection.
//
// A frame is handed to the sink as a (buf, start, end) triple that points into the socket's own chunk
// whenever the frame lies inside one read; only a frame that straddles reads is copied, into `carry`.
//
// Octet counting, detected at the first byte of each frame:
//   [1-9][0-9]{0,8} SP '<'   octet-counted: the digits are MSG-LEN, the frame is the next MSG-LEN bytes.
//   Requiring '<' (the PRI every RFC 5424 / 3164 message starts with) keeps LF senders whose lines begin
//   with a number ("2024 backup done") from being misread as octet-counted.
//   Sticky: once a connection has sent one such frame, its later frames need only `LEN SP`: the next LEN
//   bytes are the message whatever they start with (a message without a PRI, as rsyslog and syslog-ng
//   send one). A frame that does not start with `LEN SP` is still read as a trailer-ended frame.
//
// Trailers (RFC 6587 3.4.2, "non-transparent framing"), decided once per connection by its first frame
// that is not octet-counted:
//   LF    the first trailer-framed frame ends at an LF: LF ends every later frame (one CR before it is
//         dropped), and a NUL is message content (the journal shows it as U+FFFD).
//   NUL   the first one holds a NUL before any LF, and that NUL is followed by '<' (the next message's
//         PRI), a digit 1-9 (an octet count), another NUL, or is the last byte read so far: NUL ends it and
//         every later frame, and LF is
//         content, so a multi-line record (a Python traceback) stays one message. Python's
//         SysLogHandler over TCP, some Java senders and appliances NUL-terminate and send no LF.
//   A NUL followed by any other byte in that first frame is content, and the search goes on. The one
//   case that depends on how the bytes were split into reads: a NUL inside an LF sender's first line
//   that happens to be the last byte of a read makes the connection NUL-framed.
//
// Limits, enforced here (as undici's parser enforces its header limit), never after buffering:
//   - a frame longer than `maxMessageBytes` is cut to its first `maxMessageBytes` bytes and handed over
//     once, with its original length; the rest is skipped exactly (octet-counted: the declared count;
//     otherwise up to the next trailer). The tail of an oversized frame never becomes a message of its own.
//   - a declared count above `maxOctetCount` is not trusted as a length (a hostile "999999999 <" would
//     otherwise swallow every later frame); the frame is read as trailer-ended instead.
//   - empty frames (a lone trailer, CRLF) are not messages; they are counted. LF/CR ending an
//     octet-counted or NUL-ended frame are dropped too, so one message reads the same however it was framed.

export interface FrameSink {
  /** buf[start, end) is one message. origLen > 0: the message was cut from origLen bytes. */
  onFrame(buf: Buffer, start: number, end: number, origLen: number): void
}

/** Shared by all connections of a server; plain fields so an increment costs one add. */
export class FramingCounters {
  lfFrames = 0
  nulFrames = 0
  octetFrames = 0
  truncated = 0
  emptyLines = 0
  /** Incomplete frames discarded when the server closed the connection at stop. */
  partialDropped = 0
}

const S_START = 0
const S_LEN = 1 // reading the digits of a possible octet count
const S_LEN_SP = 2 // saw digits and SP; the next byte decides
const S_OCTET = 3 // reading an octet-counted body of `need` more bytes
const S_OCTET_BIG = 4 // reading an oversized octet-counted body: keep up to max, skip the rest
const S_LINE = 5 // reading a trailer-ended frame
const S_SKIP_LINE = 6 // an oversized trailer-ended frame was cut; discarding up to its trailer

const T_UNDECIDED = 0
const T_LF = 1
const T_NUL = 2

const kNUL = 0x00
const kLF = 0x0a
const kCR = 0x0d
const kSP = 0x20
const kLT = 0x3c
const kMaxDigits = 9
const kEmpty = Buffer.alloc(0)

/**
 * Trailing LF and CR are framing, not content, whatever the framing: some senders (rsyslog's RFC 5424
 * template, syslog-ng's syslog() driver) count a newline into an octet-counted frame.
 */
function trimEnd(buf: Buffer, start: number, end: number): number {
  while (end > start && (buf[end - 1] === kLF || buf[end - 1] === kCR)) end--
  return end
}

/** i if it is a match before `limit`; -1 otherwise (bytes at and past `limit` are not this read's). */
function below(i: number, limit: number): number {
  return i < limit ? i : -1
}

export class Framer {
  readonly max: number
  readonly maxOctetCount: number
  readonly counters: FramingCounters
  state = S_START
  /** The connection's trailer, T_*: decided by its first trailer-ended frame. */
  trailer = T_UNDECIDED
  /** The connection has sent a well-formed octet-counted frame: later counts need no '<' after them. */
  octetSticky = false
  private count = 0
  private digits = 0
  private need = 0
  private origLen = 0
  private carry: Buffer = kEmpty
  private carryLen = 0

  constructor(maxMessageBytes: number, counters: FramingCounters, maxOctetCount = maxMessageBytes * 16) {
    this.max = maxMessageBytes
    this.maxOctetCount = maxOctetCount
    this.counters = counters
  }

  /** Whether a frame has begun and not ended (its bytes may be held in carry, or being skipped). */
  get inFrame(): boolean {
    return this.state !== S_START
  }

  /** Bytes of an unfinished frame held between reads. */
  get pendingBytes(): number {
    return this.carryLen
  }

  /** Frames chunk[0, n): n is less than chunk.length when the socket reads into a reused buffer. */
  push(chunk: Buffer, sink: FrameSink, n = chunk.length): void {
    const max = this.max
    let pos = 0
    let fs = 0 // where the current frame's bytes start in this chunk (earlier bytes are in carry)
    while (pos < n) {
      switch (this.state) {
        case S_START: {
          const b = chunk[pos]!
          fs = pos
          if (b >= 0x31 && b <= 0x39) {
            this.state = S_LEN
            this.count = 0
            this.digits = 0
          } else {
            this.state = S_LINE
          }
          break
        }
        case S_LEN: {
          while (pos < n) {
            const b = chunk[pos]!
            if (b >= 0x30 && b <= 0x39 && this.digits < kMaxDigits) {
              this.count = this.count * 10 + (b - 0x30)
              this.digits++
              pos++
            } else if (b === kSP) {
              pos++
              this.state = S_LEN_SP
              break
            } else {
              this.state = S_LINE // not a count: the digits are the start of an LF-terminated line
              break
            }
          }
          break
        }
        case S_LEN_SP: {
          if ((this.octetSticky || chunk[pos] === kLT) && this.count <= this.maxOctetCount) {
            this.octetSticky = true
            this.need = this.count
            this.carryLen = 0 // the header is not part of the message
            fs = pos
            this.state = this.count <= max ? S_OCTET : S_OCTET_BIG
          } else {
            this.state = S_LINE
          }
          break
        }
        case S_OCTET: {
          const take = Math.min(n - pos, this.need)
          this.need -= take
          pos += take
          if (this.need === 0) {
            this.counters.octetFrames++
            if (this.carryLen === 0) {
              sink.onFrame(chunk, fs, trimEnd(chunk, fs, pos), 0)
            } else {
              this.append(chunk, fs, pos)
              sink.onFrame(this.carry, 0, trimEnd(this.carry, 0, this.carryLen), 0)
              this.carryLen = 0
            }
            this.state = S_START
          }
          break
        }
        case S_OCTET_BIG: {
          const take = Math.min(n - pos, this.need)
          const room = max - this.carryLen
          if (room > 0) this.append(chunk, pos, pos + Math.min(room, take))
          this.need -= take
          pos += take
          fs = pos
          if (this.need === 0) {
            this.counters.octetFrames++
            this.counters.truncated++
            sink.onFrame(this.carry, 0, this.carryLen, this.count)
            this.carryLen = 0
            this.state = S_START
          }
          break
        }
        case S_LINE: {
          const lf = this.findTrailer(chunk, pos, n)
          const stop = lf === -1 ? n : lf
          const lineLen = this.carryLen + (stop - fs)
          if (lineLen > max) {
            if (this.carryLen < max) this.append(chunk, fs, fs + (max - this.carryLen))
            if (lf === -1) {
              this.origLen = lineLen
              this.state = S_SKIP_LINE
              pos = n
              fs = n
            } else {
              this.emitCut(sink, lineLen)
              pos = lf + 1
            }
          } else if (lf === -1) {
            pos = n
          } else {
            if (this.carryLen === 0) {
              const end =
                this.trailer === T_LF
                  ? lf > fs && chunk[lf - 1] === kCR
                    ? lf - 1
                    : lf
                  : trimEnd(chunk, fs, lf)
              if (end > fs) {
                this.countTrailerFrame()
                sink.onFrame(chunk, fs, end, 0)
              } else {
                this.counters.emptyLines++
              }
            } else {
              this.append(chunk, fs, lf)
              this.emitCarryLine(sink)
            }
            pos = lf + 1
            this.state = S_START
          }
          break
        }
        case S_SKIP_LINE: {
          const lf = this.findTrailer(chunk, pos, n)
          if (lf === -1) {
            this.origLen += n - pos
            pos = n
          } else {
            this.origLen += lf - pos
            this.emitCut(sink, this.origLen)
            pos = lf + 1
          }
          fs = pos
          break
        }
      }
    }
    // Keep the unfinished frame's bytes of this chunk: the chunk itself is not retained.
    const s = this.state
    if ((s === S_LEN || s === S_LEN_SP || s === S_LINE || s === S_OCTET) && fs < n) this.append(chunk, fs, n)
  }

  /**
   * The connection has ended. With `flush`, an unfinished frame becomes a message (an unterminated last
   * line is normal for `nc`; an octet-counted frame cut short is flagged with its declared length).
   * Without it (the server is stopping), the fragment is dropped and counted.
   */
  finish(sink: FrameSink, flush: boolean): void {
    const s = this.state
    this.state = S_START
    if (s === S_START) return
    if (!flush) {
      if (this.carryLen > 0 || s === S_OCTET || s === S_OCTET_BIG) this.counters.partialDropped++
      this.carryLen = 0
      return
    }
    if (s === S_OCTET || s === S_OCTET_BIG) {
      this.counters.octetFrames++
      this.counters.truncated++
      sink.onFrame(this.carry, 0, this.carryLen, this.count)
    } else if (s === S_SKIP_LINE) {
      this.countTrailerFrame()
      this.counters.truncated++
      sink.onFrame(this.carry, 0, this.carryLen, this.origLen)
    } else if (this.carryLen > 0) {
      this.emitCarryLine(sink)
      return
    }
    this.carryLen = 0
  }

  /**
   * Where the current trailer-ended frame ends in chunk[pos, n): the index of its trailer byte, or -1.
   * A connection that has not yet decided its trailer decides it here (see the top of this file).
   */
  private findTrailer(chunk: Buffer, pos: number, n: number): number {
    if (this.trailer === T_LF) return below(chunk.indexOf(kLF, pos), n)
    if (this.trailer === T_NUL) return below(chunk.indexOf(kNUL, pos), n)
    const lf = below(chunk.indexOf(kLF, pos), n)
    const limit = lf === -1 ? n : lf
    for (
      let z = below(chunk.indexOf(kNUL, pos), limit);
      z !== -1;
      z = below(chunk.indexOf(kNUL, z + 1), limit)
    ) {
      const next = z + 1 < n ? chunk[z + 1]! : kNUL
      if (next === kLT || next === kNUL || (next >= 0x31 && next <= 0x39)) {
        this.trailer = T_NUL
        return z
      }
    }
    if (lf !== -1) this.trailer = T_LF
    return lf
  }

  private countTrailerFrame(): void {
    if (this.trailer === T_NUL) this.counters.nulFrames++
    else this.counters.lfFrames++
  }

  private emitCarryLine(sink: FrameSink): void {
    let end = this.carryLen
    if (this.trailer === T_NUL) end = trimEnd(this.carry, 0, end)
    else if (end > 0 && this.carry[end - 1] === kCR) end--
    if (end > 0) {
      this.countTrailerFrame()
      sink.onFrame(this.carry, 0, end, 0)
    } else {
      this.counters.emptyLines++
    }
    this.carryLen = 0
    this.state = S_START
  }

  private emitCut(sink: FrameSink, origLen: number): void {
    this.countTrailerFrame()
    this.counters.truncated++
    sink.onFrame(this.carry, 0, this.carryLen, origLen)
    this.carryLen = 0
    this.state = S_START
  }

  private append(src: Buffer, a: number, b: number): void {
    if (b <= a) return
    this.carry = appendCarry(this.carry, this.carryLen, src, a, b, this.max)
    this.carryLen += b - a
  }
}

/**
 * src[a, b) appended to carry[0, len): returns the buffer that holds them, carry itself or a grown copy.
 * A frame that straddles reads is the only thing ever copied on the socket path, and never more than its
 * limit: the buffer grows by doubling up to max (+16 so a last CR or LF still fits).
 */
export function appendCarry(
  carry: Buffer,
  len: number,
  src: Buffer,
  a: number,
  b: number,
  max: number,
): Buffer {
  const need = len + (b - a)
  if (need > carry.length) {
    const grown = Buffer.allocUnsafe(Math.min(Math.max(256, need * 2), max + 16))
    carry.copy(grown, 0, 0, len)
    carry = grown
  }
  src.copy(carry, len, a, b)
  return carry
}
