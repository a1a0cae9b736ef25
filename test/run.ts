// `npm test`'s last step: runs ava (arguments passed on) in a session of its own, then fails if any
// process of that session outlived the run. Every program a test starts (spillway serve and consume,
// rsyslogd, syslog-ng, nginx, nats-server, sqlite3) inherits the session, since none of them starts a
// session of its own; one still there after ava has exited is one a test forgot to stop, and would
// hold a port, a CPU or a mount on a shared machine. Leftovers are listed and killed.

import { spawn } from 'node:child_process'
import { readdirSync, readFileSync } from 'node:fs'

const kAva = new URL('../../node_modules/ava/entrypoints/cli.mjs', import.meta.url).pathname
// A teardown's SIGKILL can still be on its way when ava exits: a process has this long to be gone.
const kGraceMs = 5000

/** Processes of session `sid`, with their command lines. */
function session(sid: number): { pid: number; cmd: string }[] {
  const out: { pid: number; cmd: string }[] = []
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue
    try {
      const stat = readFileSync(`/proc/${name}/stat`, 'latin1')
      // pid (comm) state ppid pgrp session ...: comm may hold spaces and parentheses.
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
      if (Number(fields[3]) !== sid || fields[0] === 'Z') continue
      const cmd = readFileSync(`/proc/${name}/cmdline`, 'latin1').replaceAll('\0', ' ').trim()
      out.push({ pid: Number(name), cmd })
    } catch {
      // gone meanwhile
    }
  }
  return out
}

const ava = spawn(process.execPath, [kAva, ...process.argv.slice(2)], { stdio: 'inherit', detached: true })
const sid = ava.pid!
for (const sig of ['SIGINT', 'SIGTERM'] as const) process.on(sig, () => ava.kill(sig))
const code = await new Promise<number>((resolve) =>
  ava.on('exit', (c, signal) => resolve(c ?? (signal === null ? 1 : 128))),
)
const deadline = Date.now() + kGraceMs
let left = session(sid)
while (left.length > 0 && Date.now() < deadline) {
  await new Promise((r) => setTimeout(r, 100))
  left = session(sid)
}
if (left.length > 0) {
  console.error(`\n${left.length} process(es) started by the tests outlived the run (killed now):`)
  for (const p of left) {
    console.error(`  ${p.pid} ${p.cmd}`)
    try {
      process.kill(p.pid, 'SIGKILL')
    } catch {}
  }
  process.exitCode = 1
} else {
  process.exitCode = code
}
