// Reading the journal by filter: the one place that turns "host, app, severity, time, transport, peer,
// parse errors, text" into SQL, for `spillway tail` and the web console alike, so both find the same rows.
//
// Text has one meaning everywhere: the message contains the text, ASCII letters matched without regard
// to case and every other character exactly; that is SQLite's `instr(lower(msg), lower(text)) > 0`, the
// test every returned row passes. The full-text index (an FTS5 trigram index, journal/schema.ts) only
// makes it fast: rows up to fts_state.indexed_to are found through it (`msg LIKE '%text%'` there finds a
// superset, then the test above), the rows the indexer has not reached yet are scanned with the same
// test. So a search gives the same rows whatever the indexer's progress. Text shorter than three
// characters has no trigram to look up: it is always a scan.

import type Database from 'better-sqlite3'

export interface Filter {
  host?: string
  app?: string
  /** Most severe first: 3 means err and worse. */
  maxSeverity?: number
  /** received_at >= sinceMs */
  sinceMs?: number
  /** received_at < untilMs */
  untilMs?: number
  transport?: string
  /** A sender address ("10.0.0.5": any port) or address:port. */
  peer?: string
  /** Only rows whose header fits no grammar. */
  parseErrors?: boolean
  /** Messages containing this (see the top of this file). */
  text?: string
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
  edge: string | null
}

/** Counts of matching rows per time bucket, one array per severity 0..7, and [8] for rows without one. */
export interface Histogram {
  fromMs: number
  stepMs: number
  counts: number[][]
}

/** The shortest text the trigram index can look up. */
const kTrigram = 3
const kMinute = 60_000
const kMaxCached = 64

interface Where {
  sql: string
  params: Record<string, unknown>
}

/** The conditions of a filter but its text, on the columns of `m`. */
function where(f: Filter): Where {
  const cond: string[] = []
  const params: Record<string, unknown> = {}
  if (f.host !== undefined) {
    cond.push('m.host = @host')
    params.host = f.host
  }
  if (f.app !== undefined) {
    cond.push('m.app = @app')
    params.app = f.app
  }
  if (f.maxSeverity !== undefined) {
    cond.push('m.severity <= @maxSeverity')
    params.maxSeverity = f.maxSeverity
  }
  if (f.sinceMs !== undefined) {
    cond.push('m.received_at >= @sinceMs')
    params.sinceMs = f.sinceMs
  }
  if (f.untilMs !== undefined) {
    cond.push('m.received_at < @untilMs')
    params.untilMs = f.untilMs
  }
  if (f.transport !== undefined) {
    cond.push('m.transport = @transport')
    params.transport = f.transport
  }
  if (f.peer !== undefined) {
    // "10.0.0.5" is every port of that address; "10.0.0.5:514" (or "[::1]:514") one of them.
    cond.push('(m.peer = @peer OR substr(m.peer, 1, @peerLen) = @peerPrefix)')
    params.peer = f.peer
    params.peerPrefix = `${f.peer}:`
    params.peerLen = f.peer.length + 1
  }
  if (f.parseErrors === true) cond.push('m.parse_error = 1')
  if (f.text !== undefined) {
    cond.push('instr(lower(m.msg), lower(@text)) > 0')
    params.text = f.text
  }
  return { sql: cond.length === 0 ? '1' : cond.join(' AND '), params }
}

/**
 * One search over one read-only connection. Every method reads in one transaction, so the split between
 * indexed and not-yet-indexed rows is taken in the same snapshot as the rows.
 */
export class Search {
  private readonly db: Database.Database
  private readonly hasIndex: boolean
  private readonly indexedTo: Database.Statement<[], { indexed_to: number }> | null
  private readonly volumeSince: Database.Statement<[], { since: number }> | null
  private readonly cache = new Map<string, Database.Statement>()

  constructor(db: Database.Database) {
    this.db = db
    this.hasIndex =
      db.prepare("SELECT 1 FROM sqlite_master WHERE name IN ('messages_fts', 'fts_state')").all().length ===
        2 &&
      /trigram/.test(
        (db.prepare("SELECT sql FROM sqlite_master WHERE name = 'messages_fts'").get() as { sql: string })
          .sql,
      )
    this.indexedTo = this.hasIndex ? db.prepare('SELECT indexed_to FROM fts_state WHERE id = 1') : null
    const hasVolume = db.prepare("SELECT 1 FROM sqlite_master WHERE name IN ('volume', 'volume_state')").all()
    this.volumeSince =
      hasVolume.length === 2 ? db.prepare('SELECT since FROM volume_state WHERE id = 1') : null
  }

  private stmt(sql: string): Database.Statement {
    let s = this.cache.get(sql)
    if (s === undefined) {
      if (this.cache.size >= kMaxCached) this.cache.clear()
      s = this.db.prepare(sql)
      this.cache.set(sql, s)
    }
    return s
  }

  /**
   * Where the index serves this filter's text: rows up to the returned id. 0: scan everything. With a
   * host or app, their index finds fewer rows than the text's trigrams would (a day of one host is
   * thousands of rows, a common word millions), so those are read and tested; the result is the same.
   */
  private split(f: Filter): number {
    if (f.text === undefined || this.indexedTo === null || [...f.text].length < kTrigram) return 0
    if (f.host !== undefined || f.app !== undefined) return 0
    return this.indexedTo.get()?.indexed_to ?? 0
  }

  /** The two ways to the rows: the index for ids up to `to`, a scan above. */
  private parts(
    f: Filter,
    to: number,
    select: string,
    tail: string,
  ): { sql: string; params: Record<string, unknown> }[] {
    const w = where(f)
    const scan = {
      sql: `SELECT ${select} FROM messages AS m WHERE m.id > @indexedTo AND ${w.sql} ${tail}`,
      params: { ...w.params, indexedTo: to },
    }
    if (to === 0) return [scan]
    // Trigrams of the text find a superset (case folded, % and _ as wildcards); where() keeps the exact.
    const indexed = {
      sql: `SELECT ${select} FROM messages_fts AS f JOIN messages AS m ON m.id = f.rowid
        WHERE f.msg LIKE @like AND f.rowid <= @indexedTo AND ${w.sql} ${tail.replaceAll('m.id', 'f.rowid')}`,
      params: { ...w.params, indexedTo: to, like: `%${f.text}%` },
    }
    return [scan, indexed]
  }

  /** The newest `limit` matching rows with an id below `beforeId` (a page further back), newest first. */
  newest(f: Filter, limit: number, beforeId = Number.MAX_SAFE_INTEGER): Row[] {
    return this.db.transaction(() => {
      const out: Row[] = []
      // The scan part holds the newer ids: it goes first, the indexed part fills up the page.
      for (const p of this.parts(
        f,
        this.split(f),
        'm.*',
        'AND m.id < @beforeId ORDER BY m.id DESC LIMIT @limit',
      )) {
        if (out.length >= limit) break
        out.push(...(this.stmt(p.sql).all({ ...p.params, beforeId, limit: limit - out.length }) as Row[]))
      }
      return out
    })()
  }

  /** Matching rows with an id above `afterId`, oldest first, at most `limit` (following new rows). */
  after(f: Filter, afterId: number, limit: number): Row[] {
    return this.db.transaction(() => {
      const parts = this.parts(f, this.split(f), 'm.*', 'AND m.id > @afterId ORDER BY m.id LIMIT @limit')
      const out: Row[] = []
      // Oldest first: the indexed part (lower ids) before the scan part.
      for (const p of parts.reverse()) {
        if (out.length >= limit) break
        out.push(...(this.stmt(p.sql).all({ ...p.params, afterId, limit: limit - out.length }) as Row[]))
      }
      return out
    })()
  }

  /**
   * Matching rows received in [fromMs, toMs), counted in at most `buckets` equal steps, by severity. A step
   * of a minute or more starts on a whole minute (the first bucket may begin before fromMs; it counts
   * from fromMs): then a filter of time and severity only is counted from the volume table, a minute's
   * figures at a time, and only the partial minutes at the ends, and what volume_state.since leaves out,
   * row by row.
   */
  histogram(f: Filter, fromMs: number, toMs: number, buckets: number): Histogram {
    const from = Math.floor(Math.max(fromMs, f.sinceMs ?? fromMs))
    const to = Math.ceil(Math.min(toMs, f.untilMs ?? toMs))
    let origin = Math.floor(fromMs)
    let stepMs = Math.max(1, Math.ceil((toMs - origin) / buckets))
    if (stepMs >= kMinute) {
      origin = Math.floor(origin / kMinute) * kMinute
      stepMs = Math.ceil((toMs - origin) / buckets / kMinute) * kMinute
    }
    const n = Math.max(1, Math.ceil((toMs - origin) / stepMs))
    const counts = Array.from({ length: 9 }, () => new Array<number>(n).fill(0))
    const h: Histogram = { fromMs: origin, stepMs, counts }
    if (to <= from) return h
    this.db.transaction(() => {
      const byVolume =
        stepMs % kMinute === 0 &&
        this.volumeSince !== null &&
        Object.keys(f).every((k) => k === 'sinceMs' || k === 'untilMs' || k === 'maxSeverity')
      if (!byVolume) {
        this.countRows(f, from, to, h)
        return
      }
      const since = (this.volumeSince!.get()?.since ?? Number.MAX_SAFE_INTEGER) as number
      // Whole minutes the volume table holds, inside [from, to).
      const first = Math.ceil(Math.max(from, since) / kMinute)
      const end = Math.floor(to / kMinute)
      if (first >= end) {
        this.countRows(f, from, to, h)
        return
      }
      this.countRows(f, from, first * kMinute, h)
      this.countRows(f, end * kMinute, to, h)
      const rows = this.stmt(
        `SELECT minute, severity, n FROM volume WHERE minute >= ? AND minute < ? AND n > 0${
          f.maxSeverity === undefined ? '' : ' AND severity BETWEEN 0 AND ?'
        }`,
      ).all(...(f.maxSeverity === undefined ? [first, end] : [first, end, f.maxSeverity])) as {
        minute: number
        severity: number
        n: number
      }[]
      for (const r of rows) {
        const b = Math.floor((r.minute * kMinute - origin) / stepMs)
        if (b >= 0 && b < n) counts[r.severity < 0 ? 8 : r.severity]![b]! += r.n
      }
    })()
    return h
  }

  /** Adds the matching rows received in [from, to) to the histogram, counted row by row. */
  private countRows(f: Filter, from: number, to: number, h: Histogram): void {
    if (to <= from) return
    const ranged: Filter = { ...f, sinceMs: from, untilMs: to }
    const select = '(m.received_at - @origin) / @stepMs AS b, m.severity AS s, count(*) AS n'
    for (const p of this.parts(ranged, this.split(ranged), select, 'GROUP BY b, s')) {
      // BigInt binds an INTEGER, so the division is an integer one (a JS number binds a REAL).
      const rows = this.stmt(p.sql).all({
        ...p.params,
        origin: BigInt(h.fromMs),
        stepMs: BigInt(h.stepMs),
      }) as {
        b: number
        s: number | null
        n: number
      }[]
      for (const r of rows) {
        const row = h.counts[r.s ?? 8]!
        if (r.b >= 0 && r.b < row.length) row[r.b]! += r.n
      }
    }
  }

  /** The newest id in the journal, matching or not: where following starts. */
  newestId(): number {
    return (this.stmt('SELECT coalesce(max(id), 0) AS n FROM messages').get() as { n: number }).n
  }
}
