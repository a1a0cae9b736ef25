// Messages between the socket thread (journal/client.ts) and the journal worker (journal/worker.ts).
// Memory batches travel as one transferred ArrayBuffer of spool records each: nothing is cloned.

export interface WorkerOptions {
  journalPath: string
  spoolDir: string
  batchRows: number
  synchronous: 'full' | 'normal'
  fullText: boolean
  walMaxBytes: number
  timezone: string
  retention: { maxAgeSeconds: number; maxRows: number; maxBytes: number }
}

export type ToWorker =
  | { t: 'batch'; id: number; buf: ArrayBuffer; len: number }
  /** The spool writer's progress: segment `seg` holds complete records up to `off`. */
  | { t: 'spooled'; seg: number; off: number }
  | { t: 'stats'; at: number; values: Record<string, number> }
  | { t: 'stop' }

export type FromWorker =
  | { t: 'ready'; cursorSeg: number; cursorOff: number; rows: number }
  /** Batches committed (their memory may be released), and the spool cursor after the commit. */
  | {
      t: 'progress'
      acked: number[]
      cursorSeg: number
      cursorOff: number
      journaled: number
      corrupt: number
      parseErrors: number
      /** Receive time of the last record journaled: how far behind the journal is, when it is. */
      lastReceivedAt: number
      /** The SQLite error that is holding the journal up (SQLITE_BUSY, SQLITE_FULL, ...), or null. */
      failing: string | null
    }
  | { t: 'stopped'; journaled: number }
  | { t: 'fatal'; message: string }
