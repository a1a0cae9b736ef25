// The console's query process: a child process of the server with its own read-only connection to the
// journal, answering one request at a time over IPC. A process, not a worker thread, because a query is
// stopped at its time limit by killing it: better-sqlite3 exposes neither sqlite3_interrupt nor a
// progress handler (its SQLite is built without one), and Worker.terminate() waits until the running
// statement returns to JavaScript (measured: a 7 s statement ended 7 s after terminate()). SIGKILL ends
// it at once, and the server starts another process for the next query (console/queries.ts).
//
// It never writes: the connection is opened read-only, with query_only on, and SQL from the query box
// passes console/sql-guard.ts first. It runs at a lower priority than the server (nice 10), so a heavy
// query takes the CPU the socket thread leaves.

import { setPriority } from 'node:os'
import { openReadOnly } from '../journal/readonly.js'
import { type Filter, type Row, Search } from '../journal/search.js'
import { checkPrepared, checkSql, Refused } from './sql-guard.js'

export type Request =
  | { id: number; op: 'rows'; filter: Filter; limit: number; before?: number }
  | { id: number; op: 'live'; filter: Filter; after: number; limit: number }
  | { id: number; op: 'histogram'; filter: Filter; from: number; to: number; buckets: number }
  | { id: number; op: 'message'; rowId: number }
  | { id: number; op: 'senders'; now: number }
  | { id: number; op: 'stats' }
  | { id: number; op: 'sql'; sql: string; maxRows: number; maxBytes: number }

export type Response =
  | { id: number; ok: true; value: unknown }
  | { id: number; ok: false; error: string; refused: boolean }

/** Longest message text in a list of rows; the whole of it is in the message's own view. */
export const kListMsgChars = 2000

const journalPath = process.argv[2]
if (journalPath === undefined || process.send === undefined)
  throw new Error('console/query-process.ts runs as a child process of the server, given the journal path')

try {
  setPriority(10)
} catch {
  // not permitted: the same priority as the server
}

const db = openReadOnly(journalPath)
db.pragma('query_only = ON')
// A statement that builds a huge value (a blob of a gigabyte) fails instead of taking the machine's RAM.
db.pragma('hard_heap_limit = 536870912')
const search = new Search(db)

function listRow(r: Row): Row & { msg_chars?: number } {
  if (r.msg.length <= kListMsgChars) return r
  return { ...r, msg: r.msg.slice(0, kListMsgChars), msg_chars: r.msg.length }
}

interface SenderOut {
  sender: string
  peer: string
  first_seen: number
  last_seen: number
  messages: number
  worst_severity_hour: number
  /** Messages of the last 15 minutes, from the journal itself. */
  recent: number
  /** Distinct addresses that sent under this name in the last hour. */
  addresses: string[]
}

/** The address of an `address:port` peer ("[::1]:514" or "192.0.2.1:514"). */
function address(peer: string): string {
  const i = peer.lastIndexOf(':')
  return i <= 0 ? peer : peer.slice(0, i).replace(/^\[(.*)\]$/, '$1')
}

function senders(now: number): SenderOut[] {
  const rows = db.prepare('SELECT * FROM sender_stats ORDER BY last_seen DESC, sender').all() as Omit<
    SenderOut,
    'recent' | 'addresses'
  >[]
  // A sender is the host name its messages claim: any peer can claim any name. The journal's own rows of
  // the last hour say which addresses did, so the page can show a name claimed from several.
  const recent = new Map<string, number>()
  for (const r of db
    .prepare(
      'SELECT coalesce(host, peer) AS s, count(*) AS n FROM messages WHERE received_at >= ? GROUP BY s',
    )
    .all(now - 15 * 60_000) as { s: string; n: number }[])
    recent.set(r.s, r.n)
  const addrs = new Map<string, Set<string>>()
  for (const r of db
    .prepare('SELECT DISTINCT host, peer FROM messages WHERE received_at >= ? AND host IS NOT NULL')
    .all(now - 3_600_000) as { host: string; peer: string }[]) {
    const set = addrs.get(r.host) ?? new Set<string>()
    addrs.set(r.host, set)
    set.add(address(r.peer))
  }
  return rows.map((r) => {
    let n = recent.get(r.sender) ?? 0
    // a sender without a host name is keyed by its address: its rows have peer address:port
    if (n === 0) for (const [k, v] of recent) if (address(k) === r.sender) n += v
    return { ...r, recent: n, addresses: [...(addrs.get(r.sender) ?? [])].sort() }
  })
}

/** A cell of a result: a blob as base64, so the result is JSON. */
function cell(v: unknown): unknown {
  return v instanceof Uint8Array ? { $base64: Buffer.from(v).toString('base64') } : v
}

function sql(text: string, maxRows: number, maxBytes: number) {
  checkSql(text)
  const stmt = db.prepare(text)
  checkPrepared(stmt)
  const t0 = performance.now()
  const columns = stmt.columns().map((c) => c.name)
  const rows: unknown[][] = []
  let bytes = 0
  let truncated = false
  for (const r of stmt.raw(true).iterate() as IterableIterator<unknown[]>) {
    if (rows.length >= maxRows || bytes > maxBytes) {
      truncated = true
      break // leaving the loop ends the statement (iterator.return)
    }
    const out = r.map(cell)
    bytes += JSON.stringify(out).length
    rows.push(out)
  }
  return { columns, rows, truncated, ms: Math.round((performance.now() - t0) * 10) / 10 }
}

function handle(m: Request): unknown {
  switch (m.op) {
    case 'rows': {
      // The journal's newest id in the same snapshot as the rows: a live tail from there misses nothing
      // and repeats nothing, whatever the filter matched.
      const { rows, newestId } = db.transaction(() => ({
        rows: search.newest(m.filter, m.limit, m.before),
        newestId: search.newestId(),
      }))()
      return { rows: rows.map(listRow), more: rows.length === m.limit, newestId }
    }
    case 'live': {
      // Up to the newest id now: rows journaled meanwhile come with the next poll, and a filter that
      // matches nothing does not rescan what it has seen.
      const upTo = search.newestId()
      if (m.after < 0) return { rows: [], upTo }
      const rows = search.after(m.filter, m.after, m.limit).filter((r) => r.id <= upTo)
      const last = rows.length === m.limit ? rows.at(-1)!.id : upTo
      return { rows: rows.map(listRow), upTo: Math.max(last, m.after) }
    }
    case 'histogram':
      return search.histogram(m.filter, m.from, m.to, m.buckets)
    case 'message':
      return db.prepare('SELECT * FROM messages WHERE id = ?').get(m.rowId) ?? null
    case 'senders':
      return senders(m.now)
    case 'stats':
      return Object.fromEntries(
        (db.prepare('SELECT name, value FROM stats').all() as { name: string; value: number }[]).map((r) => [
          r.name,
          r.value,
        ]),
      )
    case 'sql':
      return sql(m.sql, m.maxRows, m.maxBytes)
  }
}

process.on('message', (m: Request) => {
  let res: Response
  try {
    res = { id: m.id, ok: true, value: handle(m) }
  } catch (err) {
    const refused = err instanceof Refused
    res = { id: m.id, ok: false, error: (err as Error).message, refused }
  }
  process.send!(res)
})
process.send({ ready: true })
// The server went away (stopped, or killed): so does this process.
process.on('disconnect', () => process.exit(0))
