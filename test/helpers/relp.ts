// rsyslog relaying to Spillway over RELP (omrelp, Debian's rsyslog-relp), as docs/SENDERS.md has it:
// whatever arrives on its TCP input goes out through omrelp with a disk-assisted action queue, retried
// every second while Spillway is away. Foreground, own config, work directory and pid file.

import { type ChildProcess, spawn } from 'node:child_process'
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs'
import { connect, createServer, type Server } from 'node:net'
import { join } from 'node:path'
import type { ExecutionContext } from 'ava'
import { RelpFramer, type RelpSink } from '../../src/framing/relp.js'
import { waitFor } from './server.js'

export interface RelpRelay {
  /** rsyslog's TCP input (LF-framed): what is sent here is forwarded over RELP. */
  inputPort: number
  proc: ChildProcess
  output(): string
}

export interface RelpTls {
  ca: string
  cert: string
  key: string
}

export async function startRelpRelay(
  t: ExecutionContext,
  dir: string,
  relpPort: number,
  tls?: RelpTls,
): Promise<RelpRelay> {
  const r = join(dir, 'rsyslog-relp')
  mkdirSync(join(r, 'work'), { recursive: true })
  const portFile = join(r, 'input.port')
  const tlsParams =
    tls === undefined
      ? ''
      : `tls="on" tls.caCert="${tls.ca}" tls.myCert="${tls.cert}" tls.myPrivKey="${tls.key}" tls.authMode="certvalid"`
  writeFileSync(
    join(r, 'rsyslog.conf'),
    `global(workDirectory="${r}/work")
module(load="imtcp")
module(load="omrelp")
input(type="imtcp" address="127.0.0.1" port="0" listenPortFileName="${portFile}" ruleset="fwd")
ruleset(name="fwd") {
  action(type="omrelp" target="127.0.0.1" port="${relpPort}" template="RSYSLOG_SyslogProtocol23Format" ${tlsParams}
         queue.type="LinkedList" queue.filename="spillway_relp" queue.saveOnShutdown="on"
         action.resumeRetryCount="-1" action.resumeInterval="1")
}
`,
  )
  let out = ''
  const proc = spawn('rsyslogd', ['-n', '-f', join(r, 'rsyslog.conf'), '-i', join(r, 'pid')], {
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  proc.stdout!.on('data', (d: Buffer) => {
    out += d.toString()
  })
  proc.stderr!.on('data', (d: Buffer) => {
    out += d.toString()
  })
  proc.on('error', (err) => t.fail(`rsyslogd (Debian packages rsyslog, rsyslog-relp): ${err.message}`))
  t.teardown(() => {
    if (proc.exitCode === null) proc.kill('SIGKILL')
  })
  const inputPort = await waitFor(`rsyslog's input port in ${portFile}`, () => {
    if (proc.exitCode !== null) throw new Error(`rsyslogd exited: ${out}`)
    return existsSync(portFile) && readFileSync(portFile, 'utf8').trim() !== ''
      ? Number(readFileSync(portFile, 'utf8'))
      : undefined
  })
  return { inputPort, proc, output: () => out }
}

/**
 * A TCP proxy between a RELP client and a server that may die: it records, per connection, which
 * `syslog` frame each transaction number carried and which of them the server answered `200 OK`. So a
 * test can check what the server promised, whatever the client then does with its window.
 */
export class RelpWitness {
  /** DATA of every syslog frame the server acknowledged. */
  readonly acked = new Set<string>()
  port = 0
  private readonly server: Server

  constructor(upstreamPort: () => number) {
    this.server = createServer((client) => {
      const frames = new Map<number, string>()
      const upstream = connect({ host: '127.0.0.1', port: upstreamPort() })
      const up = new RelpFramer(1 << 20)
      const down = new RelpFramer(1 << 20)
      const fromClient: RelpSink = {
        onRelpFrame: (txnr, command, buf, start, end) => {
          if (command === 'syslog') frames.set(txnr, buf.toString('latin1', start, end))
        },
        onRelpError: () => client.destroy(),
      }
      const fromServer: RelpSink = {
        onRelpFrame: (txnr, command, buf, start, end) => {
          const data = frames.get(txnr)
          if (command === 'rsp' && data !== undefined && buf.toString('latin1', start, end).startsWith('200'))
            this.acked.add(data)
        },
        onRelpError: () => client.destroy(),
      }
      client.on('data', (d: Buffer) => {
        up.push(d, fromClient)
        upstream.write(d)
      })
      upstream.on('data', (d: Buffer) => {
        down.push(d, fromServer)
        client.write(d)
      })
      const end = () => {
        client.destroy()
        upstream.destroy()
      }
      for (const s of [client, upstream]) {
        s.on('error', end)
        s.on('close', end)
      }
    })
  }

  listen(t: ExecutionContext): Promise<number> {
    t.teardown(() => this.server.close())
    return new Promise((resolve) =>
      this.server.listen(0, '127.0.0.1', () => {
        const a = this.server.address()
        this.port = typeof a === 'object' && a !== null ? a.port : 0
        resolve(this.port)
      }),
    )
  }
}
