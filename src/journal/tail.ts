// `spillway tail`: the journal's newest rows, filtered, and with follow (-f) the rows journaled after
// them, like `journalctl -f`. Reads through its own read-only connection (WAL: it never slows the
// writer), polling for new rows.

import type Database from 'better-sqlite3'
import { openReadOnly } from './readonly.js'

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

export interface Row {
  id: number
  received_at: number
  ts: number | null
  facility: number | null
  severity: number | null
  host: string | null
  app: string | null
  procid: string | null
  msgid: string | null
  sd: string | null
  msg: string
  peer: string
  transport: string
  orig_len: number | null
  parse_error: number
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
  private readonly where: string
  private readonly params: Record<string, unknown>
  private readonly hasFts: boolean

  constructor(journalPath: string, opts: TailOptions) {
    this.db = openReadOnly(journalPath)
    this.opts = opts
    this.hasFts =
      this.db.prepare("SELECT 1 FROM sqlite_master WHERE name IN ('messages_fts', 'fts_state')").all()
        .length === 2
    const cond: string[] = ['id > @after']
    const params: Record<string, unknown> = {}
    if (opts.host !== undefined) {
      cond.push('host = @host')
      params.host = opts.host
    }
    if (opts.app !== undefined) {
      cond.push('app = @app')
      params.app = opts.app
    }
    if (opts.maxSeverity !== undefined) {
      cond.push('severity <= @sev')
      params.sev = opts.maxSeverity
    }
    if (opts.sinceMs !== undefined) {
      cond.push('received_at >= @since')
      params.since = opts.sinceMs
    }
    if (opts.grep !== undefined) {
      // Full text where the index has reached; a substring scan for the rows it has not yet.
      params.needle = opts.grep.toLowerCase()
      if (this.hasFts) {
        params.phrase = `"${opts.grep.replace(/"/g, '""')}"`
        cond.push(`((id <= (SELECT indexed_to FROM fts_state WHERE id = 1)
          AND id IN (SELECT rowid FROM messages_fts WHERE messages_fts MATCH @phrase))
          OR (id > (SELECT indexed_to FROM fts_state WHERE id = 1) AND instr(lower(msg), @needle) > 0))`)
      } else {
        cond.push('instr(lower(msg), @needle) > 0')
      }
    }
    this.where = cond.join(' AND ')
    this.params = params
  }

  /** The last `lines` matching rows, oldest first. */
  last(): Row[] {
    const rows = this.db
      .prepare(`SELECT * FROM messages WHERE ${this.where} ORDER BY id DESC LIMIT @limit`)
      .all({ ...this.params, after: 0, limit: this.opts.lines }) as Row[]
    return rows.reverse()
  }

  /** Matching rows journaled after `after`, oldest first, at most `limit`. */
  after(after: number, limit = 1000): Row[] {
    return this.db
      .prepare(`SELECT * FROM messages WHERE ${this.where} ORDER BY id LIMIT @limit`)
      .all({ ...this.params, after, limit }) as Row[]
  }

  /** The newest id in the journal, matching or not: where following starts. */
  newestId(): number {
    return (this.db.prepare('SELECT coalesce(max(id), 0) AS n FROM messages').get() as { n: number }).n
  }

  print(rows: Row[], out: (s: string) => void): void {
    for (const r of rows) out(`${this.opts.json ? JSON.stringify(r) : formatRow(r, this.opts.color)}\n`)
  }

  close(): void {
    this.db.close()
  }
}
