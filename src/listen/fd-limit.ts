// How many connections the open-file limit leaves room for. Every TCP connection is a file descriptor,
// and so are the spool segments being written and replayed, the journal and its -wal and -shm, SQLite's
// temporary files, the metrics listener's connections: with connections up to the limit, the next
// open() anywhere fails with EMFILE, and where that is the journal or a spool segment, the server could
// not go on. So connections get what the limit leaves after the descriptors the server holds once it has
// started, and kFdSpare more for its own files; one more is refused at accept, as at
// limits.maxConnections. nginx warns the same way ("worker_connections exceed open file resource limit").

import { readdirSync } from 'node:fs'
import { loadNative } from '../native.js'

const native = loadNative<{ nofile(): [number, number] }>('limits')

/**
 * Descriptors kept free beyond those open at start, for what the server opens later: the writer's two
 * of the current segment, the journal worker's, the replay decoder's and the forwarder's reads (two
 * each), a journal made anew (journal.db.new), SQLite's temporary files, /proc reads for stats, TLS
 * files at SIGHUP, and the metrics listener's connections.
 */
export const kFdSpare = 64

export interface FdBudget {
  /** RLIMIT_NOFILE after raising the soft limit to the hard one; -1: unlimited. */
  soft: number
  hard: number
  /** Descriptors the server holds now, and kFdSpare. */
  reserved: number
  /** What that leaves for connections (Infinity when unlimited). */
  connections: number
}

/**
 * The open-file limit (raised to the hard one where it was lower), and what it leaves for connections
 * once `listeners` more are bound (three each: a UDP listener's socket and its receive thread's wake-ups).
 */
export function fdBudget(listeners: number): FdBudget {
  const [soft, hard] = native.nofile()
  const reserved = openDescriptors() + 3 * listeners + kFdSpare
  return { soft, hard, reserved, connections: soft < 0 ? Number.POSITIVE_INFINITY : soft - reserved }
}

/** Descriptors open in this process, or kFdSpare where that cannot be read. */
function openDescriptors(): number {
  for (const dir of ['/proc/self/fd', '/dev/fd']) {
    try {
      return readdirSync(dir).length - 1 // the descriptor reading the directory
    } catch {}
  }
  return kFdSpare
}
