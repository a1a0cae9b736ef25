// Full-text indexing behind the journal. An FTS5 trigger inside the insert transaction would cut the
// journal rate about five-fold, so rows are inserted unindexed and this indexer follows them: it runs
// only when the worker has nothing to journal, indexes the next id range in a short transaction, and
// commits its high-water mark (fts_state.indexed_to) in the same transaction, so a crash never indexes a
// row twice or skips one. Deleting journal rows removes them from the index (a delete trigger, which
// costs nothing on insert).

import type Database from 'better-sqlite3'

/** Aim for steps of about this long, so a batch arriving meanwhile waits no longer. */
const kTargetStepMs = 25
const kMinRows = 200
const kMaxRows = 20_000

export class FullTextIndexer {
  indexedTo: number
  /** Rows indexed since start. */
  indexed = 0
  private rowsPerStep = 1000
  private readonly maxId: Database.Statement<[], { n: number | null }>
  private readonly index: Database.Statement<[number, number]>
  private readonly mark: Database.Statement<[number]>
  private readonly oldest: Database.Statement<[number], { received_at: number }>
  private readonly stepTx: (from: number, to: number) => void

  constructor(db: Database.Database) {
    this.indexedTo = (
      db.prepare('SELECT indexed_to FROM fts_state WHERE id = 1').get() as { indexed_to: number }
    ).indexed_to
    this.maxId = db.prepare('SELECT max(id) AS n FROM messages')
    this.index = db.prepare(
      'INSERT INTO messages_fts (rowid, msg) SELECT id, msg FROM messages WHERE id > ? AND id <= ? ORDER BY id',
    )
    this.mark = db.prepare('UPDATE fts_state SET indexed_to = ? WHERE id = 1')
    this.oldest = db.prepare('SELECT received_at FROM messages WHERE id > ? ORDER BY id LIMIT 1')
    this.stepTx = db.transaction((from: number, to: number) => {
      this.index.run(from, to)
      this.mark.run(to)
    })
  }

  /** Indexes the next range if rows are waiting; returns whether it did any work. */
  step(): boolean {
    const max = this.maxId.get()?.n ?? 0
    if (max <= this.indexedTo) return false
    const to = Math.min(max, this.indexedTo + this.rowsPerStep)
    const t0 = performance.now()
    this.stepTx(this.indexedTo, to)
    const ms = performance.now() - t0
    this.indexed += to - this.indexedTo
    this.indexedTo = to
    // Adapt the step to the machine and the message sizes: long enough to amortise the commit, short
    // enough that the journal's next batch is not kept waiting.
    if (ms < kTargetStepMs / 2) this.rowsPerStep = Math.min(kMaxRows, this.rowsPerStep * 2)
    else if (ms > kTargetStepMs * 2) this.rowsPerStep = Math.max(kMinRows, this.rowsPerStep >> 1)
    return true
  }

  /** How far the index is behind the journal: rows, and the age of the oldest unindexed row. */
  lag(now: number): { rows: number; seconds: number } {
    const max = this.maxId.get()?.n ?? 0
    if (max <= this.indexedTo) return { rows: 0, seconds: 0 }
    const oldest = this.oldest.get(this.indexedTo)
    return {
      rows: max - this.indexedTo,
      seconds: oldest ? Math.max(0, (now - oldest.received_at) / 1000) : 0,
    }
  }
}
