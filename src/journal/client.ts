// The socket thread's handle on the journal worker. It only posts messages: it never touches SQLite
// and never waits for the worker, except at start (ready) and stop (drained).

import { Worker } from 'node:worker_threads'
import type { Config } from '../config/load.js'
import { ErrorCodes, SpillwayError } from '../errors.js'
import { logEvent } from '../log.js'
import { type FromWorker, kBatchBytes, type ToWorker, type WorkerOptions } from './protocol.js'

/** Staging buffers kept for reuse (8 MiB); those the worker returns beyond it are left to the GC. */
const kBatchPoolMax = 32

/** The worker's options from the config; `role` says what it reads besides memory batches. */
export function journalOptions(
  cfg: Config,
  role: Pick<WorkerOptions, 'spoolDir' | 'store' | 'keepFromSeg' | 'consume'>,
): WorkerOptions {
  return {
    ...role,
    spoolDirectIo: cfg.spool.directIo,
    journalPath: cfg.journal.path,
    batchRows: cfg.journal.batchRows,
    synchronous: cfg.journal.synchronous,
    fullText: cfg.journal.fullText,
    walMaxBytes: cfg.journal.walMaxBytes,
    burstBytesPerSecond: cfg.journal.burstBytesPerSecond,
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
  private readonly batchPool: ArrayBuffer[] = []
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
          for (const ab of m.returned) if (this.batchPool.length < kBatchPoolMax) this.batchPool.push(ab)
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
      // An error thrown across the thread boundary can arrive without its message (SQLite's errors
      // keep only their code): say what there is.
      const message = `journal ${opts.journalPath}: ${err.message ?? (err as { code?: string }).code ?? String(err)}`
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

  /** A kBatchBytes staging buffer for memory batches: one the worker returned, or a new one. */
  batchBuffer(): Buffer {
    const ab = this.batchPool.pop()
    return ab === undefined ? Buffer.allocUnsafeSlow(kBatchBytes) : Buffer.from(ab)
  }

  /**
   * Hands buf[0, len) to the worker and returns the staging buffer to fill next. A staging buffer at
   * least half full is itself transferred (no copy) and replaced from the pool the worker's acks refill.
   * A smaller batch (the end of an event-loop turn under a trickle) is copied into a buffer of its own
   * size, so a few records never hold 256 KiB each while the worker is busy.
   */
  postBatch(id: number, buf: Buffer, len: number): Buffer {
    const ab = buf.buffer
    if (
      len >= kBatchBytes / 2 &&
      ab instanceof ArrayBuffer &&
      buf.byteOffset === 0 &&
      ab.byteLength === kBatchBytes
    ) {
      this.post({ t: 'batch', id, buf: ab, len }, [ab])
      return this.batchBuffer()
    }
    const copy = new ArrayBuffer(len)
    buf.copy(new Uint8Array(copy), 0, 0, len)
    this.post({ t: 'batch', id, buf: copy, len }, [copy])
    return buf
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
