// The crash harness behind scripts/crash-loss.ts and test/e2e/delivery.test.ts: one run is a fresh
// server, numbered messages over TCP, kill -9 once the server has read them all, a restart that replays
// the spool, and a count of what the journal holds (see crash-loss.ts for the method).

import { type ChildProcess, spawn } from 'node:child_process'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { connect, createServer, type Socket } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import Database from 'better-sqlite3'

const kMain = new URL('../src/cli/main.js', import.meta.url).pathname

export function modeConfig(mode: string): Record<string, unknown> {
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
        for (let i = 0; i < 100 && seq < count; i++)
          chunk += `<13>1 - crash app - - - c=${conn} seq=${seq++} ${pad}\n`
        if (!socket.write(chunk)) return
      }
      resolve()
    }
    socket.on('connect', pump)
    socket.on('drain', pump)
  })
  return { socket, done }
}

export interface Result {
  mode: string
  run: number
  sent: number
  readAtKill: number
  spooledAtKill: number
  spillEpisodes: number
  spillsUnordered: number
  distinct: number
  lost: number
  duplicates: number
  holes: number
  tailLost: number
}

export interface RunOptions {
  messages: number
  conns: number
  pauseMs: number
}

export async function oneRun(mode: string, run: number, o: RunOptions): Promise<Result> {
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
      if (st.spool_backlog_bytes === 0 && st.journal_lag_seconds === 0 && (st.spool_segments ?? 0) === 0)
        break
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
      spillEpisodes: s.spill_episodes_total ?? 0,
      spillsUnordered: s.spills_unordered_total ?? 0,
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
