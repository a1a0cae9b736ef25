// Reads the journal's stats table (read-only): what `spillway stats` shows when the config has no
// metrics listener to ask.

import { existsSync } from 'node:fs'
import Database from 'better-sqlite3'
import { ErrorCodes, SpillwayError } from '../errors.js'

export function readStatsTable(journalPath: string): { at: number; stats: Record<string, number> } {
  if (!existsSync(journalPath)) {
    throw new SpillwayError(
      ErrorCodes.journal,
      `no journal at ${journalPath}: no server has run with this config`,
    )
  }
  const db = new Database(journalPath, { readonly: true, fileMustExist: true, timeout: 5000 })
  try {
    const rows = db.prepare('SELECT name, value, updated_at FROM stats').all() as {
      name: string
      value: number
      updated_at: number
    }[]
    return {
      at: rows.reduce((m, r) => Math.max(m, r.updated_at), 0),
      stats: Object.fromEntries(rows.map((r) => [r.name, r.value])),
    }
  } finally {
    db.close()
  }
}
