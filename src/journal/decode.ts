// From a spool record to the fields of a journal row: the record's header read and checked (CRC), its
// message cleaned (the NUL rule, invalid UTF-8 counted) and parsed. The journal worker runs this inline
// for memory batches and stream messages; the replay decoder thread runs it for spooled chunks, ahead of
// the worker's inserts. One class, so both paths decode a record alike.

import { isUtf8 } from 'node:buffer'
import { hostname } from 'node:os'
import { RecordReader } from '../spool/record.js'
import { ParsedMessage, parseSyslog } from './parse.js'

/**
 * A message from a local socket ("unix", "unix-stream") that names no host is this machine's, as rsyslog's
 * imuxsock and syslog-ng's unix sockets have it: glibc's syslog(3), logger and journald send none.
 */
const kLocalHost = hostname()

/** What decoding counts; the worker passes its own transactional counters, the decoder one per chunk. */
export interface DecodeCounts {
  parseErrors: number
  invalidUtf8: number
  withNul: number
}

export class RecordDecoder {
  readonly rec = new RecordReader()
  readonly parsed = new ParsedMessage()
  counts: DecodeCounts

  constructor(counts: DecodeCounts) {
    this.counts = counts
  }

  /** Decodes buf[start, end) (one record without its LF). False if corrupt: `rec.error` says why. */
  decode(buf: Buffer, start: number, end: number): boolean {
    if (!this.rec.read(buf, start, end)) return false
    parseSyslog(this.cleanText(this.rec.msgText(), buf), this.rec.receivedAt, this.parsed)
    if (this.parsed.host === null && this.rec.transport === 'unix') this.parsed.host = kLocalHost
    this.counts.parseErrors += this.parsed.parseError
    return true
  }

  /**
   * The NUL rule: trailing NULs (senders that NUL-terminate) are dropped; any other NUL becomes U+FFFD,
   * so `sqlite3` and every C tool that stops at NUL shows the whole message. Invalid UTF-8 was already
   * replaced by U+FFFD when decoding; it is counted here, checked on the bytes only when a U+FFFD shows.
   */
  private cleanText(text: string, buf: Buffer): string {
    if (text.indexOf('\u0000') !== -1) {
      this.counts.withNul++
      let end = text.length
      while (end > 0 && text.charCodeAt(end - 1) === 0) end--
      text = text.slice(0, end).replaceAll('\u0000', '\ufffd')
    }
    if (text.indexOf('\ufffd') !== -1 && !isUtf8(buf.subarray(this.rec.msgStart, this.rec.msgEnd)))
      this.counts.invalidUtf8++
    return text
  }
}
