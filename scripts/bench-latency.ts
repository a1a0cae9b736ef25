// Latency from arrival to queryable, at a steady rate (by default half the journal's sustained rate):
// C connections send R messages/s in total for S seconds; a reader polls the journal's max(id) every
// 10 ms and notes when each id became visible. Each row's latency is that time minus its received_at
// (when the server read it). Prints p50, p99 and max, and the socket thread's loop delay p99.
//
//   npm run bench:latency -- [--rate 70000] [--seconds 30] [--conns 10] [--config '{...}']

import { spawn } from 'node:child_process'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { createConnection } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { parseArgs } from 'node:util'
import Database from 'better-sqlite3'
import { message } from './loadgen.js'

const { values } = parseArgs({
  options: {
    rate: { type: 'string', default: '70000' },
    seconds: { type: 'string', default: '30' },
    conns: { type: 'string', default: '10' },
    config: { type: 'string', default: '{}' },
  },
})
const rate = Number(values.rate)
const seconds = Number(values.seconds)
const conns = Number(values.conns)
const kMain = new URL('../src/cli/main.js', import.meta.url).pathname
const kStepMs = 10

/** One connection sending `perSec` messages/s in 10 ms steps for `seconds`. */
async function send(port: number, conn: number, perSec: number): Promise<number> {
  const s = createConnection({ host: '127.0.0.1', port })
  await new Promise((r) => s.once('connect', r))
  const perStep = perSec / (1000 / kStepMs)
  const t0 = performance.now()
  let sent = 0
  for (let step = 1; step <= (seconds * 1000) / kStepMs; step++) {
    const due = Math.floor(step * perStep)
    const parts: Buffer[] = []
    while (sent < due) parts.push(message(conn, sent++, 200, false))
    if (parts.length > 0) s.write(Buffer.concat(parts))
    const wait = t0 + step * kStepMs - performance.now()
    if (wait > 0) await new Promise((r) => setTimeout(r, wait))
  }
  await new Promise<void>((r) => s.end(r))
  return sent
}

function pct(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!
}

const dir = mkdtempSync(join(tmpdir(), 'spillway-latency-'))
try {
  writeFileSync(
    join(dir, 'config.json'),
    JSON.stringify({
      metrics: { port: 0 }, // no HTTP listener (console, /metrics): nothing to collide on
      listeners: [{ transport: 'tcp', host: '127.0.0.1', port: 0 }],
      ...JSON.parse(values.config),
    }),
  )
  const proc = spawn(process.execPath, [kMain, 'serve', '--config', 'config.json'], {
    cwd: dir,
    stdio: ['ignore', 'ignore', 'pipe'],
  })
  let err = ''
  proc.stderr!.on('data', (d: Buffer) => {
    err += d.toString()
  })
  const port = await new Promise<number>((resolve, reject) => {
    const check = setInterval(() => {
      const m = /transport=tcp host=\S+ port=(\d+)/.exec(err)
      if (m) {
        clearInterval(check)
        resolve(Number(m[1]))
      }
    }, 10)
    proc.on('exit', (code) => reject(new Error(`server exited ${code}: ${err}`)))
  })
  const db = new Database(join(dir, 'journal.db'), { readonly: true, fileMustExist: true })
  const maxId = db.prepare('SELECT max(id) AS n FROM messages')
  // (wall ms, max id visible then), one per poll
  const seen: [number, number][] = []
  let polling = true
  const poll = async () => {
    while (polling) {
      const n = (maxId.get() as { n: number | null }).n ?? 0
      if (seen.length === 0 || n > seen.at(-1)![1]) seen.push([Date.now(), n])
      await new Promise((r) => setTimeout(r, kStepMs))
    }
  }
  const poller = poll()
  const sent = (
    await Promise.all(Array.from({ length: conns }, (_, c) => send(port, c, rate / conns)))
  ).reduce((a, b) => a + b, 0)
  while ((seen.at(-1)?.[1] ?? 0) < sent) await new Promise((r) => setTimeout(r, 50))
  polling = false
  await poller
  const rows = db.prepare('SELECT id, received_at FROM messages ORDER BY id').raw().all() as [
    number,
    number,
  ][]
  db.close()
  const lat: number[] = []
  let k = 0
  for (const [id, receivedAt] of rows) {
    while (seen[k]![1] < id) k++
    lat.push(seen[k]![0] - receivedAt)
  }
  lat.sort((a, b) => a - b)
  proc.kill('SIGTERM')
  await new Promise((r) => proc.on('exit', r))
  const stopped = /loopDelayP99ms=([\d.]+)/.exec(err)
  process.stdout.write(
    `${JSON.stringify({
      bench: 'latency',
      rate,
      seconds,
      conns,
      rows: rows.length,
      p50ms: pct(lat, 50),
      p99ms: pct(lat, 99),
      maxMs: lat.at(-1),
      loopDelayP99ms: Number(stopped?.[1] ?? -1),
      node: process.version,
    })}\n`,
  )
} finally {
  rmSync(dir, { recursive: true, force: true })
}
