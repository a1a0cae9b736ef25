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
  for (const who of ['stranger', undefined]) {
    const refused = await open(port, d, who).then(
      (s) =>
        new Promise<boolean>((resolve) => {
          // TLS 1.3: the server's rejection arrives after the client's handshake completes
          s.on('error', () => resolve(true))
          s.on('close', () => resolve(true))
          s.write('<13>1 - mtls app - - - must not land\n')
        }),
      () => true,
    )
    t.true(refused)
  }
  await waitFor('the refusals logged', () =>
    /connection-refused reason=tls_handshake/.test(srv.stderr()) ? true : undefined,
  )
  t.is(query(srv.journalPath, "SELECT 1 FROM messages WHERE msg = 'must not land'").length, 0)
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
