// docs/SENDERS.md recipes that can run here, run: nginx's syslog access log, rsyslog over TLS.
import { execFile } from 'node:child_process'
import { mkdirSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { promisify } from 'node:util'
import test from 'ava'
import { onFreePorts, peerListening, spawnPeer } from '../helpers/peers.js'
import { pki, tlsPort } from '../helpers/pki.js'
import { need, needRsyslogTls } from '../helpers/programs.js'
import { query, startServer, waitFor } from '../helpers/server.js'

const run = promisify(execFile)

test('nginx access_log syslog:server=... arrives with app "nginx"', async (t) => {
  const srv = await startServer(t)
  const d = join(srv.dir, 'nginx')
  mkdirSync(join(d, 'logs'), { recursive: true })
  // One process (master_process off): killing it leaves no worker behind holding the port.
  const port = await onFreePorts(1, async ([port]) => {
    writeFileSync(
      join(d, 'nginx.conf'),
      `daemon off;
master_process off;
pid ${d}/nginx.pid;
error_log ${d}/logs/error.log;
events {}
http {
  client_body_temp_path ${d}/tmp; proxy_temp_path ${d}/tmp; fastcgi_temp_path ${d}/tmp;
  uwsgi_temp_path ${d}/tmp; scgi_temp_path ${d}/tmp;
  access_log syslog:server=127.0.0.1:${srv.udpPort},facility=local7,tag=nginx,severity=info combined;
  server { listen 127.0.0.1:${port}; location / { return 200 "hi"; } }
}
`,
    )
    const nginx = spawnPeer(t, 'nginx', ['-p', d, '-c', join(d, 'nginx.conf'), '-e', 'stderr'])
    await peerListening('nginx', nginx, [port!])
    return port!
  })
  t.true((await fetch(`http://127.0.0.1:${port}/recipe-check`)).ok)
  const row = await waitFor(
    'the access log line',
    () =>
      query<{ app: string; facility: number; severity: number; msg: string; transport: string }>(
        srv.journalPath,
        "SELECT app, facility, severity, msg, transport FROM messages WHERE msg LIKE '%GET /recipe-check%'",
      )[0],
  )
  t.like(row, { app: 'nginx', facility: 23, severity: 6, transport: 'udp' })
})

test('rsyslog forwards over TLS with a client certificate; one from another CA is refused', async (t) => {
  const d = pki(t)
  const srv = await startServer(t, {
    config: {
      listeners: [
        { transport: 'tcp', host: '127.0.0.1', port: 0 },
        {
          transport: 'tls',
          host: '127.0.0.1',
          port: 0,
          tls: {
            cert: join(d, 'server.crt'),
            key: join(d, 'server.key'),
            ca: join(d, 'ca.crt'),
            clientAuth: 'require',
          },
        },
      ],
    },
  })
  const port = await waitFor('the TLS listener', () => tlsPort(srv.stderr()))
  needRsyslogTls()
  const relay = (name: string, client: string): Promise<number> => {
    const r = join(srv.dir, name)
    mkdirSync(join(r, 'work'), { recursive: true })
    return onFreePorts(1, async ([input]) => {
      writeFileSync(
        join(r, 'rsyslog.conf'),
        `global(workDirectory="${r}/work" DefaultNetstreamDriver="gtls"
  DefaultNetstreamDriverCAFile="${d}/ca.crt" DefaultNetstreamDriverCertFile="${d}/${client}.crt"
  DefaultNetstreamDriverKeyFile="${d}/${client}.key")
module(load="imtcp")
input(type="imtcp" address="127.0.0.1" port="${input}" ruleset="fwd")
ruleset(name="fwd") {
  action(type="omfwd" target="127.0.0.1" port="${port}" protocol="tcp" TCP_Framing="octet-counted"
         StreamDriver="gtls" StreamDriverMode="1" StreamDriverAuthMode="x509/certvalid"
         template="RSYSLOG_SyslogProtocol23Format" action.resumeRetryCount="2")
}
`,
      )
      const p = spawnPeer(t, 'rsyslogd', ['-n', '-f', join(r, 'rsyslog.conf'), '-i', join(r, 'pid')])
      await peerListening(`rsyslogd ${name}`, p, [input!])
      await run(need('logger'), [
        '--server',
        '127.0.0.1',
        '--port',
        String(input),
        '--tcp',
        '-t',
        name,
        `${name} over tls`,
      ])
      return input!
    })
  }
  await relay('trusted', 'client')
  const row = await waitFor(
    'the message over TLS',
    () =>
      query<{ app: string; transport: string }>(
        srv.journalPath,
        "SELECT app, transport FROM messages WHERE msg = 'trusted over tls'",
      )[0],
  )
  t.like(row, { app: 'trusted', transport: 'tls' })
  await relay('stranger', 'stranger')
  await waitFor('the refused handshake', () =>
    /connection-refused reason=tls_handshake/.test(srv.stderr()) ? true : undefined,
  )
  t.is(query(srv.journalPath, "SELECT 1 FROM messages WHERE msg = 'stranger over tls'").length, 0)
})
