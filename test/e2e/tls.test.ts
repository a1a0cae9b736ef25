import { execFileSync, spawn } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { type ConnectionOptions, connect, type TLSSocket } from 'node:tls'
import test from 'ava'
import { freePort } from '../helpers/peers.js'
import { pki, tlsPort } from '../helpers/pki.js'
import { need } from '../helpers/programs.js'
import { query, startServer, waitFor } from '../helpers/server.js'

function open(port: number, d: string, client?: string): Promise<TLSSocket> {
  return new Promise((resolve, reject) => {
    const opts: ConnectionOptions = { host: '127.0.0.1', port, ca: [readFileSync(join(d, 'ca.crt'))] }
    if (client !== undefined) {
      opts.cert = readFileSync(join(d, `${client}.crt`))
      opts.key = readFileSync(join(d, `${client}.key`))
    }
    const s = connect(opts, () => resolve(s))
    s.on('error', reject)
  })
}

function tlsConfig(d: string, clientAuth: string) {
  return {
    listeners: [
      { transport: 'tcp', host: '127.0.0.1', port: 0 },
      {
        transport: 'tls',
        host: '127.0.0.1',
        port: 0,
        tls: { cert: join(d, 'server.crt'), key: join(d, 'server.key'), ca: join(d, 'ca.crt'), clientAuth },
      },
    ],
  }
}

test('a TLS listener: openssl s_client and a Node client, octet-counted and LF framing, transport "tls"', async (t) => {
  const d = pki(t)
  const srv = await startServer(t, { config: tlsConfig(d, 'none') })
  const port = await waitFor('the TLS listener', () => tlsPort(srv.stderr()))
  const body = '<13>1 - tlshost app - - - via s_client'
  await new Promise<void>((resolve) => {
    const p = spawn(
      need('openssl'),
      ['s_client', '-connect', `127.0.0.1:${port}`, '-CAfile', join(d, 'ca.crt'), '-quiet', '-no_ign_eof'],
      {
        stdio: ['pipe', 'ignore', 'ignore'],
      },
    )
    p.stdin.end(`${body.length} ${body}`)
    p.on('exit', () => resolve())
  })
  const s = await open(port, d)
  s.end('<13>1 - tlshost app - - - lf over tls\n')
  const rows = await waitFor('both messages', () => {
    const r = query<{ msg: string; transport: string }>(
      srv.journalPath,
      'SELECT msg, transport FROM messages ORDER BY msg',
    )
    return r.length === 2 ? r : undefined
  })
  t.deepEqual(rows, [
    { msg: 'lf over tls', transport: 'tls' },
    { msg: 'via s_client', transport: 'tls' },
  ])
})

test('/metrics counts TLS messages as transport "tls", not "tcp"', async (t) => {
  const d = pki(t)
  const metricsPort = await freePort()
  const srv = await startServer(t, {
    config: { ...tlsConfig(d, 'none'), metrics: { host: '127.0.0.1', port: metricsPort } },
  })
  const port = await waitFor('the TLS listener', () => tlsPort(srv.stderr()))
  const s = await open(port, d)
  s.end('<13>1 - tlshost app - - - one\n<13>1 - tlshost app - - - two\n')
  const text = await waitFor('two TLS messages in /metrics', async () => {
    const body = await (await fetch(`http://127.0.0.1:${metricsPort}/metrics`)).text()
    return body.includes('spillway_messages_received_total{transport="tls"} 2') ? body : undefined
  })
  t.regex(text, /^spillway_messages_received_total\{transport="tcp"\} 0$/m)
  t.is(query(srv.journalPath, "SELECT 1 FROM messages WHERE transport = 'tls'").length, 2)
})

test('clientAuth "require": a client certificate from the CA is let in and its subject logged; others are refused and counted', async (t) => {
  const d = pki(t)
  const srv = await startServer(t, { config: tlsConfig(d, 'require') })
  const port = await waitFor('the TLS listener', () => tlsPort(srv.stderr()))
  const ok = await open(port, d, 'client')
  ok.end('<13>1 - mtls app - - - trusted\n')
  await waitFor('the trusted message', () =>
    query(srv.journalPath, "SELECT 1 FROM messages WHERE msg = 'trusted'").length === 1 ? true : undefined,
  )
  await waitFor('the subject logged', () =>
    /tls-client listener="tls 127\.0\.0\.1:0" peer=127\.0\.0\.1:\d+ subject="CN=client1"/.test(srv.stderr())
      ? true
      : undefined,
  )
  // TLS 1.3: the client's handshake completes before the server has checked its certificate; the
  // refusal arrives as an alert after it. A server that let it in would leave the connection open.
  // (The refusal is the server closing the connection; an alert may or may not reach the client first.)
  for (const who of ['stranger', undefined]) {
    const s = await open(port, d, who)
    const ended = new Promise<string>((resolve) => {
      s.on('error', (err: NodeJS.ErrnoException) => resolve(err.code ?? err.message))
      s.on('close', () => resolve('closed without an alert'))
    })
    s.resume() // read, so the alert is seen
    s.write('<13>1 - mtls app - - - must not land\n')
    const how = await Promise.race([
      ended,
      new Promise<string>((r) => setTimeout(() => r('still open after 30 s'), 30_000).unref()),
    ])
    s.destroy()
    t.log(`${who ?? 'no certificate'}: ${how}`)
    t.not(how, 'still open after 30 s', `${who ?? 'no certificate'} was let in`)
  }
  // One line for both: refusals of one reason are logged at most once per 10 s.
  await waitFor('the refusal logged', () =>
    /connection-refused reason=tls_handshake .*listener="tls 127\.0\.0\.1:0"/.test(srv.stderr())
      ? true
      : undefined,
  )
  await waitFor('both refusals counted', () =>
    query<{ value: number }>(
      srv.journalPath,
      "SELECT value FROM stats WHERE name = 'tls_handshake_failures_total'",
    )[0]?.value === 2
      ? true
      : undefined,
  )
  // The refused connections are closed, so nothing of theirs can arrive after this.
  t.is(query(srv.journalPath, "SELECT 1 FROM messages WHERE msg = 'must not land'").length, 0)
  t.is(await srv.stop(), 0)
})

test('clientAuth "request": a certificate is asked for, not required; a valid one\'s subject is logged once', async (t) => {
  const d = pki(t)
  const srv = await startServer(t, { config: tlsConfig(d, 'request') })
  const port = await waitFor('the TLS listener', () => tlsPort(srv.stderr()))
  // From the CA, twice; none; from another CA: all are let in, only the first is on record.
  for (const [who, text] of [
    ['client', 'with a certificate'],
    ['client', 'again with it'],
    [undefined, 'without one'],
    ['stranger', 'with a foreign one'],
  ] as const) {
    const s = await open(port, d, who)
    await new Promise<void>((resolve) => {
      s.on('close', () => resolve())
      s.end(`<13>1 - req app - - - ${text}\n`)
    })
  }
  const rows = await waitFor('the four messages', () => {
    const r = query<{ msg: string }>(
      srv.journalPath,
      "SELECT msg FROM messages WHERE app = 'app' ORDER BY id",
    )
    return r.length === 4 ? r.map((x) => x.msg) : undefined
  })
  t.deepEqual(rows, ['with a certificate', 'again with it', 'without one', 'with a foreign one'])
  t.is(await srv.stop(), 0)
  const subjects = [
    ...srv.stderr().matchAll(/tls-client listener="tls 127\.0\.0\.1:0" peer=\S+ subject="([^"]*)"/g),
  ]
  t.deepEqual(
    subjects.map((m) => m[1]),
    ['CN=client1'],
  )
  t.notRegex(srv.stderr(), /connection-refused/)
})

test('SIGHUP reloads the certificate without dropping established connections', async (t) => {
  const d = pki(t)
  const srv = await startServer(t, { config: tlsConfig(d, 'none') })
  const port = await waitFor('the TLS listener', () => tlsPort(srv.stderr()))
  const before = await open(port, d)
  t.is(before.getPeerCertificate().subject.CN, 'spillway-one')
  execFileSync('cp', [join(d, 'server2.crt'), join(d, 'server.crt')])
  execFileSync('cp', [join(d, 'server2.key'), join(d, 'server.key')])
  srv.proc.kill('SIGHUP')
  await waitFor('tls-reloaded', () => (/tls-reloaded/.test(srv.stderr()) ? true : undefined))
  const after = await open(port, d)
  t.is(after.getPeerCertificate().subject.CN, 'spillway-two')
  after.end()
  before.end('<13>1 - hup app - - - still connected\n')
  await waitFor('the message on the old connection', () =>
    query(srv.journalPath, "SELECT 1 FROM messages WHERE msg = 'still connected'").length === 1
      ? true
      : undefined,
  )
  t.is(await srv.stop(), 0)
})
