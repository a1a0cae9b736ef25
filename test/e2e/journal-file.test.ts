import { chmodSync, existsSync, renameSync, rmSync } from 'node:fs'
import { join } from 'node:path'
import test from 'ava'
import Database from 'better-sqlite3'
import { freePort } from '../helpers/peers.js'
import {
  query,
  sendTcp,
  startServer,
  tempDir,
  unprivileged,
  waitFor,
  waitForRows,
} from '../helpers/server.js'

test("a read-only journal: SQLite's own error and what to do; no read-only -wal or -shm left behind to keep failing", async (t) => {
  const dir = tempDir(t)
  const first = await startServer(t, { dir })
  t.is(await first.stop(), 0)
  chmodSync(first.journalPath, 0o444)
  const err = await t.throwsAsync(startServer(t, { dir, wrap: unprivileged() }))
  t.regex(err!.message, /server exited with 1 before listening/)
  t.regex(
    err!.message,
    /spillway: journal \S+journal\.db: SQLITE_READONLY: attempt to write a readonly database/,
  )
  t.regex(err!.message, /journal\.db is not writable by this process \(mode 0444/)
  t.regex(err!.message, /chmod u\+w|chown/)
  t.false(existsSync(`${first.journalPath}-wal`), 'the failed start left journal.db-wal')
  t.false(existsSync(`${first.journalPath}-shm`), 'the failed start left journal.db-shm')
  // The operator fixes the mode: the next start works, with nothing else to clean up.
  chmodSync(first.journalPath, 0o644)
  const srv = await startServer(t, { dir, wrap: unprivileged() })
  await sendTcp(srv.tcpPort, ['<13>after the mode was fixed\n'])
  await waitForRows(srv.journalPath, 1)
  t.deepEqual(query(srv.journalPath, 'SELECT msg FROM messages'), [{ msg: 'after the mode was fixed' }])
  t.is(await srv.stop(), 0)
})

function lines(tag: string, n: number): string {
  let s = ''
  for (let i = 0; i < n; i++) s += `<13>1 - h app - - - ${tag} ${i}\n`
  return s
}

function tagged(journalPath: string, tag: string): string[] {
  return query<{ msg: string }>(
    journalPath,
    'SELECT msg FROM messages WHERE msg LIKE ? ORDER BY id',
    `${tag} %`,
  ).map((r) => r.msg)
}

test('the journal deleted while running: detected, a new journal holds every row journaled since, nothing lost across a restart', async (t) => {
  const srv = await startServer(t)
  await sendTcp(srv.tcpPort, [lines('before', 10)])
  await waitForRows(srv.journalPath, 10)
  // As an operator might: first the database file alone, then all three files.
  for (const [round, files] of [
    ['one', [srv.journalPath]],
    ['two', [srv.journalPath, `${srv.journalPath}-wal`, `${srv.journalPath}-shm`]],
  ] as const) {
    for (const f of files) rmSync(f, { force: true })
    await sendTcp(srv.tcpPort, [lines(round, 1000)])
    const recreated = round === 'one' ? 1 : 2
    await waitFor(`journal-recreated #${recreated}`, () =>
      (srv.stderr().match(/journal-recreated .*/g) ?? []).length === recreated ? true : undefined,
    )
    await waitFor(`the ${round} rows in the new journal`, () =>
      existsSync(srv.journalPath) && tagged(srv.journalPath, round).length === 1000 ? true : undefined,
    )
  }
  t.regex(srv.stderr(), /journal-recreated path=\S+journal\.db copiedRows=\d+/)
  t.is(await srv.stop(), 0)
  // The second deletion took the first round's rows with it, as asked; the second round's all stay.
  const again = await startServer(t, { dir: srv.dir })
  await sendTcp(again.tcpPort, [lines('three', 5)])
  await waitFor('the three rows', () => (tagged(again.journalPath, 'three').length === 5 ? true : undefined))
  t.deepEqual(
    tagged(again.journalPath, 'two'),
    Array.from({ length: 1000 }, (_, i) => `two ${i}`),
  )
  t.is(await again.stop(), 0)
})

test('the journal replaced by another file while running: held (health 503, logged), nothing written to either; moved away, a new journal takes every row', async (t) => {
  const port = await freePort()
  const srv = await startServer(t, { config: { metrics: { host: '127.0.0.1', port } } })
  await sendTcp(srv.tcpPort, [lines('before', 10)])
  await waitForRows(srv.journalPath, 10)
  const other = join(srv.dir, 'other.db')
  new Database(other).exec('CREATE TABLE unrelated (x); INSERT INTO unrelated VALUES (42)')
  renameSync(other, srv.journalPath) // replaces the journal's name
  await sendTcp(srv.tcpPort, [lines('held', 500)])
  const health = await waitFor('unhealthy', async () => {
    const r = await fetch(`http://127.0.0.1:${port}/healthz`)
    return r.status === 503 ? r.text() : undefined
  })
  t.regex(health, /journal: cannot be written \(journal\.db is another file now/)
  t.regex(srv.stderr(), /journal-replaced path=\S+journal\.db/)
  t.deepEqual(query(srv.journalPath, 'SELECT x FROM unrelated'), [{ x: 42 }])
  renameSync(srv.journalPath, join(srv.dir, 'moved-away.db'))
  await waitFor('the held rows in a new journal', () =>
    existsSync(srv.journalPath) && tagged(srv.journalPath, 'held').length === 500 ? true : undefined,
  )
  await waitFor('healthy again', async () =>
    (await fetch(`http://127.0.0.1:${port}/healthz`)).status === 200 ? true : undefined,
  )
  t.deepEqual(query(join(srv.dir, 'moved-away.db'), 'SELECT x FROM unrelated'), [{ x: 42 }])
  t.is(await srv.stop(), 0)
})
