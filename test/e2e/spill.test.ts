import { execFile } from 'node:child_process'
import { readdirSync } from 'node:fs'
import { promisify } from 'node:util'
import test from 'ava'
import { need } from '../helpers/programs.js'
import {
  holdWriteLock,
  query,
  rowCount,
  sendTcp,
  spoolRecords,
  startServer,
  waitFor,
  waitForRows,
} from '../helpers/server.js'

const run = promisify(execFile)

function lines(conn: number, n: number): string {
  let s = ''
  for (let i = 0; i < n; i++) s += `<13>1 - c${conn} spill - - - conn=${conn} seq=${i}\n`
  return s
}

function assertExactlyOnceInOrder(
  t: import('ava').ExecutionContext,
  journalPath: string,
  conns: number,
  per: number,
): void {
  const rows = query<{ host: string; msg: string }>(journalPath, 'SELECT host, msg FROM messages ORDER BY id')
  t.is(rows.length, conns * per)
  const next = new Map<string, number>()
  for (const r of rows) {
    const i = next.get(r.host) ?? 0
    t.is(r.msg, `conn=${r.host.slice(1)} seq=${i}`)
    next.set(r.host, i + 1)
  }
  for (let c = 0; c < conns; c++) t.is(next.get(`c${c}`), per)
}

test('with the journal held back, connections spill to readable spool files; on release every message lands once, in order', async (t) => {
  const srv = await startServer(t, { config: { spool: { thresholdBytes: 2048 } } })
  // The journal exists once the server is up; an operator's sqlite3 shell now holds its write lock.
  const lock = await holdWriteLock(t, srv.journalPath)
  const conns = 8
  const per = 10_000
  await Promise.all(Array.from({ length: conns }, (_, c) => sendTcp(srv.tcpPort, [lines(c, per)])))
  // Each connection passed its 2 KiB threshold in its first read (whose rest stays in memory, ~1,700
  // of these lines at most), so the rest is in the spool, one readable line per message.
  const spooled = await waitFor('spooled records', () => {
    const r = spoolRecords(srv.spoolDir)
    return r.length >= conns * (per - 2000) ? r : undefined
  })
  t.regex(spooled[0]!, /^[0-9a-f]{8} \d{13} tcp 127\.0\.0\.1:\d+ - <13>1 - c\d spill - - - conn=\d seq=\d+$/)
  t.is(rowCount(srv.journalPath), 0)
  // The worker says, once, that it is waiting for the lock; ingestion went on regardless.
  await waitFor('journal-busy on stderr', () =>
    /journal-busy code=SQLITE_BUSY/.test(srv.stderr()) ? true : undefined,
  )
  await lock.release()
  await waitForRows(srv.journalPath, conns * per)
  assertExactlyOnceInOrder(t, srv.journalPath, conns, per)
  // Replayed segments are deleted: the spool ends empty.
  await waitFor('an empty spool', () =>
    readdirSync(srv.spoolDir).filter((f) => f.endsWith('.spool')).length === 0 ? true : undefined,
  )
  t.regex(srv.stderr(), /spill-start/)
  t.is(srv.stderr().match(/journal-busy/g)?.length, 1)
  t.regex(srv.stderr(), /journal-recovered/)
  t.is(await srv.stop(), 0)
})

test('durable mode: kill -9 once everything reached the spool; after restart the journal holds each message exactly once', async (t) => {
  const durable = { spool: { thresholdBytes: 0 } }
  const first = await startServer(t, { config: durable })
  const lock = await holdWriteLock(t, first.journalPath)
  const conns = 4
  const per = 3000
  await Promise.all(Array.from({ length: conns }, (_, c) => sendTcp(first.tcpPort, [lines(c, per)])))
  await waitFor('every message in the spool', () =>
    spoolRecords(first.spoolDir).length === conns * per ? true : undefined,
  )
  t.is(rowCount(first.journalPath), 0)
  await first.kill9()
  await lock.release()
  const second = await startServer(t, { dir: first.dir, config: durable })
  await waitForRows(second.journalPath, conns * per)
  assertExactlyOnceInOrder(t, second.journalPath, conns, per)
  t.regex(second.stderr(), /spool-found segments=\d+ bytes=\d+/)
  // The backlog's replay reports progress (at least its end), never a line per message.
  await waitFor('replay progress', () =>
    /replay-progress percent=100 bytes=(\d+)\/\1 rows=12000 rowsPerSec=\d+ etaSeconds=0/.test(second.stderr())
      ? true
      : undefined,
  )
  t.true(second.stderr().split('\n').length < 20)
  t.is(await second.stop(), 0)
})

test('durable mode: kill -9 while the journal is mid-replay neither loses nor duplicates', async (t) => {
  const durable = { spool: { thresholdBytes: 0, segmentBytes: 65536 }, journal: { batchRows: 100 } }
  const first = await startServer(t, { config: durable })
  const lock = await holdWriteLock(t, first.journalPath)
  const conns = 4
  const per = 10000
  await Promise.all(Array.from({ length: conns }, (_, c) => sendTcp(first.tcpPort, [lines(c, per)])))
  await waitFor('every message in the spool', () =>
    spoolRecords(first.spoolDir).length === conns * per ? true : undefined,
  )
  // Replay must be under way and unfinished when the kill lands, however fast this machine replays:
  // a trigger (created in the same transaction that lets the journal go) stalls the transaction that
  // inserts row 20,050 indefinitely (a cross join of the table with itself, three times). Replay then
  // commits up to there and no further; the kill lands while that transaction is open.
  await lock.release(`CREATE TRIGGER test_stall AFTER INSERT ON messages WHEN NEW.id = 20050
    BEGIN SELECT count(*) FROM messages a, messages b, messages c; END;`)
  // Transactions hold at most 100 rows: every one before the stalled one commits.
  await waitFor('replay up to the stalled transaction', () =>
    rowCount(first.journalPath) > 20_050 - 100 ? true : undefined,
  )
  await first.kill9()
  const partial = rowCount(first.journalPath)
  t.true(partial < 20_050, `${partial} rows before the kill: the stalled transaction committed`)
  // Mid-segment (with these sizes a segment holds ~780 records): the restart must resume inside one.
  const cursor = query<{ offset: number }>(first.journalPath, 'SELECT offset FROM spool_cursor')[0]!
  t.true(cursor.offset > 0, 'the kill landed at a segment boundary: pick another row to stall at')
  await run(need('sqlite3'), [first.journalPath, 'DROP TRIGGER test_stall'])
  const second = await startServer(t, { dir: first.dir, config: durable })
  await waitForRows(second.journalPath, conns * per)
  assertExactlyOnceInOrder(t, second.journalPath, conns, per)
  t.is(await second.stop(), 0)
})
