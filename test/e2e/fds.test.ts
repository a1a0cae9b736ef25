// File descriptors run out: the server started under a low open-file limit (prlimit, as a systemd unit's
// LimitNOFILE= or a shell's ulimit -n sets it), and more connections than descriptors.
import { createConnection, type Socket } from 'node:net'
import test from 'ava'
import { freePort } from '../helpers/peers.js'
import { query, sendTcp, startServer, waitFor, waitForRows } from '../helpers/server.js'

function stat(journalPath: string, name: string): number | undefined {
  return query<{ value: number }>(journalPath, 'SELECT value FROM stats WHERE name = ?', name)[0]?.value
}

/** When the server last wrote its stats table. */
function statsAt(journalPath: string): number {
  return query<{ at: number | null }>(journalPath, 'SELECT max(updated_at) AS at FROM stats')[0]!.at ?? 0
}

/** Connects from `localAddress`, sends one message, and settles open or closed by the server. */
function connectAndSend(port: number, localAddress: string, i: number): Promise<Socket> {
  return new Promise((resolve) => {
    const s = createConnection({ host: '127.0.0.1', port, localAddress })
    s.on('connect', () => {
      s.write(`<13>1 - src${localAddress} app - - - conn ${i}\n`)
      resolve(s)
    })
    s.on('error', () => resolve(s))
  })
}

test('more connections than file descriptors: refused beyond what the open-file limit leaves, nothing exits, capacity returns', async (t) => {
  const nofile = 256
  const srv = await startServer(t, {
    wrap: ['prlimit', `--nofile=${nofile}:${nofile}`],
    config: { limits: { maxConnectionsPerSource: 10_000 } },
  })
  const warning = await waitFor(
    'the open-file-limit warning',
    () => /open-file-limit limit=256 .*/.exec(srv.stderr())?.[0],
  )
  t.regex(warning, /maxConnections=10000 connectionsAllowed=(\d+) reserved=(\d+)/)
  const allowed = Number(/connectionsAllowed=(\d+)/.exec(warning)![1])
  t.true(allowed > 0 && allowed < nofile, warning)
  // Twice as many connections as descriptors, from two source addresses.
  const socks: Socket[] = []
  for (let i = 0; i < 2 * nofile; i += 32)
    socks.push(
      ...(await Promise.all(
        Array.from({ length: 32 }, (_, k) =>
          connectAndSend(srv.tcpPort, k % 2 ? '127.0.0.2' : '127.0.0.1', i + k),
        ),
      )),
    )
  t.teardown(() => {
    for (const s of socks) s.destroy()
  })
  // Every admitted connection's message is journaled; the rest were closed at accept and counted.
  await waitForRows(srv.journalPath, allowed)
  await waitFor('the stats round with every descriptor in use', () =>
    (stat(srv.journalPath, 'connections_open') ?? 0) === allowed ? true : undefined,
  )
  t.is(stat(srv.journalPath, 'connections_max'), allowed)
  t.is(stat(srv.journalPath, 'connections_refused_max_total'), 2 * nofile - allowed)
  t.regex(srv.stderr(), new RegExp(`connection-refused reason=max_connections peer=\\S+ .*limit=${allowed}`))
  t.is(query<{ n: number }>(srv.journalPath, 'SELECT count(*) AS n FROM messages')[0]!.n, allowed)
  t.is(srv.proc.exitCode, null, srv.stderr())
  for (const s of socks) s.destroy()
  await waitFor('the connections closed', () =>
    (stat(srv.journalPath, 'connections_open') ?? -1) === 0 ? true : undefined,
  )
  await sendTcp(srv.tcpPort, ['<13>1 - after app - - - capacity returned\n'])
  await waitForRows(srv.journalPath, allowed + 1)
  t.is(await srv.stop(), 0)
  t.notRegex(srv.stderr(), /EMFILE|fatal/)
})

test('descriptors exhausted by something else (idle connections to the metrics listener): senders are turned away, nothing exits, all resumes', async (t) => {
  const nofile = 256
  const port = await freePort()
  const srv = await startServer(t, {
    wrap: ['prlimit', `--nofile=${nofile}:${nofile}`],
    config: { metrics: { host: '127.0.0.1', port } },
  })
  await sendTcp(srv.tcpPort, ['<13>1 - h app - - - before\n'])
  await waitForRows(srv.journalPath, 1)
  // Scrapers that connect and never ask: the metrics listener is not capped, so they take every
  // descriptor the process has left.
  const idle: Socket[] = []
  t.teardown(() => {
    for (const s of idle) s.destroy()
  })
  for (let i = 0; i < nofile; i += 32)
    idle.push(
      ...(await Promise.all(
        Array.from(
          { length: 32 },
          () =>
            new Promise<Socket>((resolve) => {
              const s = createConnection({ host: '127.0.0.1', port })
              s.on('connect', () => resolve(s))
              s.on('error', () => resolve(s))
            }),
        ),
      )),
    )
  // A syslog sender now finds no descriptor at the server: closed at accept, its message never read.
  const turnedAway = await connectAndSend(srv.tcpPort, '127.0.0.1', 0)
  await new Promise((r) => (turnedAway.closed ? r(null) : turnedAway.on('close', r)))
  // Two stats rounds (process.memoryUsage() opens /proc/self/stat) pass with no descriptor free.
  for (let round = 0; round < 2; round++) {
    const last = statsAt(srv.journalPath)
    await waitFor(`stats round ${round + 1}`, () =>
      statsAt(srv.journalPath) > last ? true : undefined,
    ).catch((err) => {
      t.log(srv.stderr())
      throw err
    })
  }
  t.is(srv.proc.exitCode, null, srv.stderr())
  for (const s of idle) s.destroy()
  await sendTcp(srv.tcpPort, ['<13>1 - h app - - - after\n'])
  await waitForRows(srv.journalPath, 2)
  t.deepEqual(
    query<{ msg: string }>(srv.journalPath, 'SELECT msg FROM messages ORDER BY id').map((r) => r.msg),
    ['before', 'after'],
  )
  t.is(await srv.stop(), 0)
})
