// The forward worker thread: publishes the spool to NATS JetStream, in spool order, from its saved
// position. Everything here may block or wait on the network; none of it runs on the socket thread.
//
// One message in flight at a time (stop-and-wait). The log then stores an edge's messages in spool order,
// which gives the two exactly-once properties:
// - a retried publish (lost acknowledgement, a log node restarting) carries the same bytes and the same
//   Nats-Msg-Id, and the stream's de-duplication window stores it once;
// - after a crash the last message on this edge's subject says exactly how far the log has everything, so
//   a restarted edge resumes there, however long it was down.
// A message carries up to forward.nats.batchBytes of whole spool records (~1,200 of 200 bytes), so one
// loopback round trip moves a thousand records: round trips are far from being the limit.

import { setTimeout as sleep } from 'node:timers/promises'
import { parentPort, workerData } from 'node:worker_threads'
import { type JetStreamManager, jetstream, jetstreamManager, StorageType } from '@nats-io/jetstream'
import { headers, type NatsConnection, nanos } from '@nats-io/transport-node'
import { logEvent } from '../log.js'
import { SpoolReader } from '../spool/reader.js'
import { listSegments } from '../spool/segment.js'
import {
  connectWithRetry,
  kHdrEdge,
  kHdrInstance,
  kHdrPos,
  kHdrPrev,
  kHdrRecords,
  natsProblem,
  streamSubject,
} from './nats.js'
import type { ForwardOptions, FromForwarder, ToForwarder } from './protocol.js'
import { ForwardStateFile } from './state.js'

const kLF = 0x0a
const kPublishTimeoutMs = 2000
const kSyncEveryMs = 1000
const kReportEveryMs = 100
const kRetryMs = [100, 250, 500, 1000, 2000]

const port = parentPort
if (port === null) throw new Error('forward/worker.ts must run as a worker thread')
const opts = workerData as ForwardOptions
const cfg = opts.nats
const subject = cfg.subject.replaceAll('{edge}', cfg.edge)

function send(m: FromForwarder): void {
  port!.postMessage(m)
}

const state = new ForwardStateFile(opts.spoolDir, opts.firstSeg)
const reader = new SpoolReader(opts.spoolDir, opts.directIo)
let seg = state.seg
let off = state.off
// End of the last message the log acknowledged: what forward.state holds, and what the next message
// names as its predecessor (Spillway-Prev), so the central journal can tell a message that is missing.
let ackSeg = seg
let ackOff = off
let writerSeg = -1
let writtenOff = 0
let stopping = false
let connected = false
let wake: (() => void) | null = null
let onStop: () => void = () => {}
const p = {
  forwarded: 0,
  backlogAtStart: 0,
  oldestMs: 0,
  publishErrors: 0,
  duplicates: 0,
}
let lastReport = 0

send({ t: 'ready', instance: state.instance, seg, off })

port.on('message', (m: ToForwarder) => {
  if (m.t === 'spooled') {
    if (m.seg > writerSeg || (m.seg === writerSeg && m.off > writtenOff)) {
      writerSeg = m.seg
      writtenOff = m.off
    }
  } else {
    stopping = true
    onStop()
  }
  const w = wake
  wake = null
  w?.()
})

const syncTimer = setInterval(() => state.sync(), kSyncEveryMs)

function nextEvent(): Promise<void> {
  return new Promise((resolve) => {
    wake = resolve
  })
}

function report(force = false): void {
  const now = Date.now()
  if (!force && now - lastReport < kReportEveryMs) return
  lastReport = now
  send({ t: 'progress', seg, off, connected, ...p })
}

/** Records from (seg, off) to the end of what is on disk: the lag at start, counted once. */
function countBacklog(): number {
  let n = 0
  for (const s of listSegments(opts.spoolDir)) {
    if (s < seg) continue
    let at = s === seg ? off : 0
    for (;;) {
      const got = reader.read(s, at, Number.POSITIVE_INFINITY)
      if (got <= 0) break
      for (let i = reader.buf.indexOf(kLF, 0); i !== -1 && i < got; i = reader.buf.indexOf(kLF, i + 1)) n++
      at += got
    }
  }
  return n
}

async function setUp(nc: NatsConnection): Promise<JetStreamManager> {
  const jsm = await jetstreamManager(nc)
  try {
    await jsm.streams.info(cfg.stream)
  } catch (err) {
    if (!cfg.createStream || !/stream not found/i.test((err as Error).message)) throw err
    await jsm.streams.add({
      name: cfg.stream,
      subjects: [streamSubject(cfg.subject)],
      storage: StorageType.File,
      num_replicas: cfg.replicas,
      duplicate_window: nanos(cfg.duplicateWindowSeconds * 1000),
    })
    logEvent('forward-stream-created', {
      stream: cfg.stream,
      subjects: streamSubject(cfg.subject),
      replicas: cfg.replicas,
      duplicateWindowSeconds: cfg.duplicateWindowSeconds,
    })
  }
  // Where the log has everything from this spool: the last message on our subject, if it is ours.
  let last = null
  try {
    last = await jsm.streams.getMessage(cfg.stream, { last_by_subj: subject })
  } catch (err) {
    if (!/no message found/i.test((err as Error).message)) throw err
  }
  const pos = last?.header?.get(kHdrPos) ?? ''
  const [s, , e] = pos.split(':').map(Number)
  if (last?.header?.get(kHdrInstance) === state.instance && s !== undefined && e !== undefined) {
    if (s > seg || (s === seg && e > off)) {
      logEvent('forward-resume', { from: `${seg}:${off}`, to: `${s}:${e}`, reason: 'the log has it' })
      seg = s
      off = e
      ackSeg = s
      ackOff = e
      state.write(seg, off)
    }
  }
  return jsm
}

async function run(): Promise<void> {
  p.backlogAtStart = countBacklog()
  report(true)
  // The log refusing us (credentials, TLS) is no reason to stop receiving: the spool keeps filling
  // within its quota, /healthz says what is wrong, and a fixed log or a rotated credential is picked up.
  while (!stopping) {
    const nc = await connectWithRetry(
      cfg,
      `spillway-edge-${cfg.edge}`,
      'forward.nats',
      'forward-error',
      () => stopping,
    )
    if (nc === null) return
    await forward(nc)
    if (!nc.isClosed()) await nc.close()
  }
}

/** Publishes on `nc` until stopping, or until the connection is closed for good (then connects anew). */
async function forward(nc: NatsConnection): Promise<void> {
  connected = true
  logEvent('forward-connected', { server: nc.getServer(), stream: cfg.stream, subject, edge: cfg.edge })
  void watchStatus(nc)
  for (let attempt = 0; ; attempt++) {
    try {
      await setUp(nc)
      break
    } catch (err) {
      if (attempt === 0)
        logEvent('forward-error', { stage: 'stream', stream: cfg.stream, message: (err as Error).message })
      if (stopping || nc.isClosed()) return
      await sleep(kRetryMs[Math.min(attempt, kRetryMs.length - 1)]!)
    }
  }
  const js = jetstream(nc, { timeout: kPublishTimeoutMs })
  while (!stopping && !nc.isClosed()) {
    const sealed = seg < writerSeg
    const limit = sealed ? Number.POSITIVE_INFINITY : writtenOff
    if (writerSeg < 0 || (!sealed && off >= limit)) {
      p.oldestMs = 0
      report(true)
      await nextEvent()
      continue
    }
    const n = reader.read(seg, off, Math.min(limit, off + cfg.batchBytes))
    if (n <= 0) {
      if (!sealed) {
        await nextEvent() // the writer's segment is created before it is reported: not yet visible
        continue
      }
      // forward.state keeps the end of the last acknowledged message; the segment move is implied.
      seg = reader.nextSegment(seg, writerSeg)
      off = 0
      report(true)
      continue
    }
    const buf = reader.buf
    const lastLf = buf.lastIndexOf(kLF, n - 1)
    if (lastLf === -1) {
      // Only the end of a sealed segment can hold bytes without LF: a write torn by a crash. The journal
      // sets it aside (spool-corrupt); the log never gets half a record.
      // (A whole record always fits in batchBytes: the config checks it.)
      if (sealed) off += n
      else await nextEvent()
      continue
    }
    const end = off + lastLf + 1
    const payload = buf.subarray(0, lastLf + 1)
    let records = 0
    for (let i = payload.indexOf(kLF); i !== -1; i = payload.indexOf(kLF, i + 1)) records++
    p.oldestMs = receivedMs(payload)
    const h = headers()
    h.set(kHdrEdge, cfg.edge)
    h.set(kHdrInstance, state.instance)
    h.set(kHdrPos, `${seg}:${off}:${end}`)
    h.set(kHdrPrev, `${ackSeg}:${ackOff}`)
    h.set(kHdrRecords, String(records))
    const msgID = `${state.instance}:${seg}:${off}:${end}`
    let failing = false
    for (let attempt = 0; ; attempt++) {
      try {
        const ack = await js.publish(subject, payload, { msgID, headers: h, timeout: kPublishTimeoutMs })
        if (ack.duplicate) p.duplicates++
        break
      } catch (err) {
        p.publishErrors++
        if (!failing) {
          failing = true
          logEvent('forward-error', {
            stage: 'publish',
            subject,
            position: `${seg}:${off}`,
            message: (err as Error).message,
            retry: 'until acknowledged; the spool keeps filling meanwhile',
          })
        }
        report(true)
        // Stopping while the log is away: the position stays, the next start publishes it again. A
        // connection closed for good (the log refused a reconnect): connect anew, same position.
        if (stopping || nc.isClosed()) return
        await sleep(kRetryMs[Math.min(attempt, kRetryMs.length - 1)]!)
      }
    }
    if (failing) logEvent('forward-recovered', { position: `${seg}:${off}` })
    off = end
    ackSeg = seg
    ackOff = end
    p.forwarded += records
    state.write(seg, off)
    report()
  }
}

async function watchStatus(nc: NatsConnection): Promise<void> {
  for await (const s of nc.status()) {
    if (s.type === 'disconnect') {
      connected = false
      logEvent('forward-disconnected', { server: s.server })
    } else if (s.type === 'reconnect') {
      connected = true
      logEvent('forward-reconnected', { server: s.server })
    }
    report(true)
  }
}

/** RECEIVED_MS of the first record: the field after "CRC32 ". */
function receivedMs(b: Buffer): number {
  let ms = 0
  for (let i = 9; i < b.length && b[i] !== 0x20; i++) ms = ms * 10 + (b[i]! - 0x30)
  return ms
}

function finish(): void {
  clearInterval(syncTimer)
  state.write(ackSeg, ackOff)
  state.close()
  reader.close()
  report(true)
  send({ t: 'stopped' })
  process.exit(0) // ends this thread only; a NATS connection still retrying goes with it
}

// run() returns after the publish in flight once stopping; a stop arriving while connect() still waits
// for an absent log must not wait for it, so it gets a grace period and no more.
const kStopGraceMs = 1000
const stopped = new Promise<void>((resolve) => {
  onStop = () => setTimeout(resolve, kStopGraceMs)
})
Promise.race([run(), stopped]).then(finish, (err: unknown) => {
  send({ t: 'fatal', message: `forward: ${natsProblem(err, cfg, 'forward.nats')}` })
  finish()
})
