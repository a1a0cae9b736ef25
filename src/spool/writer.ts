// Appends records to spool segments. Runs on the socket thread but never waits there: records are
// encoded into a pending buffer, and whole buffers are written by libuv's thread pool through one
// serial queue (fastq, concurrency 1), so appends and segment rolls happen in order, one write at a time.
//
// Positions: `seg`/`off` is where the next record will go (pending bytes included), known synchronously
// so a connection can remember where its last spooled record ends. `onWritten(seg, off)` reports what is
// on disk; only that is ever replayed into the journal.

import { close, closeSync, open, write } from 'node:fs'
import fastq, { type queue } from 'fastq'
import { logEvent } from '../log.js'
import { segmentPath } from './segment.js'

const kBufferBytes = 256 * 1024
/** A pending buffer is written once it holds this much, or at the end of the current event-loop turn. */
const kMinWrite = 64 * 1024
const kRetryMs = 1000

type Task = { kind: 'open'; seg: number } | { kind: 'write'; seg: number; buf: Buffer; len: number }

export class SpoolWriter {
  readonly dir: string
  readonly segmentBytes: number
  /** Segment the next record goes to, and its offset there, counting bytes not yet written. */
  seg: number
  off = 0
  /** Pending buffer: callers encode records at buf[len] after `reserve`. */
  buf: Buffer
  len = 0
  /** Called after each completed write with the end of what is on disk. */
  onWritten: (seg: number, off: number) => void = noop
  bytesWritten = 0
  private fd = -1
  private fdSeg = -1
  private needOpen = true
  private diskOff = 0
  private failing = false
  private readonly q: queue<Task, void>
  private drainWaiters: (() => void)[] = []

  constructor(dir: string, firstSeg: number, segmentBytes: number) {
    this.dir = dir
    this.seg = firstSeg
    this.segmentBytes = segmentBytes
    this.buf = Buffer.allocUnsafe(kBufferBytes)
    this.q = fastq(this, this.work, 1)
    this.q.drain = () => this.onDrain()
  }

  /** Makes room for a record of at most `bytes`; rolls to a new segment first if it would not fit. */
  reserve(bytes: number): void {
    if (this.off > 0 && this.off + bytes > this.segmentBytes) {
      this.flush()
      this.seg++
      this.off = 0
      this.needOpen = true
    }
    if (this.needOpen) {
      // Segments are created by their first record, so an idle spool directory holds no files.
      this.needOpen = false
      this.q.push({ kind: 'open', seg: this.seg })
    }
    if (this.len + bytes > this.buf.length) {
      this.flush()
      if (bytes > this.buf.length) this.buf = Buffer.allocUnsafe(bytes)
    }
  }

  /** Records that the caller encoded up to buf[end]. */
  commit(end: number): void {
    this.off += end - this.len
    this.len = end
    if (this.len >= kMinWrite) this.flush()
  }

  /** Hands the pending bytes to the write queue. */
  flush(): void {
    if (this.len === 0) return
    this.q.push({ kind: 'write', seg: this.seg, buf: this.buf, len: this.len })
    this.buf = Buffer.allocUnsafe(kBufferBytes)
    this.len = 0
  }

  get idle(): boolean {
    return this.len === 0 && this.q.idle()
  }

  /** Resolves once everything appended so far is on disk. */
  drain(): Promise<void> {
    this.flush()
    if (this.q.idle()) return Promise.resolve()
    return new Promise((resolve) => this.drainWaiters.push(resolve))
  }

  /**
   * Once the journal has committed everything written, the current segment is closed and the next one
   * begun (created by its first record), so the journal worker can delete the finished one and a spool
   * at rest is empty. Returns whether it rolled.
   */
  rollIfIdle(): boolean {
    if (this.off === 0 || !this.idle) return false
    if (this.fd >= 0) close(this.fd, noop)
    this.fd = -1
    this.seg++
    this.off = 0
    this.needOpen = true
    this.onWritten(this.seg, 0)
    return true
  }

  close(): void {
    if (this.fd >= 0) closeSync(this.fd)
    this.fd = -1
  }

  private onDrain(): void {
    const waiters = this.drainWaiters
    this.drainWaiters = []
    for (const w of waiters) w()
  }

  // Runs one task at a time, on the event loop; the I/O itself is on libuv's pool.
  private work(task: Task, done: (err: Error | null) => void): void {
    if (task.kind === 'open') {
      const oldFd = this.fd
      open(segmentPath(this.dir, task.seg), 'a', (err, fd) => {
        if (err)
          return this.retry(err, `open ${segmentPath(this.dir, task.seg)}`, () => this.work(task, done))
        this.recovered()
        if (oldFd >= 0) close(oldFd, noop)
        this.fd = fd
        this.fdSeg = task.seg
        this.diskOff = 0
        this.onWritten(task.seg, 0)
        done(null)
      })
      return
    }
    this.writeAll(task, 0, done)
  }

  private writeAll(
    task: Extract<Task, { kind: 'write' }>,
    from: number,
    done: (err: Error | null) => void,
  ): void {
    write(this.fd, task.buf, from, task.len - from, null, (err, n) => {
      if (err) {
        return this.retry(err, `append of ${task.len - from} B to ${segmentPath(this.dir, this.fdSeg)}`, () =>
          this.writeAll(task, from, done),
        )
      }
      this.recovered()
      this.diskOff += n
      this.bytesWritten += n
      if (from + n < task.len) return this.writeAll(task, from + n, done) // short write: the rest, in order
      this.onWritten(this.fdSeg, this.diskOff)
      done(null)
    })
  }

  // A failing disk must not lose what was accepted: the task stays at the head of the queue and is tried
  // again; the episode is logged once, not once per attempt.
  private retry(err: Error, what: string, again: () => void): void {
    if (!this.failing) {
      this.failing = true
      logEvent('spool-error', {
        what,
        error: (err as NodeJS.ErrnoException).code ?? err.message,
        retryMs: kRetryMs,
      })
    }
    setTimeout(again, kRetryMs)
  }

  private recovered(): void {
    if (!this.failing) return
    this.failing = false
    logEvent('spool-recovered', { dir: this.dir })
  }
}

function noop(): void {}
