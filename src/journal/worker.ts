// The journal worker thread: the only code that opens the journal read-write. Everything here may block
// (SQLite, fsync, reading spool segments); none of it runs on the socket thread.
//
// Work order, one transaction at a time with the event loop turning in between so new messages arrive:
//   1. memory batches (records of connections below their threshold), oldest first;
//   2. otherwise, replay of the spool from the committed cursor up to what the writer reported on disk,
//      unless a burst is being spooled faster than this worker could replay it: then the CPU is left to
//      the socket thread and the senders, and replay resumes when the spool grows slower or stops.
// A connection that spilled has no records in later memory batches until the cursor passes its last
// spooled record (the router guarantees it), so this order keeps each connection's order.
//
// Exactly-once replay: the rows of a replayed range and the cursor after it commit in one transaction.
// A segment is deleted only after the transaction that moves the cursor past it has committed, and, when
// forwarding is on, only once the forwarder has published past it too.
//
// spillway consume runs this same worker with no spool: messages of a JetStream stream arrive as
// 'remote' batches, and each edge's spool position and the stream sequence commit with their rows.

import { closeSync, existsSync, linkSync, openSync, readSync, rmSync, statSync, unlinkSync } from 'node:fs'
import { basename, join } from 'node:path'
import { parentPort, Worker, workerData } from 'node:worker_threads'
import Database from 'better-sqlite3'
import { logEvent } from '../log.js'
import { listMemoryFiles, writeMemoryFile } from '../spool/memory-file.js'
import { kChunkBytes, SpoolReader } from '../spool/reader.js'
import { listSegments, segmentPath } from '../spool/segment.js'
import { BurstGate } from './burst.js'
import { RecordDecoder } from './decode.js'
import { FullTextIndexer } from './fts.js'
import { openError, removeCreated, sidecars } from './journal-file.js'
import { lowerThreadPriority } from './nice.js'
import { PackedRows } from './packed-rows.js'
import type { ParsedMessage } from './parse.js'
import {
  type DecoderOptions,
  type FromDecoder,
  type FromWorker,
  kBatchBytes,
  type ToDecoder,
  type ToWorker,
  type WorkerOptions,
} from './protocol.js'
import { Pruner } from './retention.js'
import { kAddEdgeColumn, kDropWordIndex, kFullTextSchema, kSchema, kSchemaVersion } from './schema.js'
import { SenderTally } from './senders.js'
import { VolumeTally } from './volume.js'
import { setZone } from './zone.js'

const kLF = 0x0a
const kRetryMs = 100
const kBusyTimeoutMs = 200
const kProgressEveryMs = 5000
// At stop, how long memory batches wait for a journal that cannot commit them (a sqlite3 session holding
// the write lock) before they are written to the spool instead, well inside systemd's TimeoutStopSec.
const kStopWaitMs = 5000

const port = parentPort
if (port === null) throw new Error('journal/worker.ts must run as a worker thread')
const opts = workerData as WorkerOptions
setZone(opts.timezone)
lowerThreadPriority()

function send(m: FromWorker, transfer?: ArrayBuffer[]): void {
  port!.postMessage(m, transfer)
}

// The journal is reopened if its file is deleted while open (see checkJournalFile): everything bound to
// the connection is set again then, through bind() and tx().
let db = openJournal(opts.journalPath)

/**
 * Opens the journal and brings its schema up to date. A journal that cannot be written (its mode, its
 * owner, a read-only mount) fails here with SQLite's own error and what to do, and leaves no -wal or
 * -shm file behind that the failed open created.
 */
function openJournal(path: string): Database.Database {
  const existed = sidecars(path).map((p) => existsSync(p))
  let d: Database.Database | null = null
  try {
    d = new Database(path, { timeout: kBusyTimeoutMs })
    d.pragma('journal_mode = WAL')
    d.pragma(`synchronous = ${opts.synchronous}`)
    // Keep the WAL file from staying huge after a burst once a checkpoint has run.
    d.pragma(`journal_size_limit = ${opts.walMaxBytes}`)
    const hasMessages = d
      .prepare("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'messages'")
      .get()
    if (
      hasMessages &&
      !(d.pragma('table_info(messages)') as { name: string }[]).some((c) => c.name === 'edge')
    )
      d.exec(kAddEdgeColumn)
    d.exec(kSchema)
    if (opts.fullText) {
      const fts = d.prepare("SELECT sql FROM sqlite_master WHERE name = 'messages_fts'").get() as
        | { sql: string }
        | undefined
      if (fts !== undefined && !/trigram/.test(fts.sql)) {
        logEvent('fts-rebuild', { path, reason: 'a word index; text search now uses trigrams' })
        d.exec(kDropWordIndex)
      }
      d.exec(kFullTextSchema)
    }
    d.pragma(`user_version = ${kSchemaVersion}`)
    return d
  } catch (err) {
    d?.close()
    removeCreated(path, existed)
    return fatal(openError(path, err))
  }
}

/** The prepared statements, and the helpers that hold some of their own, of one connection. */
function bind(d: Database.Database) {
  return {
    indexer: opts.fullText ? new FullTextIndexer(d) : null,
    pruner: new Pruner(d, opts.retention),
    senders: new SenderTally(d),
    volume: new VolumeTally(d),
    insert: d.prepare(
      `INSERT INTO messages (received_at, ts, facility, severity, host, app, procid, msgid, sd, msg, peer,
         transport, orig_len, parse_error, edge) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
    ),
    setCursor: d.prepare('UPDATE spool_cursor SET segment = ?, offset = ? WHERE id = 1'),
    upsertStat: d.prepare(
      `INSERT INTO stats (name, value, updated_at) VALUES (?, ?, ?)
       ON CONFLICT (name) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at`,
    ),
    getEdgeCursor: d.prepare('SELECT segment, offset FROM edge_cursor WHERE instance = ?'),
    putEdgeCursor: d.prepare(
      `INSERT INTO edge_cursor (instance, edge, segment, offset, updated_at) VALUES (?, ?, ?, ?, ?)
       ON CONFLICT (instance) DO UPDATE SET edge = excluded.edge, segment = excluded.segment,
         offset = excluded.offset, updated_at = excluded.updated_at`,
    ),
    putConsumeCursor: d.prepare(
      `INSERT INTO consume_cursor (stream, durable, stream_seq) VALUES (?, ?, ?)
       ON CONFLICT (stream, durable) DO UPDATE SET stream_seq = excluded.stream_seq`,
    ),
    getMemoryCursor: d.prepare('SELECT offset FROM spool_memory_cursor WHERE file = ?'),
    putMemoryCursor: d.prepare(
      `INSERT INTO spool_memory_cursor (file, offset) VALUES (?, ?)
       ON CONFLICT (file) DO UPDATE SET offset = excluded.offset`,
    ),
    deleteMemoryCursor: d.prepare('DELETE FROM spool_memory_cursor WHERE file = ?'),
    maxId: d.prepare('SELECT max(id) AS n FROM messages').pluck(),
  }
}
let st = bind(db)

/** A transaction function that runs on whichever connection is open now. */
function tx<A extends unknown[], R>(fn: (...args: A) => R): (...args: A) => R {
  let on: Database.Database | null = null
  let bound: ((...args: A) => R) | null = null
  return (...args: A): R => {
    if (on !== db) {
      bound = db.transaction(fn) as unknown as (...args: A) => R
      on = db
    }
    return bound!(...args)
  }
}
const cursorRow = db.prepare('SELECT segment, offset FROM spool_cursor WHERE id = 1').get() as {
  segment: number
  offset: number
}

const reader = new SpoolReader(opts.spoolDir ?? '', opts.spoolDirectIo)

let cursorSeg = cursorRow.segment
let cursorOff = cursorRow.offset
let writerSeg = -1 // the segment the writer appends to; every lower one is sealed
let writtenOff = 0 // what the writer has on disk in writerSeg
let readAtLeast = 0
const batches: { id: number; buf: Buffer }[] = []
type Remote = Omit<Extract<ToWorker, { t: 'remote' }>, 't' | 'buf'> & { buf: Buffer }
const remotes: Remote[] = []
let streamSeq =
  opts.consume === null
    ? 0
    : ((
        db
          .prepare('SELECT stream_seq FROM consume_cursor WHERE stream = ? AND durable = ?')
          .get(opts.consume.stream, opts.consume.durable) as { stream_seq: number } | undefined
      )?.stream_seq ?? 0)
/** The edge a row came from (spillway consume); null for messages received here. */
let rowEdge: string | null = null
// Forwarding on: segments from keepFrom on are not yet forwarded; ones the journal passed wait here.
let keepFrom = opts.keepFromSeg ?? Number.POSITIVE_INFINITY
const retained: number[] = []
let pendingStats: { at: number; values: Record<string, number> } | null = null
let stopping = false
let stopTimer: NodeJS.Timeout | null = null
let finished = false
let retryTimer: NodeJS.Timeout | null = null
let walBlocked = false
let scheduled = false
let retrying = false
let failing: string | null = null
let lastReceivedAt = 0
let corrupt = 0
// Counted inside transactions: saved before each and restored if it rolls back, so retries never count twice.
const rows = { journaled: 0, parseErrors: 0, invalidUtf8: 0, withNul: 0, remoteDuplicates: 0, remoteGaps: 0 }
type RowCounts = typeof rows
function saveRows(): RowCounts {
  return { ...rows }
}
function restoreRows(r: RowCounts): void {
  Object.assign(rows, r)
  st.senders.discard()
  st.volume.discard()
}
const decoder = new RecordDecoder(rows)
let acked: number[] = []
let returned: ArrayBuffer[] = []
let replayedInEpisode = 0
let episodeStart = 0

// Segments wholly below the cursor were journaled before a crash cut their deletion short (unless the
// forwarder still needs them).
const stale = opts.spoolDir === null ? 0 : reader.removeBefore(Math.min(cursorSeg, keepFrom))
const onDisk = opts.spoolDir === null ? [] : listSegments(opts.spoolDir)
for (const seg of onDisk) if (seg < cursorSeg) retained.push(seg)
const backlogSegs = onDisk.filter((seg) => seg >= cursorSeg)
// A backlog left by an earlier run: its replay reports progress at a steady interval until done.
const startup = {
  bytes: backlogSegs.reduce((n, seg) => n + statSync(segmentPath(reader.dir, seg)).size, 0) - cursorOff,
  done: 0,
  rows: 0,
  since: Date.now(),
  lastLog: Date.now(),
}
if (stale > 0 || backlogSegs.length > 0) {
  logEvent('spool-found', {
    segments: backlogSegs.length,
    bytes: startup.bytes,
    removedJournaled: stale,
    cursorSegment: cursorSeg,
    offset: cursorOff,
  })
}

function startupProgress(bytes: number, rowsDone: number): void {
  if (startup.done >= startup.bytes) return
  startup.done += bytes
  startup.rows += rowsDone
  const now = Date.now()
  if (now - startup.lastLog < kProgressEveryMs && startup.done < startup.bytes) return
  startup.lastLog = now
  const secs = (now - startup.since) / 1000
  const rate = startup.done / Math.max(secs, 0.001)
  logEvent('replay-progress', {
    percent: Math.min(100, Math.floor((100 * startup.done) / Math.max(1, startup.bytes))),
    bytes: `${startup.done}/${startup.bytes}`,
    rows: startup.rows,
    rowsPerSec: Math.round(startup.rows / Math.max(secs, 0.001)),
    etaSeconds: Math.max(0, Math.round((startup.bytes - startup.done) / Math.max(rate, 1))),
  })
}
const maxId = (db.prepare('SELECT max(id) AS n FROM messages').get() as { n: number | null }).n ?? 0
send({ t: 'ready', cursorSeg, cursorOff, rows: maxId, streamSeq })

/** The journal is past `seg`: delete it, or keep it until the forwarder is past it too. */
function retire(seg: number): void {
  if (seg < keepFrom) reader.remove(seg)
  else retained.push(seg)
}

port.on('message', (m: ToWorker) => {
  switch (m.t) {
    case 'batch':
      batches.push({ id: m.id, buf: Buffer.from(m.buf, 0, m.len) })
      break
    case 'spooled':
      if (m.seg > writerSeg || (m.seg === writerSeg && m.off > writtenOff)) {
        burstGate.spooled(m.seg === writerSeg ? m.off - writtenOff : m.off, Date.now())
        writerSeg = m.seg
        writtenOff = m.off
        if (m.off > 0) lastSpooledAt = Date.now() // bytes written: not the empty segment of a start
      }
      break
    case 'forwarded':
      keepFrom = m.seg
      while (retained.length > 0 && retained[0]! < keepFrom) reader.remove(retained.shift()!)
      break
    case 'remote':
      if (m.epoch === epoch) remotes.push({ ...m, buf: Buffer.from(m.buf, 0, m.len) })
      break
    case 'stats':
      pendingStats = { at: m.at, values: m.values }
      break
    case 'stop':
      stopping = true
      if (stopTimer === null) {
        if (failing !== null && batches.length > 0)
          logEvent('journal-stop-waiting', {
            journalError: failing,
            batches: batches.length,
            waitSeconds: kStopWaitMs / 1000,
            next: 'the batches are written to the spool',
          })
        stopTimer = setTimeout(giveUpWaiting, kStopWaitMs)
      }
      break
  }
  schedule()
})

function schedule(): void {
  if (scheduled || retrying) return
  scheduled = true
  setImmediate(pump)
}

function pump(): void {
  scheduled = false
  if (finished) return
  if (held !== null && !journalFileOk()) {
    retryIn(kHeldRetryMs)
    return
  }
  let worked: boolean
  try {
    if (memoryFiles.length > 0 && !stopping) {
      worked = memoryStep()
    } else if (batches.length > 0) {
      commitBatches()
      worked = true
    } else if (remotes.length > 0) {
      commitRemotes()
      worked = true
    } else if (!stopping && yieldToBurst()) {
      worked = false // nor full-text indexing or pruning: the burst has the CPU
    } else {
      // At stop, the spool stays as it is: replaying a large backlog could take minutes, and the next
      // start resumes from the cursor.
      worked = writerSeg >= 0 && !stopping && replayStep()
      // Only when there is nothing to journal: full-text indexing follows the rows in idle time.
      const idle = !worked && !stopping && ahead.length === 0
      if (idle && st.indexer !== null) worked = st.indexer.step()
      if (idle && !worked && st.pruner.enabled) worked = st.pruner.step(Date.now())
    }
    if (pendingStats !== null) writeStats()
  } catch (err) {
    onError(err)
    return
  }
  if (failing !== null && held === null) {
    logEvent('journal-recovered', { after: failing })
    failing = null
  }
  if (acked.length > 0 || worked) report()
  if (worked) schedule()
  else if (stopping && batches.length === 0 && remotes.length === 0) finish()
}

/** Inserts every complete record in buf[from, to); returns the offset after the last one consumed. */
function insertRecords(
  buf: Buffer,
  from: number,
  to: number,
  maxRows: number,
  seg: number,
  base: number,
): number {
  let p = from
  let n = 0
  while (n < maxRows && p < to) {
    const lf = buf.indexOf(kLF, p)
    if (lf === -1 || lf >= to) break
    if (decoder.decode(buf, p, lf)) {
      insertRow(decoder.rec, decoder.parsed)
      n++
    } else {
      setAside(seg, base + p, buf.subarray(p, lf + 1), decoder.rec.error ?? 'corrupt')
    }
    p = lf + 1
  }
  rows.journaled += n
  return p
}

/** What a row takes from its record: a RecordReader, or the replay's PackedRows. */
interface RecordFields {
  receivedAt: number
  peer: string
  transport: string
  origLen: number
}
type MessageFields = Omit<ParsedMessage, 'reset'>

function insertRow(r: RecordFields, p: MessageFields): void {
  lastReceivedAt = r.receivedAt
  st.senders.add(p.host, r.peer, r.receivedAt, p.severity)
  st.volume.add(r.receivedAt, p.severity)
  st.insert.run(
    r.receivedAt,
    p.ts,
    p.facility,
    p.severity,
    p.host,
    p.app,
    p.procid,
    p.msgid,
    p.sd,
    p.msg,
    r.peer,
    r.transport,
    r.origLen > 0 ? r.origLen : null,
    p.parseError,
    rowEdge,
  )
}

function setAside(seg: number, off: number, bytes: Buffer, reason: string): void {
  corrupt++
  const moved = seg >= 0 ? reader.quarantine(seg, off, bytes) : null
  logEvent('spool-corrupt', {
    segment: seg >= 0 ? seg : 'memory',
    offset: off,
    bytes: bytes.length,
    reason,
    movedTo: moved,
  })
}

const commitBatchesTx = tx((count: number) => {
  for (let i = 0; i < count; i++) {
    const b = batches[i]!
    insertRecords(b.buf, 0, b.buf.length, Number.POSITIVE_INFINITY, -1, 0)
  }
  st.senders.flush()
  st.volume.flush()
})

/** How many of the queued buffers, at least one, fit one transaction's row budget (bytes as a proxy). */
function fitBudget(queue: readonly { buf: Buffer }[]): number {
  let count = 0
  let bytes = 0
  const budget = opts.batchRows * 200
  while (count < queue.length && (count === 0 || bytes + queue[count]!.buf.length <= budget)) {
    bytes += queue[count]!.buf.length
    count++
  }
  return count
}

function commitBatches(): void {
  const count = fitBudget(batches)
  const before = saveRows()
  try {
    commitBatchesTx(count)
  } catch (err) {
    restoreRows(before)
    throw err
  }
  for (const b of batches.splice(0, count)) {
    acked.push(b.id)
    const ab = b.buf.buffer as ArrayBuffer // the transferred buffer itself
    if (ab.byteLength === kBatchBytes) returned.push(ab)
  }
}

// A stream message that repeats what is committed (redelivered after a crash, or republished by an
// edge whose acknowledgement was lost) is skipped whole or up to the edge's committed position, so each
// record is journaled once. Positions only grow within an instance, so one cursor per edge suffices.
//
// A message whose predecessor (Spillway-Prev) is past the edge's committed position arrived before one
// it follows: a delivery lost in transit (the consumer's leader moved), to be redelivered only after
// ack_wait, which would then look like a duplicate. So nothing from it on is committed: the socket
// thread reads the stream again right after the commit ('stalled'). If the same message stalls again,
// its predecessor is not in the stream (purged, or past its limits): the gap is logged, counted, passed.
let epoch = 0
let lastStall = -1
let stalledAt = -1

const commitRemotesTx = tx((count: number): number => {
  let seq = streamSeq
  stalledAt = -1
  for (let i = 0; i < count; i++) {
    const r = remotes[i]!
    if (r.seq <= seq) continue
    let from = 0
    if (r.instance !== '') {
      const c = st.getEdgeCursor.get(r.instance) as { segment: number; offset: number } | undefined
      if (c !== undefined && (r.seg < c.segment || (r.seg === c.segment && r.end <= c.offset))) {
        rows.remoteDuplicates += countLines(r.buf, 0)
        seq = r.seq
        continue
      }
      if (c !== undefined && r.seg === c.segment && r.start < c.offset) {
        from = c.offset - r.start
        rows.remoteDuplicates += countLines(r.buf.subarray(0, from), 0)
      } else if (
        c !== undefined &&
        r.prevSeg >= 0 &&
        (r.prevSeg > c.segment || (r.prevSeg === c.segment && r.prevOff > c.offset))
      ) {
        if (r.seq !== lastStall) {
          stalledAt = r.seq
          break
        }
        rows.remoteGaps++
        logEvent('consume-gap', {
          edge: r.edge,
          instance: r.instance,
          committed: `${c.segment}:${c.offset}`,
          follows: `${r.prevSeg}:${r.prevOff}`,
          streamSeq: r.seq,
          hint: 'the records between the two positions are not in the stream (purged, or past its limits)',
        })
      }
      st.putEdgeCursor.run(r.instance, r.edge, r.seg, r.end, Date.now())
    }
    seq = r.seq
    rowEdge = r.edge
    insertRecords(r.buf, from, r.buf.length, Number.POSITIVE_INFINITY, -1, 0)
  }
  rowEdge = null
  if (seq > streamSeq) st.putConsumeCursor.run(opts.consume!.stream, opts.consume!.durable, seq)
  st.senders.flush()
  st.volume.flush()
  return seq
})

function countLines(buf: Buffer, from: number): number {
  let n = 0
  for (let p = buf.indexOf(kLF, from); p !== -1; p = buf.indexOf(kLF, p + 1)) n++
  return n
}

function commitRemotes(): void {
  const count = fitBudget(remotes)
  const before = saveRows()
  try {
    streamSeq = commitRemotesTx(count)
  } catch (err) {
    rowEdge = null
    restoreRows(before)
    throw err
  }
  if (stalledAt < 0) {
    remotes.splice(0, count)
    return
  }
  lastStall = stalledAt
  epoch++
  remotes.length = 0 // all of them come again from the new read
  send({ t: 'stalled', seq: stalledAt, streamSeq, epoch })
}

const replayTx = tx((chunk: Buffer, seg: number, off: number): number => {
  const end = insertRecords(chunk, 0, chunk.length, opts.batchRows, seg, off)
  st.senders.flush()
  st.volume.flush()
  if (end > 0) st.setCursor.run(seg, off + end)
  return end
})

const moveCursorTx = tx((seg: number, off: number) => {
  st.setCursor.run(seg, off)
})

/** The cursor is at the end of a sealed segment (or it is gone): move past it, then delete it. */
function passSegment(): void {
  const next = reader.nextSegment(cursorSeg, writerSeg)
  moveCursorTx(next, 0)
  retire(cursorSeg)
  cursorSeg = next
  cursorOff = 0
}

/** journal.enabled false: the cursor follows the writer without storing anything. */
function skipStep(): boolean {
  if (cursorSeg < writerSeg) {
    passSegment()
    return true
  }
  if (cursorOff >= writtenOff) return false
  moveCursorTx(cursorSeg, writtenOff)
  cursorOff = writtenOff
  return true
}

// Replay read-ahead. The decoder thread reads chunks of the cursor's segment, cut after journal.batchRows
// records, and decodes them while the chunk before commits here: this thread then spends its time in
// SQLite, and reading (a wait for the disk, for what a burst wrote around the page cache) and decoding
// (a fifth of a replay's CPU) happen on the other core. `ahead` holds the chunks in spool order, each
// committed with the cursor after it, so exactly-once replay holds as on the inline path. Only whole
// records within one segment go ahead; what else a segment can end with (a record larger than a chunk,
// a torn write, the end of a sealed segment) the decoder declines, and the inline path takes it.
const kAhead = 2
// A hand-over costs a message and a thread wake-up each way: with less than this to read in the current
// segment (a trickle, its tail), the worker replays inline instead.
const kAheadMinBytes = 256 * 1024
// While the socket thread is spooling a burst, the two cores belong to it and to the senders, and the
// hand-over costs CPU of its own (the server's CPU seconds for 1 M messages: 4.8 inline, 5.5 with the
// decoder). So the read-ahead waits until the spool has been quiet this long; meanwhile the worker
// decodes inline, or, in a burst faster than it could replay, waits (burstGate below). (Accept times
// with and without this gate were within loggen's noise.)
const kQuietMs = 100
let lastSpooledAt = 0

// Replay waits while the socket thread spools faster than this worker could replay (journal/burst.ts).
const burstGate = new BurstGate(opts.burstBytesPerSecond, 250, kQuietMs)
let burstRetry: NodeJS.Timeout | null = null

/** Whether replay waits for a burst to end; if so, the worker looks again in kQuietMs. */
function yieldToBurst(): boolean {
  if (!opts.store || writerSeg < 0 || !burstGate.waits(Date.now())) return false
  if (burstRetry === null) {
    burstRetry = setTimeout(() => {
      burstRetry = null
      schedule()
    }, kQuietMs)
  }
  return true
}
interface Ahead {
  id: number
  off: number
  /** -1 until the decoder has read the chunk and says where it ends. */
  len: number
  rows: FromDecoder | null
}
const ahead: Ahead[] = []
/** Rows committed from chunks the decoder thread decoded (the rest were decoded inline). */
let decodedAhead = 0
const spareRows: { text: ArrayBuffer; nums: ArrayBuffer }[] = []
let nextChunkId = 0
/** Where the decoder found no whole record: the inline path replays from there (a segment's end). */
let declinedSeg = -1
let declinedOff = -1
let replayDecoder = opts.spoolDir !== null && opts.store ? startDecoder(opts.spoolDir) : null
// The decoder thread failed (it could not even load its code while the process was out of file
// descriptors): replay goes on inline here, and a new decoder is started after a while.
const kDecoderRestartMs = 5000
let decoderRestart: NodeJS.Timeout | null = null
let decoderFailing = false

function startDecoder(spoolDir: string): Worker {
  const data: DecoderOptions = {
    timezone: opts.timezone,
    batchRows: opts.batchRows,
    spoolDir,
    directIo: opts.spoolDirectIo,
  }
  const w = new Worker(new URL('./replay-decoder.js', import.meta.url), { workerData: data })
  w.on('message', (m: FromDecoder) => {
    decoderFailing = false
    const i = ahead.findIndex((x) => x.id === m.id)
    if (i >= 0) {
      const a = ahead[i]!
      if (m.len > 0) {
        a.len = m.len
        a.rows = m
      } else {
        // Only the last chunk can be unread (readAhead asks for one at a time), so nothing follows it.
        ahead.splice(i, 1)
        spareRows.push({ text: m.text, nums: m.nums })
        declinedSeg = cursorSeg
        declinedOff = a.off
      }
    }
    schedule()
  })
  w.on('error', (err) => decoderFailed(spoolDir, err))
  return w
}

function decoderFailed(spoolDir: string, err: Error): void {
  if (!decoderFailing)
    logEvent('replay-decoder-error', {
      error: (err as NodeJS.ErrnoException).code ?? err.message,
      message: err.message,
      meanwhile: `replay goes on in the journal worker; a new decoder thread in ${kDecoderRestartMs / 1000} s`,
    })
  decoderFailing = true
  void replayDecoder?.terminate()
  replayDecoder = null
  // Chunks it had not decoded yet are read again inline (the cursor is before them); decoded ones commit.
  const undecoded = ahead.findIndex((a) => a.rows === null)
  if (undecoded >= 0) ahead.length = undecoded
  if (!finished && decoderRestart === null)
    decoderRestart = setTimeout(() => {
      decoderRestart = null
      if (!finished && replayDecoder === null) replayDecoder = startDecoder(spoolDir)
    }, kDecoderRestartMs)
  schedule()
}

/**
 * Asks the decoder for the next chunk of the cursor's segment, once the one before it is read (its end
 * is where the next begins), up to kAhead chunks ahead.
 */
function readAhead(): void {
  const last = ahead.at(-1)
  if (ahead.length >= kAhead || (last !== undefined && last.len < 0)) return
  const off = last === undefined ? cursorOff : last.off + last.len
  const limit = cursorSeg < writerSeg ? Number.POSITIVE_INFINITY : writtenOff
  if (limit - off < kAheadMinBytes || (cursorSeg === declinedSeg && off === declinedOff)) return
  if (ahead.length === 0 && replayedInEpisode === 0) episodeStart = Date.now()
  ahead.push({ id: nextChunkId, off, len: -1, rows: null })
  const rows = spareRows.pop() ?? null
  const m: ToDecoder = { id: nextChunkId++, seg: cursorSeg, off, limit, rows }
  replayDecoder!.postMessage(m, rows === null ? [] : [rows.text, rows.nums])
}

const commitAheadTx = tx((a: Ahead, d: FromDecoder) => {
  const r = new PackedRows(Buffer.from(d.text, 0, d.textLen), new Float64Array(d.nums), d.count, d.ascii)
  for (let i = 0; i < r.count; i++) insertRow(r.at(i), r)
  rows.journaled += r.count
  rows.parseErrors += d.parseErrors
  rows.invalidUtf8 += d.invalidUtf8
  rows.withNul += d.withNul
  for (const c of d.corrupt)
    setAside(
      cursorSeg,
      a.off + c.off,
      Buffer.from(c.bytes.buffer, c.bytes.byteOffset, c.bytes.length),
      c.reason,
    )
  st.senders.flush()
  st.volume.flush()
  st.setCursor.run(cursorSeg, a.off + a.len)
})

function commitAhead(a: Ahead): void {
  const before = saveRows()
  try {
    commitAheadTx(a, a.rows!)
  } catch (err) {
    restoreRows(before)
    throw err
  }
  ahead.shift()
  spareRows.push({ text: a.rows!.text, nums: a.rows!.nums })
  decodedAhead += a.rows!.count
  cursorOff = a.off + a.len
  readAtLeast = 0
  replayedInEpisode += a.rows!.count
  startupProgress(a.len, a.rows!.count)
}

function replayStep(): boolean {
  if (!opts.store) return skipStep()
  if (replayDecoder !== null && ahead.length < kAhead && Date.now() - lastSpooledAt >= kQuietMs) readAhead()
  const head = ahead[0]
  if (head !== undefined) {
    if (head.rows === null) return false // being decoded: its arrival schedules the next step
    commitAhead(head)
    return true
  }
  const sealed = cursorSeg < writerSeg
  const limit = sealed ? Number.POSITIVE_INFINITY : writtenOff
  if (!sealed && cursorOff >= limit) {
    caughtUp()
    return false
  }
  const n = reader.read(cursorSeg, cursorOff, limit, readAtLeast)
  if (n <= 0) {
    if (!sealed) return false // the current segment is created before it is reported: not yet visible
    passSegment()
    return true
  }
  if (replayedInEpisode === 0) episodeStart = Date.now()
  const chunk = reader.buf.subarray(0, n)
  const before = saveRows()
  let end: number
  try {
    end = replayTx(chunk, cursorSeg, cursorOff)
  } catch (err) {
    restoreRows(before)
    throw err
  }
  replayedInEpisode += rows.journaled - before.journaled
  startupProgress(end, rows.journaled - before.journaled)
  if (end > 0) {
    cursorOff += end
    readAtLeast = 0
    return true
  }
  if (n === reader.buf.length) {
    readAtLeast = reader.buf.length * 2 // one record larger than the buffer: read more at once
    return true
  }
  // No LF up to the end of the data: only a sealed segment can end like this, torn by a crash mid-write.
  if (sealed) {
    setAside(cursorSeg, cursorOff, Buffer.from(chunk), 'torn record at end of segment')
    moveCursorTx(cursorSeg, cursorOff + n)
    cursorOff += n
    return true
  }
  return false
}

function caughtUp(): void {
  if (replayedInEpisode === 0) return
  logEvent('replay-caught-up', {
    records: replayedInEpisode,
    seconds: ((Date.now() - episodeStart) / 1000).toFixed(2),
  })
  replayedInEpisode = 0
}

function walBytes(): number {
  try {
    return statSync(`${opts.journalPath}-wal`).size
  } catch {
    return 0
  }
}

// A reader that keeps a snapshot open (a sqlite3 shell inside a transaction) stops automatic
// checkpoints from reaching the end of the WAL, which then grows without bound. Past journal.walMaxBytes
// the writer asks for a full checkpoint that truncates the file; if a reader still blocks it, that is
// said once per episode and tried again at the next stats round.
function checkpointIfLarge(): void {
  const size = walBytes()
  if (size < opts.walMaxBytes) return
  const r = db.pragma('wal_checkpoint(TRUNCATE)') as { busy: number; log: number; checkpointed: number }[]
  if (r[0]?.busy) {
    if (!walBlocked)
      logEvent('wal-checkpoint-blocked', { walBytes: size, hint: 'a reader holds an old snapshot' })
    walBlocked = true
  } else {
    if (walBlocked) logEvent('wal-checkpoint-done', { walBytesBefore: size })
    walBlocked = false
  }
}

/**
 * A JS number is bound as a REAL, so a counter would read back as 4.0; a whole number goes in as an
 * INTEGER (the column has no type to convert it), gauges such as delays stay REAL.
 */
function putStat(name: string, v: number, at: number): void {
  st.upsertStat.run(name, Number.isSafeInteger(v) ? BigInt(v) : v, at)
}

function writeStats(): void {
  if (!journalFileOk()) {
    pendingStats = null // not into a file the journal's path no longer names
    return
  }
  checkpointIfLarge()
  const s = pendingStats!
  db.transaction(() => {
    for (const [name, value] of Object.entries(s.values)) putStat(name, value, s.at)
    putStat('server_running', 1, s.at)
    putStat('journal_rows_total', rows.journaled, s.at)
    putStat('journal_wal_bytes', walBytes(), s.at)
    putStat('journal_recreated_total', journalRecreated, s.at)
    putStat('pruned_rows_total', st.pruner.pruned, s.at)
    putStat('parse_errors_total', rows.parseErrors, s.at)
    putStat('invalid_utf8_total', rows.invalidUtf8, s.at)
    putStat('nul_messages_total', rows.withNul, s.at)
    putStat('spool_corrupt_records_total', corrupt, s.at)
    putStat('journal_burst_yields_total', burstGate.yields, s.at)
    putStat('journal_burst_yield_seconds_total', burstGate.waitedMs(s.at) / 1000, s.at)
    putStat('replay_decoder_rows_total', decodedAhead, s.at)
    if (opts.consume !== null) {
      putStat('consume_duplicate_records_total', rows.remoteDuplicates, s.at)
      putStat('consume_gaps_total', rows.remoteGaps, s.at)
    }
    if (st.indexer !== null) {
      const lag = st.indexer.lag(s.at)
      putStat('fts_indexed_to', st.indexer.indexedTo, s.at)
      putStat('fts_lag_rows', lag.rows, s.at)
      putStat('fts_lag_seconds', lag.seconds, s.at)
    }
  })()
  pendingStats = null
}

function report(): void {
  send(
    {
      t: 'progress',
      acked,
      returned,
      cursorSeg,
      cursorOff,
      journaled: rows.journaled,
      corrupt,
      parseErrors: rows.parseErrors,
      lastReceivedAt,
      failing,
      streamSeq,
      remoteDuplicates: rows.remoteDuplicates,
      remoteGaps: rows.remoteGaps,
    },
    returned,
  )
  acked = []
  returned = []
}

// Transient: another writer holds the lock (a `sqlite3` shell in a write transaction), the disk is
// full or failing, or the process is out of file descriptors for a moment (EMFILE opening a segment). Nothing is lost: batches stay queued, the cursor stays put, and the socket thread
// keeps spilling. Logged once per episode, retried until it clears.
function onError(err: unknown): void {
  const code = (err as { code?: string }).code ?? ''
  if (/^SQLITE_(BUSY|LOCKED|FULL|IOERR|CANTOPEN)|^E[MN]FILE$/.test(code)) {
    if (failing === null) {
      failing = code
      logEvent('journal-busy', { code, message: (err as Error).message, retryMs: kRetryMs })
      report() // health checks see it now, not after the next commit
    }
    retryIn(kRetryMs)
    return
  }
  fatal(`journal ${opts.journalPath}: ${(err as Error).stack ?? String(err)}`)
}

/**
 * The stop has waited kStopWaitMs and the journal still holds batches it could not commit: they are
 * written to the spool as a memory file (spool/memory-file.ts), journaled at the next start, and the
 * worker closes. This thread alone decides what was committed and what is written out (a commit is
 * synchronous: this timer runs between transactions), so no batch can be both. Stream messages of
 * spillway consume are only dropped: unacknowledged, the stream delivers them again.
 */
function giveUpWaiting(): void {
  stopTimer = null
  if (finished) return
  if (batches.length > 0) {
    const bufs = batches.map((b) => b.buf)
    let file: string
    try {
      file = writeMemoryFile(opts.spoolDir!, bufs)
    } catch (err) {
      logEvent('journal-stop-spool-failed', {
        error: (err as NodeJS.ErrnoException).code ?? (err as Error).message,
        next: `still waiting for the journal; tried again in ${kStopWaitMs / 1000} s`,
      })
      stopTimer = setTimeout(giveUpWaiting, kStopWaitMs)
      return
    }
    logEvent('journal-stop-spooled', {
      journalError: failing,
      waitedSeconds: kStopWaitMs / 1000,
      batches: batches.length,
      records: bufs.reduce((n, b) => n + countLines(b, 0), 0),
      bytes: bufs.reduce((n, b) => n + b.length, 0),
      file,
      next: 'journaled at the next start, before anything else',
    })
    batches.length = 0
  }
  if (remotes.length > 0) {
    logEvent('journal-stop-unacknowledged', {
      journalError: failing,
      messages: remotes.length,
      next: 'not acknowledged: the stream delivers them again',
    })
    remotes.length = 0
  }
  finish()
}

// Memory files of an earlier stop (spool/memory-file.ts), oldest first: journaled before anything else,
// each in transactions of journal.batchRows records that commit how far the file is done.
const memoryFiles = opts.spoolDir === null ? [] : listMemoryFiles(opts.spoolDir)
let memoryFd = -1
let memoryOff = 0
let memoryRecords = 0
let memoryBuf = Buffer.alloc(0)

const memoryTx = tx((chunk: Buffer, file: string, off: number): number => {
  const end = insertRecords(chunk, 0, chunk.length, opts.batchRows, -1, off)
  st.senders.flush()
  st.volume.flush()
  if (end > 0) st.putMemoryCursor.run(file, off + end)
  return end
})

const forgetMemoryFileTx = tx((file: string) => {
  st.deleteMemoryCursor.run(file)
})

// A crash between deleting a journaled memory file and its cursor row leaves the row: forget it now, so
// a later file can never meet a stale offset. (Locked journal: the next start does it.)
try {
  for (const r of db.prepare('SELECT file FROM spool_memory_cursor').all() as { file: string }[])
    if (!memoryFiles.includes(r.file)) forgetMemoryFileTx(r.file)
} catch (err) {
  if (!/^SQLITE_(BUSY|LOCKED)/.test((err as { code?: string }).code ?? '')) throw err
}

/** Journals the next records of the oldest memory file; at its end, deletes it and its cursor row. */
function memoryStep(): boolean {
  const file = memoryFiles[0]!
  const path = join(opts.spoolDir!, file)
  if (memoryFd < 0) {
    memoryOff = (st.getMemoryCursor.get(file) as { offset: number } | undefined)?.offset ?? 0
    memoryRecords = 0
    if (memoryBuf.length === 0) memoryBuf = Buffer.allocUnsafe(kChunkBytes)
    memoryFd = openSync(path, 'r')
  }
  const n = readSync(memoryFd, memoryBuf, 0, memoryBuf.length, memoryOff)
  if (n > 0) {
    const chunk = memoryBuf.subarray(0, n)
    const before = saveRows()
    let end: number
    try {
      end = memoryTx(chunk, file, memoryOff)
    } catch (err) {
      restoreRows(before)
      throw err
    }
    memoryRecords += rows.journaled - before.journaled
    if (end > 0) {
      memoryOff += end
      return true
    }
    if (n === memoryBuf.length) {
      memoryBuf = Buffer.allocUnsafe(memoryBuf.length * 2) // one record larger than the buffer
      return true
    }
    // No LF up to the end: the file was written whole, so only damage on disk leaves this.
    setAside(-1, memoryOff, Buffer.from(chunk), `torn record at end of ${file}`)
  }
  closeSync(memoryFd)
  memoryFd = -1
  try {
    unlinkSync(path)
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err
  }
  // Deleted first: a crash between the two finds the row without its file, and only deletes the row.
  forgetMemoryFileTx(file)
  memoryFiles.shift()
  logEvent('spool-memory-journaled', { file: path, records: memoryRecords })
  return true
}

function retryIn(ms: number): void {
  retrying = true
  retryTimer = setTimeout(() => {
    retrying = false
    schedule()
  }, ms)
}

// The journal's file under the worker's feet. Deleting journal.db while the server runs does not stop
// SQLite: it writes on into the unlinked file, and what it commits there is gone at the next start
// (the spool segments it replayed are deleted). So every stats round (2 s) the path is checked against
// the open file. When it no longer names it (deleted, renamed, or another file moved over it):
//   1. The rows committed since the last check that found the file in place (the newest then:
//      verifiedMaxId), with the positions (spool, memory files, edges, stream), sender tallies and
//      stats, are copied into a new journal, journal.db.new. Nothing committed after the deletion is
//      lost; what the operator deleted stays deleted.
//   2. The old connection is closed and its -wal and -shm at the path are deleted (SQLite leaves them
//      when its file was unlinked), since a stale -wal beside a database is read as that database's,
//      and written into it. Only when they are its own, though (or gone): anyone else's stay, and then
//      the old connection stays open, unused, to the end, so that SQLite never deletes them by name.
//   3. Once the path is free, journal.db.new is linked there and opened. While another file holds the
//      name, nothing is committed (connections spill to the spool, health says why) until it is moved.
const kHeldRetryMs = 1000

type FileId = { dev: number; ino: number }

function fileId(path: string): FileId | null {
  const s = statSync(path, { throwIfNoEntry: false })
  return s === undefined ? null : { dev: s.dev, ino: s.ino }
}

function same(a: FileId | null, b: FileId | null): boolean {
  return a !== null && b !== null && a.dev === b.dev && a.ino === b.ino
}

let journalId = fileId(opts.journalPath)!
let sidecarIds = sidecars(opts.journalPath).map(fileId)
let verifiedMaxId = (st.maxId.get() as number | null) ?? 0
let verifiedAt = Date.now()
/** Why nothing is committed (another file at the path, a new journal that cannot be made), or null. */
let held: string | null = null
/** The new journal built from the one the path lost, waiting for the path to be free. */
let fresh: { path: string; copied: number; since: number } | null = null
/** Connections to journals the path lost, left open: closing them would delete others' files. */
const leftOpen: Database.Database[] = []
let journalRecreated = 0

/** Whether the journal's path still names the open journal; if not, moves to a new one, or holds. */
function checkJournalFile(): boolean {
  if (fresh === null) {
    let now: FileId | null
    try {
      now = fileId(opts.journalPath)
    } catch {
      return held === null // cannot tell (EACCES on the directory): leave things as they are
    }
    if (same(now, journalId)) {
      verifiedMaxId = (st.maxId.get() as number | null) ?? 0
      verifiedAt = Date.now()
      return true
    }
    if (!buildFresh()) return false
  }
  return placeFresh()
}

/** checkJournalFile, holding on what it did not foresee (a directory it may no longer read). */
function journalFileOk(): boolean {
  try {
    return checkJournalFile()
  } catch (err) {
    const error = (err as { code?: string }).code ?? (err as Error).message
    hold('journal-recreate-failed', `the journal's path cannot be checked (${error})`, 'fix the cause', error)
    return false
  }
}

/** Steps 1 and 2: the new journal beside the path, and the lost one let go of. */
function buildFresh(): boolean {
  const path = `${opts.journalPath}.new`
  const since = verifiedMaxId
  let copied: number
  try {
    for (const f of [path, `${path}-journal`]) rmSync(f, { force: true })
    const d = new Database(path) // rollback-journal mode: one self-contained file once closed
    try {
      d.exec(kSchema)
      if (opts.fullText) d.exec(kFullTextSchema)
      d.pragma(`user_version = ${kSchemaVersion}`)
    } finally {
      d.close()
    }
    db.prepare('ATTACH DATABASE ? AS fresh').run(path)
    try {
      copied = db.transaction(() => {
        const n = db.prepare('INSERT INTO fresh.messages SELECT * FROM main.messages WHERE id > ?').run(since)
        for (const t of kCarriedTables) db.exec(`INSERT OR REPLACE INTO fresh.${t} SELECT * FROM main.${t}`)
        // The per-minute counts of the rows it holds, from the same point on as the lost journal's.
        db.exec('UPDATE fresh.volume_state SET since = (SELECT since FROM main.volume_state WHERE id = 1)')
        db.prepare(
          `INSERT INTO fresh.volume (minute, severity, n)
           SELECT received_at / 60000, coalesce(severity, -1), count(*) FROM main.messages
           WHERE id > ? AND received_at >= (SELECT since FROM main.volume_state WHERE id = 1) GROUP BY 1, 2`,
        ).run(since)
        return n.changes
      })()
    } finally {
      db.exec('DETACH DATABASE fresh')
    }
  } catch (err) {
    rmSync(path, { force: true })
    const error = (err as { code?: string }).code ?? (err as Error).message
    hold(
      'journal-recreate-failed',
      `${basename(opts.journalPath)} is gone and a new journal cannot be made (${error})`,
      'fix the cause; it is tried again every second',
      error,
    )
    return false
  }
  const ownSidecars = sidecars(opts.journalPath).every((p, i) => {
    const now = fileId(p)
    return now === null || same(now, sidecarIds[i] ?? null)
  })
  if (ownSidecars) {
    db.close()
    // SQLite keeps the -wal and -shm of a database whose file was unlinked: they are its own (checked
    // above), and read as the next database's at this path, so they go too.
    sidecars(opts.journalPath).forEach((p, i) => {
      if (same(fileId(p), sidecarIds[i] ?? null)) rmSync(p, { force: true })
    })
  } else {
    leftOpen.push(db)
  }
  fresh = { path, copied, since }
  return true
}

/** Step 3: the new journal at the path once it is free, opened as at start. */
function placeFresh(): boolean {
  const path = opts.journalPath
  const f = fresh!
  const stale = sidecars(path).filter((p) => existsSync(p))
  if (stale.length > 0 && !existsSync(path)) {
    hold(
      'journal-recreate-failed',
      `${stale.map((p) => basename(p)).join(' and ')} of another database are at the path`,
      `move them away; a new journal with the rows since ${new Date(verifiedAt).toISOString()} waits in ${basename(f.path)}`,
    )
    return false
  }
  try {
    linkSync(f.path, path) // never over a file that holds the name (EEXIST)
  } catch (err) {
    const code = (err as { code?: string }).code ?? (err as Error).message
    hold(
      code === 'EEXIST' ? 'journal-replaced' : 'journal-recreate-failed',
      code === 'EEXIST'
        ? `${basename(path)} is another file now`
        : `${basename(path)} is gone and the new journal cannot be put there (${code})`,
      `move it away; a new journal with the rows since ${new Date(verifiedAt).toISOString()} waits in ${basename(f.path)}`,
    )
    return false
  }
  rmSync(f.path)
  fresh = null
  db = openJournal(path)
  st = bind(db)
  journalId = fileId(path)!
  sidecarIds = sidecars(path).map(fileId)
  verifiedMaxId = (st.maxId.get() as number | null) ?? 0
  verifiedAt = Date.now()
  held = null
  journalRecreated++
  logEvent('journal-recreated', {
    path,
    copiedRows: f.copied,
    fromId: f.since + 1,
    cursor: `${cursorSeg}:${cursorOff}`,
    why: 'the path no longer named the open journal: the rows committed since the last check, the positions and stats were copied into this new one',
  })
  return true
}

function hold(event: string, why: string, hint: string, error?: string): void {
  const reason = `${why}: ${hint}`
  if (held !== reason)
    logEvent(event, {
      path: opts.journalPath,
      error,
      hint,
      meanwhile: 'nothing is committed; connections spill to the spool',
    })
  held = reason
  if (failing !== held) {
    failing = held
    report() // health says so now
  }
}

/** The tables a new journal takes whole from the lost one: positions, sender tallies, counters. */
const kCarriedTables = [
  'spool_cursor',
  'edge_cursor',
  'consume_cursor',
  'spool_memory_cursor',
  'sender_stats',
  'stats',
]

function fatal(message: string): never {
  send({ t: 'fatal', message })
  process.exit(1)
}

function finish(): void {
  if (finished) return
  finished = true
  if (burstRetry !== null) clearTimeout(burstRetry)
  if (retryTimer !== null) clearTimeout(retryTimer)
  if (stopTimer !== null) clearTimeout(stopTimer)
  if (decoderRestart !== null) clearTimeout(decoderRestart)
  // Chunks still being decoded are dropped: the cursor is before them, the next start reads them again.
  void replayDecoder?.terminate()
  caughtUp()
  reader.close()
  try {
    // `spillway stats` reads this to say the server is not running (a kill -9 leaves 1: it then goes by
    // the age of the figures).
    putStat('server_running', 0, Date.now())
  } catch {
    // the journal cannot be written (locked, disk full): the figures' age tells stats the same
  }
  db.close()
  if (fresh !== null)
    logEvent('journal-not-placed', {
      path: opts.journalPath,
      file: fresh.path,
      hint: `it holds the rows journaled since ${new Date(verifiedAt).toISOString()}, the positions and stats: to go on with it, move the file at the path away and rename it to ${basename(opts.journalPath)} before the next start`,
    })
  send({ t: 'stopped', journaled: rows.journaled })
  port!.close()
}
