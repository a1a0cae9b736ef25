// The socket thread's handle on the journal worker. It only posts messages: it never touches SQLite
// and never waits for the worker, except at start (ready) and stop (drained).

import { Worker } from 'node:worker_threads'
import type { Config } from '../config/load.js'
import { ErrorCodes, SpillwayError } from '../errors.js'
import { logEvent } from '../log.js'
import type { FromWorker, ToWorker, WorkerOptions } from './protocol.js'

/** The worker's options from the config; `role` says what it reads besides memory batches. */
export function journalOptions(
  cfg: Config,
  role: Pick<WorkerOptions, 'spoolDir' | 'store' | 'keepFromSeg' | 'consume'>,
): WorkerOptions {
  return {
    ...role,
    journalPath: cfg.journal.path,
    batchRows: cfg.journal.batchRows,
    synchronous: cfg.journal.synchronous,
    fullText: cfg.journal.fullText,
    walMaxBytes: cfg.journal.walMaxBytes,
    timezone: cfg.parse.timezone,
    retention: {
      maxAgeSeconds: cfg.journal.maxAgeSeconds,
      maxRows: cfg.journal.maxRows,
      maxBytes: cfg.journal.maxBytes,
    },
  }
}

/** What the worker reports after each commit. */
export type JournalProgress = Extract<FromWorker, { t: 'progress' }>

export class JournalClient {
  onProgress: (p: JournalProgress) => void = () => {}
  /** spillway consume: the stream must be read again after streamSeq (see 'stalled' in protocol.ts). */
  onStalled: (m: { seq: number; streamSeq: number; epoch: number }) => void = () => {}
  /** The worker died: nothing more can be journaled; the server must stop loudly. */
  onFatal: (message: string) => void = () => {}
  journaled = 0
  corrupt = 0
  parseErrors = 0
  lastReceivedAt = 0
  /** The SQLite error holding the journal up, or null when it commits. */
  failing: string | null = null
  /** The worker thread is gone: nothing can be journaled. */
  dead = false
  private readonly worker: Worker
  private stopped: Promise<number>
  private ready: Promise<{ cursorSeg: number; cursorOff: number; rows: number; streamSeq: number }>

  constructor(opts: WorkerOptions) {
    this.worker = new Worker(new URL('./worker.js', import.meta.url), { workerData: opts })
    let onReady!: (r: { cursorSeg: number; cursorOff: number; rows: number; streamSeq: number }) => void
    let onStopped!: (n: number) => void
    let failed!: (err: Error) => void
    this.ready = new Promise((resolve, reject) => {
      onReady = resolve
      failed = reject
    })
    this.stopped = new Promise((resolve) => {
      onStopped = resolve
    })
    let isReady = false
    this.worker.on('message', (m: FromWorker) => {
      switch (m.t) {
        case 'ready':
          isReady = true
          onReady(m)
          break
        case 'progress':
          this.journaled = m.journaled
          this.lastReceivedAt = m.lastReceivedAt
          this.corrupt = m.corrupt
          this.parseErrors = m.parseErrors
          this.failing = m.failing
          this.onProgress(m)
          break
        case 'stalled':
          this.onStalled(m)
          break
        case 'stopped':
          this.journaled = m.journaled
          onStopped(m.journaled)
          break
        case 'fatal':
          logEvent('journal-fatal', { message: m.message })
          if (isReady) this.onFatal(m.message)
          else failed(new SpillwayError(ErrorCodes.journal, m.message))
          break
      }
    })
    this.worker.on('error', (err) => {
      const message = `journal ${opts.journalPath}: ${err.message}`
      if (!isReady) failed(new SpillwayError(ErrorCodes.journal, message, { cause: err }))
      else this.onFatal(message)
    })
    this.worker.on('exit', (code) => {
      this.dead = true
      if (code !== 0 && isReady) this.onFatal(`journal worker exited with code ${code}`)
      onStopped(this.journaled)
    })
  }

  start(): Promise<{ cursorSeg: number; cursorOff: number; rows: number; streamSeq: number }> {
    return this.ready
  }

  /**
   * Hands buf[0, len) to the worker as one transferred ArrayBuffer of exactly that size. The copy is one
   * memcpy per batch; it lets the caller reuse its staging buffer, where transferring the staging buffer
   * itself would cost a fresh 256 KiB allocation per event-loop turn, most of it empty.
   */
  postBatch(id: number, buf: Buffer, len: number): void {
    const ab = new ArrayBuffer(len)
    buf.copy(new Uint8Array(ab), 0, 0, len)
    this.post({ t: 'batch', id, buf: ab, len }, [ab])
  }

  postSpooled(seg: number, off: number): void {
    this.post({ t: 'spooled', seg, off })
  }

  /** spillway consume: one stream message for the worker to journal, its buffer transferred. */
  postRemote(m: Omit<Extract<ToWorker, { t: 'remote' }>, 't'>): void {
    this.post({ t: 'remote', ...m }, [m.buf])
  }

  /** The forwarder published every segment below seg. */
  postForwarded(seg: number): void {
    this.post({ t: 'forwarded', seg })
  }

  postStats(values: Record<string, number>): void {
    this.post({ t: 'stats', at: Date.now(), values })
  }

  /** Asks the worker to journal every batch it holds, then close the database. */
  stop(): Promise<number> {
    this.post({ t: 'stop' })
    return this.stopped
  }

  private post(m: ToWorker, transfer?: ArrayBuffer[]): void {
    this.worker.postMessage(m, transfer)
  }
}
