import { deepStrictEqual, ok, strictEqual } from 'node:assert/strict'
import test from 'ava'
import fc from 'fast-check'
import { ParsedMessage, parseSyslog } from '../../src/journal/parse.js'
import { corpus, kReceivedAt } from './corpus.js'

// Properties throw node:assert errors so that fast-check shrinks and reports the counterexample; the
// ava assertion only records that the run passed.

const kNumRuns = 2000

const char = (min: number, max: number, not = '') =>
  fc
    .integer({ min, max })
    .map((c) => String.fromCharCode(c))
    .filter((c) => !not.includes(c))

/** RFC 5424 header fields: PRINTUSASCII, no space; '-' alone is the NILVALUE so it renders null. */
const field = (maxLength: number) =>
  fc.option(
    fc.string({ unit: char(33, 126), minLength: 1, maxLength }).filter((s) => s !== '-'),
    { nil: null },
  )

/** SD-NAME: PRINTUSASCII except '=', SP, ']' and '"'; a few fixed names make repeats likely. */
const sdName = fc.oneof(
  fc.string({ unit: char(33, 126, '= ]"'), minLength: 1, maxLength: 32 }),
  fc.constantFrom('a', 'b', 'x@32473', '__proto__', '0'),
)

/** Any unicode, with the three characters RFC 5424 makes a sender escape over-represented. */
const paramValue = fc.string({
  unit: fc.oneof(fc.constantFrom('"', '\\', ']'), fc.string({ unit: 'binary', minLength: 1, maxLength: 1 })),
  maxLength: 12,
})

const structuredData = fc.array(
  fc.record({
    id: sdName,
    params: fc.array(fc.tuple(sdName, paramValue), { maxLength: 4 }),
  }),
  { maxLength: 3 },
)

/** An RFC 3339 time as RFC 5424 restricts it, and the unix ms it means (fractions beyond ms dropped). */
const timestamp = fc.option(
  fc
    .record({
      date: fc.date({
        min: new Date('1971-01-01T00:00:00Z'),
        max: new Date('2099-12-31T00:00:00Z'),
        noInvalidDate: true,
      }),
      frac: fc.option(fc.integer({ min: 0, max: 999_999 }), { nil: null }),
      digits: fc.integer({ min: 1, max: 6 }),
      offset: fc.option(fc.integer({ min: -(23 * 60 + 59), max: 23 * 60 + 59 }), { nil: null }),
    })
    .map(({ date, frac, digits, offset }) => {
      const base = Math.floor(date.getTime() / 1000) * 1000
      const f = frac === null ? '' : String(frac).padStart(6, '0').slice(0, digits)
      const wall = new Date(base + (offset ?? 0) * 60_000)
      const p2 = (n: number) => String(n).padStart(2, '0')
      let s =
        `${String(wall.getUTCFullYear()).padStart(4, '0')}-${p2(wall.getUTCMonth() + 1)}-${p2(wall.getUTCDate())}` +
        `T${p2(wall.getUTCHours())}:${p2(wall.getUTCMinutes())}:${p2(wall.getUTCSeconds())}`
      if (f !== '') s += `.${f}`
      if (offset === null) {
        s += 'Z'
      } else {
        const a = Math.abs(offset)
        s += `${offset < 0 ? '-' : '+'}${p2(Math.floor(a / 60))}:${p2(a % 60)}`
      }
      return { text: s, ms: base + (f === '' ? 0 : Number(f.padEnd(3, '0').slice(0, 3))) }
    }),
  { nil: null },
)

const message5424 = fc.record({
  pri: fc.integer({ min: 0, max: 191 }),
  ts: timestamp,
  host: field(255),
  app: field(48),
  procid: field(128),
  msgid: field(32),
  sd: structuredData,
  bom: fc.boolean(),
  msg: fc.string({ unit: 'binary', maxLength: 80 }).filter((s) => s.charCodeAt(0) !== 0xfeff),
  bareEnd: fc.boolean(),
})

const escapeParam = (v: string) => v.replace(/["\\\]]/g, '\\$&')

test('RFC 5424: generated messages parse back to what generated them', (t) => {
  const parsed = new ParsedMessage()
  fc.assert(
    fc.property(message5424, (m) => {
      let line = `<${m.pri}>1 ${m.ts?.text ?? '-'} ${m.host ?? '-'} ${m.app ?? '-'} ${m.procid ?? '-'} ${m.msgid ?? '-'} `
      // The repeated-parameter rule: a name seen again in an element, or in a later element with the
      // same id, turns its value into an array of every value in order.
      let sd: string | null = null
      if (m.sd.length === 0) {
        line += '-'
      } else {
        const obj: Record<string, Record<string, string | string[]>> = Object.create(null)
        for (const el of m.sd) {
          line += `[${el.id}`
          obj[el.id] ??= Object.create(null) as Record<string, string | string[]>
          const o = obj[el.id]!
          for (const [name, value] of el.params) {
            line += ` ${name}="${escapeParam(value)}"`
            const prev = o[name]
            if (prev === undefined) o[name] = value
            else if (Array.isArray(prev)) prev.push(value)
            else o[name] = [prev, value]
          }
          line += ']'
        }
        sd = JSON.stringify(obj)
      }
      if (m.bom || m.msg !== '' || !m.bareEnd) line += ` ${m.bom ? '\ufeff' : ''}${m.msg}`
      parseSyslog(line, kReceivedAt, parsed)
      deepStrictEqual(
        { ...parsed },
        {
          ts: m.ts?.ms ?? null,
          facility: m.pri >> 3,
          severity: m.pri & 7,
          host: m.host,
          app: m.app,
          procid: m.procid,
          msgid: m.msgid,
          sd,
          msg: m.msg,
          parseError: 0,
        },
        line,
      )
    }),
    { numRuns: kNumRuns },
  )
  t.pass()
})

const kMonthNames = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec']

/**
 * A BSD time within 300 days before and 20 days after the receive time (so that year inference lands on
 * the year it came from), with the day padded or not, an optional fraction and an optional UTC zone.
 */
const bsdTime = fc
  .record({
    at: fc.integer({ min: kReceivedAt - 300 * 86_400_000, max: kReceivedAt + 20 * 86_400_000 }),
    padded: fc.boolean(),
    frac: fc.option(fc.integer({ min: 0, max: 999 }), { nil: null }),
    zone: fc.constantFrom('', ' UTC', ' GMT', 'Z'),
  })
  .map(({ at, padded, frac, zone }) => {
    const utc = zone !== ''
    const d = new Date(at)
    const [mo, day, h, mi, s] = utc
      ? [d.getUTCMonth(), d.getUTCDate(), d.getUTCHours(), d.getUTCMinutes(), d.getUTCSeconds()]
      : [d.getMonth(), d.getDate(), d.getHours(), d.getMinutes(), d.getSeconds()]
    const p2 = (n: number) => String(n).padStart(2, '0')
    const text =
      `${kMonthNames[mo]} ${padded ? String(day).padStart(2, ' ') : day} ${p2(h)}:${p2(mi)}:${p2(s)}` +
      `${frac === null ? '' : `.${String(frac).padStart(3, '0')}`}${zone}`
    const y = utc ? d.getUTCFullYear() : d.getFullYear()
    const ms = utc
      ? Date.UTC(y, mo, day, h, mi, s, frac ?? 0)
      : new Date(y, mo, day, h, mi, s, frac ?? 0).getTime()
    return { text, ms }
  })

const word = (first: string, rest: string, maxLength: number) =>
  fc
    .tuple(fc.constantFrom(...first), fc.string({ unit: fc.constantFrom(...rest), maxLength: maxLength - 1 }))
    .map(([a, b]) => a + b)

const kAlnum = 'abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789'

const message3164 = fc
  .record({
    pri: fc.integer({ min: 0, max: 191 }),
    time: bsdTime,
    // Not a zone name, which a BSD time may carry where the hostname would be.
    host: fc.option(
      word(kAlnum.slice(0, 52), `${kAlnum}.-_`, 40).filter((h) => !['UTC', 'GMT', 'Z'].includes(h)),
      { nil: null },
    ),
    app: word(kAlnum, `${kAlnum}/._-`, 48),
    pid: fc.option(fc.integer({ min: 1, max: 4_194_304 }).map(String), { nil: null }),
    colon: fc.boolean(),
    msg: fc.string({ unit: 'binary', maxLength: 80 }),
  })
  // Without a hostname, "app msg" would read as hostname "app": a colon or a pid has to mark the tag,
  // and "UTC:" reads as a zone.
  .filter((m) => m.host !== null || ((m.colon || m.pid !== null) && !['UTC', 'GMT', 'Z'].includes(m.app)))

test('RFC 3164: generated messages parse back to what generated them', (t) => {
  const parsed = new ParsedMessage()
  fc.assert(
    fc.property(message3164, (m) => {
      const tag = `${m.app}${m.pid === null ? '' : `[${m.pid}]`}${m.colon ? ':' : ''}`
      const line = `<${m.pri}>${m.time.text} ${m.host === null ? '' : `${m.host} `}${tag} ${m.msg}`
      parseSyslog(line, kReceivedAt, parsed)
      deepStrictEqual(
        { ...parsed },
        {
          ts: m.time.ms,
          facility: m.pri >> 3,
          severity: m.pri & 7,
          host: m.host,
          app: m.app,
          procid: m.pid,
          msgid: null,
          sd: null,
          msg: m.msg,
          parseError: 0,
        },
        line,
      )
    }),
    { numRuns: kNumRuns },
  )
  t.pass()
})

const message = fc.record({
  pri: fc.integer({ min: 0, max: 191 }),
  seq: fc.option(
    fc.integer({ min: 0, max: 999_999 }).map((n) => String(n).padStart(6, '0')),
    { nil: null },
  ),
  host: fc.option(word(kAlnum.slice(0, 52), `${kAlnum}.-_`, 30), { nil: null }),
  sync: fc.constantFrom('', '*', '.'),
  time: bsdTime,
  mnemonic: fc.option(
    fc
      .tuple(
        word('ABCDEFGHIJKLMNOPQRSTUVWXYZ', 'ABCDEFGHIJKLMNOPQRSTUVWXYZ_0123456789', 16),
        fc.integer({ min: 0, max: 7 }),
        word('ABCDEFGHIJKLMNOPQRSTUVWXYZ', 'ABCDEFGHIJKLMNOPQRSTUVWXYZ_0123456789', 20),
      )
      .map(([f, s, m]) => `${f}-${s}-${m}`),
    { nil: null },
  ),
  msg: fc.string({ unit: 'binary', maxLength: 80 }),
})

test('Cisco: generated messages parse back to what generated them', (t) => {
  const parsed = new ParsedMessage()
  fc.assert(
    fc.property(
      // A hostname comes with "logging origin-id", which only shows after a sequence number. Without a
      // sequence number or a mnemonic, "Mmm dd hh:mm:ss: text" is a BSD header with a colon after the
      // time (as rsyslog reads it), not Cisco.
      message.filter((m) => (m.host === null || m.seq !== null) && (m.seq !== null || m.mnemonic !== null)),
      (m) => {
        const line =
          `<${m.pri}>${m.seq === null ? '' : `${m.seq}: `}${m.host === null ? '' : `${m.host}: `}` +
          `${m.sync}${m.time.text}: ${m.mnemonic === null ? '' : `%${m.mnemonic}: `}${m.msg}`
        parseSyslog(line, kReceivedAt, parsed)
        // A message that itself starts like a mnemonic is read as one when the real one is missing.
        const expectedApp = m.mnemonic ?? (/^%[^ :]*-[^ :]*-[^ :]*:( |$)/.test(m.msg) ? '' : null)
        if (expectedApp === '') return
        deepStrictEqual(
          { ...parsed },
          {
            ts: m.time.ms,
            facility: m.pri >> 3,
            severity: m.pri & 7,
            host: m.host,
            app: expectedApp,
            procid: null,
            msgid: null,
            sd: null,
            msg: m.msg,
            parseError: 0,
          },
          line,
        )
      },
    ),
    { numRuns: kNumRuns },
  )
  t.pass()
})

// Pieces of every dialect, so that generated strings get deep into the grammars before they break.
const kFragments = [
  '<13>',
  '<189>',
  '<0>',
  '<191>',
  '<',
  '>',
  '1 ',
  '2026-11-23T10:00:00.123Z',
  '2026-11-23T10:00:00+01:00',
  'Nov 23 ',
  'Nov  3 ',
  'Mar 1 ',
  '2026 ',
  '10:00:00',
  '.123',
  '.',
  ' UTC',
  ' CET',
  'Z',
  ': ',
  ':',
  ' ',
  '-',
  '*',
  '%SYS-5-CONFIG_I',
  '%',
  '123: ',
  'router1: ',
  'host ',
  'app',
  '[42]',
  '[',
  ']',
  '=',
  '"',
  '\\',
  '[x@1 a="1"]',
  'kernel: ',
  '[    1.234] ',
  'date=',
  '2026-11-23',
  ' time=',
  ',time=',
  'devname=',
  'devname="FG"',
  '\ufeff',
  '\u0000',
  'é',
  '😀',
]

const syslogish = fc.oneof(
  fc.array(fc.constantFrom(...kFragments), { maxLength: 16 }).map((a) => a.join('')),
  fc.string({ unit: fc.constantFrom(...'<>1 -[]="\\0123456789:TZ.%*abcNovDecUTCdate='), maxLength: 60 }),
  fc.string({ unit: 'binary', maxLength: 60 }),
  fc.string({ unit: 'grapheme', maxLength: 60 }),
)

function checkNoLoss(text: string, parsed: ParsedMessage): void {
  ok(parsed.parseError === 0 || parsed.parseError === 1)
  if (parsed.parseError === 1) {
    // A flagged row keeps the whole frame; the header columns hold what could be read of it.
    strictEqual(parsed.msg, text)
  } else {
    // The message is the input's tail (after a header, PRI, or a BOM the header grammar consumed).
    ok(text.endsWith(parsed.msg), 'msg is not a suffix of the input')
  }
  ok(parsed.ts === null || Number.isSafeInteger(parsed.ts), `ts ${parsed.ts}`)
  ok(parsed.facility === null || (parsed.facility >= 0 && parsed.facility <= 23))
  ok(parsed.severity === null || (parsed.severity >= 0 && parsed.severity <= 7))
  // Header fields are cut from the input (SD is decoded, so only well-formed JSON is asked of it).
  for (const v of [parsed.host, parsed.app, parsed.procid, parsed.msgid]) {
    ok(v === null || (v.length > 0 && text.includes(v)), `${v} is not in the input`)
  }
  if (parsed.sd !== null) JSON.parse(parsed.sd)
}

test('arbitrary strings never throw and lose nothing', (t) => {
  const parsed = new ParsedMessage()
  fc.assert(
    fc.property(syslogish, (text) => {
      parseSyslog(text, kReceivedAt, parsed)
      checkNoLoss(text, parsed)
    }),
    { numRuns: kNumRuns },
  )
  t.pass()
})

test('a reused object carries nothing over from the line before', (t) => {
  const reused = new ParsedMessage()
  const fresh = new ParsedMessage()
  fc.assert(
    fc.property(fc.constantFrom(...corpus), syslogish, (before, text) => {
      parseSyslog(before.line, kReceivedAt, reused)
      parseSyslog(text, kReceivedAt, reused)
      parseSyslog(text, kReceivedAt, fresh)
      deepStrictEqual({ ...reused }, { ...fresh })
    }),
    { numRuns: kNumRuns },
  )
  t.pass()
})

test('corpus lines cut short or with a byte changed still lose nothing', (t) => {
  const parsed = new ParsedMessage()
  fc.assert(
    fc.property(
      fc.constantFrom(...corpus),
      fc.nat(),
      fc.nat(),
      fc.constantFrom('', ' ', ':', '[', ']', '"', '%', '-', '.', 'x', '9', '\ufeff'),
      (entry, cut, at, put) => {
        const line = entry.line.slice(0, cut % (entry.line.length + 1))
        const i = at % (line.length + 1)
        const text = line.slice(0, i) + put + line.slice(i + 1)
        parseSyslog(text, kReceivedAt, parsed)
        checkNoLoss(text, parsed)
      },
    ),
    { numRuns: kNumRuns },
  )
  t.pass()
})
