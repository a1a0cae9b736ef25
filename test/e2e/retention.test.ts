import { execFile } from 'node:child_process'
import { promisify } from 'node:util'
import test from 'ava'
import { need } from '../helpers/programs.js'
import { query, sendTcp, startServer, waitFor, waitForRows } from '../helpers/server.js'

const run = promisify(execFile)

/** Rows journaled so far, pruned or not (ids are arrival order). */
function waitForMaxId(journalPath: string, n: number): Promise<number> {
  return waitFor(`id ${n} in ${journalPath}`, () => {
    const id = query<{ id: number | null }>(journalPath, 'SELECT max(id) AS id FROM messages')[0]!.id ?? 0
    return id >= n ? id : undefined
  })
}

function lines(from: number, to: number): string {
  let s = ''
  for (let i = from; i < to; i++) s += `<13>1 - h app - - - keep or prune ${i}\n`
  return s
}

test('journal.maxRows keeps the newest rows, and the full-text index follows', async (t) => {
  const srv = await startServer(t, { config: { journal: { maxRows: 1000 } } })
  await sendTcp(srv.tcpPort, [lines(0, 3500)])
  const kept = await waitFor('pruning to 1000 rows', () => {
    const r = query<{ n: number; lo: string; hi: string }>(
      srv.journalPath,
      'SELECT count(*) AS n, min(msg) AS lo, max(id) AS hi FROM messages',
    )[0]!
    return r.n === 1000 && Number(r.hi) === 3500 ? r : undefined
  })
  t.is(kept.n, 1000)
  // The histograms' per-minute counts follow the pruning (a delete trigger).
  t.is(query<{ n: number }>(srv.journalPath, 'SELECT sum(n) AS n FROM volume')[0]!.n, 1000)
  const msgs = query<{ msg: string }>(srv.journalPath, 'SELECT msg FROM messages ORDER BY id')
  t.is(msgs[0]!.msg, 'keep or prune 2500')
  t.is(msgs.at(-1)!.msg, 'keep or prune 3499')
  // Full text: pruned rows are gone from the index too, and the index is consistent.
  await waitFor('the index to catch up', () =>
    query(srv.journalPath, "SELECT rowid FROM messages_fts WHERE msg LIKE '%prune%'").length === 1000
      ? true
      : undefined,
  )
  await run(need('sqlite3'), [
    srv.journalPath,
    '.timeout 5000',
    "insert into messages_fts(messages_fts) values('integrity-check')",
  ])
  await waitFor('the pruned counter', () =>
    query<{ value: number }>(srv.journalPath, "SELECT value FROM stats WHERE name = 'pruned_rows_total'")[0]
      ?.value === 2500
      ? true
      : undefined,
  )
  t.pass()
})

test('journal.maxAgeSeconds deletes rows received longer ago', async (t) => {
  const srv = await startServer(t, { config: { journal: { maxAgeSeconds: 2 } } })
  await sendTcp(srv.tcpPort, [lines(0, 50)])
  await waitForRows(srv.journalPath, 50)
  // All but the newest row go (it stays so that ids keep growing: arrival order).
  await waitFor('the old rows to go', () =>
    query(srv.journalPath, 'SELECT 1 FROM messages').length === 1 ? true : undefined,
  )
  await sendTcp(srv.tcpPort, [lines(50, 60)])
  await waitForMaxId(srv.journalPath, 60)
  // Once newer rows exist, the last old one goes too; the new ones stay.
  await waitFor('only the new rows', () => {
    const ids = query<{ id: number }>(srv.journalPath, 'SELECT id FROM messages ORDER BY id').map((r) => r.id)
    return ids.join(',') === '51,52,53,54,55,56,57,58,59,60' ? true : undefined
  })
  t.pass()
})

test('journal.maxBytes deletes the oldest rows while the used pages pass the limit', async (t) => {
  const srv = await startServer(t, { config: { journal: { maxBytes: 512 * 1024, fullText: false } } })
  await sendTcp(srv.tcpPort, [lines(0, 20_000)])
  await waitForMaxId(srv.journalPath, 20_000)
  const used = await waitFor('used pages under the limit', () => {
    const r = query<{ n: number }>(
      srv.journalPath,
      'SELECT ((SELECT page_count FROM pragma_page_count()) - (SELECT freelist_count FROM pragma_freelist_count())) * (SELECT page_size FROM pragma_page_size()) AS n',
    )[0]!
    return r.n <= 512 * 1024 ? r.n : undefined
  })
  t.true(used <= 512 * 1024)
  const newest = query<{ msg: string }>(srv.journalPath, 'SELECT msg FROM messages ORDER BY id DESC LIMIT 1')
  t.is(newest[0]!.msg, 'keep or prune 19999')
})
