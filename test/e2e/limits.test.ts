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

/** Connects from `localAddress`; resolves once the server has accepted (or closed) it. */
function openFrom(port: number, localAddress: string): Promise<Socket> {
  return new Promise((resolve) => {
    const s = createConnection({ host: '127.0.0.1', port, localAddress })
    s.on('connect', () => resolve(s))
    s.on('error', () => resolve(s))
  })
}

test('slow senders cannot hold every connection: a message unfinished past limits.frameTimeoutSeconds closes its connection', async (t) => {
  // Scaled down from the defaults (10,000 connections, a minute): ten addresses take every slot.
  const srv = await startServer(t, { config: { limits: { maxConnections: 40, frameTimeoutSeconds: 2 } } })
  const slow: Socket[] = []
  t.teardown(() => {
    for (const s of slow) s.destroy()
  })
  for (let a = 2; a < 12; a++)
    for (let i = 0; i < 4; i++) slow.push(await openFrom(srv.tcpPort, `127.0.0.${a}`))
  await waitFor('every slot taken', () =>
    (stat(srv.journalPath, 'connections_open') ?? 0) === 40 ? true : undefined,
  )
  // While they hold the slots a real sender is refused.
  const refused = await openFrom(srv.tcpPort, '127.0.0.1')
  refused.on('error', () => {})
  refused.write('<13>1 - real app - - - refused\n')
  await closed(refused)
  await waitFor('the refusal in the log', () =>
    /connection-refused reason=max_connections peer=127\.0\.0\.1 .*limit=40/.test(srv.stderr())
      ? true
      : undefined,
  )
  // Each sends the first byte of a message it never finishes (one an hour would do).
  for (const s of slow) s.write(`<13>1 - slow app - - - a message that never ends`)
  // The real sender is served once their deadline has passed (each try says which it was).
  let attempt = 0
  await waitFor(
    'a connection for the real sender',
    async () => {
      const s = await openFrom(srv.tcpPort, '127.0.0.1')
      s.on('error', () => {})
      s.end(`<13>1 - real app - - - served ${attempt++}\n`)
      await closed(s)
      const served = query(srv.journalPath, "SELECT 1 FROM messages WHERE msg LIKE 'served %'")
      return served.length > 0 ? true : undefined
    },
    30_000,
  )
  await waitFor('the frame timeouts counted', () =>
    stat(srv.journalPath, 'frame_timeouts_total') === 40 ? true : undefined,
  )
  t.regex(
    srv.stderr(),
    /connection-closed reason=frame_timeout peer=127\.0\.0\.\d+:\d+ listener="tcp 127\.0\.0\.1:0" seconds=2/,
  )
  // What the slow senders sent is kept, as at EOF; the refused sender's message was never read.
  const msgs = query<{ msg: string }>(srv.journalPath, 'SELECT msg FROM messages').map((r) => r.msg)
  t.is(msgs.filter((m) => m === 'a message that never ends').length, 40)
  t.true(msgs.some((m) => m.startsWith('served ')))
  t.false(msgs.includes('refused'))
})
