// Rows into the messages table, several per INSERT statement. Journal worker thread (and the
// benchmarks' SQLite ceiling, so that it stays the fastest one thread can go).
//
// A single-row prepared INSERT costs a crossing into better-sqlite3, a bind of 15 values and a
// statement step and reset per row. With kRowsPerInsert rows per statement the crossing, the step and
// the reset are paid once for all of them; SQLite's own work (the table and three index B-trees) is
// the same. Measured on this machine (journal schema, WAL, 10,000-row transactions, 500 k rows):
// 1 row a statement 280-289 k rows/s, 8 rows 378-382 k, 16 rows 378 k, 32 rows 362-363 k.
//
// Rows wait in `args` until a statement's worth is there; flush() inserts the rest and must run before
// the transaction commits; discard() forgets what a transaction that failed left. Row ids are assigned
// in the order rows were added, as with one statement per row.

import type Database from 'better-sqlite3'

export const kRowsPerInsert = 8
const kColumns = 15

const kInsertHead = `INSERT INTO messages (received_at, ts, facility, severity, host, app, procid, msgid, sd, msg,
  peer, transport, orig_len, parse_error, edge) VALUES `
const kRowParams = `(${Array(kColumns).fill('?').join(', ')})`

function insertSql(rows: number): string {
  return kInsertHead + Array(rows).fill(kRowParams).join(', ')
}

export class RowInserter {
  private readonly db: Database.Database
  private readonly full: Database.Statement
  /** Statements for 1 .. kRowsPerInsert-1 rows, prepared when a flush first needs them. */
  private readonly tails: (Database.Statement | undefined)[] = []
  private readonly args: unknown[] = new Array(kColumns * kRowsPerInsert)
  private n = 0

  constructor(db: Database.Database) {
    this.db = db
    this.full = db.prepare(insertSql(kRowsPerInsert))
  }

  /** Adds one row, its columns in the table's order; inserts a statement's worth once there is one. */
  add(
    receivedAt: number,
    ts: number | null,
    facility: number | null,
    severity: number | null,
    host: string | null,
    app: string | null,
    procid: string | null,
    msgid: string | null,
    sd: string | null,
    msg: string,
    peer: string,
    transport: string,
    origLen: number | null,
    parseError: number,
    edge: string | null,
  ): void {
    const a = this.args
    const b = this.n * kColumns
    a[b] = receivedAt
    a[b + 1] = ts
    a[b + 2] = facility
    a[b + 3] = severity
    a[b + 4] = host
    a[b + 5] = app
    a[b + 6] = procid
    a[b + 7] = msgid
    a[b + 8] = sd
    a[b + 9] = msg
    a[b + 10] = peer
    a[b + 11] = transport
    a[b + 12] = origLen
    a[b + 13] = parseError
    a[b + 14] = edge
    if (++this.n === kRowsPerInsert) {
      this.n = 0
      this.full.run(a)
    }
  }

  /** Inserts the rows added since the last full statement. */
  flush(): void {
    const n = this.n
    if (n === 0) return
    this.n = 0
    this.tails[n] ??= this.db.prepare(insertSql(n))
    this.tails[n]!.run(this.args.slice(0, n * kColumns))
  }

  /** Forgets rows added but not inserted: the transaction they belonged to rolled back. */
  discard(): void {
    this.n = 0
  }
}
