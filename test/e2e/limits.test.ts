import { createConnection, type Socket } from 'node:net'
import test from 'ava'
import { query, sendTcp, sendUdp, startServer, stat, waitFor, waitForRows } from '../helpers/server.js'

/** Opens a connection and resolves once it is established (the server may still close it at once). */
function open(port: number): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const s = createConnection({ host: '127.0.0.1', port }, () => resolve(s))
    s.on('error', reject)
  })
}

function closed(s: Socket): Promise<void> {
  return new Promise((resolve) => (s.closed ? resolve() : s.on('close', () => resolve())))
}

test('past limits.maxConnections a connection is closed at accept, counted and logged; capacity returns', async (t) => {
  const srv = await startServer(t, { config: { limits: { maxConnections: 3 } } })
  const held = await Promise.all([open(srv.tcpPort), open(srv.tcpPort), open(srv.tcpPort)])
  const extra = await open(srv.tcpPort)
  extra.write('<13>refused\n')
  extra.on('error', () => {})
  await closed(extra)
  await waitFor('the refusal in the log', () =>
    /connection-refused reason=max_connections peer=127\.0\.0\.1 .*limit=3/.test(srv.stderr())
      ? true
      : undefined,
  )
  held[0]!.end('<13>held one\n')
  await closed(held[0]!)
  await sendTcp(srv.tcpPort, ['<13>after capacity returned\n'])
  await waitFor('the message after capacity returned', () =>
    query(srv.journalPath, "SELECT 1 FROM messages WHERE msg = 'after capacity returned'").length === 1
      ? true
      : undefined,
  )
  t.is(query(srv.journalPath, "SELECT 1 FROM messages WHERE msg = 'refused'").length, 0)
  await waitFor('the refusal counter', () =>
    stat(srv.journalPath, 'connections_refused_max_total') === 1 ? true : undefined,
  )
  for (const s of held) s.destroy()
  t.pass()
})

test('limits.maxConnectionsPerSource caps one address', async (t) => {
  const srv = await startServer(t, { config: { limits: { maxConnectionsPerSource: 2 } } })
  const held = await Promise.all([open(srv.tcpPort), open(srv.tcpPort)])
  const extra = await open(srv.tcpPort)
  extra.on('error', () => {})
  await closed(extra)
  await waitFor('the refusal in the log', () =>
    /connection-refused reason=max_connections_per_source peer=127\.0\.0\.1 .*limit=2/.test(srv.stderr())
      ? true
      : undefined,
  )
  for (const s of held) s.destroy()
  t.pass()
})

test('an allow-list refuses other sources over TCP and drops their UDP datagrams, counted', async (t) => {
  const srv = await startServer(t, {
    config: {
      listeners: [
        { transport: 'tcp', host: '127.0.0.1', port: 0, allow: ['10.0.0.0/8'] },
        { transport: 'udp', host: '127.0.0.1', port: 0, allow: ['192.0.2.1'] },
        { transport: 'tcp', host: '127.0.0.1', port: 0, allow: ['127.0.0.0/8'] },
      ],
    },
  })
  const other = await waitFor('the second TCP listener', () => {
    const ports = [...srv.stderr().matchAll(/listening transport=tcp host=\S+ port=(\d+)/g)]
    return ports[1] === undefined ? undefined : Number(ports[1][1])
  })
  const s = await open(srv.tcpPort)
  s.on('error', () => {})
  s.write('<13>from outside the list\n')
  await closed(s)
  await sendUdp(srv.udpPort, ['<13>udp from outside the list'])
  await sendTcp(other, ['<13>allowed\n'])
  await waitForRows(srv.journalPath, 1)
  await waitFor('both refusals counted', () =>
    stat(srv.journalPath, 'refused_not_allowed_total') === 2 ? true : undefined,
  )
  t.deepEqual(query<{ msg: string }>(srv.journalPath, 'SELECT msg FROM messages'), [{ msg: 'allowed' }])
  t.regex(
    srv.stderr(),
    /connection-refused reason=not_allowed peer=127\.0\.0\.1 listener="tcp 127\.0\.0\.1:0"/,
  )
})

test('a connection silent past limits.idleTimeoutSeconds is closed; what it sent is kept', async (t) => {
  const srv = await startServer(t, { config: { limits: { idleTimeoutSeconds: 1 } } })
  const s = await open(srv.tcpPort)
  s.write('<13>complete\n<13>unfinished line')
  const t0 = Date.now()
  await closed(s)
  t.true(Date.now() - t0 >= 900)
  await waitForRows(srv.journalPath, 2)
  t.deepEqual(query<{ msg: string }>(srv.journalPath, 'SELECT msg FROM messages ORDER BY id'), [
    { msg: 'complete' },
    { msg: 'unfinished line' },
  ])
  await waitFor('the idle counter', () =>
    stat(srv.journalPath, 'idle_timeouts_total') === 1 ? true : undefined,
  )
})

test('2,000 idle connections do not stop a new sender from being journaled', async (t) => {
  // all from 127.0.0.1 here, so the per-source cap must allow them
  const srv = await startServer(t, { config: { limits: { maxConnectionsPerSource: 5000 } } })
  const idle: Socket[] = []
  for (let i = 0; i < 2000; i += 100) {
    idle.push(...(await Promise.all(Array.from({ length: 100 }, () => open(srv.tcpPort)))))
  }
  t.teardown(() => {
    for (const s of idle) s.destroy()
  })
  await sendTcp(srv.tcpPort, ['<13>still served\n'])
  await waitForRows(srv.journalPath, 1)
  await waitFor('2,000 open connections in stats', () =>
    (stat(srv.journalPath, 'connections_open') ?? 0) >= 2000 ? true : undefined,
  )
  t.is(query<{ msg: string }>(srv.journalPath, 'SELECT msg FROM messages')[0]!.msg, 'still served')
})
