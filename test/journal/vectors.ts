// Other projects' parser test vectors (test/journal/vectors/): loading them, and comparing what their
// source project's test asserts with the columns Spillway stores. sources.json says where each origin's
// vectors come from and how its assertions map to our columns; vectors.jsonl holds one vector a line.

import { readFileSync } from 'node:fs'

/** A row's parsed columns as vectors.jsonl writes them: ts as ISO 8601 (UTC), sd as the stored JSON text. */
export interface VectorRow {
  ts: string | null
  facility: number | null
  severity: number | null
  host: string | null
  app: string | null
  procid: string | null
  msgid: string | null
  sd: string | null
  msg: string
  parseError: number
}

/**
 * What the source project's test asserts, in our columns; a field it does not assert is absent. ts is an
 * ISO 8601 instant, or {wall} for a time without a zone or year ("MM-DDThh:mm:ss[.fff]", with
 * "YYYY-" in front when the message has a year), compared with ours read in UTC. valid: whether the
 * source accepts the message (false: it rejects it, so the fields are what it read before the error).
 */
export interface SourceStatement {
  ts?: string | { wall: string } | null
  facility?: number | null
  severity?: number | null
  host?: string | null
  app?: string | null
  procid?: string | null
  msgid?: string | null
  sd?: Record<string, Record<string, string>> | null
  msg?: string
  valid?: boolean
  error?: string
  version?: number
}

export interface Vector {
  origin: string
  ref: string
  /** The frame as text, or its bytes in base64 when they are not UTF-8. */
  input?: string
  inputBase64?: string
  expect: VectorRow
  source: SourceStatement
  /** The rule (sources.json rules, README "Where peers differ") behind a difference from the source. */
  rule?: string
}

export interface Origin {
  repository: string
  path: string
  commit: string
  cases: string
  mapping: string
  /** The receive time the vectors were parsed with (the year of a BSD time without one). */
  receivedAt: string
}

export interface Sources {
  about: string
  origins: Record<string, Origin>
  rules: Record<string, string>
}

const kDir = new URL('../../../test/journal/vectors/', import.meta.url)

export const sources = JSON.parse(readFileSync(new URL('sources.json', kDir), 'utf8')) as Sources

export const vectors: Vector[] = readFileSync(new URL('vectors.jsonl', kDir), 'utf8')
  .split('\n')
  .filter((l) => l !== '')
  .map((l) => JSON.parse(l) as Vector)

export function inputBytes(v: Vector): Buffer {
  return v.inputBase64 !== undefined ? Buffer.from(v.inputBase64, 'base64') : Buffer.from(v.input!, 'utf8')
}

/** The text the journal parses: the bytes decoded as the spool decoder does (U+FFFD for invalid UTF-8). */
export function inputText(v: Vector): string {
  return inputBytes(v).toString('utf8')
}

function sortKeys(x: unknown): unknown {
  if (x === null || typeof x !== 'object' || Array.isArray(x)) return x
  const o = x as Record<string, unknown>
  return Object.fromEntries(
    Object.keys(o)
      .sort()
      .map((k) => [k, sortKeys(o[k])]),
  )
}

const kFields = ['facility', 'severity', 'host', 'app', 'procid', 'msgid', 'msg'] as const
/** The fields no rule may change: a differing value there is a failure, unless ours is NULL and flagged. */
const kHard = new Set(['facility', 'severity', 'ts', 'sd'])

/** The fields where the source asserts something other than what we store. */
export function differences(v: Vector): string[] {
  const s = v.source
  const e = v.expect
  const d: string[] = []
  for (const k of kFields) {
    if (!(k in s)) continue
    // A rejected message's text is not compared with a flagged row's, which is the whole frame.
    if (k === 'msg' && s.valid === false && e.parseError === 1) continue
    if (s[k] !== e[k]) d.push(k)
  }
  if ('ts' in s) {
    let ours = e.ts
    let theirs = s.ts ?? null
    if (theirs !== null && typeof theirs === 'object') {
      const from = /^\d{4}-/.test(theirs.wall) ? 0 : 5
      ours = ours === null ? null : ours.slice(from, from + theirs.wall.length)
      theirs = theirs.wall
    }
    if (ours !== theirs) d.push('ts')
  }
  if ('sd' in s) {
    const ours = e.sd === null ? null : JSON.parse(e.sd)
    if (JSON.stringify(sortKeys(s.sd)) !== JSON.stringify(sortKeys(ours))) d.push('sd')
  }
  if (s.valid === false && e.parseError !== 1) d.push('valid')
  if (s.valid === true && e.parseError === 1) d.push('valid')
  return d
}

export type Verdict = 'pass' | 'judgement' | 'fail'

/**
 * pass: we store what the source asserts. judgement: we differ where a documented rule says why, and
 * not in facility, severity, ts or sd, except by leaving one NULL in a flagged row (which keeps the
 * frame). fail: anything else, a value of ours that contradicts the source's or a difference no rule
 * explains.
 */
export function verdict(v: Vector): Verdict {
  const d = differences(v)
  if (d.length === 0) return 'pass'
  if (v.rule === undefined || !(v.rule in sources.rules)) return 'fail'
  const s = v.source as Record<string, unknown>
  const e = v.expect as unknown as Record<string, unknown>
  for (const k of d) {
    if (!kHard.has(k)) continue
    const flaggedNull = e[k] === null && v.expect.parseError === 1
    if (s[k] !== null && !flaggedNull) return 'fail'
    if (s[k] === null && v.source.valid !== false) return 'fail'
  }
  return 'judgement'
}
