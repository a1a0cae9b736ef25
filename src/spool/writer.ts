// Appends records to spool segments. Runs on the socket thread but never waits there: records are
// encoded into a pending buffer, and buffers are written by libuv's thread pool through one serial
// queue (fastq, concurrency 1), so appends and segment rolls happen in order, one write at a time.
//
// Batching, as sonic-boom does it: while a write is in flight, filled buffers join the write task that
// is queued behind it, so the next write is one writev() of everything that piled up meanwhile. Under a
// burst the number of thread-pool round trips stays small and the queue never holds more than the data
// of one write's duration; written buffers return to a small pool instead of becoming garbage.
//
// Large writes bypass the page cache (O_DIRECT, Linux). Appending through the page cache allocates a page
// for every 4 KiB written, and on a VM whose freed memory goes back to the host (virtio-balloon free page
// reporting, as on this project's machines) each of those is a fault in the host: `perf` put 16 % of all
// CPU in a 10 M-message burst in that copy, and writing 2.5 GB took 4.4-5.8 CPU seconds buffered against
// 0.2-0.4 direct. A direct write must cover whole aligned blocks, so every pending buffer starts at an
// aligned file offset: the partial last block of the buffer before it is copied to its start (`carry`)
// and written again, the same bytes, by the direct write; what ends a task short of a block boundary is
// appended through the page cache. A write below kDirectMinBytes (a trickle) goes through the page
// cache whole, and so does everything when the filesystem refuses O_DIRECT. Either way the file is only
// ever appended to: no byte changes once written, and the size never runs ahead of the records.
//
// Positions: `seg`/`off` is where the next record will go (pending bytes included), known synchronously
// so a connection can remember where its last spooled record ends. `onWritten(seg, off)` reports what is
// on disk; only that is ever replayed into the journal, acknowledged to a RELP sender, or counted as
// spooled (`recordsWritten`).
//
// Power loss (spool.fsync): "off" leaves flushing to the OS (a write survives a crash of this process, not
// of the machine); "batch" runs fdatasync() after every write before reporting it, so what onWritten
// reports is on stable storage; an interval ("200ms", "1s") syncs the segment being written that often,
// so a power loss loses at most that long of writes. A new segment's directory entry is synced with its
// first sync, or a power loss could lose the whole file.

import { close, closeSync, constants, fdatasync, fsync, open, openSync, writev } from 'node:fs'
import fastq, { type queue } from 'fastq'
import { logEvent } from '../log.js'
import { type FsyncPolicy, kFsyncBatch } from './fsync.js'
import { alignedBuffer, kDirectAlign, sealRecords } from './native.js'
import { segmentPath } from './segment.js'

const kBufferBytes = 256 * 1024
const kRetryMs = 1000
const kPoolMax = 64
/** Linux's IOV_MAX is 1024; stay below it so one task is one writev() call. */
const kMaxBuffersPerWrite = 512
/** Writes smaller than this go through the page cache (see the top of this file). */
export const kDirectMinBytes = 64 * 1024
/** undefined where the platform has no O_DIRECT: every write then goes through the page cache. */
const kODirect: number | undefined = constants.O_DIRECT

/** A flushed pending buffer: records in buf[carry, len), and before them the carried bytes. */
interface Piece {
  buf: Buffer
  len: number
  carry: number
  /** Records that end in it. */
  records: number
}

interface WriteTask {
  kind: 'write'
  seg: number
  /** File offset of the first piece's buf[0]; its carry, buf[0, carry), is on disk already. */
  start: number
  pieces: Piece[]
  /** Bytes not yet on disk: the pieces' records. */
  len: number
}
type Task = { kind: 'open'; seg: number } | { kind: 'sync' } | WriteTask

export class SpoolWriter {
  readonly dir: string
  readonly segmentBytes: number
  /** Segment the next record goes to, and its offset there, counting bytes not yet written. */
  seg: number
  off = 0
  /** Pending buffer: callers encode records at buf[len] after `reserve`, sealed or not (flush seals). */
  buf: Buffer
  len = 0
  /** buf[0, carry): the end of the buffer flushed before, written again with this one (see the top). */
  private carry = 0
  /** File offset of buf[0]. */
  private bufStart = 0
  /** Called before pending records are sealed: whoever encodes into `buf` finishes what it left. */
  beforeSeal: () => void = noop
  /** Called after each completed write with the end of what is on disk (synced, with fsync "batch"). */
  onWritten: (seg: number, off: number) => void = noop
  bytesWritten = 0
  /** Records whose write has completed: what spooled_total counts. */
  recordsWritten = 0
  /** fdatasync() calls that completed, and the time they took. */
  syncs = 0
  syncSeconds = 0
  /** Of bytesWritten, those written around the page cache. */
  directBytes = 0
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
  /** Records committed to the pending buffer since the last flush. */
  private pendingRecords = 0
  private readonly fsyncPolicy: FsyncPolicy
  private syncTimer: NodeJS.Timeout | null = null
  /** Bytes written since the last sync (interval policy), and whether the directory needs one. */
  private unsynced = 0
  private dirUnsynced = false
  private onDisk = 0
  private readonly segBytes = new Map<number, { bytes: number }>()
  /** The current segment's entry in segBytes: a commit adds to it, no lookup per record. */
  private cur = { bytes: 0 }
  private fd = -1
  /** The same segment opened for O_DIRECT writes, or -1. */
  private fdDirect = -1
  /** Whether to write large tasks directly: off where O_DIRECT is missing or refused. */
  private direct = kODirect !== undefined
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

  /**
   * directIo: spool.directIo, large writes around the page cache where the platform can.
   * fsync: spool.fsync as parsed by parseFsync.
   */
  constructor(dir: string, firstSeg: number, segmentBytes: number, directIo = true, fsync: FsyncPolicy = 0) {
    this.dir = dir
    this.seg = firstSeg
    this.segmentBytes = segmentBytes
    this.direct = directIo && kODirect !== undefined
    this.fsyncPolicy = fsync
    this.buf = this.takeBuffer()
    this.q = fastq(this, this.work, 1)
    this.q.drain = () => this.onDrain()
    if (fsync > 0) {
      this.syncTimer = setInterval(() => {
        if (this.unsynced > 0 || this.dirUnsynced) this.push({ kind: 'sync' })
      }, fsync)
      this.syncTimer.unref()
    }
  }

  /** Makes room for a record of at most `bytes`; rolls to a new segment first if it would not fit. */
  reserve(bytes: number): void {
    if (this.off > 0 && this.off + bytes > this.segmentBytes) {
      this.flush()
      this.nextSegment()
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
      if (this.len + bytes > this.buf.length) {
        // One record larger than a buffer: a buffer of its own, carry and all.
        const big = alignedBuffer(this.len + bytes)
        this.buf.copy(big, 0, 0, this.len)
        this.release(this.buf)
        this.buf = big
      }
    }
  }

  /** Records that the caller encoded one record, up to buf[end]. */
  commit(end: number): void {
    const n = end - this.len
    this.pendingRecords++
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
    const len = this.len
    if (len === this.carry) return
    this.beforeSeal()
    sealRecords(this.buf, this.carry, len)
    const piece: Piece = { buf: this.buf, len, carry: this.carry, records: this.pendingRecords }
    this.pendingRecords = 0
    const t = this.queued
    if (t !== null && t.seg === this.seg && t.pieces.length < kMaxBuffersPerWrite) {
      t.pieces.push(piece)
      t.len += len - this.carry
    } else {
      this.push({
        kind: 'write',
        seg: this.seg,
        start: this.bufStart,
        pieces: [piece],
        len: len - this.carry,
      })
    }
    // The next buffer starts at the flushed one's last block boundary (bufStart is aligned while
    // direct writes are on), with that partial block's bytes in front of its records.
    const keep = this.direct ? len % kDirectAlign : 0
    const prev = this.buf
    this.buf = this.takeBuffer()
    if (keep > 0) prev.copy(this.buf, 0, len - keep, len)
    this.bufStart += len - keep
    this.len = this.carry = keep
  }

  get idle(): boolean {
    return this.len === this.carry && this.q.idle()
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
    this.closeFds(close)
    this.nextSegment()
    this.onWritten(this.seg, 0)
    return true
  }

  /** Pending records go to the next segment from now on; it is opened by its first record. */
  private nextSegment(): void {
    this.seg++
    this.off = 0
    this.needOpen = true
    this.bufStart = 0
    this.len = this.carry = 0 // a new segment carries nothing
  }

  close(): void {
    if (this.syncTimer !== null) clearInterval(this.syncTimer)
    this.syncTimer = null
    this.closeFds(closeSync)
  }

  private closeFds(closer: (fd: number, cb: () => void) => void): void {
    if (this.fd >= 0) closer(this.fd, noop)
    if (this.fdDirect >= 0) closer(this.fdDirect, noop)
    this.fd = this.fdDirect = -1
  }

  private push(task: Task): void {
    // Buffers flushed later may join this task until it starts (work() clears it). fastq starts a task
    // inside push() when idle, so this must be set before the push, not after.
    this.queued = task.kind === 'write' ? task : null
    this.q.push(task)
  }

  /**
   * Makes what is written to the current segment durable: fdatasync() of the file and, once per new
   * segment, fsync() of the directory that names it. A failure is retried like a failed write: a record
   * is never reported synced before it is.
   */
  private sync(done: () => void): void {
    const fd = this.fd
    if (fd < 0) {
      done()
      return
    }
    const t0 = performance.now()
    fdatasync(fd, (err) => {
      if (err) return this.retry(err, `fdatasync ${segmentPath(this.dir, this.fdSeg)}`, () => this.sync(done))
      const syncDir = () => {
        this.recovered()
        this.syncs++
        this.syncSeconds += (performance.now() - t0) / 1000
        this.unsynced = 0
        done()
      }
      if (!this.dirUnsynced) return syncDir()
      let dfd: number
      try {
        dfd = openSync(this.dir, 'r')
      } catch (e) {
        return this.retry(e as Error, `open ${this.dir} to sync it`, () => this.sync(done))
      }
      fsync(dfd, (err2) => {
        close(dfd, noop)
        if (err2) return this.retry(err2, `fsync ${this.dir}`, () => this.sync(done))
        this.dirUnsynced = false
        syncDir()
      })
    })
  }

  private takeBuffer(): Buffer {
    return this.pool.pop() ?? alignedBuffer(kBufferBytes)
  }

  private release(buf: Buffer): void {
    if (buf.length === kBufferBytes && this.pool.length < kPoolMax) this.pool.push(buf)
  }

  private onDrain(): void {
    if (this.len > this.carry) {
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
    if (task.kind === 'sync') {
      this.sync(() => done(null))
      return
    }
    if (task.kind === 'open') {
      // The segment being closed is synced first (fsync at an interval): its last writes would
      // otherwise never be.
      if (this.fsyncPolicy > 0 && this.unsynced > 0) {
        this.sync(() => this.work(task, done))
        return
      }
      const path = segmentPath(this.dir, task.seg)
      open(path, 'a', (err, fd) => {
        if (err) return this.retry(err, `open ${path}`, () => this.work(task, done))
        this.recovered()
        this.closeFds(close)
        this.fd = fd
        this.fdSeg = task.seg
        this.diskOff = 0
        this.dirUnsynced = this.fsyncPolicy !== 0
        this.onWritten(task.seg, 0)
        if (!this.direct) {
          done(null)
          return
        }
        open(path, constants.O_WRONLY | kODirect!, (err2, fdDirect) => {
          // EINVAL: the filesystem refuses O_DIRECT. Anything else (the file already gone, EMFILE)
          // leaves this segment to the page cache, as the buffered descriptor is open.
          if (err2 === null) this.fdDirect = fdDirect
          else if ((err2 as NodeJS.ErrnoException).code === 'EINVAL')
            this.directOff(err2, `open ${path} with O_DIRECT`)
          done(null)
        })
      })
      return
    }
    const first = task.pieces[0]!
    if (this.fdDirect < 0 || task.len < kDirectMinBytes) {
      this.writeAll(task, skipBytes(stream(task), first.carry), done)
      return
    }
    const blocks: Buffer[] = []
    for (const p of task.pieces) {
      const whole = p.len - (p.len % kDirectAlign)
      if (whole > 0) blocks.push(p.buf.subarray(0, whole))
    }
    writev(this.fdDirect, blocks, task.start, (err, n) => {
      if (err) {
        // EINVAL: this file or device will not do direct I/O after all. Anything else (ENOSPC, EIO) is
        // met again by the buffered write below, which retries it and logs the episode.
        if ((err as NodeJS.ErrnoException).code === 'EINVAL')
          this.directOff(err, `direct write to ${segmentPath(this.dir, this.fdSeg)}`)
        n = 0
      }
      // What is on disk now: the direct write's n bytes from task.start, or the carry if that is more.
      const reached = Math.max(n, first.carry)
      this.bytesWritten += reached - first.carry
      this.directBytes += reached - first.carry
      this.writeAll(task, skipBytes(stream(task), reached), done)
    })
  }

  private writeAll(task: WriteTask, bufs: Buffer[], done: (err: Error | null) => void): void {
    if (bufs.length === 0) {
      this.written(task, done)
      return
    }
    writev(this.fd, bufs, (err, n) => {
      if (err) {
        const what = `append of ${task.len} B to ${segmentPath(this.dir, this.fdSeg)}`
        return this.retry(err, what, () => this.writeAll(task, bufs, done))
      }
      this.recovered()
      this.bytesWritten += n
      const rest = skipBytes(bufs, n)
      if (rest.length > 0) return this.writeAll(task, rest, done) // short write: the rest, in order
      this.written(task, done)
    })
  }

  private written(task: WriteTask, done: (err: Error | null) => void): void {
    if (this.fsyncPolicy === kFsyncBatch) {
      this.sync(() => this.reportWritten(task, done))
      return
    }
    this.unsynced += task.len
    this.reportWritten(task, done)
  }

  private reportWritten(task: WriteTask, done: (err: Error | null) => void): void {
    this.diskOff = task.start + task.pieces[0]!.carry + task.len
    for (const p of task.pieces) {
      this.recordsWritten += p.records
      this.release(p.buf)
    }
    this.onWritten(this.fdSeg, this.diskOff)
    done(null)
  }

  private directOff(err: Error, what: string): void {
    if (!this.direct) return
    this.direct = false
    if (this.fdDirect >= 0) close(this.fdDirect, noop)
    this.fdDirect = -1
    logEvent('spool-direct-off', {
      what,
      error: (err as NodeJS.ErrnoException).code ?? err.message,
      fallback: 'page cache',
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

/** A task's bytes from its start offset on, in file order: each later piece without its carry. */
function stream(task: WriteTask): Buffer[] {
  const out: Buffer[] = []
  for (let i = 0; i < task.pieces.length; i++) {
    const p = task.pieces[i]!
    out.push(p.buf.subarray(i === 0 ? 0 : p.carry, p.len))
  }
  return out
}

/** The buffers left after the first `n` bytes were written. */
function skipBytes(bufs: Buffer[], n: number): Buffer[] {
  let i = 0
  while (i < bufs.length && n >= bufs[i]!.length) n -= bufs[i++]!.length
  if (i === bufs.length) return []
  return [bufs[i]!.subarray(n), ...bufs.slice(i + 1)]
}

function noop(): void {}
