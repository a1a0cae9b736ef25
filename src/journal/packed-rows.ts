// Decoded rows on their way from the replay decoder thread to the journal worker: the text fields of a
// chunk's rows as UTF-8 bytes in one buffer, and one Float64Array with each row's numbers and the byte
// bounds of its text fields. Both are transferred, never copied, and go back and forth between the two
// threads, so a replay allocates no buffers in steady state. No string crosses: a chunk's text joined
// into one string, tried first, made each thread's heap grow by ~60 MB of large strings waiting for a
// full GC (peak RSS replaying 1 M records 102 -> 237 MB). The worker cuts each field from the bytes,
// small strings that die young.

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

/** The size of the numbers for `rows` rows. */
export function rowsBytes(rows: number): number {
  return rows * kStride * Float64Array.BYTES_PER_ELEMENT
}

/** The most bytes one UTF-16 code unit takes in UTF-8: room to write a string without measuring it. */
const kMaxUtf8PerUnit = 3

/** The decoder's side: appends decoded records into the buffers it is given, growing them if need be. */
export class RowPacker {
  count = 0
  text: Buffer
  nums: Float64Array
  /** Every text field so far was ASCII: the worker may read them as Latin-1, the cheaper decode. */
  ascii = true
  private len = 0
  // A run of records from one connection shares its peer and transport bytes (one pair of strings,
  // as the RecordReader keeps them): written once per run, the bounds copied from the row before.
  private lastPeer: string | null = null
  private lastTransport: string | null = null

  constructor(text: Buffer, nums: Float64Array) {
    this.text = text
    this.nums = nums
  }

  add(rec: RecordReader, p: ParsedMessage): void {
    if ((this.count + 1) * kStride > this.nums.length) {
      const grown = new Float64Array(Math.max(this.nums.length * 2, kStride * 64))
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
    this.put(o + kHost, p.host)
    this.put(o + kApp, p.app)
    this.put(o + kProcid, p.procid)
    this.put(o + kMsgid, p.msgid)
    this.put(o + kSd, p.sd)
    this.put(o + kMsg, p.msg)
    if (rec.peer !== this.lastPeer || rec.transport !== this.lastTransport) {
      this.lastPeer = rec.peer
      this.lastTransport = rec.transport
      this.put(o + kPeer, rec.peer)
      this.put(o + kTransport, rec.transport)
    } else {
      n.copyWithin(o + kPeer, o - kStride + kPeer, o - kStride + kTransport + 2)
    }
  }

  /** The bytes of text written. */
  get textBytes(): number {
    return this.len
  }

  private put(at: number, s: string | null): void {
    if (s === null) {
      this.nums[at] = -1
      this.nums[at + 1] = -1
      return
    }
    if (this.len + s.length * kMaxUtf8PerUnit > this.text.length) {
      const grown = Buffer.allocUnsafeSlow(
        Math.max(this.text.length * 2, this.len + s.length * kMaxUtf8PerUnit),
      )
      this.text.copy(grown, 0, 0, this.len)
      this.text = grown
    }
    const wrote = this.text.write(s, this.len, 'utf8')
    if (wrote !== s.length) this.ascii = false
    this.nums[at] = this.len
    this.len += wrote
    this.nums[at + 1] = this.len
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
  private readonly text: Buffer
  private readonly nums: Float64Array
  private readonly ascii: boolean
  private peerAt = -1

  constructor(text: Buffer, nums: Float64Array, count: number, ascii: boolean) {
    this.text = text
    this.nums = nums
    this.count = count
    this.ascii = ascii
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
    // Decoded only when the run of one connection's records ends (the packer writes peer and transport
    // together): the strings are shared, as the RecordReader shares them on the inline path.
    if (n[o + kPeer] !== this.peerAt) {
      this.peerAt = n[o + kPeer]!
      this.peer = this.str(o + kPeer)!
      this.transport = this.str(o + kTransport)!
    }
    return this
  }

  private str(at: number): string | null {
    const start = this.nums[at]!
    if (start < 0) return null
    const end = this.nums[at + 1]!
    return this.text.toString(this.ascii ? 'latin1' : 'utf8', start, end)
  }
}

function orNull(v: number): number | null {
  return Number.isNaN(v) ? null : v
}
