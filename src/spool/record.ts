// The spool record: one line of text per message, the same bytes whether the record goes to a spool
// segment on disk or to the journal worker in a memory batch, so one decoder serves both paths.
//
//   CRC32 SP RECEIVED_MS SP TRANSPORT SP PEER SP ORIGLEN SP MSG LF
//   5e1f0a2c 1763904364123 tcp 127.0.0.1:51234 - <13>Nov 23 13:26:04 web1 app: hello
//
// - CRC32: 8 lower-case hex digits, CRC-32 (zlib) of every byte after "CRC32 SP" up to, not including, LF.
// - RECEIVED_MS: unix milliseconds when the bytes were read from the socket.
// - TRANSPORT: tcp | udp.  PEER: the sender's address:port ([v6]:port for IPv6).
// - ORIGLEN: '-', or the message's original length in bytes when it was cut to the size limit.
// - MSG: the message bytes with '\' written as '\\', LF as '\n' and CR as '\r', so a record never
//   contains a raw LF and `tail -F spool/*` shows one message per line.
//
// Invariants the journal relies on:
// - A record is complete only with its LF; a record without one at the end of a sealed segment is a torn
//   write (a crash mid-append) and is set aside, never journaled half.
// - A record whose CRC does not match is set aside and counted; the records after it are still read.
// - Records never span segments; a segment is only appended to, by one writer, and deleted whole once
//   the journal has committed past its last record.

import { copyRanges, crc32Range, sealRecords } from './native.js'

const kSP = 0x20
const kLF = 0x0a
const kCR = 0x0d
const kBS = 0x5c
const kDash = 0x2d
const kNone = Buffer.alloc(0)

/** Upper bound of the header: crc, ms, fixed separators, origlen; plus the connection prefix. */
export const kRecordOverhead = 9 + 16 + 1 + 11 + 1
/** Worst case size of one record: every message byte escaped. */
export function maxRecordBytes(prefixLen: number, msgLen: number): number {
  return kRecordOverhead + prefixLen + 2 * msgLen + 1
}

/** "tcp 127.0.0.1:5140 " as bytes: the part of the header fixed for a connection. */
export function connPrefix(transport: string, peer: string): Buffer {
  return Buffer.from(`${transport} ${peer} `, 'latin1')
}

/** Message copies an encoder holds before it does them in one native call. */
const kMaxCopies = 4096

/**
 * Writes records. Keeps, per source buffer, where the next byte needing an escape lies, so a chunk of
 * many frames is scanned once by native indexOf instead of once per frame (or byte by byte in JS).
 * That answer describes the buffer's bytes as they were when scanned: a reused read buffer (one per
 * listener, shared by its connections) is refilled between reads, so the caller says when its sources
 * may change (sourcesDone) and the answer is forgotten then. A stale answer would copy a backslash, LF
 * or CR unescaped into the record: a message altered on the way to the journal, or a torn record.
 *
 * encodeUnsealed leaves two things for later, each done for many records in one native call: the
 * message bytes (copied by finishCopies) and the checksum (written by sealRecords, after the copies).
 */
export class RecordEncoder {
  private src: Buffer | null = null
  private lastStart = -1
  private nextBs = -1
  private nextLf = -1
  private nextCr = -1
  /** Copies not done yet: (dstOff, srcStart, srcEnd) triples, all from copySrc to copyDst. */
  private readonly copies = new Int32Array(3 * kMaxCopies)
  private nCopies = 0
  private copySrc: Buffer = kNone
  private copyDst: Buffer = kNone

  /** Encodes one whole record at out[off], checksum included; returns the offset after its LF. */
  encode(
    out: Buffer,
    off: number,
    now: Buffer,
    prefix: Buffer,
    src: Buffer,
    start: number,
    end: number,
    origLen: number,
  ): number {
    const after = this.encodeUnsealed(out, off, now, prefix, src, start, end, origLen)
    this.finishCopies()
    sealRecords(out, off, after)
    return after
  }

  /**
   * Encodes one record at out[off], all but its message bytes and its checksum; returns the offset
   * after its LF. Until finishCopies() runs, src[start, end) must not change; before out's records
   * leave, finishCopies() and then sealRecords() must run over them (the spool writer does both before a
   * write, the router before it posts a memory batch).
   */
  encodeUnsealed(
    out: Buffer,
    off: number,
    now: Buffer,
    prefix: Buffer,
    src: Buffer,
    start: number,
    end: number,
    origLen: number,
  ): number {
    out[off + 8] = kSP
    off += 9
    // A few dozen bytes: a loop the JIT compiles inline beats a call to TypedArray.prototype.set (and
    // the generic property loads it makes) per record; Buffer.copy would also allocate a view on Node 20.
    const nowLen = now.length
    for (let i = 0; i < nowLen; i++) out[off + i] = now[i]!
    off += nowLen
    out[off++] = kSP
    const prefixLen = prefix.length
    for (let i = 0; i < prefixLen; i++) out[off + i] = prefix[i]!
    off += prefixLen
    if (origLen > 0) off += out.write(String(origLen), off, 'latin1')
    else out[off++] = kDash
    out[off++] = kSP
    if (this.needsEscape(src, start, end)) {
      off = escapeInto(out, off, src, start, end)
    } else {
      if (src !== this.copySrc || out !== this.copyDst || this.nCopies === kMaxCopies) {
        this.finishCopies()
        this.copySrc = src
        this.copyDst = out
      }
      const i = 3 * this.nCopies++
      this.copies[i] = off
      this.copies[i + 1] = start
      this.copies[i + 2] = end
      off += end - start
    }
    out[off++] = kLF
    return off
  }

  /**
   * The buffers encoded from since the last call may be refilled now: the copies are done, and where the
   * next escape lies in them is forgotten (their bytes will not be the ones scanned).
   */
  sourcesDone(): void {
    this.finishCopies()
    this.src = null
  }

  /** Does the message copies encodeUnsealed left; records are sealed only after this. */
  finishCopies(): void {
    if (this.nCopies === 0) return
    copyRanges(this.copySrc, this.copyDst, this.copies, this.nCopies)
    this.nCopies = 0
    // Not kept: a buffer no longer encoded from (a closed connection's carry) is not held alive here.
    this.copySrc = this.copyDst = kNone
  }

  private needsEscape(src: Buffer, start: number, end: number): boolean {
    if (src !== this.src || start <= this.lastStart) {
      // A new buffer, or one that was refilled (a connection's carry is reused from offset 0).
      this.src = src
      this.nextBs = this.nextLf = this.nextCr = -1
    }
    this.lastStart = start
    if (this.nextBs < start) this.nextBs = indexOrEnd(src, kBS, start)
    if (this.nextLf < start) this.nextLf = indexOrEnd(src, kLF, start)
    if (this.nextCr < start) this.nextCr = indexOrEnd(src, kCR, start)
    return this.nextBs < end || this.nextLf < end || this.nextCr < end
  }
}

function indexOrEnd(src: Buffer, byte: number, from: number): number {
  const i = src.indexOf(byte, from)
  return i === -1 ? src.length : i
}

function escapeInto(out: Buffer, off: number, src: Buffer, start: number, end: number): number {
  for (let i = start; i < end; i++) {
    const b = src[i]!
    if (b === kBS) {
      out[off++] = kBS
      out[off++] = kBS
    } else if (b === kLF) {
      out[off++] = kBS
      out[off++] = 0x6e // n
    } else if (b === kCR) {
      out[off++] = kBS
      out[off++] = 0x72 // r
    } else {
      out[off++] = b
    }
  }
  return off
}

function hexVal(b: number): number {
  if (b >= 0x30 && b <= 0x39) return b - 0x30
  if (b >= 0x61 && b <= 0x66) return b - 0x57
  return -1
}

export const RecordError = {
  short: 'record too short',
  crc: 'checksum mismatch',
  header: 'malformed header',
} as const
export type RecordErrorReason = (typeof RecordError)[keyof typeof RecordError]

/**
 * Reads one record (without its LF) into its fields. Reuse one instance: `read` allocates only the
 * transport and peer strings, and those only when they differ from the previous record's.
 */
export class RecordReader {
  receivedAt = 0
  transport = ''
  peer = ''
  origLen = 0
  msgStart = 0
  msgEnd = 0
  escaped = false
  error: RecordErrorReason | null = null
  private buf: Buffer = Buffer.alloc(0)
  private lastPeerBytes: Buffer = Buffer.alloc(0)
  // Next backslash in `buf` at or after the last record read: one native scan per buffer, not per record.
  private nextBs = -1
  private lastStart = -1

  /** Parses buf[start, end) (the record without its LF). Returns false and sets `error` if corrupt. */
  read(buf: Buffer, start: number, end: number): boolean {
    if (buf !== this.buf || start <= this.lastStart) this.nextBs = -1
    this.buf = buf
    this.lastStart = start
    this.error = null
    if (end - start < 9 + 2 + 4 + 2 + 2) return this.fail(RecordError.short)
    let want = 0
    for (let i = 0; i < 8; i++) {
      const h = hexVal(buf[start + i]!)
      if (h < 0) return this.fail(RecordError.header)
      want = want * 16 + h
    }
    if (buf[start + 8] !== kSP) return this.fail(RecordError.header)
    if (crc32Range(buf, start + 9, end) !== want) return this.fail(RecordError.crc)
    let p = start + 9
    let ms = 0
    while (p < end && buf[p] !== kSP) {
      const d = buf[p]! - 0x30
      if (d < 0 || d > 9) return this.fail(RecordError.header)
      ms = ms * 10 + d
      p++
    }
    this.receivedAt = ms
    // transport + peer: compared as one byte range so a run of records from one sender reuses the strings
    const tStart = ++p
    while (p < end && buf[p] !== kSP) p++
    const tEnd = p
    p++
    while (p < end && buf[p] !== kSP) p++
    const peerEnd = p
    if (p >= end) return this.fail(RecordError.header)
    // compare() with offsets takes no view of buf: nothing is allocated while the sender repeats.
    if (
      this.lastPeerBytes.length !== peerEnd - tStart ||
      this.lastPeerBytes.compare(buf, tStart, peerEnd) !== 0
    ) {
      this.lastPeerBytes = Buffer.from(buf.subarray(tStart, peerEnd))
      this.transport = buf.toString('latin1', tStart, tEnd)
      this.peer = buf.toString('latin1', tEnd + 1, peerEnd)
    }
    p++
    if (buf[p] === kDash) {
      this.origLen = 0
      p++
    } else {
      let n = 0
      while (p < end && buf[p] !== kSP) {
        const d = buf[p]! - 0x30
        if (d < 0 || d > 9) return this.fail(RecordError.header)
        n = n * 10 + d
        p++
      }
      this.origLen = n
    }
    if (buf[p] !== kSP) return this.fail(RecordError.header)
    this.msgStart = p + 1
    this.msgEnd = end
    if (this.nextBs < this.msgStart) this.nextBs = indexOrEnd(buf, kBS, this.msgStart)
    this.escaped = this.nextBs < end
    return true
  }

  /** The message as text: escapes undone, invalid UTF-8 replaced by U+FFFD. */
  msgText(): string {
    if (!this.escaped) return this.buf.toString('utf8', this.msgStart, this.msgEnd)
    return unescapeMsg(this.buf, this.msgStart, this.msgEnd).toString('utf8')
  }

  private fail(reason: RecordErrorReason): false {
    this.error = reason
    return false
  }
}

export function unescapeMsg(buf: Buffer, start: number, end: number): Buffer {
  const out = Buffer.allocUnsafe(end - start)
  let o = 0
  for (let i = start; i < end; i++) {
    const b = buf[i]!
    if (b === kBS && i + 1 < end) {
      const c = buf[++i]!
      out[o++] = c === 0x6e ? kLF : c === 0x72 ? kCR : c
    } else {
      out[o++] = b
    }
  }
  return out.subarray(0, o)
}
