// `spillway tail`: the journal's newest rows, filtered, and with follow (-f) the rows journaled after
// them, like `journalctl -f`. Reads through its own read-only connection (WAL: it never slows the
// writer), polling for new rows; the filters, and what --grep matches, are journal/search.ts's.

import type Database from 'better-sqlite3'
import { openReadOnly } from './readonly.js'
import { type Filter, type Row, Search } from './search.js'

export type { Row } from './search.js'

export const kSeverities = ['emerg', 'alert', 'crit', 'err', 'warning', 'notice', 'info', 'debug'] as const

export interface TailOptions {
  lines: number
  follow: boolean
  host?: string
  app?: string
  /** Most severe first: 3 means err and worse. */
  maxSeverity?: number
  sinceMs?: number
  grep?: string
  json: boolean
  color: boolean
}

/** "err", "3", "warning" ... to 0..7, or null. */
export function severityLevel(s: string): number | null {
  if (/^[0-7]$/.test(s)) return Number(s)
  const aliases: Record<string, number> = { error: 3, warn: 4, emergency: 0, critical: 2, panic: 0 }
  const i = (kSeverities as readonly string[]).indexOf(s)
  return i >= 0 ? i : (aliases[s] ?? null)
}

/** "90s", "10m", "2h", "7d", or an ISO-8601 time, to unix ms; null if neither. */
export function sinceMs(s: string, now = Date.now()): number | null {
  const m = /^(\d+)([smhd])$/.exec(s)
  if (m)
    return (
      now - Number(m[1]) * { s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 }[m[2] as 's' | 'm' | 'h' | 'd']
    )
  const t = Date.parse(s)
  return Number.isNaN(t) ? null : t
}

function pad(n: number, w = 2): string {
  return String(n).padStart(w, '0')
}

function localTime(ms: number): string {
  const d = new Date(ms)
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}.${pad(d.getMilliseconds(), 3)}`
}

const kColor: Record<number, string> = {
  0: '\x1b[1;31m',
  1: '\x1b[1;31m',
  2: '\x1b[1;31m',
  3: '\x1b[31m',
  4: '\x1b[33m',
  5: '\x1b[1m',
}

export function formatRow(r: Row, color: boolean): string {
  const app = r.app === null ? '-' : r.procid === null ? r.app : `${r.app}[${r.procid}]`
  const sev = r.severity === null ? '-' : kSeverities[r.severity]!
  const text = r.msg.replace(/\n/g, '\n    ')
  const line = `${localTime(r.received_at)} ${r.host ?? '-'} ${app} ${sev}: ${text}`
  const c = color && r.severity !== null ? kColor[r.severity] : undefined
  return c === undefined ? line : `${c}${line}\x1b[0m`
}

export class Tail {
  private readonly db: Database.Database
  private readonly opts: TailOptions
  private readonly filter: Filter
  private readonly search: Search

  constructor(journalPath: string, opts: TailOptions) {
    this.db = openReadOnly(journalPath)
    this.opts = opts
    const f: Filter = {}
    if (opts.host !== undefined) f.host = opts.host
    if (opts.app !== undefined) f.app = opts.app
    if (opts.maxSeverity !== undefined) f.maxSeverity = opts.maxSeverity
    if (opts.sinceMs !== undefined) f.sinceMs = opts.sinceMs
    if (opts.grep !== undefined) f.text = opts.grep
    this.filter = f
    this.search = new Search(this.db)
  }

  /** The last `lines` matching rows, oldest first. */
  last(): Row[] {
    return this.opts.lines === 0 ? [] : this.search.newest(this.filter, this.opts.lines).reverse()
  }

  /** Matching rows journaled after `after`, oldest first, at most `limit`. */
  after(after: number, limit = 1000): Row[] {
    return this.search.after(this.filter, after, limit)
  }

  /** The newest id in the journal, matching or not: where following starts. */
  newestId(): number {
    return this.search.newestId()
  }

  print(rows: Row[], out: (s: string) => void): void {
    for (const r of rows) out(`${this.opts.json ? JSON.stringify(r) : formatRow(r, this.opts.color)}\n`)
  }

  close(): void {
    this.db.close()
  }
}
