import { execFile } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { promisify } from 'node:util'
import test from 'ava'
import Database from 'better-sqlite3'
import { kFullTextSchema, kSchema } from '../../src/journal/schema.js'
import { need } from '../helpers/programs.js'
import { query, sendTcp, startServer, stat, tempDir, waitFor, waitForRows } from '../helpers/server.js'

const run = promisify(execFile)

const kSearch = `SELECT m.id, m.host, m.msg FROM messages_fts JOIN messages AS m ON m.id = messages_fts.rowid
  WHERE messages_fts.msg LIKE ? ORDER BY m.id`

test('full-text search finds messages once the indexer has caught up, and follows deletes', async (t) => {
  const srv = await startServer(t)
  const lines: string[] = []
  for (let i = 0; i < 3000; i++) {
    const word =
      i % 100 === 0 ? 'upstream timeout after 30s' : i % 7 === 0 ? 'connection refused by db1' : 'ok'
    lines.push(`<14>1 - web${i % 5} nginx - - - req ${i} ${word}\n`)
  }
  await sendTcp(srv.tcpPort, [lines.join('')])
  await waitForRows(srv.journalPath, 3000)
  await waitFor('the index to catch up', () =>
    (stat(srv.journalPath, 'fts_indexed_to') ?? 0) >= 3000 && stat(srv.journalPath, 'fts_lag_rows') === 0
      ? true
      : undefined,
  )
  const hits = query<{ id: number; msg: string }>(srv.journalPath, kSearch, '%timeout%')
  t.is(hits.length, 30)
  t.true(hits.every((h) => h.msg.endsWith('upstream timeout after 30s')))
  const refused = [...Array(3000).keys()].filter((i) => i % 100 !== 0 && i % 7 === 0).length
  t.is(query(srv.journalPath, kSearch, '%connection refused by db1%').length, refused)
  t.is(query(srv.journalPath, kSearch, '%n refused by D%').length, refused) // inside words, any ASCII case
  // The sqlite3 shell, as the README shows it.
  const { stdout } = await run(need('sqlite3'), [
    srv.journalPath,
    "select count(*) from messages where id in (select rowid from messages_fts where msg like '%timeout%')",
  ])
  t.is(stdout.trim(), '30')
  // Deleting rows (retention, or an operator) takes them out of the index too.
  await run(need('sqlite3'), [srv.journalPath, '.timeout 5000', 'delete from messages where id <= 1000'])
  t.is(query(srv.journalPath, kSearch, '%timeout%').length, 20)
  await run(need('sqlite3'), [
    srv.journalPath,
    '.timeout 5000',
    "insert into messages_fts(messages_fts) values('integrity-check')",
  ])
  t.is(await srv.stop(), 0)
})

test('with journal.fullText off there is no index and nothing indexes', async (t) => {
  const srv = await startServer(t, { config: { journal: { fullText: false } } })
  await sendTcp(srv.tcpPort, ['<13>hello\n'])
  await waitForRows(srv.journalPath, 1)
  const tables = query<{ name: string }>(
    srv.journalPath,
    "SELECT name FROM sqlite_master WHERE name LIKE '%fts%'",
  )
  t.deepEqual(tables, [])
})

test('NUL bytes, invalid UTF-8 and unparseable headers are stored by rule and counted', async (t) => {
  const srv = await startServer(t)
  await sendTcp(srv.tcpPort, [
    Buffer.from('<13>bad \xff\xfe utf8\n', 'latin1'),
    Buffer.from('<13>nul\x00inside\x00\x00\n', 'latin1'),
    '<999>not a pri\n',
    '<13>fine\n',
  ])
  await waitForRows(srv.journalPath, 4)
  const rows = query<{ msg: string; parse_error: number }>(
    srv.journalPath,
    'SELECT msg, parse_error FROM messages ORDER BY id',
  )
  t.deepEqual(rows, [
    { msg: 'bad \ufffd\ufffd utf8', parse_error: 0 },
    { msg: 'nul\ufffdinside', parse_error: 0 },
    { msg: '<999>not a pri', parse_error: 1 },
    { msg: 'fine', parse_error: 0 },
  ])
  await waitFor('counters', () =>
    stat(srv.journalPath, 'invalid_utf8_total') === 1 &&
    stat(srv.journalPath, 'nul_messages_total') === 1 &&
    stat(srv.journalPath, 'parse_errors_total') === 1
      ? true
      : undefined,
  )
  t.deepEqual(query<{ msg: string }>(srv.journalPath, 'SELECT msg FROM messages WHERE parse_error'), [
    { msg: '<999>not a pri' },
  ])
})

test("the README's ten queries run in the sqlite3 shell against a live journal", async (t) => {
  const readme = readFileSync(new URL('../../../README.md', import.meta.url), 'utf8')
  const block = /```sql\n([\s\S]*?)```/.exec(readme)![1]!
  const queries = block
    .split(/^-- \d+\. .*$/m)
    .map((q) => q.trim())
    .filter((q) => q !== '')
  t.is(queries.length, 10)
  const srv = await startServer(t)
  await sendTcp(srv.tcpPort, [
    '<11>1 - db1 postgres - - - connection refused by peer\n<14>1 - web1 sshd - - - upstream timeout\n<999>bad\n',
  ])
  await waitForRows(srv.journalPath, 3)
  await waitFor('the index', () => ((stat(srv.journalPath, 'fts_indexed_to') ?? 0) >= 3 ? true : undefined))
  const results: string[] = []
  for (const q of queries) {
    const { stdout, stderr } = await run(need('sqlite3'), [srv.journalPath, q])
    t.is(stderr, '', q)
    results.push(stdout)
  }
  t.regex(results[3]!, /web1\|sshd\|upstream timeout/)
  t.regex(results[4]!, /postgres\|connection refused by peer/)
  t.regex(results[9]!, /<999>bad/)
})

test('a word index from an earlier version is dropped at start and rebuilt as trigrams', async (t) => {
  const dir = tempDir(t)
  const db = new Database(join(dir, 'journal.db'))
  db.pragma('journal_mode = WAL')
  db.exec(kSchema)
  // The index as an earlier version made it: words (unicode61), with positions.
  db.exec(kFullTextSchema.replace(", tokenize = 'trigram', detail = 'none'", ''))
  const insert = db.prepare(
    "INSERT INTO messages (received_at, msg, peer, transport) VALUES (?, ?, '192.0.2.1:514', 'tcp')",
  )
  for (let i = 0; i < 500; i++) insert.run(Date.now(), i % 10 === 0 ? `fooxxxxbar ${i}` : `plain ${i}`)
  db.exec(
    'INSERT INTO messages_fts (rowid, msg) SELECT id, msg FROM messages; UPDATE fts_state SET indexed_to = 500',
  )
  db.close()
  const srv = await startServer(t, { dir })
  await waitFor('the rebuild', () => (/fts-rebuild /.test(srv.stderr()) ? true : undefined))
  await waitFor('the index to catch up', () =>
    (stat(srv.journalPath, 'fts_indexed_to') ?? 0) >= 500 ? true : undefined,
  )
  const sql = query<{ sql: string }>(
    srv.journalPath,
    "SELECT sql FROM sqlite_master WHERE name = 'messages_fts'",
  )
  t.regex(sql[0]!.sql, /tokenize = 'trigram'/)
  t.is(query(srv.journalPath, kSearch, '%xxxx%').length, 50)
})
