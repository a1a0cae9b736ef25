// Per-sender bookkeeping for the `senders` view: which devices send, since when, how much, the worst
// severity in the current hour, and when each was last heard from (the question an operator asks
// when a log stops arriving). Rows of one transaction are summed in memory and written as one upsert
// per sender inside that same transaction, so it costs a map lookup per row, not a query.

import type Database from 'better-sqlite3'
import { openReadOnly } from './readonly.js'

interface Acc {
  peer: string
  first: number
  last: number
  count: number
  worst: number
}

export class SenderTally {
  private readonly acc = new Map<string, Acc>()
  private readonly upsert: Database.Statement

  constructor(db: Database.Database) {
    // The worst severity is kept for the hour of last_seen; a message in a later hour starts it anew.
    this.upsert = db.prepare(`
      INSERT INTO sender_stats (sender, peer, first_seen, last_seen, messages, worst_severity_hour, hour)
      VALUES (@sender, @peer, @first, @last, @count, @worst, @hour)
      ON CONFLICT (sender) DO UPDATE SET
        peer = excluded.peer,
        last_seen = max(last_seen, excluded.last_seen),
        messages = messages + excluded.messages,
        worst_severity_hour = CASE WHEN hour = excluded.hour
          THEN min(worst_severity_hour, excluded.worst_severity_hour) ELSE excluded.worst_severity_hour END,
        hour = excluded.hour`)
  }

  /** One journaled row. The sender is its host, or its peer's address when it names none. */
  add(host: string | null, peer: string, receivedAt: number, severity: number | null): void {
    const key = host ?? peer.slice(0, peer.lastIndexOf(':'))
    const a = this.acc.get(key)
    const sev = severity ?? 7
    if (a === undefined) {
      this.acc.set(key, { peer, first: receivedAt, last: receivedAt, count: 1, worst: sev })
      return
    }
    a.peer = peer
    a.last = receivedAt
    a.count++
    if (sev < a.worst) a.worst = sev
  }

  /** Writes the sums, inside the caller's transaction. */
  flush(): void {
    for (const [sender, a] of this.acc) {
      this.upsert.run({
        sender,
        peer: a.peer,
        first: a.first,
        last: a.last,
        count: a.count,
        worst: a.worst,
        hour: Math.floor(a.last / 3_600_000),
      })
    }
    this.acc.clear()
  }

  /** A transaction rolled back: forget what it added. */
  discard(): void {
    this.acc.clear()
  }
}

export interface SenderRow {
  sender: string
  peer: string
  first_seen: number
  last_seen: number
  messages: number
  worst_severity_hour: number
}

/** Every sender, or those silent for at least `quietMs`, the longest silent first. Read-only. */
export function listSenders(journalPath: string, quietMs: number, now = Date.now()): SenderRow[] {
  const db = openReadOnly(journalPath)
  try {
    return db
      .prepare('SELECT * FROM sender_stats WHERE last_seen <= ? ORDER BY last_seen, sender')
      .all(now - quietMs) as SenderRow[]
  } finally {
    db.close()
  }
}
