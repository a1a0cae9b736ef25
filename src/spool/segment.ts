import { readdirSync } from 'node:fs'
import { join } from 'node:path'

// Segment files are named by a sequence number, zero-padded so `ls` and `tail -F spool/*` list them in
// the order they were written. Numbers only grow: a restarted writer starts past every segment on disk and
// past the journal's cursor, so a position (segment, offset) names one record forever. Past 12 digits a
// name simply grows longer (padStart never cuts), so the pattern takes 12 digits or more (with no leading
// zero, the name segmentName gives): a 13-digit segment must be replayed, listed and verified like any other.
const kSuffix = '.spool'
const kPattern = /^(\d{12}|[1-9]\d{12,15})\.spool$/

export function segmentName(seg: number): string {
  return `${String(seg).padStart(12, '0')}${kSuffix}`
}

export function segmentPath(dir: string, seg: number): string {
  return join(dir, segmentName(seg))
}

/** Segment numbers present in `dir`, ascending. */
export function listSegments(dir: string): number[] {
  const out: number[] = []
  for (const name of readdirSync(dir)) {
    const m = kPattern.exec(name)
    if (m) out.push(Number(m[1]))
  }
  return out.sort((a, b) => a - b)
}
