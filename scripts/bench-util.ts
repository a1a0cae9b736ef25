// Helpers shared by the benchmark scripts.

import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { createServer } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import Database from 'better-sqlite3'
import { ParsedMessage, parseSyslog } from '../src/journal/parse.js'
import { kFullTextSchema, kSchema } from '../src/journal/schema.js'

/** A process's user+system CPU seconds, all threads (/proc/PID/stat, clock ticks of 1/100 s). */
export function cpuSeconds(pid: number): number {
  const f = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ')
  return (Number(f[11]) + Number(f[12])) / 100
}

/** A process's peak resident set size (VmHWM), in MB. */
export function peakRssMB(pid: number): number {
  const m = /VmHWM:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))
  return Math.round(Number(m?.[1] ?? 0) / 1024)
}

/** A TCP port free on 127.0.0.1 now. */
export function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const s = createServer().listen(0, '127.0.0.1', () => {
      const a = s.address()
      s.close(() => resolve(typeof a === 'object' && a !== null ? a.port : 0))
    })
  })
}

export function round(x: number): number {
  return Math.round(x * 1000) / 1000
}

export function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b)
  return s[Math.floor(s.length / 2)]!
}

/**
 * Fills `db` (the journal's schema, created here if missing) with `rows` rows of one parsed loggen line,
 * in 10,000-row transactions, as fast as one thread and SQLite go. Returns rows/s.
 */
export function fillJournal(db: Database.Database, rows: number): number {
  const insert = journalInsert(db)
  // A loggen line, parsed once: this measures SQLite, not the parser.
  const p = new ParsedMessage()
  parseSyslog(
    `<38>2026-11-23T14:18:38 localhost prg00000[1234]: seq: 0000000000, thread: 0000, runid: 1795443518, stamp: 2026-11-23T14:18:38 ${'PADD'.repeat(18)}`,
    Date.now(),
    p,
  )
  const fill = db.transaction((from: number, count: number) => {
    for (let i = from; i < from + count; i++) {
      insert.run(
        Date.now(),
        p.ts,
        p.facility,
        p.severity,
        p.host,
        p.app,
        p.procid,
        p.msgid,
        p.sd,
        `${p.msg} ${i}`,
        '127.0.0.1:40000',
        'tcp',
        null,
        0,
        null,
      )
    }
  })
  const t0 = performance.now()
  for (let i = 0; i < rows; i += 10_000) fill(i, Math.min(10_000, rows - i))
  return Math.round(rows / ((performance.now() - t0) / 1000))
}

/** The journal's schema in `db` (created if missing) and the insert the worker runs, all 15 columns. */
export function journalInsert(db: Database.Database): Database.Statement {
  db.exec(kSchema)
  db.exec(kFullTextSchema) // full-text deferred, as in the server: no insert trigger
  return db.prepare(
    `INSERT INTO messages (received_at, ts, facility, severity, host, app, procid, msgid, sd, msg, peer,
       transport, orig_len, parse_error, edge) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
  )
}

/** Runs `fill` (which returns rows/s) on a fresh journal in WAL mode with synchronous=FULL, as the server. */
export function inFreshJournal(fill: (db: Database.Database) => number): number {
  const dir = mkdtempSync(join(tmpdir(), 'spillway-ceiling-'))
  try {
    const db = new Database(join(dir, 'journal.db'))
    db.pragma('journal_mode = WAL')
    db.pragma('synchronous = FULL') // as the server's default
    const rate = fill(db)
    db.close()
    return rate
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
}

/** The journal's own schema filled by one thread as fast as SQLite goes: the ceiling for the worker. */
export function sqliteCeiling(rows: number): number {
  return inFreshJournal((db) => fillJournal(db, rows))
}
