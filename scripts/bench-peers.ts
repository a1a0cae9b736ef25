// Spillway against the servers people would otherwise run, one after another in the same run, with the
// same load: syslog-ng's loggen (../shared/peers/load.sh), N messages of 200 bytes over C TCP connections,
// and a UDP run. Targets: rsyslog imtcp -> file, syslog-ng network() -> file, syslog-ng -> SQLite sql(),
// and Spillway (default config); "null" (scripts/null-server.ts, reads and counts) shows the generator's
// own ceiling and is not in the default targets. Per run, one JSON line:
//   acceptSecs   seconds to hand over all messages, the same measure for every target. loggen: load.sh's
//                wall time, start to exit (printed with loggen's own time= as loggenSecs; both come in
//                0.5 s steps, for loggen's main thread polls its senders every 500 ms). loadgen: its own time from the first connect until the server has read
//                everything and closed every connection (hrtime; the wall time would add ~0.1 s of Node
//                start-up and message building to both sides of the ratio).
//   diskSecs     from the load's start until all N are on disk (lines in the file) or in the journal (rows)
//   cpuSecs      the server's user+system CPU seconds (all threads), rssMB its peak RSS (VmHWM)
//   loopP99ms    Spillway only: the socket thread's event-loop delay p99; loopOwnP99ms the same less
//                its waits for a CPU (src/metrics/loop.ts), cpuWaitMs the sum of those waits
// Then a table of medians with Spillway's ratio to each peer, and a SQLite ceiling for the journal's own
// schema: one thread, prepared statements, 10,000-row transactions, no sockets.
//
//   npm run bench:peers -- [--messages 1000000] [--conns 1,10,100] [--runs 3] [--udp 200000]
//     [--generator loggen|loadgen] [--targets rsyslog,syslog-ng,syslog-ng-sql,spillway,null] [--fts-reader]
//     [--peers ../shared/peers]
//     [--ceiling-rows 1000000 (0: skip)] [--compare DIR] [--nice N]
// --compare DIR adds a target "spillway-b": the build in DIR (a worktree of another commit, built), run
// interleaved with this one, for before/after figures from one run. --nice N adds "spillway-nice": this
// build started under `nice -n N` (as systemd's Nice= would; N < 0 needs root), also interleaved.

import { type ChildProcess, execFileSync, spawn } from 'node:child_process'
import {
  closeSync,
  existsSync,
  mkdtempSync,
  openSync,
  readFileSync,
  readSync,
  rmSync,
  writeFileSync,
} from 'node:fs'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { parseArgs } from 'node:util'
import Database from 'better-sqlite3'
import { freePort } from '../test/helpers/peers.js'
import { cpuSeconds, median, peakRssMB, round, sqliteCeiling } from './bench-util.js'

const { values } = parseArgs({
  options: {
    messages: { type: 'string', default: '1000000' },
    conns: { type: 'string', default: '1,10,100' },
    runs: { type: 'string', default: '3' },
    udp: { type: 'string', default: '200000' },
    targets: { type: 'string', default: 'rsyslog,syslog-ng,syslog-ng-sql,spillway' },
    'fts-reader': { type: 'boolean', default: false },
    peers: { type: 'string', default: resolve(new URL('../../../shared/peers', import.meta.url).pathname) },
    /** Rows for the SQLite ceiling run; 0 skips it. */
    'ceiling-rows': { type: 'string', default: '1000000' },
    compare: { type: 'string' },
    nice: { type: 'string' },
    /**
     * The TCP load's generator: loggen (the yardstick), or loadgen (scripts/loadgen.ts). Against
     * the null target, loggen sends 1 M messages over 10 or 100 connections at ~1.7 M msgs/s, rsyslog's
     * own pace here, and loadgen at 10-16 M msgs/s. UDP is always loggen.
     */
    generator: { type: 'string', default: 'loggen' },
  },
})
if (values.generator !== 'loggen' && values.generator !== 'loadgen')
  throw new Error(`--generator: loggen or loadgen, not ${values.generator}`)
const kLoadgen = new URL('./loadgen.js', import.meta.url).pathname
const N = Number(values.messages)
const runs = Number(values.runs)
const P = values.peers
const kMain = new URL('../src/cli/main.js', import.meta.url).pathname

interface Target {
  name: string
  start(port: number, dir: string): Promise<{ pid: number; output: string; stop(): Promise<string> }>
}

function sh(cmd: string, args: string[]): string {
  return execFileSync(cmd, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] })
}

function peer(name: string, script: string, mode: string, sub: string, out: string, pidFile: string): Target {
  return {
    name,
    async start(port, dir) {
      const d = join(dir, sub)
      sh(join(P, script), [mode, String(port), d])
      const pid = Number(readFileSync(join(d, pidFile), 'utf8').trim())
      return {
        pid,
        output: join(d, out),
        stop: async () => {
          sh(join(P, script), ['stop', d])
          return ''
        },
      }
    },
  }
}

const spillwayAt = (name: string, main: string, nice?: number): Target => ({
  name,
  async start(port, dir) {
    const d = join(dir, name)
    execFileSync('mkdir', ['-p', d])
    writeFileSync(
      join(d, 'config.json'),
      JSON.stringify({
        metrics: { port: 0 }, // no HTTP listener (console, /metrics): nothing to collide on
        listeners: [
          { transport: 'tcp', host: '127.0.0.1', port },
          { transport: 'udp', host: '127.0.0.1', port },
        ],
        // Every connection comes from 127.0.0.1 here: --conns 1000 must not meet the per-source cap.
        limits: { maxConnectionsPerSource: 1_000_000 },
      }),
    )
    const argv = [process.execPath, main, 'serve', '--config', 'config.json']
    if (nice !== undefined) argv.unshift('nice', '-n', String(nice))
    const proc: ChildProcess = spawn(argv[0]!, argv.slice(1), {
      cwd: d,
      stdio: ['ignore', 'ignore', 'pipe'],
    })
    let err = ''
    await new Promise<void>((ok, fail) => {
      proc.stderr!.on('data', (b: Buffer) => {
        err += b.toString()
        if (/listening transport=udp/.test(err)) ok()
      })
      proc.on('exit', (c) => fail(new Error(`spillway exited ${c}: ${err}`)))
    })
    const exited = new Promise<void>((r) => proc.on('exit', () => r()))
    return {
      pid: proc.pid!,
      output: join(d, 'journal.db'),
      stop: async () => {
        proc.kill('SIGTERM')
        await exited
        return err
      },
    }
  },
})
const spillway = spillwayAt('spillway', kMain)

/** scripts/null-server.ts: reads and counts, writes one LF per message. The generator's own ceiling. */
const nullTarget: Target = {
  name: 'null',
  async start(port, dir) {
    const out = join(dir, 'null.log')
    const script = new URL('./null-server.js', import.meta.url).pathname
    const proc = spawn(process.execPath, [script, '--port', String(port), '--out', out], {
      stdio: ['ignore', 'ignore', 'pipe'],
    })
    await new Promise<void>((ok, fail) => {
      proc.stderr!.on('data', (b: Buffer) => {
        if (b.toString().includes('listening')) ok()
      })
      proc.on('exit', (c) => fail(new Error(`null-server exited ${c}`)))
    })
    const exited = new Promise<void>((r) => proc.on('exit', () => r()))
    return {
      pid: proc.pid!,
      output: out,
      stop: async () => {
        proc.kill('SIGTERM')
        await exited
        return ''
      },
    }
  },
}

const all: Target[] = [
  peer('rsyslog', 'rsyslog.sh', 'start', 'rs', 'messages.log', 'rsyslogd.pid'),
  peer('syslog-ng', 'syslog-ng.sh', 'start', 'ng', 'messages.log', 'syslog-ng.pid'),
  peer('syslog-ng-sql', 'syslog-ng.sh', 'start-sqlite', 'ngs', 'journal.db', 'syslog-ng.pid'),
  spillway,
  nullTarget,
]
if (values.compare !== undefined) {
  all.push(spillwayAt('spillway-b', resolve(values.compare, 'dist/src/cli/main.js')))
  values.targets += ',spillway-b'
}
if (values.nice !== undefined) {
  all.push(spillwayAt('spillway-nice', kMain, Number(values.nice)))
  values.targets += ',spillway-nice'
}
const targets = values.targets.split(',').map((n) => {
  const t = all.find((x) => x.name === n)
  if (!t) throw new Error(`unknown target ${n}`)
  return t
})

/** Counts lines of a growing file, reading only what was appended; or rows of a *.db's messages table. */
class Counter {
  private off = 0
  private n = 0
  private fd = -1
  private db: Database.Database | null = null
  private readonly buf = Buffer.allocUnsafe(1 << 20)
  private readonly path: string
  constructor(path: string) {
    this.path = path
  }
  count(): number {
    if (this.path.endsWith('.db')) {
      try {
        this.db ??= new Database(this.path, { readonly: true, fileMustExist: true, timeout: 1000 })
        this.n = (
          this.db.prepare('SELECT coalesce(max(rowid), 0) AS n FROM messages').get() as { n: number }
        ).n
      } catch {
        // not created yet
      }
      return this.n
    }
    if (this.fd < 0) {
      if (!existsSync(this.path)) return 0
      this.fd = openSync(this.path, 'r')
    }
    for (;;) {
      const got = readSync(this.fd, this.buf, 0, this.buf.length, this.off)
      if (got === 0) break
      this.off += got
      let p = -1
      for (;;) {
        p = this.buf.indexOf(0x0a, p + 1)
        if (p === -1 || p >= got) break
        this.n++
      }
    }
    return this.n
  }
  close(): void {
    if (this.fd >= 0) closeSync(this.fd)
    this.db?.close()
  }
}

function load(
  port: number,
  msgs: number,
  conns: number,
  udp: boolean,
): Promise<{ secs: number; wallSecs: number; line: string }> {
  return new Promise((ok, fail) => {
    const t0 = performance.now()
    if (!udp && values.generator === 'loadgen') {
      const args = [kLoadgen, '--port', String(port), '--messages', String(msgs), '--conns', String(conns)]
      const p = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'inherit'] })
      let out = ''
      p.stdout.on('data', (b: Buffer) => {
        out += b.toString()
      })
      p.on('exit', (code) => {
        if (code !== 0) return fail(new Error(`loadgen exited ${code}: ${out}`))
        const r = JSON.parse(out) as { seconds: number }
        ok({ secs: r.seconds, wallSecs: (performance.now() - t0) / 1000, line: out.trim() })
      })
      return
    }
    const args = [String(port), String(msgs), String(conns), '200', ...(udp ? ['--dgram'] : [])]
    const p = spawn(join(P, 'load.sh'), args, { stdio: ['ignore', 'pipe', 'pipe'] })
    let out = ''
    p.stdout.on('data', (b: Buffer) => {
      out += b.toString()
    })
    p.on('exit', () => {
      const m = /time=([\d.e+-]+)/.exec(out)
      if (!m) return fail(new Error(`loggen: ${out}`))
      const wallSecs = (performance.now() - t0) / 1000
      ok({ secs: Number(m[1]), wallSecs, line: out.trim().split('\n').at(-1) ?? '' })
    })
  })
}

interface Result {
  target: string
  transport: string
  conns: number
  msgs: number
  acceptSecs: number
  acceptRate: number
  loggenSecs: number
  diskSecs: number
  onDisk: number
  cpuSecs: number
  rssMB: number
  loopP99ms: number | null
  loopOwnP99ms: number | null
  cpuWaitMs: number | null
  loggen: string
}

async function one(t: Target, conns: number, msgs: number, udp: boolean): Promise<Result> {
  const dir = mkdtempSync(join(tmpdir(), 'spillway-peers-'))
  const port = await freePort()
  const srv = await t.start(port, dir)
  const counter = new Counter(srv.output)
  let reader: ChildProcess | null = null
  if (values['fts-reader'] && t.name.startsWith('spillway')) {
    // An operator's full-text query in a loop, while the load runs (the never-block target).
    reader = spawn('bash', [
      '-c',
      `while :; do sqlite3 ${srv.output} "select count(*) from messages_fts where msg like '%PADDPADD%'" >/dev/null 2>&1; done`,
    ])
  }
  try {
    const t0 = performance.now()
    const l = await load(port, msgs, conns, udp)
    let n = counter.count()
    let last = n
    let lastChange = performance.now()
    // Done when all are on disk; for UDP (loss is expected) when the count stops growing for 3 s.
    while (n < msgs && performance.now() - lastChange < (udp ? 3000 : 60_000)) {
      await new Promise((r) => setTimeout(r, 20))
      n = counter.count()
      if (n !== last) {
        last = n
        lastChange = performance.now()
      }
    }
    const acceptSecs = !udp && values.generator === 'loadgen' ? l.secs : l.wallSecs
    const diskSecs = n >= msgs ? (performance.now() - t0) / 1000 : (lastChange - t0) / 1000
    const cpu = cpuSeconds(srv.pid)
    const rss = peakRssMB(srv.pid)
    reader?.kill()
    const err = await srv.stop()
    const p99 = /loopDelayP99ms=([\d.]+)/.exec(err)
    const own = /loopDelayOwnP99ms=([\d.]+)/.exec(err)
    const wait = /cpuWaitMs=(\d+)/.exec(err)
    return {
      target: t.name,
      transport: udp ? 'udp' : 'tcp',
      conns,
      msgs,
      acceptSecs: round(acceptSecs),
      acceptRate: Math.round(msgs / acceptSecs),
      loggenSecs: l.secs,
      diskSecs: round(diskSecs),
      onDisk: n,
      cpuSecs: round(cpu),
      rssMB: rss,
      loopP99ms: p99 ? Number(p99[1]) : null,
      loopOwnP99ms: own ? Number(own[1]) : null,
      cpuWaitMs: wait ? Number(wait[1]) : null,
      loggen: l.line,
    }
  } finally {
    reader?.kill()
    counter.close()
    rmSync(dir, { recursive: true, force: true })
  }
}

function emit(o: object): void {
  process.stdout.write(`${JSON.stringify({ ...o, node: process.version })}\n`)
}

const plan: [number, boolean, number][] = values.conns
  .split(',')
  .filter((c) => Number(c) > 0)
  .map((c) => [Number(c), false, N])
if (Number(values.udp) > 0) plan.push([1, true, Number(values.udp)])
const results: Result[] = []
for (const [conns, udp, msgs] of plan) {
  for (let r = 0; r < runs; r++) {
    // Interleave targets within each round, so drift on a shared machine hits all of them alike.
    for (const t of targets) {
      const res = await one(t, conns, msgs, udp)
      emit({ bench: 'peers', run: r + 1, ...res })
      results.push(res)
    }
  }
}
const ceilingRows = Number(values['ceiling-rows'])
const ceiling = ceilingRows > 0 ? sqliteCeiling(ceilingRows) : 0
if (ceiling > 0) emit({ bench: 'sqlite-ceiling', rows: ceilingRows, rowsPerSec: ceiling })

const head = [
  'transport',
  'conns',
  'target',
  'accept msgs/s',
  'on disk s',
  'on disk',
  'cpu s',
  'RSS MB',
  'loop p99 ms',
  'own p99 ms',
  'cpu wait ms',
  'spillway accept time ÷ this',
  'spillway on-disk time ÷ this',
]
process.stdout.write(
  `\nmedians of ${runs} run(s); ${values.generator} (TCP) and loggen (UDP), 200-byte messages, ${N} per TCP run\n`,
)
if (values.generator === 'loggen')
  // loggen's main thread checks every 500 ms whether its senders are done (wait_all_plugin_to_finish).
  process.stdout.write(
    "loggen's times are its 500 ms poll's steps: targets that finish within one step tie; use --messages 10000000 or --generator loadgen to tell them apart\n",
  )
process.stdout.write(`| ${head.join(' | ')} |\n|${head.map(() => '---').join('|')}|\n`)
for (const [conns, udp] of plan) {
  const group = results.filter((x) => x.conns === conns && (x.transport === 'udp') === udp)
  const med = (name: string, k: keyof Result) =>
    median(group.filter((x) => x.target === name).map((x) => x[k] as number))
  const sw = targets.includes(spillway)
  for (const t of targets) {
    const row = [
      udp ? 'udp' : 'tcp',
      String(conns),
      t.name,
      `${Math.round(med(t.name, 'acceptRate') / 1000)}k`,
      med(t.name, 'diskSecs').toFixed(2),
      udp ? `${((100 * med(t.name, 'onDisk')) / group[0]!.msgs).toFixed(1)}%` : String(med(t.name, 'onDisk')),
      med(t.name, 'cpuSecs').toFixed(2),
      String(med(t.name, 'rssMB')),
      t.name.startsWith('spillway') ? String(med(t.name, 'loopP99ms')) : '',
      t.name.startsWith('spillway') ? String(med(t.name, 'loopOwnP99ms')) : '',
      t.name.startsWith('spillway') ? String(med(t.name, 'cpuWaitMs')) : '',
      sw ? (med('spillway', 'acceptSecs') / med(t.name, 'acceptSecs')).toFixed(2) : '',
      sw ? (med('spillway', 'diskSecs') / med(t.name, 'diskSecs')).toFixed(2) : '',
    ]
    process.stdout.write(`| ${row.join(' | ')} |\n`)
  }
}
if (ceiling > 0) {
  const swRate = median(
    results.filter((x) => x.target === 'spillway' && x.transport === 'tcp').map((x) => x.msgs / x.diskSecs),
  )
  process.stdout.write(
    `\nSQLite ceiling for the journal schema: ${Math.round(ceiling / 1000)}k rows/s; Spillway journaled ${Math.round(swRate / 1000)}k rows/s end to end (${Math.round((100 * swRate) / ceiling)}% of it)\n`,
  )
}
