// Decoded rows on their way from the replay decoder thread to the journal worker: one string holding
// every text field of a chunk's rows, and one Float64Array with each row's numbers and the bounds of its
// text fields in that string. Both cross threads whole (the string copied once, the array transferred),
// so the worker's cost per row is a few string slices. A structured clone of row arrays costs the
// receiving thread about three times as much (measured here: ~540 ns against ~170 ns per row).

import type { RecordReader } from '../spool/record.js'
import type { ParsedMessage } from './parse.js'

// Per row: 6 numbers, then [start, end) of 8 text fields. NaN stands for a null number, start -1 for a
// null text.
const kReceivedAt = 0
const kTs = 1
const kFacility = 2
const kSeverity = 3
const kOrigLen = 4
const kParseError = 5
const kHost = 6
const kApp = 8
const kProcid = 10
const kMsgid = 12
const kSd = 14
const kMsg = 16
const kPeer = 18
const kTransport = 20
const kStride = 22

/** The decoder's side: appends decoded records, then hands the whole chunk over. */
export class RowPacker {
  count = 0
  private nums: Float64Array
  private parts: string[] = []
  private len = 0
  // A run of records from one connection shares its peer and transport text.
  private lastPeer = ''
  private lastTransport = ''
  private peerAt = -1
  private transportAt = -1

  constructor(rows: number) {
    this.nums = new Float64Array(Math.max(1, rows) * kStride)
  }

  add(rec: RecordReader, p: ParsedMessage): void {
    if ((this.count + 1) * kStride > this.nums.length) {
      const grown = new Float64Array(this.nums.length * 2)
      grown.set(this.nums)
      this.nums = grown
    }
    const o = this.count++ * kStride
    const n = this.nums
    n[o + kReceivedAt] = rec.receivedAt
    n[o + kTs] = p.ts ?? Number.NaN
    n[o + kFacility] = p.facility ?? Number.NaN
    n[o + kSeverity] = p.severity ?? Number.NaN
    n[o + kOrigLen] = rec.origLen
    n[o + kParseError] = p.parseError
    this.text(o + kHost, p.host)
    this.text(o + kApp, p.app)
    this.text(o + kProcid, p.procid)
    this.text(o + kMsgid, p.msgid)
    this.text(o + kSd, p.sd)
    this.text(o + kMsg, p.msg)
    if (rec.peer !== this.lastPeer || this.peerAt < 0) {
      this.lastPeer = rec.peer
      this.peerAt = this.len
      this.text(o + kPeer, rec.peer)
    } else {
      n[o + kPeer] = this.peerAt
      n[o + kPeer + 1] = this.peerAt + rec.peer.length
    }
    if (rec.transport !== this.lastTransport || this.transportAt < 0) {
      this.lastTransport = rec.transport
      this.transportAt = this.len
      this.text(o + kTransport, rec.transport)
    } else {
      n[o + kTransport] = this.transportAt
      n[o + kTransport + 1] = this.transportAt + rec.transport.length
    }
  }

  /** The chunk's rows; the packer is spent. */
  take(): { text: string; nums: Float64Array; count: number } {
    return { text: this.parts.join(''), nums: this.nums, count: this.count }
  }

  private text(at: number, s: string | null): void {
    if (s === null) {
      this.nums[at] = -1
      this.nums[at + 1] = -1
      return
    }
    this.nums[at] = this.len
    this.len += s.length
    this.nums[at + 1] = this.len
    this.parts.push(s)
  }
}

/**
 * The worker's side: `at(i)` loads row i into the fields, which have the names of a RecordReader's and a
 * ParsedMessage's so one insert serves both paths.
 */
export class PackedRows {
  receivedAt = 0
  ts: number | null = null
  facility: number | null = null
  severity: number | null = null
  origLen = 0
  parseError = 0
  host: string | null = null
  app: string | null = null
  procid: string | null = null
  msgid: string | null = null
  sd: string | null = null
  msg = ''
  peer = ''
  transport = ''
  readonly count: number
  private readonly text: string
  private readonly nums: Float64Array
  private peerAt = -1
  private transportAt = -1

  constructor(text: string, nums: Float64Array, count: number) {
    this.text = text
    this.nums = nums
    this.count = count
  }

  at(i: number): this {
    const o = i * kStride
    const n = this.nums
    this.receivedAt = n[o + kReceivedAt]!
    this.ts = orNull(n[o + kTs]!)
    this.facility = orNull(n[o + kFacility]!)
    this.severity = orNull(n[o + kSeverity]!)
    this.origLen = n[o + kOrigLen]!
    this.parseError = n[o + kParseError]!
    this.host = this.str(o + kHost)
    this.app = this.str(o + kApp)
    this.procid = this.str(o + kProcid)
    this.msgid = this.str(o + kMsgid)
    this.sd = this.str(o + kSd)
    this.msg = this.str(o + kMsg) ?? ''
    // Slices only when the run of one connection's records ends: the strings are shared, as the
    // RecordReader shares them on the inline path.
    if (n[o + kPeer] !== this.peerAt) {
      this.peerAt = n[o + kPeer]!
      this.peer = this.str(o + kPeer)!
    }
    if (n[o + kTransport] !== this.transportAt) {
      this.transportAt = n[o + kTransport]!
      this.transport = this.str(o + kTransport)!
    }
    return this
  }

  private str(at: number): string | null {
    const start = this.nums[at]!
    return start < 0 ? null : this.text.slice(start, this.nums[at + 1]!)
  }
}

function orNull(v: number): number | null {
  return Number.isNaN(v) ? null : v
}
