// Appends records to spool segments. Runs on the socket thread but never waits there: records are
// encoded into a pending buffer, and buffers are written by libuv's thread pool through one serial
// queue (fastq, concurrency 1), so appends and segment rolls happen in order, one write at a time.
//
// Batching, as sonic-boom does it: while a write is in flight, filled buffers join the write task that
// is queued behind it, so the next write is one writev() of everything that piled up meanwhile. Under a
// burst the number of thread-pool round trips stays small and the queue never holds more than the data
// of one write's duration; written buffers return to a small pool instead of becoming garbage.
//
// Positions: `seg`/`off` is where the next record will go (pending bytes included), known synchronously
// so a connection can remember where its last spooled record ends. `onWritten(seg, off)` reports what is
// on disk; only that is ever replayed into the journal.

import { close, closeSync, open, writev } from 'node:fs'
import fastq, { type queue } from 'fastq'
import { logEvent } from '../log.js'
import { sealRecords } from './native.js'
import { segmentPath } from './segment.js'

const kBufferBytes = 256 * 1024
const kRetryMs = 1000
const kPoolMax = 64
/** Linux's IOV_MAX is 1024; stay below it so one task is one writev() call. */
const kMaxBuffersPerWrite = 512

interface WriteTask {
  kind: 'write'
  seg: number
  bufs: Buffer[]
  len: number
}
type Task = { kind: 'open'; seg: number } | WriteTask

export class SpoolWriter {
  readonly dir: string
  readonly segmentBytes: number
  /** Segment the next record goes to, and its offset there, counting bytes not yet written. */
  seg: number
  off = 0
  /** Pending buffer: callers encode records at buf[len] after `reserve`, sealed or not (flush seals). */
  buf: Buffer
  len = 0
  /** Called before pending records are sealed: whoever encodes into `buf` finishes what it left. */
  beforeSeal: () => void = noop
  /** Called after each completed write with the end of what is on disk. */
  onWritten: (seg: number, off: number) => void = noop
  bytesWritten = 0
  /** Bytes appended and not yet journaled (pending ones included): what spool.maxBytes bounds. */
  backlog = 0
  /** Segments holding records not yet journaled. */
  get segments(): number {
    return this.segBytes.size
  }

  /** Bytes appended and not yet on disk. */
  get unwritten(): number {
    return this.appended - this.bytesWritten
  }
  private appended = 0
  private onDisk = 0
  private readonly segBytes = new Map<number, { bytes: number }>()
  /** The current segment's entry in segBytes: a commit adds to it, no lookup per record. */
  private cur = { bytes: 0 }
  private fd = -1
  private fdSeg = -1
  private needOpen = true
  private diskOff = 0
  /** The disk refused the last write (ENOSPC, EIO, ...): it is retried every second until it works. */
  failing = false
  /** The write task queued but not yet started: flushed buffers join it. */
  private queued: WriteTask | null = null
  private readonly pool: Buffer[] = []
  private readonly q: queue<Task, void>
  private drainWaiters: (() => void)[] = []

  constructor(dir: string, firstSeg: number, segmentBytes: number) {
    this.dir = dir
    this.seg = firstSeg
    this.segmentBytes = segmentBytes
    this.buf = this.takeBuffer()
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
      this.push({ kind: 'open', seg: this.seg })
      this.cur = this.segBytes.get(this.seg) ?? { bytes: 0 }
      this.segBytes.set(this.seg, this.cur)
    }
    if (this.len + bytes > this.buf.length) {
      this.flush()
      if (bytes > this.buf.length) this.buf = Buffer.allocUnsafe(bytes)
    }
  }

  /** Records that the caller encoded up to buf[end]. */
  commit(end: number): void {
    const n = end - this.len
    this.appended += n
    this.off += n
    this.len = end
    this.cur.bytes += n
    this.onDisk += n
    this.backlog += n
  }

  /** A segment left by an earlier run, still to be replayed: it counts against spool.maxBytes. */
  adopt(seg: number, bytes: number): void {
    this.segBytes.set(seg, { bytes })
    this.onDisk += bytes
  }

  /**
   * The journal (and the forwarder, when on) consumed up to (seg, off): segments before seg are deleted
   * by the journal worker, and the backlog is what remains from (seg, off) on.
   */
  releasedTo(seg: number, off: number): void {
    for (const [s, entry] of this.segBytes) {
      if (s < seg) {
        this.onDisk -= entry.bytes
        this.segBytes.delete(s)
      }
    }
    this.backlog = this.onDisk - (this.segBytes.has(seg) ? off : 0)
  }

  /**
   * End of an event-loop turn: write now if nothing is in flight (a trickle is written at once);
   * otherwise the pending bytes join the next write, issued when the current one completes.
   */
  flushIfIdle(): void {
    if (this.q.idle()) this.flush()
  }

  /** Seals the pending records (their checksums: one native call for the buffer) and queues them. */
  flush(): void {
    if (this.len === 0) return
    this.beforeSeal()
    sealRecords(this.buf, 0, this.len)
    const buf = this.buf.subarray(0, this.len)
    const t = this.queued
    if (t !== null && t.seg === this.seg && t.bufs.length < kMaxBuffersPerWrite) {
      t.bufs.push(buf)
      t.len += buf.length
    } else {
      const task: WriteTask = { kind: 'write', seg: this.seg, bufs: [buf], len: buf.length }
      this.push(task)
    }
    this.buf = this.takeBuffer()
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

  private push(task: Task): void {
    // Buffers flushed later may join this task until it starts (work() clears it). fastq starts a task
    // inside push() when idle, so this must be set before the push, not after.
    this.queued = task.kind === 'write' ? task : null
    this.q.push(task)
  }

  private takeBuffer(): Buffer {
    return this.pool.pop() ?? Buffer.allocUnsafe(kBufferBytes)
  }

  private onDrain(): void {
    if (this.len > 0) {
      this.flush()
      return // drained again once this write is done
    }
    const waiters = this.drainWaiters
    this.drainWaiters = []
    for (const w of waiters) w()
  }

  // Runs one task at a time, on the event loop; the I/O itself is on libuv's pool.
  private work(task: Task, done: (err: Error | null) => void): void {
    if (this.queued === task) this.queued = null // started: later buffers go to a new task
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
    this.writeAll(task, task.bufs, done)
  }

  private writeAll(task: WriteTask, bufs: Buffer[], done: (err: Error | null) => void): void {
    writev(this.fd, bufs, (err, n) => {
      if (err) {
        const what = `append of ${task.len} B to ${segmentPath(this.dir, this.fdSeg)}`
        return this.retry(err, what, () => this.writeAll(task, bufs, done))
      }
      this.recovered()
      this.diskOff += n
      this.bytesWritten += n
      const rest = skipBytes(bufs, n)
      if (rest.length > 0) return this.writeAll(task, rest, done) // short write: the rest, in order
      this.onWritten(this.fdSeg, this.diskOff)
      for (const b of task.bufs) {
        if (b.buffer.byteLength === kBufferBytes && this.pool.length < kPoolMax) {
          this.pool.push(Buffer.from(b.buffer, b.byteOffset, kBufferBytes))
        }
      }
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

/** The buffers left after the first `n` bytes were written. */
function skipBytes(bufs: Buffer[], n: number): Buffer[] {
  let i = 0
  while (i < bufs.length && n >= bufs[i]!.length) n -= bufs[i++]!.length
  if (i === bufs.length) return []
  return [bufs[i]!.subarray(n), ...bufs.slice(i + 1)]
}

function noop(): void {}
