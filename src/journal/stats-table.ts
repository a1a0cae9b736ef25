// Reads the journal's stats table (read-only): what `spillway stats` shows when the config has no
// metrics listener to ask.

import { openReadOnly } from './readonly.js'

export function readStatsTable(journalPath: string): { at: number; stats: Record<string, number> } {
  const db = openReadOnly(journalPath)
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
