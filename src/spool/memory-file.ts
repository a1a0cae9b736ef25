// Memory batches that a stop could not wait to commit: the journal was held up (a `sqlite3` session
// holding the write lock, a full disk) and the service manager would soon kill the process. The journal
// worker writes the records it holds to `spool/memory-<ms>.spool` and exits; the next start journals
// that file before anything else, as the worker would have (memory batches before spool replay).
//
// The file holds spool records exactly as segments do (spool/record.ts), so `tail` and `grep` read it.
// It is not a segment: its name does not match, so the writer, the forwarder and replay leave it alone.
// It appears whole or not at all (written under a temporary name, flushed, then renamed), and how far
// it is journaled commits with its rows (table spool_memory_cursor), so each record is journaled once.

import { closeSync, fsyncSync, openSync, readdirSync, renameSync, writeSync } from 'node:fs'
import { join } from 'node:path'

const kPattern = /^memory-(\d+)\.spool$/

/** Names of the memory files in `dir`, oldest first. */
export function listMemoryFiles(dir: string): string[] {
  const found: [number, string][] = []
  for (const name of readdirSync(dir)) {
    const m = kPattern.exec(name)
    if (m) found.push([Number(m[1]), name])
  }
  return found.sort((a, b) => a[0] - b[0]).map((f) => f[1])
}

/** Writes the records in `bufs` to a new memory file, durably; returns its path. */
export function writeMemoryFile(dir: string, bufs: readonly Buffer[], now = Date.now()): string {
  let ms = now
  const taken = new Set(listMemoryFiles(dir))
  while (taken.has(`memory-${ms}.spool`)) ms++
  const path = join(dir, `memory-${ms}.spool`)
  const tmp = `${path}.tmp`
  const fd = openSync(tmp, 'w')
  try {
    for (const b of bufs) for (let off = 0; off < b.length; ) off += writeSync(fd, b, off, b.length - off)
    fsyncSync(fd)
  } finally {
    closeSync(fd)
  }
  renameSync(tmp, path)
  const dfd = openSync(dir, 'r')
  try {
    fsyncSync(dfd)
  } finally {
    closeSync(dfd)
  }
  return path
}
