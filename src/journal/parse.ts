// Syslog header parsing: PRI, the RFC 5424 header with structured data, and the common RFC 3164 header
// (`<PRI>Mmm dd hh:mm:ss host tag[pid]: msg`, with or without host, or an RFC 3339 time in its place).
//
// It never throws and never drops: what fits no grammar keeps its whole text in `msg`, with the header
// fields null and `parseError` set. Runs in the journal worker, once per row, filling one reused object.

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
const kMonths = 'JanFebMarAprMayJunJulAugSepOctNovDec'

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
  if (text.startsWith('1 ', p)) {
    if (!parse5424(text, p + 2, out)) {
      out.ts = out.host = out.app = out.procid = out.msgid = out.sd = null
      out.msg = text
      out.parseError = 1
    }
    return
  }
  parse3164(text, p, receivedAt, out)
}

function nil(s: string): string | null {
  return s === '-' ? null : s
}

/** Reads the token from p to the next space; returns its end. */
function tokenEnd(text: string, p: number): number {
  const sp = text.indexOf(' ', p)
  return sp === -1 ? text.length : sp
}

function parse5424(text: string, p: number, out: ParsedMessage): boolean {
  let e = tokenEnd(text, p)
  const time = text.slice(p, e)
  if (time !== '-') {
    const t = parseRfc3339(time)
    if (t === null) return false
    out.ts = t
  }
  const fields: (string | null)[] = []
  for (let k = 0; k < 4; k++) {
    p = e + 1
    if (p > text.length) return false
    e = tokenEnd(text, p)
    if (e === p) return false
    fields.push(nil(text.slice(p, e)))
  }
  out.host = fields[0] ?? null
  out.app = fields[1] ?? null
  out.procid = fields[2] ?? null
  out.msgid = fields[3] ?? null
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
    if (text.charCodeAt(p) !== 0x20) return false
    p++
  }
  // RFC 5424 6.4: MSG may start with a UTF-8 BOM, which says the rest is UTF-8; it is not content.
  if (text.charCodeAt(p) === 0xfeff) p++
  out.msg = text.slice(p)
  return true
}

/**
 * STRUCTURED-DATA to JSON: {"id": {"param": "value"}}. A parameter repeated within one element keeps
 * every value, in order, as an array: {"id": {"ip": ["10.0.0.1", "10.0.0.2"]}}. An element id repeated
 * merges into the same object by the same rule. Returns the offset after the last element, or -1.
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
      q = text.indexOf('=', p)
      if (q <= p || text.charCodeAt(q + 1) !== 0x22) return -1
      const name = text.slice(p, q)
      p = q + 2
      let value = ''
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

/** RFC 3339 (as RFC 5424 restricts it) to unix ms; null if malformed. Fractions beyond ms are dropped. */
export function parseRfc3339(s: string): number | null {
  if (s.length < 20 || s.charCodeAt(4) !== 0x2d || s.charCodeAt(7) !== 0x2d || s.charCodeAt(10) !== 0x54) {
    return null
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
    return null
  }
  if (s.charCodeAt(13) !== 0x3a || s.charCodeAt(16) !== 0x3a) return null
  let p = 19
  let ms = 0
  if (s.charCodeAt(p) === 0x2e /* . */) {
    p++
    let scale = 100
    const start = p
    while (p < s.length) {
      const c = s.charCodeAt(p) - 0x30
      if (c < 0 || c > 9) break
      ms += c * scale
      scale /= 10
      p++
    }
    if (p === start || p - start > 9) return null
    ms = Math.floor(ms)
  }
  let offsetMin = 0
  const z = s.charCodeAt(p)
  if (z === 0x5a /* Z */ && p + 1 === s.length) {
    offsetMin = 0
  } else if ((z === 0x2b || z === 0x2d) && p + 6 === s.length && s.charCodeAt(p + 3) === 0x3a) {
    const oh = digits(s, p + 1, 2)
    const om = digits(s, p + 4, 2)
    if (oh < 0 || oh > 23 || om < 0 || om > 59) return null
    offsetMin = (z === 0x2b ? 1 : -1) * (oh * 60 + om)
  } else {
    return null
  }
  return Date.UTC(y, mo - 1, d, h, mi, se, ms) - offsetMin * 60_000
}

function digits(s: string, at: number, n: number): number {
  let v = 0
  for (let i = at; i < at + n; i++) {
    const c = s.charCodeAt(i) - 0x30
    if (c < 0 || c > 9) return -1
    v = v * 10 + c
  }
  return v
}

/** "Mmm dd hh:mm:ss" or "Mmm  d hh:mm:ss" at p, to unix ms in the server's zone; -1 if not one. */
function parse3164Time(text: string, p: number, receivedAt: number): number {
  if (text.length < p + 15 || text.charCodeAt(p + 3) !== 0x20 || text.charCodeAt(p + 6) !== 0x20) return -1
  const mon = kMonths.indexOf(text.slice(p, p + 3))
  if (mon < 0 || mon % 3 !== 0) return -1
  const d1 = text.charCodeAt(p + 4)
  const d = (d1 === 0x20 ? 0 : (d1 - 0x30) * 10) + (text.charCodeAt(p + 5) - 0x30)
  const h = digits(text, p + 7, 2)
  const mi = digits(text, p + 10, 2)
  const se = digits(text, p + 13, 2)
  if (d < 1 || d > 31 || h < 0 || h > 23 || mi < 0 || mi > 59 || se < 0 || se > 60) return -1
  if (text.charCodeAt(p + 9) !== 0x3a || text.charCodeAt(p + 12) !== 0x3a) return -1
  // No year on the wire: take the receive year, and the year before when that puts the message more than
  // a month in the future (a December message read in January).
  const year = new Date(receivedAt).getFullYear()
  let t = new Date(year, mon / 3, d, h, mi, se).getTime()
  if (t - receivedAt > 31 * 86_400_000) t = new Date(year - 1, mon / 3, d, h, mi, se).getTime()
  return t
}

function parse3164(text: string, p: number, receivedAt: number, out: ParsedMessage): void {
  let t = parse3164Time(text, p, receivedAt)
  if (t >= 0) {
    p += 15
  } else {
    // rsyslog's high-precision forwarding: an RFC 3339 time where the BSD one would be.
    const e = tokenEnd(text, p)
    const iso = e - p >= 20 ? parseRfc3339(text.slice(p, e)) : null
    if (iso === null) {
      out.msg = text.slice(p)
      return
    }
    t = iso
    p = e
  }
  out.ts = t
  if (text.charCodeAt(p) === 0x20) p++
  // HOSTNAME, unless the next word is already the tag ("app:" or "app[pid]:").
  let e = tokenEnd(text, p)
  const word = text.slice(p, e)
  if (word.length > 0 && !word.endsWith(':') && !word.endsWith(']') && e < text.length) {
    out.host = word
    p = e + 1
    e = tokenEnd(text, p)
  }
  // TAG: up to '[', ':' or space; then an optional [pid], then an optional ':' (senders that relay RFC
  // 5424 as BSD, rsyslog among them, write the tag without one), then a space or the end.
  let q = p
  while (q < e) {
    const c = text.charCodeAt(q)
    if (c === 0x5b || c === 0x3a) break
    q++
  }
  if (q > p && q - p <= 48) {
    let r = q
    let pid: string | null = null
    if (text.charCodeAt(r) === 0x5b) {
      const close = text.indexOf(']', r)
      if (close > r && close <= e) {
        pid = text.slice(r + 1, close)
        r = close + 1
      }
    }
    if (text.charCodeAt(r) === 0x3a) r++
    if (r === text.length || text.charCodeAt(r) === 0x20) {
      out.app = text.slice(p, q)
      out.procid = pid
      p = r < text.length ? r + 1 : r
    }
  }
  out.msg = text.slice(p)
}
