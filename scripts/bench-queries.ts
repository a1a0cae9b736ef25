// The README's ten queries on a large journal, and the full-text indexer's catch-up rate.
// Builds a journal of N synthetic rows (default 10 M) with the server's own schema, spread over 7 days
// of received_at, 200 hosts, 40 apps, a realistic severity mix; indexes it with the server's own
// FullTextIndexer (the same steps the worker runs in idle time); then times each query (median of 5).
//
//   npm run build && node dist/scripts/bench-queries.js [--rows 10000000] [--keep FILE]

import { mkdtempSync, rmSync, statSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { parseArgs } from 'node:util'
import Database from 'better-sqlite3'
import { FullTextIndexer } from '../src/journal/fts.js'
import { kFullTextSchema, kSchema } from '../src/journal/schema.js'

const { values } = parseArgs({
  options: { rows: { type: 'string', default: '10000000' }, keep: { type: 'string' } },
})
const N = Number(values.rows)
const dir = mkdtempSync(join(tmpdir(), 'spillway-queries-'))
const path = values.keep ?? join(dir, 'journal.db')
const db = new Database(path)
db.pragma('journal_mode = WAL')
db.pragma('synchronous = NORMAL')
db.exec(kSchema)
db.exec(kFullTextSchema)

const apps = [
  'sshd',
  'nginx',
  'kernel',
  'cron',
  'postfix/smtpd',
  'systemd',
  'dockerd',
  'haproxy',
  'named',
  'ntpd',
]
while (apps.length < 40) apps.push(`app${apps.length}`)
const texts = [
  'GET /api/v1/items/%d HTTP/1.1 200 %d',
  'Accepted publickey for deploy from 10.0.%d.%d port 5%d ssh2',
  'upstream timeout while reading response header from upstream, request %d',
  'connection refused by db%d after %d ms',
  'session opened for user root by (uid=%d)',
  'eth0: link up, %d Mbps full duplex, flow control %d',
  'CRON[%d]: (root) CMD (run-parts /etc/cron.hourly %d)',
  'disk /dev/sda%d usage at %d percent',
]
let seed = 42
/** mulberry32: a small seeded generator whose every bit is usable (an LCG's low bits cycle). */
function rnd(n: number): number {
  seed = (seed + 0x6d2b79f5) | 0
  let x = Math.imul(seed ^ (seed >>> 15), 1 | seed)
  x = (x + Math.imul(x ^ (x >>> 7), 61 | x)) ^ x
  return Math.floor((((x ^ (x >>> 14)) >>> 0) / 4294967296) * n)
}
function severity(): number {
  const r = rnd(1000)
  return r < 5 ? 2 : r < 40 ? 3 : r < 120 ? 4 : r < 300 ? 5 : r < 950 ? 6 : 7
}

const now = Date.now()
const span = 7 * 86_400_000
const insert = db.prepare(
  `INSERT INTO messages (received_at, ts, facility, severity, host, app, procid, msgid, sd, msg, peer, transport,
     orig_len, parse_error) VALUES (?, ?, ?, ?, ?, ?, ?, NULL, NULL, ?, ?, 'tcp', NULL, ?)`,
)
const fill = db.transaction((from: number, count: number) => {
  for (let i = from; i < from + count; i++) {
    const at = now - span + Math.floor((i / N) * span)
    const host = `web${rnd(200)}`
    const parseError = rnd(10_000) === 0 ? 1 : 0
    let text = texts[rnd(texts.length)]!.replace('%d', String(rnd(65536))).replace('%d', String(rnd(1000)))
    text = text.replace('%d', String(rnd(100)))
    insert.run(
      at,
      at - rnd(2000),
      1 + rnd(23),
      severity(),
      host,
      apps[rnd(apps.length)],
      String(rnd(30000)),
      parseError ? `<999>${text}` : text,
      `10.1.${rnd(255)}.${rnd(255)}:514`,
      parseError,
    )
  }
})
let t0 = performance.now()
for (let i = 0; i < N; i += 10_000) fill(i, Math.min(10_000, N - i))
const fillSecs = (performance.now() - t0) / 1000
out({ bench: 'fill', rows: N, secs: round(fillSecs), rowsPerSec: Math.round(N / fillSecs) })

const indexer = new FullTextIndexer(db)
t0 = performance.now()
let steps = 0
while (indexer.step()) steps++
const ftsSecs = (performance.now() - t0) / 1000
out({ bench: 'fts-catch-up', rows: N, steps, secs: round(ftsSecs), rowsPerSec: Math.round(N / ftsSecs) })
db.pragma('wal_checkpoint(TRUNCATE)')
db.exec('ANALYZE')
out({ bench: 'size', rows: N, megabytes: Math.round(statSync(path).size / 1048576) })

// The README's queries, with "now" set to the end of the synthetic week.
const t = Math.floor(now / 1000)
const at = (iso: number) => iso * 1000
const queries: [string, string][] = [
  ['latest 20', 'SELECT received, host, app, severity, msg FROM log ORDER BY id DESC LIMIT 20'],
  [
    "host's errors, last hour",
    `SELECT received, app, severity, msg FROM log WHERE host = 'web1' AND received_at > ${at(t - 3600)} AND level <= 3 ORDER BY id DESC`,
  ],
  [
    "app's messages, last day",
    `SELECT received, host, msg FROM log WHERE app = 'sshd' AND received_at > ${at(t - 86400)} ORDER BY id DESC LIMIT 100`,
  ],
  [
    'full-text',
    `SELECT received, host, app, msg FROM log WHERE id IN (SELECT rowid FROM messages_fts WHERE msg LIKE '%timeout%' ORDER BY rowid DESC LIMIT 50)`,
  ],
  [
    'phrase + host',
    `SELECT log.received, log.app, log.msg FROM messages_fts JOIN log ON log.id = messages_fts.rowid WHERE messages_fts.msg LIKE '%connection refused%' AND host = 'web7' ORDER BY messages_fts.rowid DESC LIMIT 50`,
  ],
  [
    'severity counts, last hour',
    `SELECT severity, count(*) FROM log WHERE received_at > ${at(t - 3600)} GROUP BY level ORDER BY level`,
  ],
  [
    'busiest hosts, last hour',
    `SELECT host, count(*) AS n FROM log WHERE received_at > ${at(t - 3600)} GROUP BY host ORDER BY n DESC LIMIT 10`,
  ],
  [
    'apps with errors, last day',
    `SELECT app, count(*) AS n FROM log WHERE received_at > ${at(t - 86400)} AND level <= 3 GROUP BY app ORDER BY n DESC LIMIT 10`,
  ],
  [
    'five-minute window',
    `SELECT received, host, app, msg FROM log WHERE received_at BETWEEN ${at(t - 86400)} AND ${at(t - 86400 + 300)}`,
  ],
  ['parse errors', 'SELECT received, peer, msg FROM log WHERE parse_error = 1 ORDER BY id DESC LIMIT 20'],
]
const reader = new Database(path, { readonly: true })
for (const [name, sql] of queries) {
  const times: number[] = []
  let rows = 0
  for (let r = 0; r < 5; r++) {
    const q0 = performance.now()
    rows = reader.prepare(sql).all().length
    times.push(performance.now() - q0)
  }
  times.sort((a, b) => a - b)
  out({ bench: 'query', name, rows, medianMs: round(times[2]!), maxMs: round(times[4]!) })
}
reader.close()
db.close()
if (values.keep === undefined) rmSync(dir, { recursive: true, force: true })

function out(o: Record<string, unknown>): void {
  process.stdout.write(`${JSON.stringify({ ...o, node: process.version })}\n`)
}
function round(x: number): number {
  return Math.round(x * 1000) / 1000
}
