// Scale-out figures: three edges on this machine forward to one NATS JetStream node, and one
// `spillway consume` journals the stream. Prints, per run, forwarded messages/s per edge and end to end
// (all of them in the central journal), then the lag curve after an outage of the log: the log is
// killed while the edges keep receiving a steady load, started again, and the lag sampled each second.
//
//   npm run bench:forward [-- --messages 300000 --runs 3 --outage 30 --rate 5000]
//
// Edges are forward-only (journal.enabled false), so the one central SQLite writer is the only
// journal on the machine. Needs nats-server (apt-get install nats-server).

import { type ChildProcess, spawn } from 'node:child_process'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { createConnection } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { parseArgs } from 'node:util'
import Database from 'better-sqlite3'
import { freePort, median, round } from './bench-util.js'
import { message, tcpLoad } from './loadgen.js'

const kMain = new URL('../src/cli/main.js', import.meta.url).pathname
const { values } = parseArgs({
  options: {
    messages: { type: 'string', default: '300000' },
    runs: { type: 'string', default: '3' },
    outage: { type: 'string', default: '30' },
    rate: { type: 'string', default: '5000' },
  },
})
const kEdges = 3
const N = Number(values.messages)

function launch(
  args: string[],
  cwd: string,
  ready: RegExp,
  cmd = process.execPath,
): Promise<{ proc: ChildProcess; err: () => string }> {
  const proc = spawn(cmd, args, { cwd, stdio: ['ignore', 'pipe', 'pipe'] })
  let err = ''
  const add = (d: Buffer) => {
    err += d.toString()
  }
  proc.stdout!.on('data', add)
  proc.stderr!.on('data', add)
  return new Promise((resolve, reject) => {
    const check = setInterval(() => {
      if (ready.test(err)) {
        clearInterval(check)
        resolve({ proc, err: () => err })
      }
    }, 20)
    proc.on('exit', (code) => {
      clearInterval(check)
      reject(new Error(`${cmd} ${args.join(' ')} exited ${code}: ${err}`))
    })
  })
}

async function status(port: number): Promise<Record<string, number>> {
  const r = await fetch(`http://127.0.0.1:${port}/status`)
  return ((await r.json()) as { stats: Record<string, number> }).stats
}

function centralRows(db: Database.Database | null, path: string): [Database.Database | null, number] {
  try {
    db ??= new Database(path, { readonly: true, fileMustExist: true })
    return [db, (db.prepare('SELECT max(id) AS n FROM messages').get() as { n: number | null }).n ?? 0]
  } catch {
    return [db, 0]
  }
}

/** Sends `rate` messages/s on one connection for `secs` seconds, in 100 ms steps. */
async function steady(port: number, conn: number, rate: number, secs: number): Promise<number> {
  const s = createConnection({ host: '127.0.0.1', port })
  await new Promise((r) => s.once('connect', r))
  const per = Math.max(1, Math.round(rate / 10))
  let sent = 0
  const t0 = Date.now()
  for (let step = 0; step < secs * 10; step++) {
    const parts: Buffer[] = []
    for (let i = 0; i < per; i++) parts.push(message(conn, sent++, 200, false))
    s.write(Buffer.concat(parts))
    const next = t0 + (step + 1) * 100
    await new Promise((r) => setTimeout(r, Math.max(0, next - Date.now())))
  }
  await new Promise<void>((r) => s.end(r))
  return sent
}

async function main(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'spillway-bench-forward-'))
  const procs: ChildProcess[] = []
  try {
    const natsPort = await freePort()
    const natsUrl = `127.0.0.1:${natsPort}`
    const natsArgs = ['-js', '-a', '127.0.0.1', '-p', String(natsPort), '-sd', join(dir, 'nats')]
    let nats = await launch(natsArgs, dir, /Server is ready/, 'nats-server')
    procs.push(nats.proc)
    const edges: { tcp: number; metrics: number; proc: ChildProcess }[] = []
    for (let i = 0; i < kEdges; i++) {
      const metrics = await freePort()
      const cwd = mkdtempSync(join(dir, `edge${i}-`))
      writeFileSync(
        join(cwd, 'c.json'),
        JSON.stringify({
          listeners: [{ transport: 'tcp', host: '127.0.0.1', port: 0 }],
          metrics: { port: metrics },
          journal: { enabled: false },
          forward: { nats: { servers: [natsUrl], edge: `edge-${i}` } },
        }),
      )
      const e = await launch([kMain, 'serve', '--config', 'c.json'], cwd, /forward-connected/)
      procs.push(e.proc)
      edges.push({
        tcp: Number(/transport=tcp host=\S+ port=(\d+)/.exec(e.err())![1]),
        metrics,
        proc: e.proc,
      })
    }
    const cdir = mkdtempSync(join(dir, 'central-'))
    writeFileSync(
      join(cdir, 'c.json'),
      JSON.stringify({ listeners: [], consume: { nats: { servers: [natsUrl] } } }),
    )
    const central = await launch([kMain, 'consume', '--config', 'c.json'], cdir, /consume-connected/)
    procs.push(central.proc)
    const dbPath = join(cdir, 'journal.db')
    let db: Database.Database | null = null

    console.log(
      `# ${kEdges} edges -> 1 JetStream node -> 1 consumer; ${N} messages of 200 B per edge per run`,
    )
    console.log(
      'run | per edge forwarded msgs/s (each) | all forwarded s | all in central journal s | end-to-end msgs/s',
    )
    const perEdge: number[] = []
    const endToEnd: number[] = []
    let base = 0
    for (let run = 0; run < Number(values.runs); run++) {
      const before = await Promise.all(edges.map((e) => status(e.metrics)))
      const t0 = performance.now()
      const done: number[] = edges.map(() => 0)
      const loads = edges.map((e) => tcpLoad({ port: e.tcp, messages: N, conns: 2, size: 200 }))
      let all = 0
      for (;;) {
        const now = await Promise.all(edges.map((e) => status(e.metrics)))
        now.forEach((s, i) => {
          if (done[i] === 0 && s.forwarded_total! - before[i]!.forwarded_total! >= N)
            done[i] = performance.now() - t0
        })
        if (done.every((d) => d > 0)) break
        await new Promise((r) => setTimeout(r, 20))
      }
      const fwdAll = Math.max(...done) / 1000
      for (;;) {
        ;[db, all] = centralRows(db, dbPath)
        if (all >= base + kEdges * N) break
        await new Promise((r) => setTimeout(r, 20))
      }
      base = all
      await Promise.all(loads)
      const e2e = (performance.now() - t0) / 1000
      const rates = done.map((d) => Math.round(N / (d / 1000)))
      perEdge.push(...rates)
      endToEnd.push((kEdges * N) / e2e)
      console.log(
        `${run + 1} | ${rates.join(', ')} | ${round(fwdAll)} | ${round(e2e)} | ${Math.round((kEdges * N) / e2e)}`,
      )
    }
    console.log(
      `median per edge ${Math.round(median(perEdge))} msgs/s; median end to end ${Math.round(median(endToEnd))} msgs/s`,
    )

    // Outage: the log goes away for `outage` seconds under a steady load, comes back, load goes on.
    const outage = Number(values.outage)
    const rate = Number(values.rate)
    console.log(`\n# lag after a ${outage} s outage of the log; steady ${rate} msgs/s per edge throughout`)
    console.log(
      't s | log | forward lag msgs (all edges) | oldest unforwarded s | central journal behind msgs',
    )
    const sentBase = base
    let sending = true
    const duration = 5 + outage + 20
    const senders = edges.map((e, i) => steady(e.tcp, 100 + i, rate, duration))
    const t0 = Date.now()
    let phase: 'before' | 'down' | 'back' = 'before'
    let sample = 0
    while (sending) {
      const t = (Date.now() - t0) / 1000
      if (phase === 'before' && t >= 5) {
        nats.proc.kill('SIGKILL')
        phase = 'down'
      } else if (phase === 'down' && t >= 5 + outage) {
        nats = await launch(natsArgs, dir, /Server is ready/, 'nats-server')
        procs.push(nats.proc)
        phase = 'back'
      }
      const st = await Promise.all(edges.map((e) => status(e.metrics)))
      const lag = st.reduce((n, s) => n + s.forward_lag_messages!, 0)
      const oldest = Math.max(...st.map((s) => s.forward_lag_seconds!))
      ;[db, sample] = centralRows(db, dbPath)
      const sentSoFar = Math.min(duration, t) * rate * kEdges
      console.log(
        `${Math.round(t)} | ${phase === 'down' ? 'down' : 'up'} | ${lag} | ${oldest.toFixed(1)} | ${Math.max(0, Math.round(sentSoFar - (sample - sentBase)))}`,
      )
      if (t > duration && lag === 0) sending = false
      await new Promise((r) => setTimeout(r, 1000 - ((Date.now() - t0) % 1000)))
    }
    await Promise.all(senders)
  } finally {
    for (const p of procs) if (p.exitCode === null) p.kill('SIGKILL')
    rmSync(dir, { recursive: true, force: true })
  }
}

main().catch((err: unknown) => {
  console.error(err)
  process.exit(1)
})
