// Real programs as peers: rsyslog and syslog-ng relaying to Spillway, and the ports they listen on.
// Installed by ../shared/peers/install.sh (which .ci/run calls); each runs in the foreground with its own
// config, pid file and work directory under the test's temporary directory, never as the system daemon.

import { type ChildProcess, spawn } from 'node:child_process'
import { mkdirSync, writeFileSync } from 'node:fs'
import { createServer, type Server } from 'node:net'
import { join } from 'node:path'
import type { ExecutionContext } from 'ava'
import { kSyslogNgPrefix, need, needSyslogNg } from './programs.js'
import { kDeadlineMs } from './server.js'
import { portListener } from './sockets.js'

/** `n` distinct TCP ports on 127.0.0.1 that were free a moment ago (all bound at once, then closed). */
export async function freePorts(n: number): Promise<number[]> {
  const servers: Server[] = []
  try {
    for (let i = 0; i < n; i++) {
      const s = createServer()
      servers.push(s)
      await new Promise<void>((resolve, reject) => {
        s.once('error', reject)
        s.listen(0, '127.0.0.1', () => resolve())
      })
    }
    return servers.map((s) => (s.address() as { port: number }).port)
  } finally {
    await Promise.all(servers.map((s) => new Promise((resolve) => s.close(resolve))))
  }
}

/** One port free a moment ago (the benchmark scripts pick their ports with it). */
export async function freePort(): Promise<number> {
  return (await freePorts(1))[0]!
}

/** A peer found its port taken (by a process of another test file, between freePorts() and its bind). */
export class PortTaken extends Error {}

/**
 * Runs `start` on ports free a moment ago, again on new ones while it throws PortTaken: programs that
 * cannot be told to bind port 0 and say which port they got are started this way.
 */
export async function onFreePorts<T>(n: number, start: (ports: number[]) => Promise<T>): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    const ports = await freePorts(n)
    try {
      return await start(ports)
    } catch (err) {
      if (!(err instanceof PortTaken) || attempt === 5) throw err
    }
  }
}

export interface Peer {
  proc: ChildProcess
  /** What it wrote to stdout and stderr. */
  log(): string
  exited: Promise<void>
  /** SIGKILL, and wait until it is gone. */
  kill(): Promise<void>
}

/** Spawns `program` (checked with need()), collects its output, and kills it when the test ends. */
export function spawnPeer(
  t: ExecutionContext,
  program: string,
  args: string[],
  opts: { env?: NodeJS.ProcessEnv } = {},
): Peer {
  const proc = spawn(program.includes('/') ? program : need(program), args, {
    stdio: ['ignore', 'pipe', 'pipe'],
    ...opts,
  })
  let out = ''
  proc.stdout!.on('data', (d: Buffer) => {
    out += d.toString()
  })
  proc.stderr!.on('data', (d: Buffer) => {
    out += d.toString()
  })
  const exited = new Promise<void>((resolve) => proc.on('exit', () => resolve()))
  proc.on('error', (err) => t.fail(`${program}: ${err.message}`))
  const kill = async () => {
    if (proc.exitCode === null && proc.signalCode === null) proc.kill('SIGKILL')
    await exited
  }
  t.teardown(kill)
  return { proc, log: () => out, exited, kill }
}

/**
 * Waits until `peer` itself listens on every TCP port of `ports`. Throws PortTaken when another process
 * listens on one of them, or when the peer exits or logs that it could not bind; an error with the
 * peer's output when it exits otherwise. The peer is killed before either is thrown.
 */
export async function peerListening(
  name: string,
  peer: Peer,
  ports: number[],
  ms = kDeadlineMs,
): Promise<void> {
  const pid = peer.proc.pid!
  const deadline = Date.now() + ms
  let exited = false
  void peer.exited.then(() => {
    exited = true
  })
  for (;;) {
    const who = ports.map((p) => portListener(pid, p))
    if (who.every((w) => w === 'mine')) return
    const taken = who.includes('other')
    const cannot = /address already in use|EADDRINUSE|could not (create|bind)|cannot bind/i.test(peer.log())
    if (taken || cannot) {
      await peer.kill()
      throw new PortTaken(`${name}: port ${ports.join(' or ')} taken:\n${peer.log()}`)
    }
    if (exited) throw new Error(`${name} exited before listening on ${ports.join(', ')}:\n${peer.log()}`)
    if (Date.now() > deadline) {
      await peer.kill()
      throw new Error(`${name} not listening on ${ports.join(', ')} after ${ms} ms:\n${peer.log()}`)
    }
    await new Promise((r) => setTimeout(r, 25))
  }
}

/**
 * rsyslogd with two TCP inputs: whatever arrives on `lfPort` is forwarded to Spillway with LF framing
 * (omfwd's default, traditional format), whatever arrives on `octetPort` octet-counted in RFC 5424.
 */
export function startRsyslogRelay(
  t: ExecutionContext,
  dir: string,
  target: number,
): Promise<{ lfPort: number; octetPort: number }> {
  need('rsyslogd')
  return onFreePorts(2, async ([lfPort, octetPort]) => {
    const d = join(dir, `rsyslog-${lfPort}`)
    mkdirSync(join(d, 'work'), { recursive: true })
    writeFileSync(
      join(d, 'rsyslog.conf'),
      `global(workDirectory="${d}/work")
module(load="imtcp")
input(type="imtcp" address="127.0.0.1" port="${lfPort}" ruleset="lf")
input(type="imtcp" address="127.0.0.1" port="${octetPort}" ruleset="octet")
ruleset(name="lf") { action(type="omfwd" target="127.0.0.1" port="${target}" protocol="tcp") }
ruleset(name="octet") {
  action(type="omfwd" target="127.0.0.1" port="${target}" protocol="tcp" TCP_Framing="octet-counted"
         template="RSYSLOG_SyslogProtocol23Format")
}
`,
    )
    const p = spawnPeer(t, 'rsyslogd', ['-n', '-f', join(d, 'rsyslog.conf'), '-i', join(d, 'rsyslogd.pid')])
    await peerListening('rsyslogd', p, [lfPort!, octetPort!])
    return { lfPort: lfPort!, octetPort: octetPort! }
  })
}

/**
 * syslog-ng with one TCP source, relaying to Spillway through both a network() destination (LF framed,
 * BSD format) and a syslog() destination (octet-counted RFC 5424).
 */
export function startSyslogNgRelay(t: ExecutionContext, dir: string, target: number): Promise<number> {
  const bin = needSyslogNg()
  return onFreePorts(1, async ([port]) => {
    const d = join(dir, `syslog-ng-${port}`)
    mkdirSync(d, { recursive: true })
    writeFileSync(
      join(d, 'syslog-ng.conf'),
      `@version: 3.38
options { use_dns(no); keep_hostname(yes); stats_freq(0); };
source s_in { network(ip("127.0.0.1") port(${port}) transport("tcp")); };
destination d_network { network("127.0.0.1" port(${target}) transport("tcp") persist-name("lf")); };
destination d_syslog { syslog("127.0.0.1" port(${target}) transport("tcp") persist-name("octet")); };
log { source(s_in); destination(d_network); destination(d_syslog); };
`,
    )
    const env = {
      ...process.env,
      SYSLOGNG_PREFIX: kSyslogNgPrefix,
      LD_LIBRARY_PATH: `${kSyslogNgPrefix}/lib:${kSyslogNgPrefix}/lib/syslog-ng`,
    }
    const args = [
      '-F',
      '-f',
      join(d, 'syslog-ng.conf'),
      '--persist-file',
      join(d, 'syslog-ng.persist'),
      '--pidfile',
      join(d, 'syslog-ng.pid'),
      '--control',
      join(d, 'syslog-ng.ctl'),
      '--module-path',
      join(kSyslogNgPrefix, 'lib', 'syslog-ng', '3.38'),
    ]
    const p = spawnPeer(t, bin, args, { env })
    await peerListening('syslog-ng', p, [port!])
    return port!
  })
}
