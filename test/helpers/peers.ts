// Real syslog daemons as senders: rsyslog and syslog-ng relaying to Spillway. Installed by
// ../shared/peers/install.sh (which .ci/run calls); each runs in the foreground with its own config,
// pid file and work directory under the test's temporary directory, never as the system daemon.

import { type ChildProcess, spawn } from 'node:child_process'
import { existsSync, mkdirSync, writeFileSync } from 'node:fs'
import { createConnection, createServer } from 'node:net'
import { join } from 'node:path'
import type { ExecutionContext } from 'ava'
import { waitFor } from './server.js'

export const kSyslogNgPrefix = process.env.SYSLOG_NG_PREFIX ?? '/opt/sng/usr'

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer()
    s.on('error', reject)
    s.listen(0, '127.0.0.1', () => {
      const a = s.address()
      s.close(() => resolve(typeof a === 'object' && a !== null ? a.port : 0))
    })
  })
}

async function accepting(port: number): Promise<void> {
  let ok = false
  await waitFor(`a listener on 127.0.0.1:${port}`, () => {
    if (ok) return true
    const c = createConnection({ host: '127.0.0.1', port }, () => {
      ok = true
      c.destroy()
    })
    c.on('error', () => {})
    return undefined
  })
}

function own(t: ExecutionContext, p: ChildProcess, name: string): () => string {
  let out = ''
  p.stdout?.on('data', (d: Buffer) => {
    out += d.toString()
  })
  p.stderr?.on('data', (d: Buffer) => {
    out += d.toString()
  })
  t.teardown(() => {
    if (p.exitCode === null) p.kill('SIGKILL')
  })
  p.on('error', (err) => t.fail(`${name}: ${err.message}`))
  return () => out
}

/**
 * rsyslogd with two TCP inputs: whatever arrives on `lfPort` is forwarded to Spillway with LF framing
 * (omfwd's default, traditional format), whatever arrives on `octetPort` octet-counted in RFC 5424.
 */
export async function startRsyslogRelay(
  t: ExecutionContext,
  dir: string,
  target: number,
): Promise<{ lfPort: number; octetPort: number }> {
  const d = join(dir, 'rsyslog')
  mkdirSync(join(d, 'work'), { recursive: true })
  const lfPort = await freePort()
  const octetPort = await freePort()
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
  const p = spawn('rsyslogd', ['-n', '-f', join(d, 'rsyslog.conf'), '-i', join(d, 'rsyslogd.pid')], {
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  own(t, p, 'rsyslogd')
  await accepting(lfPort)
  await accepting(octetPort)
  return { lfPort, octetPort }
}

/**
 * syslog-ng with one TCP source, relaying to Spillway through both a network() destination (LF framed,
 * BSD format) and a syslog() destination (octet-counted RFC 5424).
 */
export async function startSyslogNgRelay(t: ExecutionContext, dir: string, target: number): Promise<number> {
  const bin = join(kSyslogNgPrefix, 'sbin', 'syslog-ng')
  if (!existsSync(bin))
    throw new Error(`${bin} not found: run ../shared/peers/install.sh (or set SYSLOG_NG_PREFIX)`)
  const d = join(dir, 'syslog-ng')
  mkdirSync(d, { recursive: true })
  const port = await freePort()
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
  const p = spawn(bin, args, { env, stdio: ['ignore', 'pipe', 'pipe'] })
  own(t, p, 'syslog-ng')
  await accepting(port)
  return port
}
