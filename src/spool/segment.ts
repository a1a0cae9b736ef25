import { readdirSync } from 'node:fs'
import { join } from 'node:path'

// Segment files are named by a sequence number, zero-padded so `ls` and `tail -F spool/*` list them in
// the order they were written. Numbers only grow: a restarted writer starts past every segment on disk and
// past the journal's cursor, so a position (segment, offset) names one record forever.
const kSuffix = '.spool'
const kPattern = /^(\d{12})\.spool$/

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
