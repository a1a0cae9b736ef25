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

// What each of the README's queries must find in the journal below, and the index its plan must use
// (EXPLAIN QUERY PLAN, on a journal as the server writes it: never ANALYZEd). Queries 7 and 8 walk the
// host or app index whole and filter by time in it: without ANALYZE statistics SQLite prefers the
// index that saves the GROUP BY's sort over the one that narrows to the last hour or day.
const kExpected: { rows: RegExp[]; plan: RegExp }[] = [
  {
    rows: [
      /\|db1\|kernel\|warning\|disk almost full$/,
      /\|\|\|\|<999>bad$/,
      /\|web1\|nginx\|err\|upstream timeout after 30s$/,
      /\|web1\|sshd\|info\|Accepted publickey for deploy$/,
      /\|db1\|postgres\|err\|connection refused by peer$/,
    ],
    plan: /^`--SCAN m$/m, // the table itself in rowid order, newest first, no sort: its primary key
  },
  {
    rows: [/\|nginx\|err\|upstream timeout after 30s$/],
    plan: /SEARCH m USING INDEX messages_host \(host=\? AND received_at>\?\)/,
  },
  {
    rows: [/\|web1\|Accepted publickey for deploy$/],
    plan: /SEARCH m USING INDEX messages_app \(app=\? AND received_at>\?\)/,
  },
  {
    rows: [/\|web1\|nginx\|upstream timeout after 30s$/],
    plan: /SCAN messages_fts VIRTUAL TABLE INDEX[\s\S]*SEARCH m USING INTEGER PRIMARY KEY|SEARCH m USING INTEGER PRIMARY KEY[\s\S]*SCAN messages_fts VIRTUAL TABLE INDEX/,
  },
  {
    rows: [/\|postgres\|connection refused by peer$/],
    // the trigram index and the host index, in the order the planner prefers
    plan: /^(?=[\s\S]*SCAN messages_fts VIRTUAL TABLE INDEX)(?=[\s\S]*SEARCH m USING (INTEGER PRIMARY KEY|INDEX messages_host))/,
  },
  {
    rows: [/^\|1$/, /^err\|2$/, /^warning\|1$/, /^info\|1$/], // the unparseable row has no level
    plan: /SEARCH m USING INDEX messages_received_at \(received_at>\?\)/,
  },
  { rows: [/^(web1|db1)\|2$/, /^(web1|db1)\|2$/, /^\|1$/], plan: /USING COVERING INDEX messages_host/ },
  { rows: [/^(postgres|nginx)\|1$/, /^(postgres|nginx)\|1$/], plan: /USING INDEX messages_app/ },
  {
    rows: Array(5).fill(/^\d{4}-\d\d-\d\dT[\d:.]+Z\|/),
    plan: /SEARCH m USING INDEX messages_received_at \(received_at>\? AND received_at<\?\)/,
  },
  { rows: [/\|127\.0\.0\.1:\d+\|<999>bad$/], plan: /USING INDEX messages_parse_error/ },
]

test("the README's ten queries run in the sqlite3 shell against a live journal: each finds its rows, through an index", async (t) => {
  const readme = readFileSync(new URL('../../../README.md', import.meta.url), 'utf8')
  const block = /```sql\n([\s\S]*?)```/.exec(readme)![1]!
  const queries = block
    .split(/^-- \d+\. .*$/m)
    .map((q) => q.trim())
    .filter((q) => q !== '')
  t.is(queries.length, 10)
  const srv = await startServer(t)
  const from = new Date(Date.now() - 60_000)
  await sendTcp(srv.tcpPort, [
    '<11>1 - db1 postgres - - - connection refused by peer\n',
    '<14>1 - web1 sshd - - - Accepted publickey for deploy\n',
    '<11>1 - web1 nginx - - - upstream timeout after 30s\n',
    '<999>bad\n',
    '<12>1 - db1 kernel - - - disk almost full\n',
  ])
  await waitForRows(srv.journalPath, 5)
  await waitFor('the index', () => ((stat(srv.journalPath, 'fts_indexed_to') ?? 0) >= 5 ? true : undefined))
  // Query 9's window is an example date: here it is the five minutes from a minute before the sends.
  const sqlTime = (d: Date) => d.toISOString().slice(0, 19).replace('T', ' ')
  queries[8] = queries[8]!
    .replace('2026-11-23 10:00:00', sqlTime(from))
    .replace('2026-11-23 10:05:00', sqlTime(new Date(from.getTime() + 300_000)))
  for (const [i, q] of queries.entries()) {
    const { stdout, stderr } = await run(need('sqlite3'), [srv.journalPath, q])
    t.is(stderr, '', q)
    const lines = stdout.trim() === '' ? [] : stdout.trim().split('\n')
    const want = kExpected[i]!
    t.is(lines.length, want.rows.length, `query ${i + 1} rows:\n${stdout}`)
    for (const [j, re] of want.rows.entries()) t.regex(lines[j] ?? '', re, `query ${i + 1}, row ${j + 1}`)
    const plan = (await run(need('sqlite3'), [srv.journalPath, `EXPLAIN QUERY PLAN ${q}`])).stdout
    t.regex(plan, want.plan, `query ${i + 1} plan:\n${plan}`)
  }
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
