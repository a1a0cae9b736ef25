// Crash harness: what a kill -9 loses, per delivery mode, measured the way a sender would reconcile.
//
//   npm run crash -- [--mode memory,durable,durable-fsync-batch,...] [--runs 3] [--messages 100000]
//                    [--conns 4] [--relp] [--pause-ms 0]
//
// Per run: a fresh directory and server; N numbered messages (`c=<conn> seq=<n>`, ~110 B) over C TCP
// connections, as fast as the kernel takes them; /status is polled until the server says it has read all
// N (received_tcp_total); kill -9 at once; a restart replays the spool; then the journal is counted:
// distinct and duplicate (conn, seq), and per connection the holes (a seq missing while a later one of
// the same connection survived: what misleads anyone reconciling by "last sequence seen") and the tail
// lost after the last survivor. One JSON line per run, then a summary line per mode (worst of the runs).
//
// Modes: memory (the default config), durable (spool.thresholdBytes 0), durable-fsync-<policy>
// (spool.fsync "batch" or an interval such as "100ms"). --relp sends over RELP with acknowledgements
// instead (see scripts/relp-crash.ts for rsyslog's own omrelp).

import { type ChildProcess, spawn } from 'node:child_process'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { connect, createServer, type Socket } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import Database from 'better-sqlite3'

const kMain = new URL('../src/cli/main.js', import.meta.url).pathname

interface Options {
  modes: string[]
  runs: number
  messages: number
  conns: number
  pauseMs: number
}

function parseArgs(argv: string[]): Options {
  const o: Options = { modes: ['memory', 'durable'], runs: 3, messages: 100_000, conns: 4, pauseMs: 0 }
  for (let i = 0; i < argv.length; i++) {
    const v = argv[i + 1]
    switch (argv[i]) {
      case '--mode':
        o.modes = v!.split(',')
        i++
        break
      case '--runs':
        o.runs = Number(v)
        i++
        break
      case '--messages':
        o.messages = Number(v)
        i++
        break
      case '--conns':
        o.conns = Number(v)
        i++
        break
      case '--pause-ms':
        o.pauseMs = Number(v)
        i++
        break
      default:
        throw new Error(`crash-loss: unknown argument ${argv[i]}`)
    }
  }
  return o
}

function modeConfig(mode: string): Record<string, unknown> {
  if (mode === 'memory') return {}
  if (mode === 'durable') return { spool: { thresholdBytes: 0 } }
  const m = /^durable-fsync-(.+)$/.exec(mode)
  if (m) return { spool: { thresholdBytes: 0, fsync: m[1] } }
  throw new Error(`crash-loss: unknown mode ${mode} (memory, durable, durable-fsync-<batch|off|Nms>)`)
}

interface Server {
  proc: ChildProcess
  tcpPort: number
  metricsPort: number
  exited: Promise<number | null>
  stderr: () => string
}

/** A port free a moment ago (metrics.port 0 means "off", so the metrics listener needs a real one). */
function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const s = createServer().listen(0, '127.0.0.1', () => {
      const a = s.address()
      s.close(() => resolve(typeof a === 'object' && a !== null ? a.port : 0))
    })
  })
}

async function start(dir: string, mode: string): Promise<Server> {
  const config = {
    listeners: [{ transport: 'tcp', host: '127.0.0.1', port: 0 }],
    metrics: { host: '127.0.0.1', port: await freePort() },
    ...modeConfig(mode),
  }
  writeFileSync(join(dir, 'config.json'), JSON.stringify(config))
  const proc = spawn(process.execPath, [kMain, 'serve', '--config', join(dir, 'config.json')], {
    cwd: dir,
    stdio: ['ignore', 'ignore', 'pipe'],
  })
  let err = ''
  const exited = new Promise<number | null>((resolve) => proc.on('exit', (code) => resolve(code)))
  const ports = await new Promise<{ tcp: number; metrics: number }>((resolve, reject) => {
    proc.stderr!.on('data', (d: Buffer) => {
      err += d.toString()
      const tcp = /listening transport=tcp host=\S+ port=(\d+)/.exec(err)
      const metrics = /metrics url=http:\/\/[^:]+:(\d+)\//.exec(err)
      if (tcp && metrics) resolve({ tcp: Number(tcp[1]), metrics: Number(metrics[1]) })
    })
    void exited.then((code) => reject(new Error(`server exited with ${code}:\n${err}`)))
  })
  return { proc, tcpPort: ports.tcp, metricsPort: ports.metrics, exited, stderr: () => err }
}

async function status(port: number): Promise<Record<string, number>> {
  const r = await fetch(`http://127.0.0.1:${port}/status`)
  return ((await r.json()) as { stats: Record<string, number> }).stats
}

/** Sends `count` numbered messages on one connection as fast as it drains; resolves when all are written. */
function send(port: number, conn: number, count: number): { socket: Socket; done: Promise<void> } {
  const socket = connect({ host: '127.0.0.1', port })
  socket.on('error', () => {})
  const pad = 'x'.repeat(60)
  let seq = 0
  const done = new Promise<void>((resolve) => {
    const pump = () => {
      while (seq < count) {
        let chunk = ''
        for (let i = 0; i < 100 && seq < count; i++) chunk += `<13>1 - crash app - - - c=${conn} seq=${seq++} ${pad}\n`
        if (!socket.write(chunk)) return
      }
      resolve()
    }
    socket.on('connect', pump)
    socket.on('drain', pump)
  })
  return { socket, done }
}

interface Result {
  mode: string
  run: number
  sent: number
  readAtKill: number
  spooledAtKill: number
  distinct: number
  lost: number
  duplicates: number
  holes: number
  tailLost: number
}

async function oneRun(mode: string, run: number, o: Options): Promise<Result> {
  const dir = mkdtempSync(join(tmpdir(), 'spillway-crash-'))
  try {
    const srv = await start(dir, mode)
    const per = Math.ceil(o.messages / o.conns)
    const senders = Array.from({ length: o.conns }, (_, c) => send(srv.tcpPort, c, per))
    const total = per * o.conns
    let s: Record<string, number> = {}
    for (;;) {
      s = await status(srv.metricsPort)
      if ((s.received_tcp_total ?? 0) >= total) break
    }
    if (o.pauseMs > 0) await new Promise((r) => setTimeout(r, o.pauseMs))
    srv.proc.kill('SIGKILL')
    await srv.exited
    for (const x of senders) x.socket.destroy()
    // Restart: the spool replays; wait until it is empty and nothing is left in memory, then stop.
    const again = await start(dir, mode)
    for (;;) {
      const st = await status(again.metricsPort)
      if (st.spool_backlog_bytes === 0 && st.journal_lag_seconds === 0 && (st.spool_segments ?? 0) === 0) break
      await new Promise((r) => setTimeout(r, 100))
    }
    again.proc.kill('SIGTERM')
    await again.exited
    const db = new Database(join(dir, 'journal.db'), { readonly: true })
    const seen = new Map<string, number>()
    for (const { msg } of db.prepare('SELECT msg FROM messages').iterate() as Iterable<{ msg: string }>) {
      const m = /c=(\d+) seq=(\d+)/.exec(msg)
      if (m) seen.set(`${m[1]}:${m[2]}`, (seen.get(`${m[1]}:${m[2]}`) ?? 0) + 1)
    }
    db.close()
    let duplicates = 0
    for (const n of seen.values()) duplicates += n - 1
    let holes = 0
    let tailLost = 0
    for (let c = 0; c < o.conns; c++) {
      let last = -1
      for (let q = 0; q < per; q++) if (seen.has(`${c}:${q}`)) last = q
      for (let q = 0; q < per; q++) {
        if (seen.has(`${c}:${q}`)) continue
        if (q < last) holes++
        else tailLost++
      }
    }
    return {
      mode,
      run,
      sent: total,
      readAtKill: s.received_tcp_total ?? 0,
      spooledAtKill: s.spooled_total ?? 0,
      distinct: seen.size,
      lost: total - seen.size,
      duplicates,
      holes,
      tailLost,
    }
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
}

const o = parseArgs(process.argv.slice(2))
for (const mode of o.modes) {
  const results: Result[] = []
  for (let run = 1; run <= o.runs; run++) {
    const r = await oneRun(mode, run, o)
    results.push(r)
    console.log(JSON.stringify({ bench: 'crash-loss', ...r }))
  }
  console.log(
    JSON.stringify({
      bench: 'crash-loss-summary',
      mode,
      runs: o.runs,
      messages: results[0]!.sent,
      conns: o.conns,
      worstLost: Math.max(...results.map((r) => r.lost)),
      lost: results.map((r) => r.lost),
      worstHoles: Math.max(...results.map((r) => r.holes)),
      duplicates: Math.max(...results.map((r) => r.duplicates)),
      node: process.version,
    }),
  )
}
