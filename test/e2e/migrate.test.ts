// A journal written by an earlier version: the server opens it, brings it to today's schema (the edge
// column, an ALTER TABLE; the full-text index as it is now), and keeps every row and the index working.
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import test from 'ava'
import Database from 'better-sqlite3'
import { kSchemaVersion } from '../../src/journal/schema.js'
import { query, sendTcp, startServer, tempDir, waitFor, waitForRows } from '../helpers/server.js'

const kV1 = readFileSync(new URL('../../../test/fixtures/journal-v1.sql', import.meta.url), 'utf8')

test('a journal of schema version 1 gains the edge column at start; its rows, views and index keep working', async (t) => {
  const dir = tempDir(t)
  const old = new Database(join(dir, 'journal.db'))
  old.pragma('journal_mode = WAL')
  old.exec(kV1)
  const insert = old.prepare(
    `INSERT INTO messages (received_at, facility, severity, host, app, msg, peer, transport)
     VALUES (?, 1, 3, 'old1', 'app', ?, '192.0.2.1:514', 'tcp')`,
  )
  insert.run(1_700_000_000_000, 'written by version one, timeout')
  insert.run(1_700_000_000_001, 'another old row')
  t.false((old.pragma('table_info(messages)') as { name: string }[]).some((c) => c.name === 'edge'))
  old.close()

  const srv = await startServer(t, { dir })
  await sendTcp(srv.tcpPort, ['<11>1 - new1 app - - - written by this version, timeout\n'])
  await waitForRows(srv.journalPath, 3)
  t.deepEqual(
    query<{ id: number; host: string; msg: string; edge: string | null }>(
      srv.journalPath,
      'SELECT id, host, msg, edge FROM messages ORDER BY id',
    ),
    [
      { id: 1, host: 'old1', msg: 'written by version one, timeout', edge: null },
      { id: 2, host: 'old1', msg: 'another old row', edge: null },
      { id: 3, host: 'new1', msg: 'written by this version, timeout', edge: null },
    ],
  )
  t.deepEqual(query(srv.journalPath, 'PRAGMA user_version'), [{ user_version: kSchemaVersion }])
  t.deepEqual(
    query<{ name: string }>(srv.journalPath, "SELECT name FROM sqlite_master WHERE name = 'messages_edge'"),
    [{ name: 'messages_edge' }],
  )
  // The views are today's: log shows the edge column.
  t.deepEqual(query(srv.journalPath, 'SELECT host, edge FROM log WHERE id = 1'), [
    { host: 'old1', edge: null },
  ])
  // The indexer follows the old rows and the new one alike.
  const hits = await waitFor('the full-text index', () => {
    const r = query<{ rowid: number }>(
      srv.journalPath,
      "SELECT rowid FROM messages_fts WHERE msg LIKE '%timeout%' ORDER BY rowid",
    )
    return r.length === 2 ? r.map((x) => x.rowid) : undefined
  })
  t.deepEqual(hits, [1, 3])
  t.is(await srv.stop(), 0)
  // Started again on the migrated journal: nothing to add, nothing fails.
  const again = await startServer(t, { dir })
  await sendTcp(again.tcpPort, ['<13>after the second start\n'])
  await waitForRows(again.journalPath, 4)
  t.is(await again.stop(), 0)
  t.notRegex(again.stderr(), /fatal|duplicate column/)
})
