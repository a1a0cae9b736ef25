// The journal worker alone, no sockets: a spool of N loadgen records (200-byte lines) is written
// directly, a server with no listeners is started on it, and the worker's replay time is read from its
// replay-caught-up event. In the same run, the SQLite ceiling (the journal's schema filled by one thread
// with a pre-parsed row) gives the ratio, and a second ceiling filled with the very rows the worker
// replays, parsed before the clock starts: the same SQLite work on the same data, no parsing. With --prefill M the journal first holds M rows (already
// full-text indexed), for the growth target: the replay rate on a large journal against an empty one.
//
//   npm run bench:replay -- [--records 1000000] [--runs 3] [--prefill 0] [--config '{...}']

import { spawn } from 'node:child_process'
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { parseArgs } from 'node:util'
import Database from 'better-sqlite3'
import { ParsedMessage, parseSyslog } from '../src/journal/parse.js'
import { connPrefix, maxRecordBytes, RecordEncoder } from '../src/spool/record.js'
import { segmentPath } from '../src/spool/segment.js'
import { fillJournal, inFreshJournal, journalInsert, median, sqliteCeiling } from './bench-util.js'
import { message } from './loadgen.js'

const { values } = parseArgs({
  options: {
    records: { type: 'string', default: '1000000' },
    runs: { type: 'string', default: '3' },
    prefill: { type: 'string', default: '0' },
    config: { type: 'string', default: '{}' },
  },
})
const N = Number(values.records)
const kMain = new URL('../src/cli/main.js', import.meta.url).pathname
const kSegmentBytes = 64 * 1024 * 1024

/** Writes N records into 64 MiB segments, as the spool writer would. */
function writeSpool(dir: string): number {
  mkdirSync(dir, { recursive: true })
  const enc = new RecordEncoder()
  const ms = Buffer.from(String(Date.now()), 'latin1')
  const prefixes = Array.from({ length: 10 }, (_, c) => connPrefix('tcp', `127.0.0.1:${40000 + c}`))
  let seg = 1
  let out = Buffer.allocUnsafe(kSegmentBytes + 4096)
  let off = 0
  let bytes = 0
  for (let i = 0; i < N; i++) {
    // Runs of 256 records per connection, as the socket thread spools what one read brought.
    const conn = Math.floor(i / 256) % 10
    const m = message(conn, i, 200, false)
    const prefix = prefixes[conn]!
    if (off + maxRecordBytes(prefix.length, m.length) > kSegmentBytes) {
      writeFileSync(segmentPath(dir, seg++), out.subarray(0, off))
      bytes += off
      out = Buffer.allocUnsafe(kSegmentBytes + 4096)
      off = 0
    }
    off = enc.encode(out, off, ms, prefix, m, 0, m.length - 1, 0)
  }
  writeFileSync(segmentPath(dir, seg), out.subarray(0, off))
  return bytes + off
}

/** The spool's records as insert parameters, in spool order (what writeSpool writes, parsed here). */
function spoolRows(receivedAt: number): unknown[][] {
  const rows: unknown[][] = []
  const p = new ParsedMessage()
  for (let i = 0; i < N; i++) {
    const conn = Math.floor(i / 256) % 10
    const m = message(conn, i, 200, false)
    parseSyslog(m.toString('utf8', 0, m.length - 1), receivedAt, p)
    rows.push([
      receivedAt,
      p.ts,
      p.facility,
      p.severity,
      p.host,
      p.app,
      p.procid,
      p.msgid,
      p.sd,
      p.msg,
      `127.0.0.1:${40000 + conn}`,
      'tcp',
      null,
      p.parseError,
      null,
    ])
  }
  return rows
}

/** rows/s of one thread inserting `rows` into a fresh journal, 10,000-row transactions, as the ceiling. */
function sameRowsCeiling(rows: unknown[][]): number {
  return inFreshJournal((db) => {
    const insert = journalInsert(db)
    // Positional parameters, as the worker binds them (an array parameter takes another path).
    const fill = db.transaction((from: number, to: number) => {
      for (let i = from; i < to; i++) {
        const r = rows[i]!
        insert.run(
          r[0],
          r[1],
          r[2],
          r[3],
          r[4],
          r[5],
          r[6],
          r[7],
          r[8],
          r[9],
          r[10],
          r[11],
          r[12],
          r[13],
          r[14],
        )
      }
    })
    const t0 = performance.now()
    for (let i = 0; i < rows.length; i += 10_000) fill(i, Math.min(rows.length, i + 10_000))
    return Math.round(rows.length / ((performance.now() - t0) / 1000))
  })
}

/** Rows/s of the worker's replay, and the server's peak RSS in MB (from its `stopped` line). */
async function replay(prefill: number): Promise<{ rate: number; peakRssMB: number }> {
  const dir = mkdtempSync(join(tmpdir(), 'spillway-replay-'))
  try {
    if (prefill > 0) {
      const db = new Database(join(dir, 'journal.db'))
      db.pragma('journal_mode = WAL')
      fillJournal(db, prefill)
      db.exec('UPDATE fts_state SET indexed_to = (SELECT max(id) FROM messages)')
      db.close()
    }
    writeSpool(join(dir, 'spool'))
    writeFileSync(
      join(dir, 'config.json'),
      JSON.stringify({ listeners: [], metrics: { port: 0 }, ...JSON.parse(values.config) }),
    )
    const proc = spawn(process.execPath, [kMain, 'serve', '--config', 'config.json'], {
      cwd: dir,
      stdio: ['ignore', 'ignore', 'pipe'],
    })
    let err = ''
    const secs = await new Promise<number>((resolve, reject) => {
      proc.stderr!.on('data', (d: Buffer) => {
        err += d.toString()
        const m = /replay-caught-up records=(\d+) seconds=([\d.]+)/.exec(err)
        if (m) resolve(Number(m[2]))
      })
      proc.on('exit', (code) => reject(new Error(`server exited ${code}: ${err}`)))
    })
    proc.kill('SIGTERM')
    await new Promise((r) => proc.on('exit', r))
    return { rate: N / secs, peakRssMB: Number(/peakRssMB=(\d+)/.exec(err)?.[1] ?? Number.NaN) }
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
}

const prefill = Number(values.prefill)
const rates: number[] = []
const full: number[] = []
const ceilings: number[] = []
const sameRows: number[] = []
const rowsForCeiling = spoolRows(Date.now())
for (let r = 0; r < Number(values.runs); r++) {
  // Interleaved, so drift on a shared machine hits each alike.
  const { rate, peakRssMB } = await replay(0)
  const ceiling = sqliteCeiling(N)
  const same = sameRowsCeiling(rowsForCeiling)
  rates.push(rate)
  ceilings.push(ceiling)
  sameRows.push(same)
  const line: Record<string, unknown> = {
    bench: 'replay',
    run: r + 1,
    records: N,
    rowsPerSec: Math.round(rate),
    ceiling,
    ceilingSameRows: same,
    peakRssMB,
  }
  if (prefill > 0) {
    const big = (await replay(prefill)).rate
    full.push(big)
    line.prefilled = prefill
    line.prefilledRowsPerSec = Math.round(big)
  }
  process.stdout.write(`${JSON.stringify({ ...line, node: process.version })}\n`)
}
const r = median(rates)
const c = median(ceilings)
const s = median(sameRows)
process.stdout.write(
  `\nmedians of ${rates.length}: worker replay ${Math.round(r / 1000)}k rows/s, SQLite ceiling ${Math.round(c / 1000)}k rows/s: ${Math.round((100 * r) / c)}% of it; with the replayed rows themselves ${Math.round(s / 1000)}k rows/s: ${Math.round((100 * r) / s)}%\n`,
)
if (full.length > 0) {
  const f = median(full)
  process.stdout.write(
    `with ${prefill} rows already in the journal: ${Math.round(f / 1000)}k rows/s, ${Math.round((100 * f) / r)}% of the empty-journal rate\n`,
  )
}
