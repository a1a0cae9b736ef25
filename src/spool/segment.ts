import { type Dirent, existsSync, mkdirSync, readdirSync, renameSync } from 'node:fs'
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

/** Segment numbers present in `dir` as regular files, ascending (see setAsideStrays for the others). */
export function listSegments(dir: string): number[] {
  const out: number[] = []
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const m = kPattern.exec(e.name)
    if (m && e.isFile()) out.push(Number(m[1]))
  }
  return out.sort((a, b) => a - b)
}

export interface Stray {
  seg: number
  kind: string
  movedTo: string
}

/**
 * Moves whatever is named like a segment but is not a regular file (a directory, a FIFO, a socket, a
 * symbolic link, a device) into `<dir>/corrupt/`, named `<segment>.<kind>`. Replay would fail on it at
 * every start (EISDIR), or hang (a FIFO blocks its reader), and the writer could not append to it; set
 * aside, it is kept as it was for an operator to inspect, as corrupt records are. Run before anything
 * reads or writes the spool.
 */
export function setAsideStrays(dir: string): Stray[] {
  const out: Stray[] = []
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const m = kPattern.exec(e.name)
    if (m === null || e.isFile()) continue
    const aside = join(dir, 'corrupt')
    mkdirSync(aside, { recursive: true })
    const kind = direntKind(e)
    let movedTo = join(aside, `${e.name}.${kind}`)
    for (let i = 2; existsSync(movedTo); i++) movedTo = join(aside, `${e.name}.${kind}.${i}`)
    renameSync(join(dir, e.name), movedTo)
    out.push({ seg: Number(m[1]), kind, movedTo })
  }
  return out.sort((a, b) => a.seg - b.seg)
}

function direntKind(e: Dirent): string {
  if (e.isDirectory()) return 'directory'
  if (e.isFIFO()) return 'fifo'
  if (e.isSocket()) return 'socket'
  if (e.isSymbolicLink()) return 'symlink'
  return 'device'
}
