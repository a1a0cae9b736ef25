// A read-only connection to the journal for the CLI (tail, senders, stats). WAL readers never slow the
// writer; a missing journal is said plainly, with what to do about it.

import { existsSync } from 'node:fs'
import Database from 'better-sqlite3'
import { ErrorCodes, SpillwayError } from '../errors.js'

export function openReadOnly(journalPath: string): Database.Database {
  if (!existsSync(journalPath)) {
    throw new SpillwayError(
      ErrorCodes.journal,
      `no journal at ${journalPath}: start the server (spillway serve) with the same --config first`,
    )
  }
  return new Database(journalPath, { readonly: true, fileMustExist: true, timeout: 5000 })
}
