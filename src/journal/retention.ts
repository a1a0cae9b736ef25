// Journal retention: rows older than maxAgeSeconds, beyond maxRows, or beyond maxBytes of used pages
// are deleted, oldest first, at most 1,000 rows per transaction, only when the worker has nothing else
// to do, so pruning never holds a batch up for long. Full-text entries of deleted rows go with them
// (the delete trigger in schema.ts). The file does not shrink: freed pages are reused by new rows. The
// newest row is never deleted.

import type Database from 'better-sqlite3'

const kRowsPerStep = 1000

export interface RetentionLimits {
  maxAgeSeconds: number
  maxRows: number
  maxBytes: number
}

export class Pruner {
  pruned = 0
  private readonly limits: RetentionLimits
  private readonly bounds: Database.Statement<[], { lo: number | null; hi: number | null }>
  /** The newest of the (at most 1,000) oldest rows received before the cutoff. */
  private readonly lastOld: Database.Statement<[number, number], { id: number | null }>
  private readonly usedPages: Database.Statement<[], { n: number }>
  private readonly pageSize: number
  private readonly deleteTx: (to: number) => number

  constructor(db: Database.Database, limits: RetentionLimits) {
    this.limits = limits
    this.bounds = db.prepare('SELECT min(id) AS lo, max(id) AS hi FROM messages')
    this.lastOld = db.prepare(
      `SELECT max(id) AS id FROM (SELECT id, received_at FROM messages ORDER BY id LIMIT ${kRowsPerStep})
       WHERE received_at < ? AND id >= ?`,
    )
    this.usedPages = db.prepare(
      'SELECT (SELECT page_count FROM pragma_page_count()) - (SELECT freelist_count FROM pragma_freelist_count()) AS n',
    )
    this.pageSize = db.pragma('page_size', { simple: true }) as number
    const del = db.prepare('DELETE FROM messages WHERE id <= ?')
    this.deleteTx = db.transaction((to: number) => del.run(to).changes)
  }

  get enabled(): boolean {
    return this.limits.maxAgeSeconds > 0 || this.limits.maxRows > 0 || this.limits.maxBytes > 0
  }

  /** Deletes up to 1,000 of the oldest rows if a limit is passed; returns whether it deleted any. */
  step(now: number): boolean {
    const { lo, hi } = this.bounds.get() ?? { lo: null, hi: null }
    if (lo === null || hi === null) return false
    const { maxAgeSeconds, maxRows, maxBytes } = this.limits
    let to = 0
    // Rows are deleted only from the oldest end, so ids stay dense and hi - lo + 1 is the row count.
    if (maxRows > 0 && hi - lo + 1 > maxRows) to = Math.min(lo + kRowsPerStep - 1, hi - maxRows)
    if (to === 0 && maxAgeSeconds > 0) to = this.lastOld.get(now - maxAgeSeconds * 1000, lo)?.id ?? 0
    if (to === 0 && maxBytes > 0 && this.usedPages.get()!.n * this.pageSize > maxBytes) {
      to = lo + kRowsPerStep - 1
    }
    // The newest row always stays: SQLite gives the next row max(id) + 1, so an emptied table would
    // reuse ids, and arrival order and the full-text high-water mark rely on ids only growing.
    to = Math.min(to, hi - 1)
    if (to < lo) return false
    this.pruned += this.deleteTx(to)
    return true
  }
}
