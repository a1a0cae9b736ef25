// The sender matrix of docs/SENDERS.md, with the real programs: every message of every sender arrives as
// one row, with the severity, facility, host, app, procid and text the sender meant. Each sender here is
// a Debian package CI installs (util-linux's logger, netcat-openbsd, python3, golang-go, rsyslog).

import { execFile, execFileSync, spawn } from 'node:child_process'
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs'
import { hostname } from 'node:os'
import { join } from 'node:path'
import { promisify } from 'node:util'
import test, { type ExecutionContext } from 'ava'
import { query, type Running, startServer, waitFor } from '../helpers/server.js'

const run = promisify(execFile)
const kHost = hostname()

interface Row {
  facility: number
  severity: number
  host: string | null
  app: string | null
  procid: string | null
  msg: string
  transport: string
  peer: string
}

/** Every listener a sender may need: TCP, UDP, a unix datagram socket and a unix stream socket. */
async function server(t: ExecutionContext): Promise<Running & { dgram: string; stream: string }> {
  const srv = await startServer(t, {
    config: {
      listeners: [
        { transport: 'tcp', host: '127.0.0.1', port: 0 },
        { transport: 'udp', host: '127.0.0.1', port: 0 },
        { transport: 'unix', path: 'log' },
        { transport: 'unix-stream', path: 'log-stream' },
      ],
    },
  })
  const dgram = join(srv.dir, 'log')
  const stream = join(srv.dir, 'log-stream')
  await waitFor('the unix listeners', () =>
    /listening transport=unix-stream/.test(srv.stderr()) ? true : undefined,
  )
  return { ...srv, dgram, stream }
}

/** The rows whose text contains `marker`, once there are `n` of them, in arrival order. */
function rows(srv: Running, marker: string, n: number): Promise<Row[]> {
  return waitFor(
    `${n} rows with ${marker}`,
    () => {
      const r = query<Row>(
        srv.journalPath,
        'SELECT facility, severity, host, app, procid, msg, transport, peer FROM messages WHERE msg LIKE ? ORDER BY id',
        `%${marker}%`,
      )
      return r.length >= n ? r : undefined
    },
    20_000,
  )
}

function pick(r: Row): Omit<Row, 'peer' | 'transport'> & { transport: string } {
  return {
    facility: r.facility,
    severity: r.severity,
    host: r.host,
    app: r.app,
    procid: r.procid,
    msg: r.msg,
    transport: r.transport,
  }
}

test('logger (util-linux): UDP, TCP, octet-counted, unix datagram and unix stream', async (t) => {
  const srv = await server(t)
  const tcp = ['--server', '127.0.0.1', '--port', String(srv.tcpPort), '--tcp']
  await run('logger', [
    '--server',
    '127.0.0.1',
    '--port',
    String(srv.udpPort),
    '--udp',
    '--rfc3164',
    '-p',
    'local3.err',
    '-t',
    'lg',
    'lg-udp one',
  ])
  await run('logger', [...tcp, '--rfc5424', '-p', 'daemon.warning', '-t', 'lg', 'lg-tcp two'])
  await run('logger', [
    ...tcp,
    '--octet-count',
    '--rfc5424',
    '-p',
    'user.info',
    '-t',
    'lg',
    '--id=4242',
    'lg-octet three',
  ])
  // Without --server, logger writes to a local socket: the one the machine's syslog daemon would own.
  await run('logger', [
    '--socket',
    srv.dgram,
    '--socket-errors=on',
    '-p',
    'auth.notice',
    '-t',
    'lg',
    'lg-dgram four',
  ])
  await run('logger', [
    '--socket',
    srv.stream,
    '--socket-errors=on',
    '-p',
    'mail.crit',
    '-t',
    'lg',
    'lg-stream five',
  ])
  const got = (await rows(srv, 'lg-', 5)).map(pick)
  const want = (
    facility: number,
    severity: number,
    procid: string | null,
    msg: string,
    transport: string,
  ) => ({
    facility,
    severity,
    host: kHost,
    app: 'lg',
    procid,
    msg,
    transport,
  })
  t.deepEqual(got, [
    want(19, 3, null, 'lg-udp one', 'udp'),
    want(3, 4, null, 'lg-tcp two', 'tcp'),
    want(1, 6, '4242', 'lg-octet three', 'tcp'),
    want(4, 5, null, 'lg-dgram four', 'unix'),
    want(2, 2, null, 'lg-stream five', 'unix'),
  ])
  // A local socket's peer is who the kernel says sent it, not anything in the text.
  const local = await rows(srv, 'lg-dgram', 1)
  t.regex(local[0]!.peer, /^pid=\d+,uid=\d+,gid=\d+$/)
})

test('netcat: lines without a PRI get the RFC 3164 defaults; the last line needs no newline', async (t) => {
  const srv = await server(t)
  execFileSync('nc', ['-q1', '127.0.0.1', String(srv.tcpPort)], {
    input: 'nc-line one\n<165>Nov 23 10:00:00 web1 ncapp[7]: nc-line two\nnc-line three',
  })
  t.deepEqual((await rows(srv, 'nc-line', 3)).map(pick), [
    { facility: 1, severity: 5, host: null, app: null, procid: null, msg: 'nc-line one', transport: 'tcp' },
    {
      facility: 20,
      severity: 5,
      host: 'web1',
      app: 'ncapp',
      procid: '7',
      msg: 'nc-line two',
      transport: 'tcp',
    },
    { facility: 1, severity: 5, host: null, app: null, procid: null, msg: 'nc-line three', transport: 'tcp' },
  ])
})

const kPython = `
import logging, logging.handlers, socket, sys, os
kind, target = sys.argv[1], sys.argv[2]
if kind == 'udp':
    h = logging.handlers.SysLogHandler(address=('127.0.0.1', int(target)))
elif kind == 'tcp':
    h = logging.handlers.SysLogHandler(address=('127.0.0.1', int(target)), socktype=socket.SOCK_STREAM)
else:
    h = logging.handlers.SysLogHandler(address=target)
h.setFormatter(logging.Formatter('%(name)s[%(process)d]: %(message)s'))
log = logging.getLogger('pyapp')
log.setLevel(logging.DEBUG)
log.addHandler(h)
log.error('py-%s error' % kind)
log.warning('py-%s warning' % kind)
log.info('py-%s info' % kind)
try:
    raise ValueError('boom')
except ValueError:
    log.exception('py-%s traceback' % kind)
plain = logging.getLogger('plain')
h2 = logging.handlers.SysLogHandler(address=h.address, socktype=h.socktype)
plain.addHandler(h2)
plain.warning('py-%s default format' % kind)
print(os.getpid())
`

test("Python's SysLogHandler over UDP, TCP (NUL-terminated) and a unix socket: one row per record", async (t) => {
  const srv = await server(t)
  const script = join(srv.dir, 'sender.py')
  writeFileSync(script, kPython)
  for (const [kind, target, transport] of [
    ['udp', String(srv.udpPort), 'udp'],
    ['tcp', String(srv.tcpPort), 'tcp'],
    ['unix', srv.dgram, 'unix'],
  ] as const) {
    const pid = (await run('python3', [script, kind, target])).stdout.trim()
    const got = (await rows(srv, `py-${kind} `, 5)).map(pick)
    // With a formatter that writes "name[pid]: ", Python's records read as app and procid; the host is
    // the machine's only over the local socket (Python sends none).
    const host = transport === 'unix' ? kHost : null
    const want = (severity: number, msg: string) => ({
      facility: 1,
      severity,
      host,
      app: 'pyapp',
      procid: pid,
      msg,
      transport,
    })
    t.deepEqual(got.slice(0, 3), [
      want(3, `py-${kind} error`),
      want(4, `py-${kind} warning`),
      want(6, `py-${kind} info`),
    ])
    // log.exception(): the traceback is part of the one record, over every transport.
    t.like(got[3], { severity: 3, app: 'pyapp' })
    t.regex(
      got[3]!.msg,
      new RegExp(
        `^py-${kind} traceback\\nTraceback \\(most recent call last\\):\\n[\\s\\S]*ValueError: boom$`,
      ),
    )
    // Python's default format is the bare message: no app.
    t.deepEqual(got[4], { ...want(4, `py-${kind} default format`), app: null, procid: null })
  }
})

const kGo = `package main

import (
	"fmt"
	"log/syslog"
	"os"
)

func main() {
	network, addr := os.Args[1], os.Args[2]
	w, err := syslog.Dial(network, addr, syslog.LOG_WARNING|syslog.LOG_DAEMON, "goapp")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	w.Err("go-" + network + " err")
	w.Warning("go-" + network + " warning")
	w.Info("go-" + network + " info")
	w.Close()
	fmt.Println(os.Getpid())
}
`

test("Go's log/syslog over UDP, TCP and a unix datagram socket", async (t) => {
  const srv = await server(t)
  const dir = join(srv.dir, 'go')
  mkdirSync(dir)
  writeFileSync(join(dir, 'main.go'), kGo)
  const bin = join(dir, 'sender')
  try {
    execFileSync('go', ['build', '-o', bin, 'main.go'], {
      cwd: dir,
      env: { ...process.env, GO111MODULE: 'off', GOCACHE: process.env.GOCACHE ?? join(dir, 'cache') },
    })
  } catch (err) {
    throw new Error(`go build failed (Debian package golang-go): ${(err as Error).message}`)
  }
  for (const [network, addr, transport] of [
    ['udp', `127.0.0.1:${srv.udpPort}`, 'udp'],
    ['tcp', `127.0.0.1:${srv.tcpPort}`, 'tcp'],
    ['unixgram', srv.dgram, 'unix'],
  ] as const) {
    const pid = (await run(bin, [network, addr])).stdout.trim()
    const want = (severity: number, msg: string) => ({
      facility: 3,
      severity,
      host: kHost,
      app: 'goapp',
      procid: pid,
      msg,
      transport,
    })
    t.deepEqual((await rows(srv, `go-${network} `, 3)).map(pick), [
      want(3, `go-${network} err`),
      want(4, `go-${network} warning`),
      want(6, `go-${network} info`),
    ])
  }
})

/**
 * rsyslog with the README's two omfwd recipes, each behind its own TCP input: whatever arrives there is
 * forwarded to Spillway, LF-framed in the traditional format, or octet-counted RFC 5424.
 */
async function rsyslogRecipes(t: ExecutionContext, srv: Running): Promise<{ lf: number; octet: number }> {
  const d = join(srv.dir, 'rsyslog')
  mkdirSync(join(d, 'work'), { recursive: true })
  writeFileSync(
    join(d, 'rsyslog.conf'),
    `global(workDirectory="${d}/work")
module(load="imtcp")
module(load="mmrm1stspace")
input(type="imtcp" address="127.0.0.1" port="0" listenPortFileName="${d}/lf.port" ruleset="lf")
input(type="imtcp" address="127.0.0.1" port="0" listenPortFileName="${d}/octet.port" ruleset="octet")
ruleset(name="lf") {
  action(type="omfwd" target="127.0.0.1" port="${srv.tcpPort}" protocol="tcp")
}
ruleset(name="octet") {
  if $protocol-version == "0" then action(type="mmrm1stspace")
  action(type="omfwd" target="127.0.0.1" port="${srv.tcpPort}" protocol="tcp" TCP_Framing="octet-counted"
         template="RSYSLOG_SyslogProtocol23Format")
}
`,
  )
  const p = spawn('rsyslogd', ['-n', '-f', join(d, 'rsyslog.conf'), '-i', join(d, 'pid')], {
    stdio: 'ignore',
  })
  p.on('error', (err) => t.fail(`rsyslogd (Debian package rsyslog): ${err.message}`))
  t.teardown(() => p.kill('SIGKILL'))
  const port = (name: string) =>
    waitFor(`rsyslog's ${name} input`, () => {
      const f = join(d, `${name}.port`)
      return existsSync(f) && readFileSync(f, 'utf8').trim() !== ''
        ? Number(readFileSync(f, 'utf8'))
        : undefined
    })
  return { lf: await port('lf'), octet: await port('octet') }
}

test('rsyslog omfwd, both README recipes, from RFC 3164 and RFC 5424 senders: the text as logged', async (t) => {
  const srv = await server(t)
  const relay = await rsyslogRecipes(t, srv)
  for (const [recipe, port] of [
    ['lf', relay.lf],
    ['octet', relay.octet],
  ] as const) {
    for (const format of ['--rfc3164', '--rfc5424']) {
      const text = `rs-${recipe}${format} hello`
      await run('logger', [
        '--server',
        '127.0.0.1',
        '--port',
        String(port),
        '--tcp',
        format,
        '-p',
        'local1.warning',
        '-t',
        'rsapp',
        text,
      ])
      await run('logger', [
        '--server',
        '127.0.0.1',
        '--port',
        String(port),
        '--tcp',
        format,
        '-p',
        'local1.warning',
        '-t',
        'rsapp',
        `  rs-${recipe}${format} indented`,
      ])
    }
  }
  for (const recipe of ['lf', 'octet']) {
    for (const format of ['--rfc3164', '--rfc5424']) {
      const got = (await rows(srv, `rs-${recipe}${format} `, 2)).map(pick)
      const want = (msg: string) => ({
        facility: 17,
        severity: 4,
        host: kHost,
        app: 'rsapp',
        procid: null,
        msg,
        transport: 'tcp',
      })
      t.deepEqual(got[0], want(`rs-${recipe}${format} hello`), `${recipe} recipe, logger ${format}`)
      // Leading spaces the sender meant are kept; only RFC 3164's separator after "tag:" is not text.
      // Except through the traditional (LF) format from an RFC 5424 sender: rsyslog writes the tag
      // without a colon there, and one space of the text cannot be told from the separator.
      const spaces = recipe === 'lf' && format === '--rfc5424' ? ' ' : '  '
      t.deepEqual(
        got[1],
        want(`${spaces}rs-${recipe}${format} indented`),
        `${recipe} recipe, logger ${format}, indented`,
      )
    }
  }
})

test('only a socket file from an earlier run is replaced: a live socket or another file is refused', async (t) => {
  const first = await server(t)
  // Another server pointed at the same paths while the first one receives there.
  for (const d of ['second', 'third', 'fourth']) mkdirSync(join(first.dir, d))
  // The TCP listener comes first, so the server is up before it fails on the unix one, and exits.
  const refused = async (dir: string, listener: Record<string, unknown>): Promise<string> => {
    const srv = await startServer(t, {
      dir: join(first.dir, dir),
      config: { listeners: [{ transport: 'tcp', host: '127.0.0.1', port: 0 }, listener] },
    })
    t.not(await srv.exited, 0)
    return srv.stderr()
  }
  t.regex(
    await refused('second', { transport: 'unix', path: first.dgram }),
    /is a socket another process receives on; not replacing it/,
  )
  t.regex(
    await refused('third', { transport: 'unix-stream', path: first.dgram }),
    /is a socket another process receives on; not replacing it/,
  )
  writeFileSync(join(first.dir, 'not-a-socket'), 'precious')
  t.regex(
    await refused('fourth', { transport: 'unix', path: join(first.dir, 'not-a-socket') }),
    /exists and is not a socket; not replacing it/,
  )
  t.is(readFileSync(join(first.dir, 'not-a-socket'), 'utf8'), 'precious')
  // A stale socket (its server killed) is replaced by the next start.
  await first.kill9()
  const again = await startServer(t, {
    dir: first.dir,
    config: {
      listeners: [
        { transport: 'tcp', host: '127.0.0.1', port: 0 },
        { transport: 'unix', path: 'log' },
      ],
    },
  })
  await run('logger', ['--socket', first.dgram, '--socket-errors=on', '-t', 'lg', 'stale-replaced'])
  t.is((await rows(again, 'stale-replaced', 1)).length, 1)
})
