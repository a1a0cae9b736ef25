// Syslog header parsing: PRI, the RFC 5424 header with structured data, and the RFC 3164 dialects real
// senders emit: `<PRI>Mmm dd hh:mm:ss host tag[pid]: msg` with or without host, with a year, fractional
// seconds or a UTC zone, or an RFC 3339 time in its place (rsyslog); Cisco IOS/ASA headers and mnemonics;
// FortiGate key=value lines; and no header at all (free text, bare kernel lines).
//
// It never throws and never drops. A header with a part that fits no grammar (a PRI out of range, an RFC
// 5424 timestamp that is not one, structured data that cannot be read, an impossible date such as Feb 30)
// sets `parseError` and keeps the whole frame in `msg`; the parts of the header that could be read still
// fill their columns, so one bad part costs neither the host nor the app. A frame without a header after
// its PRI is free text, not an error.
// Runs in the journal worker, once per row, filling one reused object, so it works on offsets and cuts
// strings only for the fields it fills.

import { wallClockToUnix } from './zone.js'

export class ParsedMessage {
  ts: number | null = null
  facility: number | null = null
  severity: number | null = null
  host: string | null = null
  app: string | null = null
  procid: string | null = null
  msgid: string | null = null
  sd: string | null = null
  msg = ''
  parseError = 0

  reset(): void {
    this.ts = null
    this.facility = null
    this.severity = null
    this.host = null
    this.app = null
    this.procid = null
    this.msgid = null
    this.sd = null
    this.msg = ''
    this.parseError = 0
  }
}

// RFC 3164 section 4.3.3: a message without a PRI is given facility 1 (user) and severity 5 (notice).
const kDefaultFacility = 1
const kDefaultSeverity = 5
// Lower case: a month is compared with its letters folded to lower case ('NOV' from Dell switches).
const kMonths = 'janfebmaraprmayjunjulaugsepoctnovdec'

export function parseSyslog(text: string, receivedAt: number, out: ParsedMessage): void {
  out.reset()
  let p = 0
  if (text.charCodeAt(0) === 0x3c /* < */) {
    let v = 0
    let i = 1
    while (i < text.length && i <= 4) {
      const c = text.charCodeAt(i) - 0x30
      if (c < 0 || c > 9) break
      v = v * 10 + c
      i++
    }
    if (i === 1 || i > 4 || text.charCodeAt(i) !== 0x3e /* > */ || v > 191) {
      out.msg = text
      out.parseError = 1
      return
    }
    out.facility = v >> 3
    out.severity = v & 7
    p = i + 1
  } else {
    out.facility = kDefaultFacility
    out.severity = kDefaultSeverity
  }
  const v = text.charCodeAt(p)
  if (v === 0x31 && text.charCodeAt(p + 1) === 0x20) {
    if (!parse5424(text, p + 2, out)) out.parseError = 1
  } else if (v >= 0x31 && v <= 0x39 && otherVersion(text, p) > 0) {
    // RFC 5424 knows only VERSION 1. Another one (2-999) before a header that reads as RFC 5424 is
    // taken as RFC 5424, so that its time, host and SD are not lost, and flagged.
    parse5424(text, otherVersion(text, p), out)
    out.parseError = 1
  } else {
    parse3164(text, p, receivedAt, out)
  }
  // The flagged row keeps every byte of the frame, whatever the header columns could take from it.
  if (out.parseError === 1) out.msg = text
}

/**
 * At p, a VERSION of 1-3 digits other than "1", then SP and what starts an RFC 5424 header (NILVALUE and
 * SP, or a date "dddd-dd-ddT"): returns where the header starts, or 0.
 */
function otherVersion(text: string, p: number): number {
  let q = p + 1
  while (q < p + 3 && isDigit(text.charCodeAt(q))) q++
  if (text.charCodeAt(q) !== 0x20 || (q === p + 1 && text.charCodeAt(p) === 0x31)) return 0
  q++
  if (text.charCodeAt(q) === 0x2d && text.charCodeAt(q + 1) === 0x20) return q
  if (
    text.charCodeAt(q + 4) === 0x2d &&
    text.charCodeAt(q + 7) === 0x2d &&
    text.charCodeAt(q + 10) === 0x54
  ) {
    return digits(text, q, 4) >= 0 ? q : 0
  }
  return 0
}

function nil(s: string): string | null {
  return s === '-' ? null : s
}

/** Reads the token from p to the next space; returns its end. */
function tokenEnd(text: string, p: number): number {
  const sp = text.indexOf(' ', p)
  return sp === -1 ? text.length : sp
}

/**
 * The RFC 5424 header after "1 ": fills every field it can read. A timestamp that is no time leaves ts
 * null and the rest is read on; so is a time without an offset (read in parse.timezone, as for RFC 3164).
 * Returns false when a part did not fit (the caller flags the row and keeps the frame in msg): a bad
 * timestamp, a frame that ends inside the header, an empty field (two spaces), unreadable SD.
 */
function parse5424(text: string, p: number, out: ParsedMessage): boolean {
  let ok = true
  let e = tokenEnd(text, p)
  if (e - p !== 1 || text.charCodeAt(p) !== 0x2d /* - */) {
    const t = rfc3339(text.slice(p, e), true)
    if (Number.isNaN(t)) ok = false
    else out.ts = t
  }
  // HOSTNAME APP-NAME PROCID MSGID: four non-empty tokens, each '-' when nil. One with a control
  // character (a LF, a TAB) is a bad part: its column stays null.
  for (let k = 0; k < 4; k++) {
    p = e + 1
    if (p > text.length) return false
    e = tokenEnd(text, p)
    if (e === p) return false
    let i = p
    while (i < e) {
      const c = text.charCodeAt(i)
      if (c < 0x20 || c === 0x7f) break
      i++
    }
    if (i < e) {
      ok = false
      continue
    }
    const v = nil(text.slice(p, e))
    if (k === 0) out.host = v
    else if (k === 1) out.app = v
    else if (k === 2) out.procid = v
    else out.msgid = v
  }
  p = e + 1
  if (p > text.length) return false
  if (text.charCodeAt(p) === 0x2d /* - */) {
    p++
  } else if (text.charCodeAt(p) === 0x5b /* [ */) {
    const sdEnd = parseStructuredData(text, p, out)
    if (sdEnd < 0) return false
    p = sdEnd
  } else {
    return false
  }
  if (p < text.length) {
    if (text.charCodeAt(p) !== 0x20) {
      out.sd = null
      return false
    }
    p++
  }
  // RFC 5424 6.4: MSG may start with a UTF-8 BOM, which says the rest is UTF-8; it is not content.
  if (text.charCodeAt(p) === 0xfeff) p++
  out.msg = text.slice(p)
  return ok
}

/**
 * STRUCTURED-DATA to JSON: {"id": {"param": "value"}}. A parameter repeated within one element keeps
 * every value, in order, as an array: {"id": {"ip": ["10.0.0.1", "10.0.0.2"]}}. An element id repeated
 * merges into the same object by the same rule. Two leniencies, both for real senders: spaces after the
 * '=' (rsyslog's own test data has `eventSource= "Application"`), and a value without quotes, which runs
 * to the next space or ']' (VMware ESXi: `[Originator@6876 sub=Vimsvc.TaskManager opID=1a2b]`; syslog-ng
 * reads it the same way). Returns the offset after the last element, or -1.
 */
function parseStructuredData(text: string, p: number, out: ParsedMessage): number {
  const sd: Record<string, Record<string, string | string[]>> = Object.create(null)
  const n = text.length
  while (p < n && text.charCodeAt(p) === 0x5b) {
    p++
    let q = p
    while (q < n) {
      const c = text.charCodeAt(q)
      if (c === 0x20 || c === 0x5d || c === 0x3d || c === 0x22) break
      q++
    }
    if (q === p || q >= n) return -1
    const id = text.slice(p, q)
    let el = sd[id]
    if (el === undefined) {
      el = Object.create(null) as Record<string, string | string[]>
      sd[id] = el
    }
    p = q
    while (p < n && text.charCodeAt(p) === 0x20) {
      p++
      // PARAM-NAME: up to '=', and none of SP ] " on the way
      q = p
      while (q < n) {
        const c = text.charCodeAt(q)
        if (c === 0x3d || c === 0x20 || c === 0x5d || c === 0x22) break
        q++
      }
      if (q === p || text.charCodeAt(q) !== 0x3d) return -1
      const name = text.slice(p, q)
      p = q + 1
      while (text.charCodeAt(p) === 0x20) p++
      let value = ''
      if (text.charCodeAt(p) === 0x22) {
        p++
        let from = p
        for (;;) {
          if (p >= n) return -1
          const c = text.charCodeAt(p)
          if (c === 0x5c /* \ */ && p + 1 < n) {
            const d = text.charCodeAt(p + 1)
            if (d === 0x22 || d === 0x5c || d === 0x5d) {
              value += text.slice(from, p)
              from = p + 1
              p += 2
              continue
            }
            p++
          } else if (c === 0x22) {
            value += text.slice(from, p)
            p++
            break
          } else {
            p++
          }
        }
      } else {
        q = p
        while (q < n) {
          const c = text.charCodeAt(q)
          if (c === 0x20 || c === 0x5d || c === 0x22) break
          q++
        }
        if (q === p) return -1
        value = text.slice(p, q)
        p = q
      }
      const prev = el[name]
      if (prev === undefined) el[name] = value
      else if (Array.isArray(prev)) prev.push(value)
      else el[name] = [prev, value]
    }
    if (text.charCodeAt(p) !== 0x5d) return -1
    p++
  }
  out.sd = JSON.stringify(sd)
  return p
}

/**
 * RFC 3339 (as RFC 5424 restricts it) to unix ms; null if malformed, or a date that does not exist (Feb
 * 30). Fractions beyond ms are dropped, however many digits they have. With `zoneless`, a time without
 * an offset is accepted and read as a wall-clock time (parse.timezone), and a space may stand for the T.
 */
export function parseRfc3339(s: string, zoneless = false): number | null {
  const t = rfc3339(s, zoneless)
  return Number.isNaN(t) ? null : t
}

// Set by rfc3339() and bsdTime() when a time is well formed but its date does not exist (Feb 30, Apr 31,
// Feb 29 of a common year): the caller then keeps the header, with ts null and the row flagged, rather
// than let Date roll it over into the next month.
let gBadDate = false

/** parseRfc3339 for this module: NaN instead of null, so that the result stays a number. */
function rfc3339(s: string, zoneless: boolean): number {
  gBadDate = false
  const tee = s.charCodeAt(10)
  if (
    s.length < (zoneless ? 19 : 20) ||
    s.charCodeAt(4) !== 0x2d ||
    s.charCodeAt(7) !== 0x2d ||
    (tee !== 0x54 && (tee !== 0x20 || !zoneless))
  ) {
    return Number.NaN
  }
  const y = digits(s, 0, 4)
  const mo = digits(s, 5, 2)
  const d = digits(s, 8, 2)
  const h = digits(s, 11, 2)
  const mi = digits(s, 14, 2)
  const se = digits(s, 17, 2)
  if (
    y < 0 ||
    mo < 1 ||
    mo > 12 ||
    d < 1 ||
    d > 31 ||
    h < 0 ||
    h > 23 ||
    mi < 0 ||
    mi > 59 ||
    se < 0 ||
    se > 60
  ) {
    return Number.NaN
  }
  if (s.charCodeAt(13) !== 0x3a || s.charCodeAt(16) !== 0x3a) return Number.NaN
  let p = 19
  let ms = 0
  if (s.charCodeAt(p) === 0x2e /* . */) {
    p++
    let scale = 100
    const start = p
    while (p < s.length) {
      const c = s.charCodeAt(p) - 0x30
      if (c < 0 || c > 9) break
      if (scale >= 1) ms += c * scale
      scale /= 10
      p++
    }
    if (p === start) return Number.NaN
  }
  if (zoneless && p === s.length) {
    if (d <= daysIn(y, mo - 1)) return localMs(y, mo - 1, d, h, mi, se, ms)
    gBadDate = true
    return Number.NaN
  }
  let offsetMin = 0
  const z = s.charCodeAt(p)
  if (z === 0x5a /* Z */ && p + 1 === s.length) {
    offsetMin = 0
  } else if ((z === 0x2b || z === 0x2d) && p + 6 === s.length && s.charCodeAt(p + 3) === 0x3a) {
    const oh = digits(s, p + 1, 2)
    const om = digits(s, p + 4, 2)
    if (oh < 0 || oh > 23 || om < 0 || om > 59) return Number.NaN
    offsetMin = (z === 0x2b ? 1 : -1) * (oh * 60 + om)
  } else {
    return Number.NaN
  }
  if (d > daysIn(y, mo - 1)) {
    gBadDate = true
    return Number.NaN
  }
  return utcMs(y, mo - 1, d, h, mi, se, ms) - offsetMin * 60_000
}

/** Days in month mo (0-11) of year y, proleptic Gregorian. */
function daysIn(y: number, mo: number): number {
  if (mo === 1) return y % 4 === 0 && (y % 100 !== 0 || y % 400 === 0) ? 29 : 28
  return mo === 3 || mo === 5 || mo === 8 || mo === 10 ? 30 : 31
}

function digits(s: string, at: number, n: number): number {
  let v = 0
  for (let i = at; i < at + n; i++) {
    const c = s.charCodeAt(i) - 0x30
    // Written so that NaN (past the end) fails too.
    if (!(c >= 0 && c <= 9)) return -1
    v = v * 10 + c
  }
  return v
}

/** Date.UTC, except that years 0-99 stay years 0-99 instead of meaning 1900-1999. */
function utcMs(y: number, mo: number, d: number, h: number, mi: number, s: number, ms: number): number {
  if (y >= 100) return Date.UTC(y, mo, d, h, mi, s, ms)
  const t = new Date(0)
  t.setUTCFullYear(y, mo, d)
  return t.setUTCHours(h, mi, s, ms)
}

/** What a zone-less wall-clock time means here: that time in parse.timezone (default: the server's). */
function localMs(y: number, mo: number, d: number, h: number, mi: number, s: number, ms: number): number {
  if (y >= 100) return wallClockToUnix(y, mo, d, h, mi, s, ms)
  const t = new Date(2000, 0, 1)
  t.setFullYear(y, mo, d)
  return t.setHours(h, mi, s, ms)
}

function isDigit(c: number): boolean {
  return c >= 0x30 && c <= 0x39
}

function isUpper(c: number): boolean {
  return c >= 0x41 && c <= 0x5a
}

/**
 * "Jan".."Dec" at p to 0..11, or -1, in any case ("NOV", "nov"); compared by char code so that no string
 * is cut per row. Setting bit 0x20 folds an ASCII capital to its small letter and maps no other
 * character onto a small letter.
 */
function monthAt(text: string, p: number): number {
  const a = text.charCodeAt(p) | 0x20
  const b = text.charCodeAt(p + 1) | 0x20
  const c = text.charCodeAt(p + 2) | 0x20
  for (let m = 0, k = 0; m < 12; m++, k += 3) {
    if (kMonths.charCodeAt(k) === a && kMonths.charCodeAt(k + 1) === b && kMonths.charCodeAt(k + 2) === c) {
      return m
    }
  }
  return -1
}

// The receive year, cached: every row of a batch falls in the same year, and new Date() per row adds up.
let gYear = 0
let gYearFrom = 1
let gYearTo = 0

function yearOf(at: number): number {
  if (!(at >= gYearFrom && at < gYearTo)) {
    gYear = new Date(at).getFullYear()
    gYearFrom = new Date(gYear, 0, 1).getTime()
    gYearTo = new Date(gYear + 1, 0, 1).getTime()
  }
  return gYear
}

// Where the last bsdTime() match ended, -1 when there was none. A module variable rather than a returned
// pair, which would allocate per row.
let gEnd = -1

/**
 * A BSD time at p, to unix ms:  Mmm dd [yyyy ]hh:mm:ss[.fff][ yyyy][ ZONE]
 * The day may be space-padded ("Nov  3") or not ("Nov 3"). The year before the time is what Cisco ASA
 * and IOS ("datetime year") send; after it, ctime order, only as a plausible 19xx/20xx year. ZONE is
 * UTC, GMT or Z (taken as UTC), or, when `anyZone` is set or the time is followed by ": %" (Cisco's
 * "show-timezone"), any other name of 1-6 capitals; those say nothing we can resolve without a zone
 * database, so the time is taken like a zone-less one, in the server's zone. Without a year, the receive
 * year, or the year before when that puts the message more than 31 days in the future (a December
 * message read in January). Sets gEnd to the offset after the match, or -1 (and returns 0) if none;
 * a date that does not exist in the year it falls in (Feb 30; Feb 29 of a common year) matches, returns 0
 * and sets gBadDate.
 */
function bsdTime(text: string, p: number, receivedAt: number, anyZone: boolean): number {
  gEnd = -1
  gBadDate = false
  const n = text.length
  if (n - p < 14 || text.charCodeAt(p + 3) !== 0x20) return 0
  const mon = monthAt(text, p)
  if (mon < 0) return 0
  let q = p + 4
  if (text.charCodeAt(q) === 0x20) q++
  let c = text.charCodeAt(q)
  if (!isDigit(c)) return 0
  let d = c - 0x30
  c = text.charCodeAt(++q)
  if (isDigit(c)) {
    d = d * 10 + c - 0x30
    c = text.charCodeAt(++q)
  }
  if (c !== 0x20 || d < 1 || d > 31) return 0
  q++
  let y = -1
  if (text.charCodeAt(q + 4) === 0x20) {
    y = digits(text, q, 4)
    if (y >= 0) q += 5
  }
  if (q + 8 > n || text.charCodeAt(q + 2) !== 0x3a || text.charCodeAt(q + 5) !== 0x3a) return 0
  const h = digits(text, q, 2)
  const mi = digits(text, q + 3, 2)
  const se = digits(text, q + 6, 2)
  if (h < 0 || h > 23 || mi < 0 || mi > 59 || se < 0 || se > 60) return 0
  q += 8
  let ms = 0
  if (text.charCodeAt(q) === 0x2e /* . */ && isDigit(text.charCodeAt(q + 1))) {
    // Digits past the millisecond are read and dropped, however many there are.
    let scale = 100
    q++
    while (q < n) {
      c = text.charCodeAt(q)
      if (!isDigit(c)) break
      if (scale >= 1) ms += (c - 0x30) * scale
      scale /= 10
      q++
    }
  }
  if (y < 0 && text.charCodeAt(q) === 0x20) {
    const after = text.charCodeAt(q + 5)
    const ty = digits(text, q + 1, 4)
    // Not before a colon: "Nov 23 10:00:00 2026: text" reads better as a tag than as a year.
    if (ty >= 1900 && ty < 2100 && (q + 5 === n || after === 0x20)) {
      y = ty
      q += 5
    }
  }
  let utc = false
  // ZONE: " UTC", or glued on as in "10:00:00.123Z"
  let z = text.charCodeAt(q) === 0x20 ? q + 1 : q
  const zFrom = z
  while (z < n && z - zFrom < 7 && isUpper(text.charCodeAt(z))) z++
  const zLen = z - zFrom
  if (zLen > 0 && zLen <= 6) {
    const isUtc =
      (zLen === 1 && text.charCodeAt(zFrom) === 0x5a) ||
      (zLen === 3 && (text.startsWith('UTC', zFrom) || text.startsWith('GMT', zFrom)))
    const after = text.charCodeAt(z)
    const ends = z === n || after === 0x20 || after === 0x3a
    // A glued-on name other than Z is more likely a malformed time than a zone.
    if (ends && (zFrom > q || (zLen === 1 && isUtc))) {
      if (
        isUtc ||
        (after === 0x3a && (anyZone || (text.charCodeAt(z + 1) === 0x20 && text.charCodeAt(z + 2) === 0x25)))
      ) {
        utc = isUtc
        q = z
      }
    }
  }
  const next = text.charCodeAt(q)
  if (q < n && next !== 0x20 && next !== 0x3a) return 0
  let t: number
  if (y >= 0) {
    t = utc ? utcMs(y, mon, d, h, mi, se, ms) : localMs(y, mon, d, h, mi, se, ms)
  } else {
    y = yearOf(receivedAt)
    t = utc ? utcMs(y, mon, d, h, mi, se, ms) : localMs(y, mon, d, h, mi, se, ms)
    if (t - receivedAt > 31 * 86_400_000) {
      y--
      t = utc ? utcMs(y, mon, d, h, mi, se, ms) : localMs(y, mon, d, h, mi, se, ms)
    }
  }
  gEnd = q
  if (d > daysIn(y, mon)) {
    gBadDate = true
    return 0
  }
  return t
}

/**
 * A Cisco mnemonic at p, "%FACILITY[-SUBFACILITY]-SEVERITY-MNEMONIC:" followed by a space or the end;
 * returns the offset of its colon, or -1.
 */
function mnemonicAt(text: string, p: number): number {
  if (text.charCodeAt(p) !== 0x25 /* % */) return -1
  const n = text.length
  let dashes = 0
  let q = p + 1
  for (; q < n && q - p <= 64; q++) {
    const c = text.charCodeAt(q)
    if (c === 0x3a) break
    if (c === 0x2d) dashes++
    else if (c <= 0x20) return -1
  }
  if (q >= n || q - p > 64 || dashes < 2 || text.charCodeAt(p + 1) === 0x2d) return -1
  if (q + 1 < n && text.charCodeAt(q + 1) !== 0x20) return -1
  return q
}

/**
 * After a Cisco time's ": " at p: the mnemonic, when there is one, becomes the app, and a word before it
 * the host ("mydevice.com %CRYPTO-4-RECVD_PKT_INV_SPI: ..."); the rest is msg. Returns whether there was
 * a mnemonic; without one, msg is the text from p.
 */
function ciscoBody(text: string, p: number, out: ParsedMessage): boolean {
  let colon = mnemonicAt(text, p)
  if (colon < 0 && text.charCodeAt(p) !== 0x25) {
    const sp = tokenEnd(text, p)
    colon = sp > p && sp - p <= 255 ? mnemonicAt(text, sp + 1) : -1
    if (colon >= 0) {
      out.host = text.slice(p, sp)
      p = sp + 1
    }
  }
  if (colon < 0) {
    out.msg = text.slice(p)
    return false
  }
  out.app = text.slice(p + 1, colon)
  out.msg = text.slice(colon + 1 < text.length ? colon + 2 : colon + 1)
  return true
}

/**
 * Cisco IOS and ASA, as the device sends it:
 *   [seq: ][hostname: ][*|.]Mmm dd [yyyy ]hh:mm:ss[.mmm][ ZONE]: [%FAC-SEV-MNEMONIC: ]text
 *   [seq: ]%FAC-SEV-MNEMONIC: text
 * ('*' marks a clock never synced, '.' one that lost sync; the time is taken as it stands either way.)
 * The sequence number ("service sequence-numbers") is deliberately dropped: it counts messages per
 * device for gap detection, no column holds it, and msgid is left null because it is not an RFC 5424
 * MSGID; msg is the text after the mnemonic, as for every other dialect. Fills `out` only on a match.
 */
function parseCisco(text: string, p: number, receivedAt: number, out: ParsedMessage): boolean {
  const n = text.length
  let c = text.charCodeAt(p)
  let seq = false
  if (isDigit(c)) {
    let q = p + 1
    while (q < n && q - p < 10 && isDigit(text.charCodeAt(q))) q++
    if (text.charCodeAt(q) !== 0x3a || text.charCodeAt(q + 1) !== 0x20) return false
    seq = true
    p = q + 2
    c = text.charCodeAt(p)
  }
  let hostFrom = -1
  let hostTo = -1
  let t = 0
  gEnd = -1
  // Without a sequence number or sync mark the caller has just failed on a time here: skip the retry,
  // since free text takes this path on every line.
  if (seq || c === 0x2a || c === 0x2e)
    t = bsdTime(text, c === 0x2a || c === 0x2e ? p + 1 : p, receivedAt, true)
  if (gEnd < 0 && c !== 0x25) {
    // "logging origin-id hostname" puts "hostname: " before the time
    const sp = text.indexOf(' ', p)
    if (sp < p + 2 || sp - p > 256 || text.charCodeAt(sp - 1) !== 0x3a) return false
    hostFrom = p
    hostTo = sp - 1
    p = sp + 1
    c = text.charCodeAt(p)
    t = bsdTime(text, c === 0x2a || c === 0x2e ? p + 1 : p, receivedAt, true)
  }
  const timed = gEnd >= 0
  if (timed) {
    if (text.charCodeAt(gEnd) !== 0x3a) return false
    p = gEnd + 1
    if (p < n) {
      if (text.charCodeAt(p) !== 0x20) return false
      p++
    }
  } else if (mnemonicAt(text, p) < 0 || (hostFrom >= 0 && !seq)) {
    // Without a time only the mnemonic marks the line as Cisco; "word: %X-Y-Z: " alone is too weak.
    return false
  }
  if (timed && gBadDate) out.parseError = 1
  out.ts = timed && !gBadDate ? t : null
  if (hostFrom >= 0) out.host = text.slice(hostFrom, hostTo)
  ciscoBody(text, p, out)
  return true
}

/**
 * FortiGate (and other key=value loggers) without a syslog header: date=yyyy-mm-dd time=hh:mm:ss ...
 * Only the time (server's zone, as the device's "date"/"time" fields are its local wall clock) and the
 * device name are lifted out; msg keeps the whole line since every field in it is content.
 */
function parseKeyValue(text: string, p: number, out: ParsedMessage): void {
  out.msg = text.slice(p)
  const n = text.length
  // date=2026-11-23 time=10:00:00, or the CSV format's date=2026-11-23,time=10:00:00
  const d = p + 5
  if (
    n - d >= 24 &&
    text.charCodeAt(d + 4) === 0x2d &&
    text.charCodeAt(d + 7) === 0x2d &&
    (text.charCodeAt(d + 10) === 0x20 || text.charCodeAt(d + 10) === 0x2c) &&
    text.startsWith('time=', d + 11) &&
    text.charCodeAt(d + 18) === 0x3a &&
    text.charCodeAt(d + 21) === 0x3a
  ) {
    const y = digits(text, d, 4)
    const mo = digits(text, d + 5, 2)
    const day = digits(text, d + 8, 2)
    const h = digits(text, d + 16, 2)
    const mi = digits(text, d + 19, 2)
    const se = digits(text, d + 22, 2)
    const end = text.charCodeAt(d + 24)
    if (
      y >= 0 &&
      mo >= 1 &&
      mo <= 12 &&
      day >= 1 &&
      day <= 31 &&
      h >= 0 &&
      h <= 23 &&
      mi >= 0 &&
      mi <= 59 &&
      se >= 0 &&
      se <= 60 &&
      (d + 24 === n || end === 0x20 || end === 0x2c)
    ) {
      out.ts = localMs(y, mo - 1, day, h, mi, se, 0)
    }
  }
  let k = text.indexOf('devname=', d)
  while (k > 0) {
    const before = text.charCodeAt(k - 1)
    if (before === 0x20 || before === 0x2c) break
    k = text.indexOf('devname=', k + 8)
  }
  if (k < 0) return
  let v = k + 8
  let e: number
  if (text.charCodeAt(v) === 0x22) {
    v++
    e = text.indexOf('"', v)
    if (e < 0) return
  } else {
    e = v
    while (e < n) {
      const c = text.charCodeAt(e)
      if (c === 0x20 || c === 0x2c) break
      e++
    }
  }
  if (e > v) out.host = text.slice(v, e)
}

function parse3164(text: string, p: number, receivedAt: number, out: ParsedMessage): void {
  const n = text.length
  if (text.charCodeAt(p) === 0x64 /* d */ && text.startsWith('date=', p)) {
    parseKeyValue(text, p, out)
    return
  }
  // Spaces between PRI and time ("<38> Mar  7 19:06:53 ..."): skipped when a time follows them.
  let h = p
  while (text.charCodeAt(h) === 0x20) h++
  let t = bsdTime(text, h, receivedAt, false)
  if (gEnd >= 0) {
    p = gEnd
  } else {
    // rsyslog's high-precision forwarding: an RFC 3339 time where the BSD one would be; or an ISO time
    // without a zone, as syslog-ng's loggen and some appliances send it (read in parse.timezone).
    let e = tokenEnd(text, h)
    // "2006-10-29 02:00:00.156+01:00": date and time apart (syslog-ng reads it too)
    if (e - h === 10 && isDigit(text.charCodeAt(e + 1)) && text.charCodeAt(h + 4) === 0x2d)
      e = tokenEnd(text, e + 1)
    const iso = e - h >= 19 ? rfc3339(text.slice(h, e), true) : Number.NaN
    if (Number.isNaN(iso) && !gBadDate) {
      // No time. "app[pid]: text" is still a tag (Python's SysLogHandler, glibc without a time);
      // then Cisco's own headers; else no header at all (a bare kernel "[   1.234] ..." line, free
      // text): the text after PRI is the message, which is not an error.
      const m = tagAt(text, h, tokenEnd(text, h), out, true)
      if (m >= 0) out.msg = text.slice(m)
      else if (!parseCisco(text, p, receivedAt, out)) out.msg = text.slice(p)
      return
    }
    t = iso
    p = e
  }
  if (gBadDate) out.parseError = 1
  else out.ts = t
  if (text.charCodeAt(p) === 0x3a) {
    // "Mmm dd hh:mm:ss[.mmm][ ZONE]: ": Cisco without a sequence number or hostname, when a mnemonic
    // follows; else a BSD header with a colon after its time (rsyslog reads it so too).
    p++
    if (text.charCodeAt(p) === 0x20) p++
    if (ciscoBody(text, p, out)) return
  }
  if (text.charCodeAt(p) === 0x20) p++
  // HOSTNAME, unless the next word is already the tag ("app:", "app[pid]:", "app[pid]:text") or a Cisco
  // mnemonic. A word that ends in "::" is an IPv6 address ("2001:db8::"), not a tag.
  let e = tokenEnd(text, p)
  if (e > p && e < n && text.charCodeAt(p) !== 0x25 && text.charCodeAt(e - 1) !== 0x5d) {
    let q = p + 1
    while (q < e && text.charCodeAt(q) !== 0x5b) q++
    const last = text.charCodeAt(e - 1)
    if (q === e && (last !== 0x3a || (e - p > 1 && text.charCodeAt(e - 2) === 0x3a))) {
      out.host = text.slice(p, e)
      p = e + 1
      e = tokenEnd(text, p)
    }
  }
  // Cisco ASA puts " : " between its hostname and the mnemonic.
  if (text.charCodeAt(p) === 0x3a && text.charCodeAt(p + 1) === 0x20 && text.charCodeAt(p + 2) === 0x25) {
    p += 2
    e = tokenEnd(text, p)
  }
  if (text.charCodeAt(p) === 0x25) {
    const colon = mnemonicAt(text, p)
    if (colon >= 0) {
      out.app = text.slice(p + 1, colon)
      out.msg = text.slice(colon + 1 < n ? colon + 2 : colon + 1)
      return
    }
  }
  const m = tagAt(text, p, e, out, false)
  out.msg = m >= 0 ? text.slice(m) : text.slice(p)
}

/**
 * TAG at p, in the word that ends at e: up to '[', ':' or space, at most 48 characters (RFC 5424's
 * APP-NAME limit; anything longer is a sentence, not a program name); then an optional [pid], then an
 * optional ':' (senders that relay RFC 5424 as BSD, rsyslog among them, write the tag without one), then
 * a space or the end; after "[pid]:" the text may follow without a space. Fills app and procid and
 * returns where the message starts, or -1 if the word is no tag. `strict` (no time before it): only
 * "app[pid]:" counts, since "error: disk full" is more likely a sentence than a tag.
 */
function tagAt(text: string, p: number, e: number, out: ParsedMessage, strict: boolean): number {
  const n = text.length
  let q = p
  while (q < e) {
    const c = text.charCodeAt(q)
    if (c === 0x5b || c === 0x3a) break
    q++
  }
  if (q === p || q - p > 48) return -1
  let r = q
  let pidFrom = -1
  let pidTo = -1
  let bracket = false
  if (text.charCodeAt(r) === 0x5b) {
    const close = text.indexOf(']', r)
    if (close > r && close <= e) {
      // "app[]:" is a tag with an empty pid, which is no pid
      if (close > r + 1) {
        pidFrom = r + 1
        pidTo = close
      }
      r = close + 1
      bracket = true
    }
  }
  const colon = text.charCodeAt(r) === 0x3a
  if (colon) r++
  if (strict && !(bracket && colon)) return -1
  if (r < n && text.charCodeAt(r) === 0x20) r++
  else if (r < n && !(bracket && colon)) return -1
  out.app = text.slice(p, q)
  if (pidFrom >= 0) out.procid = text.slice(pidFrom, pidTo)
  return r
}
