import { createConnection } from 'node:net'
import test from 'ava'
import {
  query,
  type Running,
  sendTcp,
  startServer,
  tmpNoDirect,
  waitFor,
  waitForRows,
} from '../helpers/server.js'

/** A counter in the stats table, once the server has written it above 0. */
function positive(srv: Running, name: string): Promise<number> {
  return waitFor(`${name} in the stats table`, () => {
    const r = query<{ value: number }>(srv.journalPath, 'SELECT value FROM stats WHERE name = ?', name)[0]
    return r !== undefined && r.value > 0 ? r.value : undefined
  })
}

/** Each connection's messages, numbered from 0, in the journal's order: none missing, none twice. */
function checkInOrder(t: import('ava').ExecutionContext, srv: Running, conns: number, per: number): void {
  const perHost = query<{ host: string; n: number; lo: number; hi: number }>(
    srv.journalPath,
    'SELECT host, count(*) AS n, min(CAST(msg AS INTEGER)) AS lo, max(CAST(msg AS INTEGER)) AS hi FROM messages GROUP BY host ORDER BY host',
  )
  t.deepEqual(
    perHost,
    Array.from({ length: conns }, (_, c) => ({ host: `h${c}`, n: per, lo: 0, hi: per - 1 })),
  )
  const outOfOrder = query<{ n: number }>(
    srv.journalPath,
    `SELECT count(*) AS n FROM (
       SELECT CAST(msg AS INTEGER) AS i, lag(CAST(msg AS INTEGER)) OVER (PARTITION BY host ORDER BY id) AS prev
       FROM messages)
     WHERE prev IS NOT NULL AND i != prev + 1`,
  )[0]!.n
  t.is(outOfOrder, 0)
}

/**
 * Sends `per` numbered messages on each of `conns` connections at a steady rate: every 20 ms, each
 * connection writes the next `bytesPerTick` worth of lines. The rate is the test's, not the machine's.
 */
function paced(port: number, conns: number, per: number, bytesPerTick: number): Promise<void> {
  const pad = 'x'.repeat(170)
  const one = (c: number) =>
    new Promise<void>((resolve, reject) => {
      const s = createConnection({ host: '127.0.0.1', port })
      let i = 0
      const tick = () => {
        let chunk = ''
        while (i < per && chunk.length < bytesPerTick) chunk += `<14>1 - h${c} burst - - - ${i++} ${pad}\n`
        s.write(chunk)
        if (i < per) setTimeout(tick, 20)
        else s.end()
      }
      s.on('connect', tick)
      s.on('error', reject)
      s.on('close', () => resolve())
      s.resume()
    })
  return Promise.all(Array.from({ length: conns }, (_, c) => one(c))).then(() => undefined)
}

// journal/burst.ts: while the spool grows faster than journal.burstBytesPerSecond, replay waits and
// leaves the CPU to the sockets. The wait must end by itself and lose, repeat or reorder nothing. The
// spool grows at the rate the test sends, 8 MiB/s for ~2 s, eight times the 1 MiB/s set here: a burst
// on any machine that can take 8 MiB/s at all (the default, 64 MiB/s, would need a fast one).
test('a burst spooled faster than journal.burstBytesPerSecond: replay waits for its end, then every message lands once, in order', async (t) => {
  // Durable mode: every record goes through the spool, so the whole burst is spooled.
  const srv = await startServer(t, {
    config: { spool: { thresholdBytes: 0 }, journal: { burstBytesPerSecond: 1024 * 1024 } },
  })
  const conns = 4
  const per = 20_000 // ~4 MB a connection: 2 s of sending
  // 4 connections x 42 KB every 20 ms: 8 MiB/s.
  await paced(srv.tcpPort, conns, per, 42 * 1024)
  await waitForRows(srv.journalPath, conns * per, 120_000)
  t.true((await positive(srv, 'journal_burst_yields_total')) >= 1)
  t.true((await positive(srv, 'journal_burst_yield_seconds_total')) > 0)
  checkInOrder(t, srv, conns, per)
})

// Decided once: where the temporary directory refuses O_DIRECT, this does not run (ava lists it as
// skipped, with the reason).
const kNoDirect = tmpNoDirect()
const directTest = kNoDirect === null ? test : test.skip
directTest(
  `a burst's spool writes go around the page cache (spool.directIo)${kNoDirect === null ? '' : ` (skipped: ${kNoDirect})`}`,
  async (t) => {
    const srv = await startServer(t, { config: { spool: { thresholdBytes: 0 } } })
    const conns = 3
    const per = 100_000
    const pad = 'x'.repeat(170)
    const blocks = Array.from({ length: conns }, (_, c) => {
      const lines: string[] = []
      for (let i = 0; i < per; i++) lines.push(`<14>1 - h${c} burst - - - ${i} ${pad}\n`)
      return Buffer.from(lines.join(''))
    })
    // 60 MB as fast as the sockets take it: the spool writes 64 KiB and more at a time.
    await Promise.all(blocks.map((b) => sendTcp(srv.tcpPort, [b])))
    await waitForRows(srv.journalPath, conns * per, 120_000)
    const written = await positive(srv, 'spool_bytes_written_total')
    const direct = await positive(srv, 'spool_direct_bytes_written_total')
    t.true(direct > written / 2, `${direct} of ${written} B around the page cache`)
    checkInOrder(t, srv, conns, per)
  },
)
