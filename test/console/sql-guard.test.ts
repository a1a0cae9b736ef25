import test from 'ava'
import Database from 'better-sqlite3'
import { checkPrepared, checkSql, Refused } from '../../src/console/sql-guard.js'

/** What the console does with a statement: the text check, then prepare on a read-only connection. */
function verdict(db: Database.Database, sql: string): string {
  try {
    checkSql(sql)
    checkPrepared(db.prepare(sql))
    return 'runs'
  } catch (err) {
    return err instanceof Refused ? `refused: ${err.message}` : `error: ${(err as Error).message}`
  }
}

test('reads run: SELECT, WITH, VALUES, EXPLAIN, read-only PRAGMAs', (t) => {
  const db = new Database(':memory:')
  db.exec('CREATE TABLE messages (id INTEGER PRIMARY KEY, msg TEXT)')
  for (const sql of [
    'SELECT * FROM messages',
    '  select count(*) from messages ;  ',
    '-- a comment\nSELECT 1 /* and another; with a semicolon */',
    "SELECT 'attach; detach; load_extension' AS text",
    'WITH x AS (SELECT 1 AS n) SELECT n FROM x',
    'VALUES (1, 2)',
    'EXPLAIN QUERY PLAN SELECT * FROM messages WHERE id = 1',
    'PRAGMA table_info(messages)',
    'PRAGMA main.table_info("messages")',
    'PRAGMA page_count',
    'PRAGMA compile_options',
    "SELECT * FROM pragma_table_info('messages')",
  ])
    t.is(verdict(db, sql), 'runs', sql)
})

test('everything that writes or changes the connection is refused, each with its reason', (t) => {
  const db = new Database(':memory:')
  db.exec('CREATE TABLE messages (id INTEGER PRIMARY KEY, msg TEXT)')
  const cases: [string, RegExp][] = [
    // ATTACH passes Statement.readonly, and would open (even create) another file.
    ["ATTACH '/tmp/other.db' AS other", /ATTACH is refused/],
    ["attach database 'x.db' as x", /ATTACH is refused/],
    ['DETACH other', /DETACH is refused/],
    ["EXPLAIN ATTACH 'x.db' AS x", /ATTACH is refused/],
    ["SELECT load_extension('/tmp/evil.so')", /load_extension is refused/],
    ['SELECT "load_extension"(\'/tmp/evil.so\')', /load_extension is refused/],
    // PRAGMAs that set something pass Statement.readonly too.
    ['PRAGMA query_only = 0', /PRAGMA query_only = \.\.\. is refused/],
    ['PRAGMA cache_size=-100000', /PRAGMA cache_size = \.\.\. is refused/],
    ['PRAGMA writable_schema = ON', /PRAGMA writable_schema = \.\.\. is refused/],
    ['PRAGMA journal_mode = DELETE', /refused/],
    ['PRAGMA cache_size(100)', /PRAGMA cache_size\(\.\.\.\) is refused/],
    ['PRAGMA wal_checkpoint', /PRAGMA wal_checkpoint is refused/],
    ['PRAGMA optimize', /PRAGMA optimize is refused/],
    ['PRAGMA mmap_size', /PRAGMA mmap_size is refused/],
    // A transaction held open would keep a snapshot and stop WAL checkpoints.
    ['BEGIN', /BEGIN is refused/],
    ['SAVEPOINT a', /SAVEPOINT is refused/],
    ['COMMIT', /COMMIT is refused/],
    ["VACUUM INTO '/tmp/copy.db'", /VACUUM is refused/],
    ['CREATE TEMP TABLE t (x)', /CREATE is refused/],
    ['INSERT INTO messages (msg) VALUES (1)', /INSERT is refused/],
    ['DELETE FROM messages', /DELETE is refused/],
    ['UPDATE messages SET msg = 1', /UPDATE is refused/],
    ['DROP TABLE messages', /DROP is refused/],
    ['ANALYZE', /ANALYZE is refused/],
    ['REINDEX', /REINDEX is refused/],
    // Writes dressed as a query: caught by Statement.readonly after the text check.
    ['WITH x AS (SELECT 1) DELETE FROM messages', /this statement would write/],
    ['WITH x AS (SELECT 1) INSERT INTO messages (msg) SELECT 1 FROM x', /this statement would write/],
    ['SELECT 1; DELETE FROM messages', /one statement at a time/],
    ['', /nothing to run/],
    ['  ;  ', /nothing to run/],
    ["SELECT 'unterminated", /an unterminated string/],
  ]
  for (const [sql, want] of cases) t.regex(verdict(db, sql), want, sql)
})
