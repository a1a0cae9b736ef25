// End-to-end ingest benchmark: starts a fresh server per run (own temp dir, free ports), sends N messages
// over C TCP connections (and one UDP run), and reports per run one JSON line:
//   accept  messages/s the server read (first connect until it had read and closed every connection)
//   journal rows/s until the journal held all N, and the seconds that took from the first connect
//   cpu     server CPU seconds (user+system), rss peak RSS, p99 the socket thread's event-loop delay p99,
//           own p99 the same less its waits for a CPU (src/metrics/loop.ts)
// then a table of medians. Run:  npm run bench -- [--messages 1000000] [--conns 1,10,100] [--runs 3]
//   [--threshold BYTES] [--octet] [--udp N] [--config '{"journal":{"fullText":false}}']
// With --same-server, each connection count runs `runs` times against one server, and the RSS after
// each run (the journal caught up) shows whether memory grows from run to run.

import { type ChildProcess, spawn } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { parseArgs } from 'node:util'
import Database from 'better-sqlite3'
import { cpuSeconds, median, round } from './bench-util.js'
import { tcpLoad, udpLoad } from './loadgen.js'

const { values } = parseArgs({
  options: {
    messages: { type: 'string', default: '1000000' },
    conns: { type: 'string', default: '1,10,100' },
    runs: { type: 'string', default: '3' },
    size: { type: 'string', default: '200' },
    threshold: { type: 'string' },
    /** Extra server config, merged over the listeners, e.g. '{"journal":{"fullText":false}}'. */
    config: { type: 'string', default: '{}' },
    octet: { type: 'boolean', default: false },
    udp: { type: 'string', default: '200000' },
    /** One server for every run of each connection count: memory growth across runs in one process. */
    'same-server': { type: 'boolean', default: false },
  },
})
const N = Number(values.messages)
const runs = Number(values.runs)
const size = Number(values.size)
const kMain = new URL('../src/cli/main.js', import.meta.url).pathname

interface Result {
  bench: string
  transport: string
  conns: number
  msgs: number
  acceptSecs: number
  acceptRate: number
  journalSecs: number
  journalRate: number
  journaled: number
  cpuSecs: number
  peakRssMB: number
  p99ms: number
  /** The same less the socket thread's waits for a CPU (src/metrics/loop.ts). */
  ownP99ms: number
}

async function startServer(
  dir: string,
): Promise<{ proc: ChildProcess; tcp: number; udp: number; err: () => string }> {
  const config: Record<string, unknown> = {
    metrics: { port: 0 }, // no HTTP listener (console, /metrics): nothing to collide on
    listeners: [
      { transport: 'tcp', host: '127.0.0.1', port: 0 },
      { transport: 'udp', host: '127.0.0.1', port: 0 },
    ],
    // Every connection comes from 127.0.0.1 here: --conns 1000 must not meet the per-source cap.
    limits: { maxConnectionsPerSource: 1_000_000 },
  }
  if (values.threshold !== undefined) config.spool = { thresholdBytes: Number(values.threshold) }
  Object.assign(config, JSON.parse(values.config))
  writeFileSync(join(dir, 'config.json'), JSON.stringify(config))
  const proc = spawn(process.execPath, [kMain, 'serve', '--config', 'config.json'], {
    cwd: dir,
    stdio: ['ignore', 'ignore', 'pipe'],
  })
  let err = ''
  const ports = await new Promise<{ tcp: number; udp: number }>((resolve, reject) => {
    proc.stderr!.on('data', (d: Buffer) => {
      err += d.toString()
      const tcp = /transport=tcp host=\S+ port=(\d+)/.exec(err)
      const udp = /transport=udp host=\S+ port=(\d+)/.exec(err)
      if (tcp && udp) resolve({ tcp: Number(tcp[1]), udp: Number(udp[1]) })
    })
    proc.on('exit', (code) => reject(new Error(`server exited ${code}: ${err}`)))
  })
  return { proc, ...ports, err: () => err }
}

async function waitRows(
  dbPath: string,
  n: number,
  t0: bigint,
  timeoutS: number,
): Promise<{ secs: number; rows: number }> {
  let db: Database.Database | null = null
  const deadline = Date.now() + timeoutS * 1000
  let rows = 0
  let lastChange = Date.now()
  for (;;) {
    try {
      db ??= new Database(dbPath, { readonly: true, fileMustExist: true })
      const r = (db.prepare('SELECT max(id) AS n FROM messages').get() as { n: number | null }).n ?? 0
      if (r !== rows) lastChange = Date.now()
      rows = r
    } catch {
      // not created yet
    }
    if (rows >= n || Date.now() > deadline || (n > 0 && Date.now() - lastChange > 5000 && rows > 0)) {
      db?.close()
      return { secs: Number(process.hrtime.bigint() - t0) / 1e9, rows }
    }
    await new Promise((r) => setTimeout(r, 20))
  }
}

async function one(transport: 'tcp' | 'udp', conns: number, msgs: number): Promise<Result> {
  const dir = mkdtempSync(join(tmpdir(), 'spillway-bench-'))
  try {
    const srv = await startServer(dir)
    const t0 = process.hrtime.bigint()
    const load =
      transport === 'tcp'
        ? await tcpLoad({ port: srv.tcp, messages: msgs, conns, size, octet: values.octet })
        : await udpLoad({ port: srv.udp, messages: msgs, conns: 1, size })
    const j = await waitRows(join(dir, 'journal.db'), load.sent, t0, 600)
    const cpu = cpuSeconds(srv.proc.pid!)
    const exited = new Promise((r) => srv.proc.on('exit', r))
    srv.proc.kill('SIGTERM')
    await exited
    const stopped = /peakRssMB=(\d+) loopDelayP99ms=([\d.]+) loopDelayOwnP99ms=([\d.]+)/.exec(srv.err())
    return {
      bench: 'ingest',
      transport: values.octet && transport === 'tcp' ? 'tcp-octet' : transport,
      conns,
      msgs: load.sent,
      acceptSecs: round(load.seconds),
      acceptRate: Math.round(load.sent / load.seconds),
      journalSecs: round(j.secs),
      journalRate: Math.round(j.rows / j.secs),
      journaled: j.rows,
      cpuSecs: round(cpu),
      peakRssMB: Number(stopped?.[1] ?? 0),
      p99ms: Number(stopped?.[2] ?? 0),
      ownP99ms: Number(stopped?.[3] ?? 0),
    }
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
}

/** RSS now and at its peak, in MB. */
function rssMB(pid: number): { now: number; peak: number } {
  const st = readFileSync(`/proc/${pid}/status`, 'utf8')
  const kb = (k: string) => Number(new RegExp(`${k}:\\s+(\\d+)`).exec(st)?.[1] ?? 0)
  return { now: Math.round(kb('VmRSS') / 1024), peak: Math.round(kb('VmHWM') / 1024) }
}

async function sameServer(conns: number): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'spillway-bench-'))
  try {
    const srv = await startServer(dir)
    let total = 0
    for (let r = 0; r < runs; r++) {
      const t0 = process.hrtime.bigint()
      const load = await tcpLoad({ port: srv.tcp, messages: N, conns, size, octet: values.octet })
      total += load.sent
      const j = await waitRows(join(dir, 'journal.db'), total, t0, 600)
      const peak = rssMB(srv.proc.pid!).peak
      await new Promise((r) => setTimeout(r, 5000)) // idle, as between bursts: what stays is what grows
      const rss = { now: rssMB(srv.proc.pid!).now, peak }
      process.stdout.write(
        `${JSON.stringify({ bench: 'same-server', conns, run: r + 1, acceptRate: Math.round(load.sent / load.seconds), journalSecs: round(j.secs), rssMB: rss.now, peakRssMB: rss.peak })}\n`,
      )
    }
    srv.proc.kill('SIGTERM')
    await new Promise((r) => srv.proc.on('exit', r))
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
}

if (values['same-server']) {
  for (const c of values.conns.split(',')) await sameServer(Number(c))
  process.exit(0)
}

const all: Result[][] = []
const plan: ['tcp' | 'udp', number, number][] = values.conns.split(',').map((c) => ['tcp', Number(c), N])
if (Number(values.udp) > 0) plan.push(['udp', 1, Number(values.udp)])
for (const [transport, conns, msgs] of plan) {
  const results: Result[] = []
  for (let r = 0; r < runs; r++) {
    const res = await one(transport, conns, msgs)
    process.stdout.write(`${JSON.stringify({ ...res, node: process.version, run: r + 1 })}\n`)
    results.push(res)
  }
  all.push(results)
}

const rows = all.map((rs) => {
  const m = (k: keyof Result) => median(rs.map((r) => r[k] as number))
  return [
    rs[0]!.transport,
    String(rs[0]!.conns),
    String(rs[0]!.msgs),
    `${(m('acceptRate') / 1000).toFixed(0)}k/s`,
    `${m('journalSecs').toFixed(2)}s`,
    `${(m('journalRate') / 1000).toFixed(0)}k/s`,
    `${((100 * m('journaled')) / rs[0]!.msgs).toFixed(1)}%`,
    m('cpuSecs').toFixed(2),
    `${m('peakRssMB')}`,
    m('p99ms').toFixed(1),
    m('ownP99ms').toFixed(1),
  ]
})
const head = [
  'transport',
  'conns',
  'msgs',
  'accepted',
  'all journaled',
  'journal rate',
  'journaled',
  'cpu s',
  'RSS MB',
  'loop p99 ms',
  'own p99 ms',
]
process.stdout.write(`\nmedians of ${runs} run(s), ${size}-byte messages, node ${process.version}\n`)
process.stdout.write(`| ${head.join(' | ')} |\n|${head.map(() => '---').join('|')}|\n`)
for (const r of rows) process.stdout.write(`| ${r.join(' | ')} |\n`)
