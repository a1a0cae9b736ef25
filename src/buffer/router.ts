// The connection buffer stage: decides, per message, whether it reaches the journal from memory or
// through the spool, and encodes it once into whichever buffer that is. Socket thread; never blocks.
//
// Per connection (a TCP connection, or a UDP listener):
//   memory lane   records go into the shared memory batch, posted to the journal worker. `memBytes`
//                 counts this connection's records posted or pending but not yet committed.
//   spill lane    once memBytes would pass spool.thresholdBytes, records go to the spool, and keep
//                 going there until the journal's cursor has passed this connection's last spooled
//                 record. Only then can a memory record not overtake a spooled one: per-connection
//                 order holds in the journal. With a threshold of 0 every record is spooled.
// Ordering rule that makes this work: when a lane starts spilling, the memory batch is posted at once,
// before the lane's first spool record exists; the worker journals the batches it holds before it
// replays what the spool writer reported, which is always later.
//
// What a crash (kill -9) may lose, and why it is only ever a connection's newest messages:
//   durable mode  (threshold 0) a TCP lane that spooled records in a read is not read again until the
//                 write holding them has completed (writeWait): at any moment at most one read per
//                 connection is read and not yet on disk.
//   memory mode   a lane's memory records live only in the journal worker until committed. Were its
//                 later records spooled while those wait, a crash would keep the newer (on disk) and lose
//                 the older. So a TCP lane that passes its threshold while it has memory records not yet
//                 committed stops being read (ackWait) until they are, and only then spills; the rest of
//                 the read that crossed the threshold still goes to memory. The wait is one commit of
//                 what the worker holds (it commits memory batches before anything else). While the
//                 journal cannot commit at all (another process holds its write lock, the disk is full),
//                 lanes spill without waiting, so senders never wait on a lock, and each such spill is
//                 counted (spillsUnordered): a crash during that episode may lose older messages of those
//                 connections while newer spooled ones survive.

import { logEvent } from '../log.js'
import type { Counters } from '../metrics/counters.js'
import { sealRecords } from '../spool/native.js'
import { maxRecordBytes, RecordEncoder } from '../spool/record.js'
import type { SpoolWriter } from '../spool/writer.js'

/** What the router needs of a connection. */
export interface Lane {
  prefix: Buffer
  memBytes: number
  spilling: boolean
  spoolSeg: number
  spoolOff: number
  batchId: number
  batchSlot: number
  /** Waiting for its memory records to be committed before it spills (memory mode, see the top). */
  awaitingAck: boolean
  /**
   * Every record goes to the spool, whatever the threshold (RELP: a message is acknowledged once its
   * record is on disk, so it must have one).
   */
  alwaysSpool?: boolean
  /** TCP only: stop and restart reading the socket, so the sender's TCP waits (spool full, "block"). */
  pauseReading?(): void
  resumeReading?(): void
}

/** The lane fields, initialised; connections and UDP listeners extend it. */
export class LaneState implements Omit<Lane, 'prefix'> {
  memBytes = 0
  spilling = false
  awaitingAck = false
  spoolSeg = 0
  spoolOff = 0
  batchId = 0
  batchSlot = 0
}

export interface Bounds {
  /** Per lane: memory bytes before its records go to the spool (spool.thresholdBytes). */
  threshold: number
  /** All lanes together: memory bytes before any lane's records go to the spool (limits.memoryBytes). */
  memoryBytes: number
  /** Unjournaled spool bytes; 0 = no quota (spool.maxBytes). */
  spoolMaxBytes: number
  /** What happens to a record when the spool is full: pause the sender, or drop it (spool.whenFull). */
  whenFull: 'block' | 'drop'
  /** Spooled bytes waiting for the disk before spooling TCP lanes stop being read; 0 = no bound. */
  maxUnwritten: number
}

export interface BatchSink {
  /** A staging buffer to encode memory-lane records into. */
  batchBuffer(): Buffer
  /** Takes buf[0, len); returns the staging buffer to fill next (buf itself when it was copied). */
  postBatch(id: number, buf: Buffer, len: number): Buffer
}

/** Bytes one event-loop turn reads before connections that read more wait for the next turn. */
const kTurnBytes = 512 * 1024
/** Paused lanes read again per turn: the budget over a full 64 KiB read each. */
const kResumePerTurn = kTurnBytes / (64 * 1024)

export class Router {
  readonly bounds: Bounds
  readonly spool: SpoolWriter
  /** Memory-lane bytes posted or pending, not yet committed, over all lanes. */
  memTotal = 0
  private readonly paused = new Set<Lane>()
  /** Lanes not read until the spool writer catches up (spool.maxUnwrittenBytes). */
  private readonly diskWait = new Set<Lane>()
  /** Durable mode: lanes not read until the write holding their last spooled record completes. */
  private readonly writeWait = new Set<Lane>()
  /** Memory mode: lanes not read until their memory records are committed, then spilling. */
  private readonly ackWait = new Set<Lane>()
  /** The journal cannot commit (busy, disk full): lanes spill without waiting for their memory. */
  private journalStuck = false
  /** What the spool writer reported on disk: everything before (writtenSeg, writtenOff). */
  private writtenSeg = 0
  private writtenOff = 0
  /**
   * Bytes read in this event-loop turn, and the paused lanes queued to read again (past the turn's
   * budget, or at the end of a spool-full or disk-behind hold), in the order they will be resumed.
   */
  private turnBytes = 0
  private readonly turnWait = new Set<Lane>()
  private fullEpisode = false
  readonly counters: Counters
  /** Journal position: everything in the spool before (cursorSeg, cursorOff) is committed. */
  cursorSeg = 0
  cursorOff = 0
  spillingLanes = 0
  private readonly journal: BatchSink
  private readonly encoder = new RecordEncoder()
  private nowMs = -1
  private now: Buffer = Buffer.alloc(0)
  private batch: Buffer
  private batchLen = 0
  private batchId = 1
  private batchLanes: Lane[] = []
  private batchBytes: number[] = []
  private readonly inflight = new Map<number, { lanes: Lane[]; bytes: number[] }>()
  private flushQueued = false
  private readonly flushBound = () => this.flush()

  constructor(bounds: Bounds, spool: SpoolWriter, journal: BatchSink, counters: Counters) {
    this.bounds = bounds
    this.spool = spool
    this.journal = journal
    this.counters = counters
    this.batch = journal.batchBuffer()
    // The writer seals its pending records before each write; their message copies must be done first.
    spool.beforeSeal = () => this.encoder.finishCopies()
  }

  /** The receive time for what follows: set once per socket read, not per message. */
  setNow(ms: number): void {
    if (ms !== this.nowMs) {
      this.nowMs = ms
      this.now = Buffer.from(String(ms), 'latin1')
    }
  }

  /** Returns false when the record was dropped (the spool is full and its policy is "drop"). */
  route(lane: Lane, buf: Buffer, start: number, end: number, origLen: number): boolean {
    const room = maxRecordBytes(lane.prefix.length, end - start)
    // One test for both directions, so a lane never leaves the spill lane only to re-enter it at once
    // (the global cap alone would otherwise log spill-end and spill-start for every record).
    const fits =
      lane.memBytes + room <= this.bounds.threshold &&
      this.memTotal + room <= this.bounds.memoryBytes &&
      lane.alwaysSpool !== true
    if (
      !lane.spilling &&
      !fits &&
      !lane.awaitingAck &&
      lane.memBytes > 0 &&
      lane.pauseReading !== undefined
    ) {
      if (this.journalStuck) this.counters.spillsUnordered++
      else this.awaitAck(lane)
    }
    if (lane.awaitingAck) {
      this.toMemory(lane, buf, start, end, origLen, room)
      this.queueFlush()
      return true
    }
    if (lane.spilling && fits && this.caughtUp(lane)) {
      lane.spilling = false
      this.spillingLanes--
      if (this.spillingLanes === 0 && this.bounds.threshold > 0)
        logEvent('spill-end', { reason: 'journal caught up' })
    }
    if (!lane.spilling && !fits) this.startSpilling(lane)
    if (lane.spilling) {
      const spool = this.spool
      // Full: the quota is reached, or the disk refuses writes (ENOSPC, EIO) and what waits in memory
      // to be written has reached limits.memoryBytes. Either way the policy applies.
      const full =
        (this.bounds.spoolMaxBytes > 0 && spool.backlog + room > this.bounds.spoolMaxBytes) ||
        (spool.failing && spool.unwritten + room > this.bounds.memoryBytes)
      if (full && !this.spoolFull(lane)) return false // dropped, and counted
      spool.reserve(room)
      const end2 = this.encoder.encodeUnsealed(
        spool.buf,
        spool.len,
        this.now,
        lane.prefix,
        buf,
        start,
        end,
        origLen,
      )
      lane.spoolSeg = spool.seg
      lane.spoolOff = spool.off + (end2 - spool.len)
      spool.commit(end2)
      // The disk is behind what this thread reads: rather than hold an ever larger backlog in memory,
      // this sender waits in its TCP until the writer is at half the bound (spoolWritten).
      if (this.bounds.maxUnwritten > 0 && spool.unwritten > this.bounds.maxUnwritten) this.waitForDisk(lane)
    } else {
      this.toMemory(lane, buf, start, end, origLen, room)
    }
    this.queueFlush()
    return true
  }

  /** flush() runs once at the end of this event-loop turn. */
  private queueFlush(): void {
    if (this.flushQueued) return
    this.flushQueued = true
    setImmediate(this.flushBound)
  }

  private toMemory(lane: Lane, buf: Buffer, start: number, end: number, origLen: number, room: number): void {
    if (this.batchLen + room > this.batch.length) {
      this.postBatch()
      if (room > this.batch.length) this.batch = Buffer.allocUnsafe(room)
    }
    const before = this.batchLen
    this.batchLen = this.encoder.encodeUnsealed(
      this.batch,
      before,
      this.now,
      lane.prefix,
      buf,
      start,
      end,
      origLen,
    )
    const used = this.batchLen - before
    lane.memBytes += used
    this.memTotal += used
    if (lane.batchId !== this.batchId) {
      lane.batchId = this.batchId
      lane.batchSlot = this.batchLanes.length
      this.batchLanes.push(lane)
      this.batchBytes.push(used)
    } else {
      this.batchBytes[lane.batchSlot]! += used
    }
  }

  private startSpilling(lane: Lane): void {
    lane.spilling = true
    if (lane.alwaysSpool === true) return // it never used memory: not a spill episode
    if (this.spillingLanes++ === 0 && this.bounds.threshold > 0) {
      logEvent('spill-start', {
        reason: 'connection passed spool.thresholdBytes or limits.memoryBytes',
        threshold: this.bounds.threshold,
        memoryBytes: this.bounds.memoryBytes,
      })
    }
    this.counters.spillEpisodes++
    this.postBatch() // everything this lane had in memory goes ahead of what it spools now
  }

  /** Memory mode: the lane waits for its memory records to be committed before it spills (see the top). */
  private awaitAck(lane: Lane): void {
    lane.awaitingAck = true
    this.postBatch()
    this.ackWait.add(lane)
  }

  /**
   * Whether the journal can commit (the worker's progress says). While it cannot, lanes waiting for
   * their memory to commit spill now, and no lane waits.
   */
  setJournalStuck(stuck: boolean): void {
    this.journalStuck = stuck
    if (!stuck) return
    for (const lane of this.ackWait) {
      this.counters.spillsUnordered++
      this.spillAfterAck(lane)
    }
  }

  /** The lane's memory records are committed (or the journal is stuck): it spills from its next read on. */
  private spillAfterAck(lane: Lane): void {
    this.ackWait.delete(lane)
    lane.awaitingAck = false
    this.startSpilling(lane)
    // It stays spilling until the journal has replayed what it spools next: a position past the
    // spool's current end, replaced by its first spooled record's.
    lane.spoolSeg = this.spool.seg
    lane.spoolOff = this.spool.off + 1
    this.resumeLater(lane)
  }

  /**
   * The buffers handed to route() since the last call may change now: the messages' bytes are copied
   * (in one call, see RecordEncoder). A reused read buffer must not be refilled before this.
   */
  sourcesDone(): void {
    this.encoder.sourcesDone()
  }

  /**
   * A connection's read of n bytes has been routed, and its buffer may change (sourcesDone). libuv
   * hands every ready connection its reads in one poll phase, and keeps reading a connection while it
   * has data (up to 32 reads): under a burst from many connections one turn could route megabytes, and
   * timers, accepts and the metrics endpoint would wait for all of it. Past kTurnBytes in a turn, each
   * connection that reads is paused and queued to read again in a later turn; its data waits in the
   * kernel, which is where a burst belongs while this thread is busy.
   */
  readDone(lane: Lane, n: number): void {
    this.sourcesDone()
    this.turnBytes += n
    if (lane.pauseReading !== undefined) {
      // Memory mode, past the threshold: read again once its memory records are committed (acked).
      if (lane.awaitingAck) {
        lane.pauseReading()
        return
      }
      // Durable: read again once what this read spooled is on disk (spoolWritten).
      if (this.bounds.threshold === 0 && lane.spilling && !this.written(lane) && !this.writeWait.has(lane)) {
        this.writeWait.add(lane)
        lane.pauseReading()
        return
      }
    }
    if (this.turnBytes <= kTurnBytes || lane.pauseReading === undefined || this.turnWait.has(lane)) return
    lane.pauseReading()
    this.counters.turnYields++
    this.resumeLater(lane)
  }

  /** Queues a paused lane to be read again: flush() resumes a few per turn, in the order queued. */
  private resumeLater(lane: Lane): void {
    this.turnWait.add(lane)
    this.queueFlush()
  }

  /**
   * Resumes at most kResumePerTurn queued lanes: what one turn's budget holds in full reads. Resuming a
   * hundred connections at once, each with a kernel buffer that filled while it waited, would hand the
   * next turn one 64 KiB read from every one of them before the budget could stop any. A lane still held
   * (spool full, disk behind) leaves the queue; the end of its hold queues it again.
   */
  private resumeSome(): void {
    let n = 0
    for (const lane of this.turnWait) {
      if (n === kResumePerTurn) break
      this.turnWait.delete(lane)
      if (this.held(lane)) continue
      lane.resumeReading?.()
      n++
    }
    if (this.turnWait.size > 0) this.queueFlush()
  }

  /**
   * Posts the memory batch and hands pending spool bytes to the writer. Runs once per loop turn, after
   * the poll phase; some of the lanes waiting to read again are resumed.
   */
  flush(): void {
    this.flushQueued = false
    this.postBatch()
    this.spool.flushIfIdle()
    this.turnBytes = 0
    if (this.turnWait.size > 0) this.resumeSome()
  }

  /** The worker committed these batches: their lanes' memory is free again. */
  acked(ids: number[]): void {
    for (const id of ids) {
      const b = this.inflight.get(id)
      if (b === undefined) continue
      this.inflight.delete(id)
      for (let i = 0; i < b.lanes.length; i++) {
        const lane = b.lanes[i]!
        lane.memBytes -= b.bytes[i]!
        this.memTotal -= b.bytes[i]!
        if (lane.awaitingAck && lane.memBytes === 0) this.spillAfterAck(lane)
      }
    }
  }

  /** Whether something other than the turn's budget keeps the lane from being read. */
  private held(lane: Lane): boolean {
    return (
      this.paused.has(lane) || this.diskWait.has(lane) || this.writeWait.has(lane) || this.ackWait.has(lane)
    )
  }

  /** Whether the lane's last spooled record is on disk. */
  private written(lane: Lane): boolean {
    return (
      this.writtenSeg > lane.spoolSeg ||
      (this.writtenSeg === lane.spoolSeg && this.writtenOff >= lane.spoolOff)
    )
  }

  /**
   * The spool is at spool.maxBytes. "block": the lane's socket stops being read, so its sender's TCP
   * waits; this record is still written (the quota can be passed by what one read held, per paused
   * connection). "drop", or a lane that cannot wait (UDP): the record is dropped and counted.
   * Returns whether the record is to be written.
   */
  private spoolFull(lane: Lane): boolean {
    if (!this.fullEpisode) {
      this.fullEpisode = true
      logEvent('spool-full', {
        backlogBytes: this.spool.backlog,
        limit: this.bounds.spoolMaxBytes,
        policy: this.bounds.whenFull,
      })
    }
    if (this.bounds.whenFull === 'block' && lane.pauseReading !== undefined) {
      if (!this.paused.has(lane)) {
        this.paused.add(lane)
        lane.pauseReading()
        this.counters.pausedForSpool++
      }
      return true
    }
    this.counters.droppedSpoolFull++
    return false
  }

  /** Spool space was freed: resume paused senders once the backlog is below 90 % of the quota. */
  spoolFreed(): void {
    if (!this.fullEpisode) return
    const quota = this.bounds.spoolMaxBytes
    if ((quota > 0 && this.spool.backlog > quota * 0.9) || this.spool.failing) return
    this.fullEpisode = false
    logEvent('spool-full-end', {
      backlogBytes: this.spool.backlog,
      resumed: this.paused.size,
      droppedTotal: this.counters.droppedSpoolFull,
    })
    const held = [...this.paused]
    this.paused.clear()
    for (const lane of held) if (!this.held(lane)) this.resumeLater(lane)
  }

  private waitForDisk(lane: Lane): void {
    if (lane.pauseReading === undefined || this.diskWait.has(lane)) return
    this.diskWait.add(lane)
    lane.pauseReading()
    this.counters.pausedForDisk++
  }

  /**
   * A spool write completed: everything before (seg, off) is on disk. Durable lanes whose records it held
   * are read again; lanes that waited for the disk, once it is half caught up.
   */
  spoolWritten(seg: number, off: number): void {
    this.writtenSeg = seg
    this.writtenOff = off
    if (this.writeWait.size > 0) {
      for (const lane of this.writeWait) {
        if (!this.written(lane)) continue
        this.writeWait.delete(lane)
        if (!this.held(lane)) this.resumeLater(lane)
      }
    }
    if (this.diskWait.size === 0 || this.spool.unwritten > this.bounds.maxUnwritten / 2) return
    const held = [...this.diskWait]
    this.diskWait.clear()
    for (const lane of held) if (!this.held(lane)) this.resumeLater(lane)
  }

  /** A connection closed; its lane no longer counts as spilling (its records stay where they are). */
  closeLane(lane: Lane): void {
    this.paused.delete(lane)
    this.diskWait.delete(lane)
    this.writeWait.delete(lane)
    this.turnWait.delete(lane)
    this.ackWait.delete(lane)
    lane.awaitingAck = false
    if (!lane.spilling) return
    lane.spilling = false
    if (lane.alwaysSpool === true) return
    if (--this.spillingLanes === 0 && this.bounds.threshold > 0)
      logEvent('spill-end', { reason: 'spilling connections closed' })
  }

  /** The journal's cursor: lanes whose spooled records it has passed may use memory again. */
  setCursor(seg: number, off: number): void {
    this.cursorSeg = seg
    this.cursorOff = off
  }

  private caughtUp(lane: Lane): boolean {
    return (
      this.cursorSeg > lane.spoolSeg || (this.cursorSeg === lane.spoolSeg && this.cursorOff >= lane.spoolOff)
    )
  }

  private postBatch(): void {
    if (this.batchLen === 0) return
    this.encoder.finishCopies()
    sealRecords(this.batch, 0, this.batchLen)
    const id = this.batchId++
    this.inflight.set(id, { lanes: this.batchLanes, bytes: this.batchBytes })
    this.batch = this.journal.postBatch(id, this.batch, this.batchLen)
    this.batchLen = 0
    this.batchLanes = []
    this.batchBytes = []
  }
}
