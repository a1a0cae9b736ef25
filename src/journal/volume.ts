// Messages per minute and severity, for histograms that need not count rows: the console's histogram of
// 24 hours reads 1,440 x 9 numbers instead of a million rows. Like the sender tally, the rows of one
// transaction are summed in memory (a map lookup per row) and written as one upsert per minute and
// severity inside that transaction; deleted rows leave it by a trigger (journal/schema.ts). Rows changed
// by hand with UPDATE are not followed.

import type Database from 'better-sqlite3'

/** Keys pack minute and severity: minute * 16 + severity + 1 (0 for a row without a severity). */
const kSlots = 16

export class VolumeTally {
  private readonly acc = new Map<number, number>()
  private readonly upsert: Database.Statement<[number, number, number]>

  constructor(db: Database.Database) {
    this.upsert = db.prepare(
      'INSERT INTO volume (minute, severity, n) VALUES (?, ?, ?) ON CONFLICT (minute, severity) DO UPDATE SET n = n + excluded.n',
    )
  }

  add(receivedAt: number, severity: number | null): void {
    const key = Math.floor(receivedAt / 60_000) * kSlots + (severity ?? -1) + 1
    this.acc.set(key, (this.acc.get(key) ?? 0) + 1)
  }

  /** Writes the sums, inside the caller's transaction. */
  flush(): void {
    for (const [key, n] of this.acc) this.upsert.run(Math.floor(key / kSlots), (key % kSlots) - 1, n)
    this.acc.clear()
  }

  /** A transaction rolled back: forget what it added. */
  discard(): void {
    this.acc.clear()
  }
}
