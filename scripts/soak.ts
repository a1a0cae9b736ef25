// A bounded soak: for --seconds (default 120) it runs steady TCP and UDP load, hostile clients (garbage,
// a one-byte-a-second sender, idle connections, resets mid-frame) and restarts of the server (SIGTERM
// and kill -9, alternating, every --restart-every seconds) against one spool and journal, then prints a
// report: sent, journaled, duplicates, order violations per connection, restarts survived, the policy
// counters, peak RSS. Durable mode by default, so kill -9 loses only what had not reached the spool.
//
//   npm run build && node dist/scripts/soak.js [--seconds 120] [--restart-every 15] [--rate 20000]

import { type ChildProcess, spawn } from 'node:child_process'
import { createSocket } from 'node:dgram'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { createConnection, type Socket } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { parseArgs } from 'node:util'
import Database from 'better-sqlite3'
import { freePort } from '../test/helpers/peers.js'
import { peakRssMB } from './bench-util.js'

const { values } = parseArgs({
  options: {
    seconds: { type: 'string', default: '120' },
    'restart-every': { type: 'string', default: '15' },
    /** Messages per second over all TCP senders. */
    rate: { type: 'string', default: '20000' },
    threshold: { type: 'string', default: '0' },
  },
})
const seconds = Number(values.seconds)
const restartEvery = Number(values['restart-every']) * 1000
const rate = Number(values.rate)
const kMain = new URL('../src/cli/main.js', import.meta.url).pathname
const dir = mkdtempSync(join(tmpdir(), 'spillway-soak-'))
const tcpPort = await freePort()
const udpPort = await freePort()
writeFileSync(
  join(dir, 'config.json'),
  JSON.stringify({
    metrics: { port: 0 }, // no HTTP listener (console, /metrics): nothing to collide on
    listeners: [
      { transport: 'tcp', host: '127.0.0.1', port: tcpPort },
      { transport: 'udp', host: '127.0.0.1', port: udpPort },
    ],
    spool: { thresholdBytes: Number(values.threshold), segmentBytes: 1024 * 1024 },
    limits: { idleTimeoutSeconds: 30 },
  }),
)

let server: ChildProcess | null = null
let up = false
let peakRss = 0
const restarts = { sigterm: 0, sigkill: 0, failedStops: 0 }

async function start(): Promise<void> {
  const p = spawn(process.execPath, [kMain, 'serve', '--config', 'config.json'], {
    cwd: dir,
    stdio: ['ignore', 'ignore', 'pipe'],
  })
  server = p
  let err = ''
  await new Promise<void>((ok, fail) => {
    p.stderr!.on('data', (b: Buffer) => {
      err += b.toString()
      if (/listening transport=udp/.test(err)) ok()
    })
    p.on('exit', (c) => fail(new Error(`server exited ${c}: ${err}`)))
  })
  up = true
}

async function stop(kill: boolean): Promise<void> {
  const p = server!
  up = false
  try {
    peakRss = Math.max(peakRss, peakRssMB(p.pid!))
  } catch {
    // already gone
  }
  const exited = new Promise<number | null>((r) => p.on('exit', (c) => r(c)))
  p.kill(kill ? 'SIGKILL' : 'SIGTERM')
  const code = await exited
  if (kill) restarts.sigkill++
  else if (code === 0) restarts.sigterm++
  else restarts.failedStops++
}

// Steady senders: each connection numbers its messages; a new connection after each disconnect.
let sent = 0
let connSeq = 0
function sender(): void {
  const id = connSeq++
  let seq = 0
  let timer: NodeJS.Timeout | null = null
  const s: Socket = createConnection({ host: '127.0.0.1', port: tcpPort })
  const perTick = Math.max(1, Math.round(rate / 4 / 100)) // 4 senders, 100 ticks a second
  s.on('connect', () => {
    timer = setInterval(() => {
      let chunk = ''
      for (let i = 0; i < perTick; i++) chunk += `<14>1 - soak app - - - c=${id} s=${seq++}\n`
      sent += perTick
      s.write(chunk)
    }, 10)
  })
  s.on('error', () => {})
  s.on('close', () => {
    if (timer) clearInterval(timer)
    if (running) setTimeout(sender, 200)
  })
}

// Hostile clients, on a loop: garbage bytes, a slow drip, idle connections, resets mid-frame, UDP junk.
function hostile(): void {
  if (!running || !up) return
  const g = createConnection({ host: '127.0.0.1', port: tcpPort }, () => {
    const junk = Buffer.alloc(4096)
    for (let i = 0; i < junk.length; i++) junk[i] = (i * 7919 + Date.now()) & 0xff
    g.write(junk)
    g.write('99999999 <13>a lying count\n12a <13>x\n')
    setTimeout(() => g.resetAndDestroy(), 50)
  })
  g.on('error', () => {})
  const idle = createConnection({ host: '127.0.0.1', port: tcpPort })
  idle.on('error', () => {})
  setTimeout(() => idle.destroy(), 5000)
  const drip = createConnection({ host: '127.0.0.1', port: tcpPort })
  drip.on('error', () => {})
  let k = 0
  const d = setInterval(() => {
    if (k < 10) drip.write('x')
    else {
      clearInterval(d)
      drip.destroy()
    }
    k++
  }, 1000)
  const u = createSocket('udp4')
  u.send(Buffer.from([0, 1, 2, 0xff, 0x0a]), udpPort, '127.0.0.1', () => u.close())
}

let running = true
await start()
for (let i = 0; i < 4; i++) sender()
const hostileTimer = setInterval(hostile, 2000)
const t0 = Date.now()
let kill = false
while (Date.now() - t0 < seconds * 1000) {
  await new Promise((r) => setTimeout(r, Math.min(restartEvery, seconds * 1000 - (Date.now() - t0))))
  if (Date.now() - t0 >= seconds * 1000) break
  await stop(kill)
  kill = !kill
  await start()
}
running = false
clearInterval(hostileTimer)
await new Promise((r) => setTimeout(r, 500))
await stop(false)
// A last start to replay what the spool still holds, then stop cleanly.
await start()
const journal = join(dir, 'journal.db')
const db = new Database(journal, { readonly: true })
let last = -1
for (;;) {
  await new Promise((r) => setTimeout(r, 1000))
  const n = (
    db.prepare("SELECT count(*) AS n FROM messages WHERE app = 'app' AND host = 'soak'").get() as {
      n: number
    }
  ).n
  if (n === last) break
  last = n
}
const rows = db.prepare("SELECT msg FROM messages WHERE app = 'app' AND host = 'soak' ORDER BY id").all() as {
  msg: string
}[]
const stats = Object.fromEntries(
  (db.prepare('SELECT name, value FROM stats').all() as { name: string; value: number }[]).map((r) => [
    r.name,
    r.value,
  ]),
)
db.close()
await stop(false)

const seen = new Set<string>()
let duplicates = 0
const nextSeq = new Map<string, number>()
let orderViolations = 0
for (const { msg } of rows) {
  if (seen.has(msg)) duplicates++
  seen.add(msg)
  const [c, s] = msg.split(' ')
  const n = Number(s!.slice(2))
  if (n < (nextSeq.get(c!) ?? 0)) orderViolations++
  nextSeq.set(c!, n + 1)
}
const report = {
  bench: 'soak',
  seconds,
  sent,
  journaled: rows.length,
  notJournaled: sent - rows.length,
  duplicates,
  orderViolations,
  connections: connSeq,
  restarts,
  dropped: {
    spoolFull: stats.dropped_spool_full_total ?? 0,
    refusedNotAllowed: stats.refused_not_allowed_total ?? 0,
    partialFramesAtStop: stats.partial_frames_dropped_at_stop_total ?? 0,
  },
  truncated: stats.truncated_total ?? 0,
  parseErrors: stats.parse_errors_total ?? 0,
  idleTimeouts: stats.idle_timeouts_total ?? 0,
  peakRssMB: peakRss,
  node: process.version,
}
process.stdout.write(`${JSON.stringify(report)}\n`)
rmSync(dir, { recursive: true, force: true })
process.exit(duplicates === 0 && orderViolations === 0 ? 0 : 1)
