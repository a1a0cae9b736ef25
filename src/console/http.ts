// The web console's HTTP side, on the server's HTTP listener (metrics/http.ts routes `/`, `/app/` and
// `/api/` here): the page and its files, and a JSON API the page reads (each view's JSON twin, as
// Datasette has, with the same parameters as the page's URL). It runs on the socket thread but does no
// query work there: every read of the journal goes to a query process (console/queries.ts).
//
// Parameters use the CLI's words: host, app, severity (err = err and worse), since, until, transport,
// peer, parse_errors, grep (text, with journal/search.ts's one meaning).

import { existsSync, readdirSync, readFileSync } from 'node:fs'
import type { IncomingMessage, ServerResponse } from 'node:http'
import { createRequire } from 'node:module'
import { extname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import type { Filter } from '../journal/search.js'
import { severityLevel, sinceMs } from '../journal/tail.js'
import { QueryPool, QueryRefused, QueryTimeout } from './queries.js'

export interface ConsoleSource {
  /** The server's counters and gauges (what /status says). */
  stats(): Record<string, number>
  /** Why the server is unhealthy, or an empty list. */
  problems(): string[]
  /** Rows journaled so far: the live tail asks the journal again only when this moved. */
  journaled(): number
}

export interface ConsoleOptions {
  journalPath: string
  timeLimitMs: number
  maxRows: number
}

class BadRequest extends Error {}

const kLivePollMs = 250
const kPingMs = 15_000
const kMaxLiveClients = 32
const kMaxPage = 1000
const kMaxBuckets = 1000
const kSqlMaxBytes = 32 * 1024 * 1024

const kTypes: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.png': 'image/png',
}

/** The page's files: compiled TypeScript (dist/web), the HTML and CSS as written (web/), and uPlot. */
function assets(): Map<string, { path: string; type: string }> {
  const root = new URL('../../../', import.meta.url)
  const map = new Map<string, { path: string; type: string }>()
  const add = (url: string, file: string) => map.set(url, { path: file, type: kTypes[extname(file)]! })
  add('/', fileURLToPath(new URL('web/index.html', root)))
  add('/app/console.css', fileURLToPath(new URL('web/console.css', root)))
  // The page's modules: every file tsc -p web wrote (a name of letters only, so no path can escape).
  const dist = fileURLToPath(new URL('dist/web/', root))
  for (const f of existsSync(dist) ? readdirSync(dist) : [])
    if (/^[a-z-]+\.js$/.test(f)) add(`/app/${f}`, join(dist, f))
  const uplot = createRequire(import.meta.url).resolve('uplot/dist/uPlot.esm.js')
  add('/app/uPlot.esm.js', uplot)
  add('/app/uPlot.min.css', uplot.replace(/uPlot\.esm\.js$/, 'uPlot.min.css'))
  return map
}

function json(res: ServerResponse, status: number, value: unknown): void {
  const body = JSON.stringify(value)
  res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', 'cache-control': 'no-store' })
  res.end(body)
}

/** "15m", "2h", an ISO time or unix ms, to unix ms. */
function time(name: string, v: string, now: number): number {
  const t = /^\d{12,}$/.test(v) ? Number(v) : sinceMs(v, now)
  if (t === null)
    throw new BadRequest(
      `${name} must be like 15m, 1h, 24h, 7d, an ISO time or unix ms, got ${JSON.stringify(v)}`,
    )
  return t
}

/** The filter in a URL's parameters; unknown parameters are left alone (the page keeps its own in it). */
export function filterOf(q: URLSearchParams, now: number): Filter {
  const f: Filter = {}
  const str = (k: 'host' | 'app' | 'transport' | 'peer') => {
    const v = q.get(k)
    if (v !== null && v !== '') f[k] = v
  }
  str('host')
  str('app')
  str('transport')
  str('peer')
  const sev = q.get('severity')
  if (sev !== null && sev !== '') {
    const level = severityLevel(sev)
    if (level === null)
      throw new BadRequest(
        `severity must be emerg, alert, crit, err, warning, notice, info, debug or 0-7, got ${JSON.stringify(sev)}`,
      )
    f.maxSeverity = level
  }
  const since = q.get('since')
  if (since !== null && since !== '') f.sinceMs = time('since', since, now)
  const until = q.get('until')
  if (until !== null && until !== '') f.untilMs = time('until', until, now)
  if (q.get('parse_errors') === '1') f.parseErrors = true
  const grep = q.get('grep')
  if (grep !== null && grep !== '') f.text = grep
  return f
}

function intParam(q: URLSearchParams, name: string, dflt: number, min: number, max: number): number {
  const v = q.get(name)
  if (v === null || v === '') return dflt
  const n = Number(v)
  if (!Number.isInteger(n) || n < min || n > max)
    throw new BadRequest(`${name} must be an integer from ${min} to ${max}, got ${JSON.stringify(v)}`)
  return n
}

/** A CSV cell (RFC 4180); text a spreadsheet would run as a formula gets a leading '. */
function csvCell(v: unknown): string {
  if (v === null || v === undefined) return ''
  let s = typeof v === 'object' ? String((v as { $base64?: string }).$base64 ?? JSON.stringify(v)) : String(v)
  if (typeof v === 'string' && /^[=+\-@\t\r]/.test(s)) s = `'${s}`
  return /[",\r\n]/.test(s) ? `"${s.replaceAll('"', '""')}"` : s
}

export class ConsoleHttp {
  private readonly opts: ConsoleOptions
  private readonly source: ConsoleSource
  private readonly pool: QueryPool
  private readonly files = assets()
  private readonly live = new Set<ServerResponse>()

  constructor(opts: ConsoleOptions, source: ConsoleSource) {
    this.opts = opts
    this.source = source
    this.pool = new QueryPool(opts.journalPath)
  }

  /** Query processes started, and queries stopped at the time limit (for tests). */
  get queryStats(): { started: number; timeouts: number; running: number } {
    return { started: this.pool.started, timeouts: this.pool.timeouts, running: this.pool.running }
  }

  /** Handles `/`, `/app/...` and `/api/...`; false for any other path. */
  handle(req: IncomingMessage, res: ServerResponse, url: URL): boolean {
    const file = this.files.get(url.pathname)
    if (file !== undefined) {
      // The page asks for its first rows right after it loads: a query process starts now, not then.
      if (url.pathname === '/') this.pool.warm()
      this.file(res, file)
      return true
    }
    if (!url.pathname.startsWith('/api/')) return false
    if (req.method === 'HEAD' && url.pathname === '/api/live') {
      // The headers of a stream, not a stream that would never end.
      res.writeHead(200, { 'content-type': 'text/event-stream; charset=utf-8', 'cache-control': 'no-store' })
      res.end()
      return true
    }
    this.api(req, res, url).catch((err: Error) => {
      if (res.headersSent) {
        res.destroy()
        return
      }
      if (err instanceof BadRequest || err instanceof QueryRefused)
        json(res, 400, { error: err.message, refused: err instanceof QueryRefused })
      else if (err instanceof QueryTimeout) json(res, 400, { error: err.message, timeout: true })
      else json(res, 500, { error: err.message })
    })
    return true
  }

  private file(res: ServerResponse, f: { path: string; type: string }): void {
    let body: Buffer
    try {
      body = readFileSync(f.path)
    } catch (err) {
      json(res, 500, {
        error: `console file missing (${(err as Error).message}): was it built (npm run build)?`,
      })
      return
    }
    res.writeHead(200, { 'content-type': f.type, 'cache-control': 'no-cache' })
    res.end(body)
  }

  private run<T>(body: Parameters<QueryPool['run']>[0], signal?: AbortSignal): Promise<T> {
    return this.pool.run<T>(body, this.opts.timeLimitMs, signal)
  }

  private async api(req: IncomingMessage, res: ServerResponse, url: URL): Promise<void> {
    const q = url.searchParams
    const now = Date.now()
    // A client that gives up (a closed tab, a newer search, curl stopped) stops its query too.
    const gone = new AbortController()
    res.on('close', () => {
      if (!res.writableFinished) gone.abort()
    })
    const run = <T>(body: Parameters<QueryPool['run']>[0]) => this.run<T>(body, gone.signal)
    switch (url.pathname) {
      case '/api/rows': {
        const filter = filterOf(q, now)
        const limit = intParam(q, 'limit', 200, 1, kMaxPage)
        const before = intParam(q, 'before', Number.MAX_SAFE_INTEGER, 1, Number.MAX_SAFE_INTEGER)
        const r = await run<object>({ op: 'rows', filter, limit, before })
        return json(res, 200, { ...r, filter, now })
      }
      case '/api/histogram': {
        const filter = filterOf(q, now)
        const from = filter.sinceMs ?? now - 3_600_000
        const to = filter.untilMs ?? now
        if (to <= from) throw new BadRequest('until must be after since')
        const buckets = intParam(q, 'buckets', 60, 1, kMaxBuckets)
        return json(res, 200, await run({ op: 'histogram', filter, from, to, buckets }))
      }
      case '/api/live':
        return this.follow(req, res, q)
      case '/api/message': {
        const id = intParam(q, 'id', 0, 1, Number.MAX_SAFE_INTEGER)
        const row = await run({ op: 'message', rowId: id })
        return row === null ? json(res, 404, { error: `no message ${id}` }) : json(res, 200, row)
      }
      case '/api/senders':
        return json(res, 200, { now, senders: await run({ op: 'senders', now }) })
      case '/api/health': {
        // The journal's own figures (full-text lag, WAL size) are in its stats table; the rest is live.
        let table: Record<string, number> = {}
        try {
          table = await run({ op: 'stats' })
        } catch {
          // the journal cannot be read now: the live figures alone
        }
        return json(res, 200, {
          at: now,
          problems: this.source.problems(),
          stats: { ...table, ...this.source.stats() },
        })
      }
      case '/api/sql':
        return this.sql(res, q, gone.signal)
      default:
        return json(res, 404, { error: `no API ${url.pathname}` })
    }
  }

  private async sql(res: ServerResponse, q: URLSearchParams, signal: AbortSignal): Promise<void> {
    const text = q.get('sql') ?? ''
    const maxRows = intParam(q, 'limit', this.opts.maxRows, 1, this.opts.maxRows)
    const r = await this.run<{ columns: string[]; rows: unknown[][]; truncated: boolean; ms: number }>(
      { op: 'sql', sql: text, maxRows, maxBytes: kSqlMaxBytes },
      signal,
    )
    const limits = { maxRows, timeLimitMs: this.opts.timeLimitMs }
    const attachment = q.get('download') === '1'
    if (q.get('format') === 'csv') {
      const lines = [r.columns.map(csvCell).join(','), ...r.rows.map((row) => row.map(csvCell).join(','))]
      res.writeHead(200, {
        'content-type': 'text/csv; charset=utf-8',
        'cache-control': 'no-store',
        ...(attachment ? { 'content-disposition': 'attachment; filename="spillway-query.csv"' } : {}),
      })
      res.end(`${lines.join('\r\n')}\r\n`)
      return
    }
    if (attachment) res.setHeader('content-disposition', 'attachment; filename="spillway-query.json"')
    json(res, 200, { ...r, limits })
  }

  /**
   * Server-sent events: rows matching the filter as they are journaled, in `rows` events whose id is
   * where the next read starts (EventSource sends it back as Last-Event-ID when it reconnects). Without
   * `after`, the stream starts at the newest row, found before the first byte is sent: every row journaled
   * after the client has read the stream's first line comes.
   */
  private async follow(req: IncomingMessage, res: ServerResponse, q: URLSearchParams): Promise<void> {
    if (this.live.size >= kMaxLiveClients) {
      json(res, 503, { error: `${kMaxLiveClients} live tails are open already` })
      return
    }
    const filter = filterOf(q, Date.now())
    const resume = Number(req.headers['last-event-id'])
    let after =
      Number.isInteger(resume) && resume > 0 ? resume : intParam(q, 'after', -1, 0, Number.MAX_SAFE_INTEGER)
    let seen = this.source.journaled()
    if (after < 0)
      after = (await this.run<{ upTo: number }>({ op: 'live', filter, after: -1, limit: 1 })).upTo
    res.writeHead(200, {
      'content-type': 'text/event-stream; charset=utf-8',
      'cache-control': 'no-store',
      'x-accel-buffering': 'no',
    })
    res.write('retry: 2000\n\n')
    this.live.add(res)
    let timer: NodeJS.Timeout | null = null
    let lastWrite = Date.now()
    res.on('close', () => {
      this.live.delete(res)
      if (timer !== null) clearTimeout(timer)
      timer = null
    })
    const poll = async () => {
      timer = null
      if (!this.live.has(res)) return
      const journaled = this.source.journaled()
      try {
        if (journaled !== seen) {
          const r = await this.run<{ rows: unknown[]; upTo: number }>({
            op: 'live',
            filter,
            after,
            limit: 500,
          })
          seen = journaled
          after = r.upTo
          if (r.rows.length > 0) {
            res.write(`id: ${after}\nevent: rows\ndata: ${JSON.stringify(r.rows)}\n\n`)
            lastWrite = Date.now()
          }
        }
        if (Date.now() - lastWrite > kPingMs) {
          res.write(': ping\n\n')
          lastWrite = Date.now()
        }
      } catch (err) {
        res.write(`event: problem\ndata: ${JSON.stringify({ error: (err as Error).message })}\n\n`)
      }
      if (this.live.has(res)) timer = setTimeout(() => void poll(), kLivePollMs)
    }
    timer = setTimeout(() => void poll(), kLivePollMs)
  }

  close(): void {
    for (const res of this.live) res.destroy()
    this.live.clear()
    this.pool.close()
  }
}
