import { existsSync, readdirSync } from 'node:fs'
import { createConnection } from 'node:net'
import test from 'ava'
import { holdWriteLock, query, sendTcp, startServer, waitFor, waitForRows } from '../helpers/server.js'
import { readByServer } from '../helpers/sockets.js'

/** Writes numbered messages as fast as the socket takes them until the server closes it. */
function flood(port: number, conn: number): Promise<number> {
  return new Promise((resolve) => {
    const s = createConnection({ host: '127.0.0.1', port })
    let seq = 0
    const pump = () => {
      while (seq < 200_000) {
        let chunk = ''
        for (let i = 0; i < 100; i++) chunk += `<13>1 - c${conn} flood - - - conn=${conn} seq=${seq++}\n`
        if (!s.write(chunk)) return
      }
      s.end()
    }
    s.on('connect', pump)
    s.on('drain', pump)
    s.on('error', () => {})
    s.on('close', () => resolve(seq))
  })
}

test('SIGTERM under load: exit 0, and every message the server read is journaled once, in order, after restart', async (t) => {
  const first = await startServer(t, { config: { spool: { thresholdBytes: 64 * 1024 } } })
  const conns = 6
  const senders = Array.from({ length: conns }, (_, c) => flood(first.tcpPort, c))
  await waitForRows(first.journalPath, 2000)
  t.is(await first.stop(), 0)
  await Promise.all(senders)
  const m = /stopped received=(\d+) spooled=(\d+) journaled=(\d+)/.exec(first.stderr())
  t.truthy(m, first.stderr())
  const received = Number(m![1])
  t.true(received > 2000)
  // What did not reach the journal before the stop is in the spool; a restart replays it.
  const second = await startServer(t, { dir: first.dir })
  // Up to 1.2 M rows to replay: 8 s on an idle machine, past 15 s on a loaded one.
  await waitForRows(second.journalPath, received, 90_000)
  const rows = query<{ host: string; msg: string }>(
    second.journalPath,
    'SELECT host, msg FROM messages ORDER BY id',
  )
  t.is(rows.length, received)
  const next = new Map<string, number>()
  for (const r of rows) {
    const i = next.get(r.host) ?? 0
    if (r.msg !== `conn=${r.host.slice(1)} seq=${i}`) {
      t.fail(`${r.host}: expected seq=${i}, got ${r.msg}`)
      break
    }
    next.set(r.host, i + 1)
  }
  await waitFor('the spool to be emptied', () =>
    readdirSync(second.spoolDir).some((f) => f.endsWith('.spool')) ? undefined : true,
  )
  t.is(await second.stop(), 0)
  t.regex(second.stderr(), /stopped received=0 /)
})

test('SIGTERM while a sqlite3 session holds the write lock: the server stops, its memory batches go to the spool, the next start journals them once', async (t) => {
  const first = await startServer(t)
  await sendTcp(first.tcpPort, ['<13>1 - c0 app - - - before\n'])
  await waitForRows(first.journalPath, 1)
  const lock = await holdWriteLock(t, first.journalPath)
  t.teardown(() => lock.release())
  // Below spool.thresholdBytes: these wait in memory for the journal, which cannot commit them.
  const n = 2000
  await Promise.all(
    [1, 2].map((c) => {
      let text = ''
      for (let i = 0; i < n; i++) text += `<13>1 - c${c} app - - - conn=${c} seq=${i}\n`
      return sendTcp(first.tcpPort, [text])
    }),
  )
  await waitFor('journal-busy', () =>
    /journal-busy code=SQLITE_BUSY/.test(first.stderr()) ? true : undefined,
  )
  // The lock is still held: the stop must not wait for it.
  const code = await Promise.race([
    first.stop(),
    new Promise<string>((r) => setTimeout(() => r('still running after 60 s'), 60_000).unref()),
  ])
  t.is(code, 0, first.stderr())
  const line = /journal-stop-spooled .*/.exec(first.stderr())?.[0] ?? ''
  t.regex(line, new RegExp(`records=${2 * n} `), first.stderr())
  t.regex(line, /journalError=SQLITE_BUSY/)
  const file = /file=(\S+)/.exec(line)![1]!
  t.true(existsSync(file), file)
  t.regex(file, /\/spool\/memory-\d+\.spool$/)
  await lock.release()
  const second = await startServer(t, { dir: first.dir })
  await waitForRows(second.journalPath, 1 + 2 * n)
  const rows = query<{ host: string; msg: string }>(
    second.journalPath,
    'SELECT host, msg FROM messages ORDER BY id',
  )
  t.is(rows.length, 1 + 2 * n)
  for (const c of [1, 2]) {
    const mine = rows.filter((r) => r.host === `c${c}`).map((r) => r.msg)
    t.deepEqual(
      mine,
      Array.from({ length: n }, (_, i) => `conn=${c} seq=${i}`),
    )
  }
  await waitFor('the memory file removed once journaled', () => (existsSync(file) ? undefined : true))
  t.deepEqual(query(second.journalPath, 'SELECT * FROM spool_memory_cursor'), [])
  t.is(await second.stop(), 0)
  // A third start journals nothing again.
  const third = await startServer(t, { dir: first.dir })
  await sendTcp(third.tcpPort, ['<13>1 - c9 app - - - last\n'])
  await waitForRows(third.journalPath, 2 + 2 * n)
  t.is(await third.stop(), 0)
  t.is(query<{ n: number }>(third.journalPath, 'SELECT count(*) AS n FROM messages')[0]!.n, 2 + 2 * n)
})

for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  test(`${signal}: exit 0, what was read is journaled, an unfinished frame of an open connection is dropped and counted`, async (t) => {
    const srv = await startServer(t)
    const s = createConnection({ host: '127.0.0.1', port: srv.tcpPort })
    s.on('error', () => {})
    await new Promise((resolve) => s.once('connect', resolve))
    s.write('<13>complete line\n<13>unfinished, its sender still connected')
    await waitForRows(srv.journalPath, 1)
    // Every byte read by the server before the signal: the unfinished frame is in its framer.
    await waitFor('the bytes read by the server', () =>
      readByServer(srv.tcpPort, s.localPort!) ? true : undefined,
    )
    srv.proc.kill(signal)
    t.is(await srv.exited, 0)
    t.regex(srv.stderr(), /stopping/)
    t.regex(srv.stderr(), /stopped received=1 .*partialDropped=1 /)
    t.deepEqual(query<{ msg: string }>(srv.journalPath, 'SELECT msg FROM messages'), [
      { msg: 'complete line' },
    ])
    t.deepEqual(
      query<{ value: number }>(
        srv.journalPath,
        "SELECT value FROM stats WHERE name = 'partial_frames_dropped_at_stop_total'",
      ),
      [{ value: 1 }],
    )
  })
}
