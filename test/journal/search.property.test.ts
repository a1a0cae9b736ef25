import test from 'ava'
import Database from 'better-sqlite3'
import fc from 'fast-check'
import { FullTextIndexer } from '../../src/journal/fts.js'
import { kFullTextSchema, kSchema } from '../../src/journal/schema.js'
import { type Filter, Search } from '../../src/journal/search.js'
import { VolumeTally } from '../../src/journal/volume.js'

/** What a text search means, in plain JS: contains, ASCII letters in either case, the rest exactly. */
function contains(msg: string, text: string): boolean {
  const lower = (s: string) => s.replace(/[A-Z]/g, (c) => c.toLowerCase())
  return lower(msg).includes(lower(text))
}

function journal(rows: { msg: string; host: string; severity: number }[]): Database.Database {
  const db = new Database(':memory:')
  db.exec(kSchema)
  db.exec(kFullTextSchema)
  const insert = db.prepare(
    `INSERT INTO messages (received_at, severity, host, msg, peer, transport) VALUES (?, ?, ?, ?, '192.0.2.1:514', 'tcp')`,
  )
  for (const [i, r] of rows.entries()) insert.run(1_000_000 + i * 1000, r.severity, r.host, r.msg)
  return db
}

/** Indexes the rows up to `to` (what the server's indexer would have done by some moment). */
function indexTo(db: Database.Database, to: number): void {
  db.prepare('INSERT INTO messages_fts (rowid, msg) SELECT id, msg FROM messages WHERE id <= ?').run(to)
  db.prepare('UPDATE fts_state SET indexed_to = ? WHERE id = 1').run(to)
}

// Letters in both cases, accented ones (whose case LIKE does not fold), LIKE's wildcards, spaces.
const kChars = ['a', 'A', 'b', 'B', 'x', 'X', 'é', 'É', '%', '_', ' ', '1', '.', 'ß']
const message = fc.array(fc.constantFrom(...kChars), { maxLength: 16 }).map((a) => a.join(''))

test('a text search finds the same rows however far the full-text index has got', (t) => {
  fc.assert(
    fc.property(
      fc.array(
        fc.record({
          msg: message,
          host: fc.constantFrom('h1', 'h2'),
          severity: fc.integer({ min: 0, max: 7 }),
        }),
        {
          minLength: 1,
          maxLength: 40,
        },
      ),
      fc.array(fc.constantFrom(...kChars), { minLength: 1, maxLength: 5 }).map((a) => a.join('')),
      fc.nat(),
      fc.boolean(),
      (rows, text, cut, byHost) => {
        const db = journal(rows)
        try {
          const f: Filter = byHost ? { text, host: 'h1' } : { text }
          const want = rows
            .map((r, i) => ({ ...r, id: i + 1 }))
            .filter((r) => contains(r.msg, text) && (!byHost || r.host === 'h1'))
          const search = new Search(db)
          const seen: string[] = []
          // Before any indexing, part way, and after all of it: the same answer each time.
          for (const to of [0, cut % (rows.length + 1), rows.length]) {
            indexTo(db, to)
            const newest = search.newest(f, 1000).map((r) => r.id)
            const after = search.after(f, 0, 1000).map((r) => r.id)
            const h = search.histogram(f, 1_000_000, 1_000_000 + rows.length * 1000, 7)
            t.deepEqual(newest, want.map((r) => r.id).reverse())
            t.deepEqual(
              after,
              want.map((r) => r.id),
            )
            t.is(
              h.counts.flat().reduce((a, b) => a + b, 0),
              want.length,
            )
            // paging: the page below the newest match
            if (want.length > 1)
              t.deepEqual(
                search.newest(f, 1, want.at(-1)!.id).map((r) => r.id),
                [want.at(-2)!.id],
              )
            seen.push(JSON.stringify(newest))
          }
          return new Set(seen).size === 1
        } finally {
          db.close()
        }
      },
    ),
    { numRuns: 300 },
  )
})

test('the index is a trigram index the server indexer fills, and LIKE on it is what search uses', (t) => {
  const db = journal([
    { msg: 'upstream timeout after 30s', host: 'h1', severity: 3 },
    { msg: 'fooxxxxbar', host: 'h1', severity: 6 },
    { msg: 'XXXX', host: 'h2', severity: 6 },
  ])
  const indexer = new FullTextIndexer(db)
  while (indexer.step());
  t.is(indexer.indexedTo, 3)
  const plan = db
    .prepare(
      "EXPLAIN QUERY PLAN SELECT m.id FROM messages_fts AS f JOIN messages AS m ON m.id = f.rowid WHERE f.msg LIKE '%xxxx%'",
    )
    .all() as { detail: string }[]
  t.regex(plan.map((p) => p.detail).join('\n'), /VIRTUAL TABLE INDEX 0:L/)
  const search = new Search(db)
  t.deepEqual(
    search.newest({ text: 'xxxx' }, 10).map((r) => r.msg),
    ['XXXX', 'fooxxxxbar'],
  )
  t.deepEqual(
    search.newest({ text: 'out a' }, 10).map((r) => r.msg),
    ['upstream timeout after 30s'],
  )
  db.close()
})

test('a histogram from the volume table is the one counted row by row, deletes included', (t) => {
  const t0 = Date.UTC(2026, 10, 23, 10, 0, 17, 250) // not on a minute
  fc.assert(
    fc.property(
      fc.array(
        fc.record({
          at: fc.integer({ min: -40 * 60_000, max: 90 * 60_000 }),
          severity: fc.option(fc.integer({ min: 0, max: 7 }), { nil: null }),
        }),
        { maxLength: 300 },
      ),
      fc.array(fc.nat(), { maxLength: 30 }),
      fc.integer({ min: -50 * 60_000, max: 100 * 60_000 }),
      fc.integer({ min: 1, max: 150 * 60_000 }),
      fc.integer({ min: 1, max: 40 }),
      fc.option(fc.integer({ min: 0, max: 7 }), { nil: undefined }),
      (rows, deletes, fromOff, span, buckets, maxSeverity) => {
        const db = new Database(':memory:')
        try {
          db.exec(kSchema)
          // Counted from t0 on: earlier rows stand for a journal from before the volume table.
          db.prepare('UPDATE volume_state SET since = ? WHERE id = 1').run(t0)
          const volume = new VolumeTally(db)
          const insert = db.prepare(
            `INSERT INTO messages (received_at, severity, msg, peer, transport) VALUES (?, ?, 'x', '192.0.2.1:514', 'tcp')`,
          )
          db.transaction(() => {
            for (const r of rows) {
              insert.run(t0 + r.at, r.severity)
              if (t0 + r.at >= t0) volume.add(t0 + r.at, r.severity)
            }
            volume.flush()
          })()
          for (const d of deletes)
            if (rows.length > 0) db.prepare('DELETE FROM messages WHERE id = ?').run(1 + (d % rows.length))
          const search = new Search(db)
          const from = t0 + fromOff
          const f = maxSeverity === undefined ? {} : { maxSeverity }
          const byVolume = search.histogram(f, from, from + span, buckets)
          // The same filter with a condition every row meets: counted row by row.
          const byRows = search.histogram({ ...f, peer: '192.0.2.1' }, from, from + span, buckets)
          t.deepEqual(byVolume, byRows)
          const want = db
            .prepare(
              `SELECT count(*) AS n FROM messages WHERE received_at >= ? AND received_at < ?${maxSeverity === undefined ? '' : ' AND severity <= ?'}`,
            )
            .get(...(maxSeverity === undefined ? [from, from + span] : [from, from + span, maxSeverity])) as {
            n: number
          }
          return byVolume.counts.flat().reduce((a, b) => a + b, 0) === want.n
        } finally {
          db.close()
        }
      },
    ),
    { numRuns: 300 },
  )
})
