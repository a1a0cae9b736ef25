import test from 'ava'
import { noDirect, query, sendTcp, startServer, waitFor, waitForRows } from '../helpers/server.js'

// journal/burst.ts: while the spool grows faster than the journal replays, replay waits and leaves the
// CPU to the sockets. The wait must end by itself and lose, repeat or reorder nothing.
test('a burst spooled faster than the journal replays: replay waits for its end, then every message lands once, in order', async (t) => {
  // Durable mode: every record goes through the spool, so the whole burst is spooled.
  const srv = await startServer(t, { config: { spool: { thresholdBytes: 0 } } })
  const conns = 6
  const per = 200_000
  const pad = 'x'.repeat(170)
  const blocks = Array.from({ length: conns }, (_, c) => {
    const lines: string[] = []
    for (let i = 0; i < per; i++) lines.push(`<14>1 - h${c} burst - - - ${i} ${pad}\n`)
    return Buffer.from(lines.join(''))
  })
  // 240 MB of records in well under a second here: far above the 64 MiB/s that counts as a burst.
  await Promise.all(blocks.map((b) => sendTcp(srv.tcpPort, [b])))
  await waitForRows(srv.journalPath, conns * per, 120_000)
  // A counter in the stats table, once the server has written it above 0.
  const positive = (name: string) =>
    waitFor(`${name} in the stats table`, () => {
      const r = query<{ value: number }>(srv.journalPath, 'SELECT value FROM stats WHERE name = ?', name)[0]
      return r !== undefined && r.value > 0 ? r.value : undefined
    })
  t.true((await positive('journal_burst_yields_total')) >= 1)
  // The burst's spool writes went around the page cache (spool.directIo), where the filesystem can.
  if (noDirect(srv.spoolDir) === null) {
    const direct = await positive('spool_direct_bytes_written_total')
    t.true(direct > 100_000_000, `${direct} B`)
  }
  const perHost = query<{ host: string; n: number; lo: number; hi: number }>(
    srv.journalPath,
    'SELECT host, count(*) AS n, min(CAST(msg AS INTEGER)) AS lo, max(CAST(msg AS INTEGER)) AS hi FROM messages GROUP BY host ORDER BY host',
  )
  t.deepEqual(
    perHost,
    Array.from({ length: conns }, (_, c) => ({ host: `h${c}`, n: per, lo: 0, hi: per - 1 })),
  )
  // Each connection's messages in the journal's order: every one follows its predecessor.
  const outOfOrder = query<{ n: number }>(
    srv.journalPath,
    `SELECT count(*) AS n FROM (
       SELECT CAST(msg AS INTEGER) AS i, lag(CAST(msg AS INTEGER)) OVER (PARTITION BY host ORDER BY id) AS prev
       FROM messages)
     WHERE prev IS NOT NULL AND i != prev + 1`,
  )[0]!.n
  t.is(outOfOrder, 0)
})
