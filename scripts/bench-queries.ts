// The README's ten queries on a large journal, the full-text indexer's catch-up rate, and the web
// console's views through a real server.
// Builds a journal of N synthetic rows (default 10 M) with the server's own schema, spread over 7 days
// of received_at, 200 hosts, 40 apps, a realistic severity mix, with the sender and volume tallies the
// journal worker keeps; indexes it with the server's own FullTextIndexer (the same steps the worker runs
// in idle time); then times each query (median of 5). Then it starts `spillway serve` on that journal
// and times the console's API over HTTP, as the page asks it (median of 5, warm): the first screen
// (the last hour's newest 200 rows and its histogram), filtered searches, the 24-hour histogram; and
// how long the socket thread takes to answer /healthz while the console runs a slow query.
//
//   npm run build && node dist/scripts/bench-queries.js [--rows 10000000] [--keep FILE] [--reuse]
//
// --reuse: a --keep FILE built by an earlier run is used as it is (only the console part runs).

import { spawn } from 'node:child_process'
import { mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { parseArgs } from 'node:util'
import Database from 'better-sqlite3'
import { FullTextIndexer } from '../src/journal/fts.js'
import { kFullTextSchema, kSchema } from '../src/journal/schema.js'
import { SenderTally } from '../src/journal/senders.js'
import { VolumeTally } from '../src/journal/volume.js'
import { freePort, round } from './bench-util.js'

const kMain = new URL('../src/cli/main.js', import.meta.url).pathname

const { values } = parseArgs({
  options: {
    rows: { type: 'string', default: '10000000' },
    keep: { type: 'string' },
    reuse: { type: 'boolean', default: false },
  },
})
const N = Number(values.rows)
if (values.reuse && values.keep === undefined) throw new Error('--reuse needs --keep FILE')
const dir = values.keep === undefined ? mkdtempSync(join(tmpdir(), 'spillway-queries-')) : null
const path = values.keep ?? join(dir!, 'journal.db')
try {
  if (!values.reuse) build()
  await consoleBench()
} finally {
  if (dir !== null) rmSync(dir, { recursive: true, force: true })
}

function build(): void {
  const db = new Database(path)
  db.pragma('journal_mode = WAL')
  db.pragma('synchronous = NORMAL')
  db.exec(kSchema)
  db.exec(kFullTextSchema)
  // What the journal worker keeps beside the rows: the senders view's tally, the histograms' volume.
  const senders = new SenderTally(db)
  const volume = new VolumeTally(db)

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
      const sev = severity()
      const parseError = rnd(10_000) === 0 ? 1 : 0
      let text = texts[rnd(texts.length)]!.replace('%d', String(rnd(65536))).replace('%d', String(rnd(1000)))
      text = text.replace('%d', String(rnd(100)))
      insert.run(
        at,
        at - rnd(2000),
        1 + rnd(23),
        sev,
        host,
        apps[rnd(apps.length)],
        String(rnd(30000)),
        parseError ? `<999>${text}` : text,
        `10.1.${rnd(255)}.${rnd(255)}:514`,
        parseError,
      )
      senders.add(host, `10.1.${i % 255}.1:514`, at, sev)
      volume.add(at, sev)
    }
    senders.flush()
    volume.flush()
  })
  // Every row went through the tallies, as if the worker had journaled the week: the volume table
  // counts from the first of them (a journal from before the table would count from its creation).
  db.prepare('UPDATE volume_state SET since = ? WHERE id = 1').run(now - span)
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
}

/** The console's views, over HTTP from a real server on the journal, as the page asks for them. */
async function consoleBench(): Promise<void> {
  const ro = new Database(path, { readonly: true })
  const end = (ro.prepare('SELECT max(received_at) AS t FROM messages').get() as { t: number }).t
  const rows = (ro.prepare('SELECT max(id) AS n FROM messages').get() as { n: number }).n
  ro.close()
  const port = await freePort()
  const cwd = mkdtempSync(join(tmpdir(), 'spillway-console-'))
  writeFileSync(
    join(cwd, 'config.json'),
    JSON.stringify({
      listeners: [{ transport: 'tcp', host: '127.0.0.1', port: 0 }],
      metrics: { host: '127.0.0.1', port },
      journal: { path },
      spool: { dir: join(cwd, 'spool') },
      console: { timeLimitMs: 60_000 },
    }),
  )
  const proc = spawn(process.execPath, [kMain, 'serve', '--config', 'config.json'], {
    cwd,
    stdio: ['ignore', 'ignore', 'pipe'],
  })
  let err = ''
  await new Promise<void>((resolve, reject) => {
    proc.stderr!.on('data', (d: Buffer) => {
      err += d
      if (/ console url=/.test(err)) resolve()
    })
    proc.on('exit', (code) => reject(new Error(`the server exited with ${code}:\n${err}`)))
  })
  try {
    await measure(`http://127.0.0.1:${port}`, end, rows)
  } finally {
    proc.kill('SIGTERM')
    await new Promise((r) => proc.on('exit', r))
    rmSync(cwd, { recursive: true, force: true })
  }
}

/** The console's API timed, and the socket thread watched, against the server at `base`. */
async function measure(base: string, end: number, rows: number): Promise<void> {
  const get = async (path: string): Promise<unknown> => {
    const res = await fetch(`${base}${path}`)
    const body = await res.json()
    if (!res.ok) throw new Error(`${path}: ${JSON.stringify(body)}`)
    return body
  }
  const iso = (ms: number) => new Date(ms).toISOString()
  // The journal's last hour and day (it was filled up to `end`), as the page's range selector asks.
  const hour = `since=${iso(end - 3_600_000)}&until=${iso(end + 1)}`
  const day = `since=${iso(end - 86_400_000)}&until=${iso(end + 1)}`
  const week = `since=${iso(end - 7 * 86_400_000)}&until=${iso(end + 1)}`
  const firstScreen = () =>
    Promise.all([get(`/api/rows?${hour}&limit=200`), get(`/api/histogram?${hour}&buckets=60`)])
  // Cold: the page's GET / starts a query process, and the page then asks for its first screen.
  const t0 = performance.now()
  await fetch(`${base}/`)
  await firstScreen()
  out({
    bench: 'console',
    name: 'first screen, cold (a query process starts)',
    ms: round(performance.now() - t0),
  })
  const cases: [string, () => Promise<unknown>][] = [
    ['first screen: last hour, newest 200 rows and its histogram', firstScreen],
    ['rows: last hour, newest 200', () => get(`/api/rows?${hour}&limit=200`)],
    [
      'search: 24 h, host web7, warning and worse, text "timeout"',
      () => get(`/api/rows?${day}&host=web7&severity=warning&grep=timeout&limit=200`),
    ],
    ['search: 24 h, app sshd, err and worse', () => get(`/api/rows?${day}&app=sshd&severity=err&limit=200`)],
    [
      'search: 24 h, text "refused by db7 "',
      () => get(`/api/rows?${day}&grep=${encodeURIComponent('refused by db7 ')}&limit=200`),
    ],
    ['search: 24 h, text "timeout"', () => get(`/api/rows?${day}&grep=timeout&limit=200`)],
    ['search: 24 h, crit and worse', () => get(`/api/rows?${day}&severity=crit&limit=200`)],
    ['search: 7 d, text that is nowhere', () => get(`/api/rows?${week}&grep=nowhere-at-all&limit=200`)],
    ['histogram: 24 h', () => get(`/api/histogram?${day}&buckets=60`)],
    ['histogram: 24 h, err and worse', () => get(`/api/histogram?${day}&severity=err&buckets=60`)],
    ['histogram: 7 d', () => get(`/api/histogram?${week}&buckets=60`)],
    ['histogram: 24 h, host web7', () => get(`/api/histogram?${day}&host=web7&buckets=60`)],
    [
      'histogram: 24 h, text "refused by db7 "',
      () => get(`/api/histogram?${day}&grep=${encodeURIComponent('refused by db7 ')}&buckets=60`),
    ],
    ['histogram: 24 h, text "timeout"', () => get(`/api/histogram?${day}&grep=timeout&buckets=60`)],
    ['senders', () => get('/api/senders')],
    ['message', () => get(`/api/message?id=${Math.ceil(rows / 2)}`)],
  ]
  for (const [name, run] of cases) {
    const times: number[] = []
    for (let r = 0; r < 5; r++) {
      const q0 = performance.now()
      await run()
      times.push(performance.now() - q0)
    }
    times.sort((a, b) => a - b)
    out({ bench: 'console', name, medianMs: round(times[2]!), maxMs: round(times[4]!) })
  }
  // The socket thread answers /healthz; a query in the query process must not make it slower.
  const healthz = async (n: number): Promise<number[]> => {
    const ms: number[] = []
    for (let i = 0; i < n; i++) {
      const q0 = performance.now()
      await (await fetch(`${base}/healthz`)).text()
      ms.push(performance.now() - q0)
      await new Promise((r) => setTimeout(r, 20))
    }
    return ms.sort((a, b) => a - b)
  }
  const p99 = (xs: number[]) => xs[Math.floor(xs.length * 0.99)]!
  const forever = 'WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) SELECT count(*) FROM c'
  // Three conditions, in three rounds so the machine's other load falls on each alike: nothing else
  // running; a console query that runs until stopped; and, the control, any other process keeping a
  // core busy at the same priority (nice 10), to tell the machine's CPU contention from the console.
  const phases: Record<string, () => Promise<number[]>> = {
    idle: () => healthz(200),
    slowQuery: async () => {
      const slow = new AbortController()
      const running = fetch(`${base}/api/sql?sql=${encodeURIComponent(forever)}`, {
        signal: slow.signal,
      }).catch(() => {})
      await new Promise((r) => setTimeout(r, 200)) // the statement is running
      const ms = await healthz(200)
      slow.abort()
      await running
      return ms
    },
    otherBusyProcess: async () => {
      const burner = spawn('nice', ['-n', '10', process.execPath, '-e', 'for (;;) {}'], { stdio: 'ignore' })
      await new Promise((r) => setTimeout(r, 200))
      const ms = await healthz(200)
      burner.kill('SIGKILL')
      return ms
    },
  }
  const p99s: Record<string, number[]> = { idle: [], slowQuery: [], otherBusyProcess: [] }
  // The server's own view of its socket thread: delay less the waits for a CPU, since it started.
  const loop = async () => {
    const s = ((await (await fetch(`${base}/status`)).json()) as { stats: Record<string, number> }).stats
    return { ownP99Ms: s.event_loop_delay_own_p99_ms, ownMaxMs: s.event_loop_delay_own_max_ms }
  }
  const before = await loop()
  for (let round = 0; round < 3; round++)
    for (const [name, run] of Object.entries(phases)) p99s[name]!.push(p99(await run()))
  out({
    bench: 'console-healthz',
    samplesPerRound: 200,
    rounds: 3,
    ...Object.fromEntries(Object.entries(p99s).map(([k, v]) => [`${k}P99Ms`, v.map((x) => round(x))])),
    socketThreadBefore: before,
    socketThreadAfter: await loop(),
  })
}

function out(o: Record<string, unknown>): void {
  process.stdout.write(`${JSON.stringify({ ...o, node: process.version })}\n`)
}
