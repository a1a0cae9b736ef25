// RELP crash harness: rsyslog's omrelp (Debian's rsyslog-relp) with a disk-assisted queue forwards a
// stream of numbered messages to a "relp" listener, and the server is killed -9 at set points of the
// stream, then restarted on the same port. Counts what the journal holds at the end: lost and duplicated.
//
//   npm run build && node dist/scripts/relp-crash.js [--messages 60000] [--kills 3] [--runs 3]
//
// One JSON line per run, then a summary (worst of the runs). RELP_CRASH_DEBUG=1 keeps each run's directory
// and names the first missing messages when a run does not get them all.

import { type ChildProcess, spawn } from 'node:child_process'
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { connect } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { parseArgs } from 'node:util'
import Database from 'better-sqlite3'

const { values } = parseArgs({
  options: {
    messages: { type: 'string', default: '60000' },
    kills: { type: 'string', default: '3' },
    runs: { type: 'string', default: '3' },
  },
})
const N = Number(values.messages)
const kills = Number(values.kills)
const runs = Number(values.runs)
const kMain = new URL('../src/cli/main.js', import.meta.url).pathname

let lastLook = ''
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

async function until<T>(what: string, check: () => T | undefined, ms = 120_000): Promise<T> {
  const deadline = Date.now() + ms
  for (;;) {
    const v = check()
    if (v !== undefined) return v
    if (Date.now() > deadline) throw new Error(`relp-crash: timed out waiting for ${what} (${lastLook})`)
    await sleep(20)
  }
}

interface Server {
  proc: ChildProcess
  port: number
  exited: Promise<unknown>
}

async function start(dir: string, port: number): Promise<Server> {
  const config = { listeners: [{ transport: 'relp', host: '127.0.0.1', port }] }
  writeFileSync(join(dir, 'config.json'), JSON.stringify(config))
  const proc = spawn(process.execPath, [kMain, 'serve', '--config', join(dir, 'config.json')], {
    cwd: dir,
    stdio: ['ignore', 'ignore', 'pipe'],
  })
  let err = ''
  proc.stderr!.on('data', (d: Buffer) => {
    err += d.toString()
  })
  const exited = new Promise((resolve) => proc.on('exit', resolve))
  const bound = await until('the relp listener', () => {
    if (proc.exitCode !== null) throw new Error(`server exited:\n${err}`)
    const m = /listening transport=relp host=\S+ port=(\d+)/.exec(err)
    return m === null ? undefined : Number(m[1])
  })
  return { proc, port: bound, exited }
}

function rows(dir: string): number {
  if (!existsSync(join(dir, 'journal.db'))) return 0
  const db = new Database(join(dir, 'journal.db'), { readonly: true })
  try {
    return (db.prepare('SELECT count(*) AS n FROM messages').get() as { n: number }).n
  } finally {
    db.close()
  }
}

function startRsyslog(dir: string, relpPort: number): { proc: ChildProcess; input: Promise<number> } {
  const r = join(dir, 'rsyslog')
  mkdirSync(join(r, 'work'), { recursive: true })
  const portFile = join(r, 'input.port')
  writeFileSync(
    join(r, 'rsyslog.conf'),
    `global(workDirectory="${r}/work")
module(load="imtcp")
module(load="omrelp")
input(type="imtcp" address="127.0.0.1" port="0" listenPortFileName="${portFile}" ruleset="fwd")
ruleset(name="fwd") {
  action(type="omrelp" target="127.0.0.1" port="${relpPort}" template="RSYSLOG_SyslogProtocol23Format"
         queue.type="LinkedList" queue.filename="spillway_relp" queue.saveOnShutdown="on"
         action.resumeRetryCount="-1" action.resumeInterval="1")
}
`,
  )
  const proc = spawn('rsyslogd', ['-n', '-f', join(r, 'rsyslog.conf'), '-i', join(r, 'pid')], {
    stdio: 'ignore',
  })
  const input = until('rsyslog input port', () =>
    existsSync(portFile) && readFileSync(portFile, 'utf8').trim() !== ''
      ? Number(readFileSync(portFile, 'utf8'))
      : undefined,
  )
  return { proc, input }
}

function send(port: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const s = connect({ host: '127.0.0.1', port }, () => {
      let text = ''
      for (let i = 0; i < N; i++) text += `<134>1 2026-12-06T10:00:00Z relphost relpapp 42 - - n=${i}\n`
      s.end(text)
    })
    s.on('error', reject)
    s.on('close', () => resolve())
    s.resume()
  })
}

const results: { lost: number; duplicates: number; rowsAtKills: number[] }[] = []
for (let run = 1; run <= runs; run++) {
  const dir = mkdtempSync(join(tmpdir(), 'spillway-relp-crash-'))
  let srv = await start(dir, 0)
  const port = srv.port
  const rs = startRsyslog(dir, port)
  try {
    await send(await rs.input)
    const rowsAtKills: number[] = []
    for (let k = 1; k <= kills; k++) {
      const mark = Math.floor((N * k) / (kills + 1))
      await until(`${mark} rows`, () => (rows(dir) >= mark ? true : undefined))
      srv.proc.kill('SIGKILL')
      await srv.exited
      rowsAtKills.push(rows(dir))
      srv = await start(dir, port)
    }
    await until(
      'every message',
      () => {
        const db = new Database(join(dir, 'journal.db'), { readonly: true })
        const n = (db.prepare('SELECT count(DISTINCT msg) AS n FROM messages').get() as { n: number }).n
        if (n < N && process.env.RELP_CRASH_DEBUG) {
          const have = new Set(
            (db.prepare('SELECT msg FROM messages').all() as { msg: string }[]).map((r) => r.msg),
          )
          const missing: number[] = []
          for (let i = 0; i < N && missing.length < 20; i++) if (!have.has(`n=${i}`)) missing.push(i)
          lastLook = `${n} distinct messages; missing ${missing.join(',')}; rows at kills ${rowsAtKills.join(',')}; dir ${dir}`
        } else {
          lastLook = `${n} distinct messages`
        }
        db.close()
        return n >= N ? true : undefined
      },
      60_000,
    )
    srv.proc.kill('SIGTERM')
    await srv.exited
    const db = new Database(join(dir, 'journal.db'), { readonly: true })
    const total = (db.prepare('SELECT count(*) AS n FROM messages').get() as { n: number }).n
    const distinct = (db.prepare('SELECT count(DISTINCT msg) AS n FROM messages').get() as { n: number }).n
    db.close()
    const r = { lost: N - distinct, duplicates: total - distinct, rowsAtKills }
    results.push(r)
    console.log(JSON.stringify({ bench: 'relp-crash', run, messages: N, kills, ...r }))
  } finally {
    rs.proc.kill('SIGKILL')
    if (srv.proc.exitCode === null) srv.proc.kill('SIGKILL')
    if (!process.env.RELP_CRASH_DEBUG) rmSync(dir, { recursive: true, force: true })
  }
}
console.log(
  JSON.stringify({
    bench: 'relp-crash-summary',
    runs,
    messages: N,
    kills,
    worstLost: Math.max(...results.map((r) => r.lost)),
    worstDuplicates: Math.max(...results.map((r) => r.duplicates)),
    rsyslog: 'omrelp, LinkedList queue with queue.filename, resumeInterval 1',
    node: process.version,
  }),
)
