// spillway consume: journals a JetStream stream that edges forward to (forward.nats) into journal.path,
// with the same schema plus the edge column. This thread runs the NATS client; SQLite runs in the journal
// worker (journal/worker.ts), which commits each message's rows together with the stream sequence and
// the edge's spool position. Acknowledgements are sent only after that commit, so a crash of this
// process between the two is answered by redelivery, and the worker skips what it already has.
//
// Order: one consumer process reads its durable consumer in stream order. But the log may hold messages
// it delivered that never arrived (this process crashed, or the consumer's leader moved mid-delivery);
// redelivered only after ack_wait, after newer ones, an edge's records would arrive out of order. So a
// durable consumer that delivered past the committed sequence is recreated to start right after it: at
// start, and whenever the journal worker finds a message that does not follow its edge's last one
// ('stalled'). The journal's cursor, not the log's, is the truth.

import {
  AckPolicy,
  type ConsumerMessages,
  DeliverPolicy,
  type JetStreamManager,
  type JsMsg,
  jetstream,
  jetstreamManager,
} from '@nats-io/jetstream'
import { type NatsConnection, nanos } from '@nats-io/transport-node'
import type { Config } from '../config/load.js'
import { connectWithRetry, kHdrEdge, kHdrInstance, kHdrPos, kHdrPrev } from '../forward/nats.js'
import { JournalClient, journalOptions } from '../journal/client.js'
import { logEvent } from '../log.js'
import { connPrefix, maxRecordBytes, RecordEncoder } from '../spool/record.js'

const kMaxAckPending = 128
const kRetryMs = 1000
const kStatsIntervalMs = 2000

export class Consumer {
  private readonly cfg: Config
  private journal: JournalClient | null = null
  private nc: NatsConnection | null = null
  private messages: ConsumerMessages | null = null
  private pending: JsMsg[] = []
  private committedSeq = 0
  /** Bumped by each re-read of the stream; the worker drops messages of earlier reads. */
  private epoch = 0
  private reread = false
  private lostRounds = 0
  private jsm: JetStreamManager | null = null
  private readonly encoder = new RecordEncoder()
  private statsTimer: NodeJS.Timeout | null = null
  private numPending = 0
  private stopping: Promise<void> | null = null
  received = 0

  constructor(cfg: Config) {
    this.cfg = cfg
  }

  /** Runs until stop(): resolves when the stream is no longer read. */
  async run(): Promise<void> {
    const cfg = this.cfg
    const c = cfg.consume.nats
    const journal = new JournalClient(
      journalOptions(cfg, {
        spoolDir: null,
        store: true,
        keepFromSeg: null,
        consume: { stream: c.stream, durable: c.durable },
      }),
    )
    this.journal = journal
    const ready = await journal.start()
    this.committedSeq = ready.streamSeq
    journal.onProgress = (p) => this.committed(p.streamSeq)
    journal.onStalled = (m) => {
      this.epoch = m.epoch
      this.committed(m.streamSeq)
      this.pending = [] // not acknowledged: the recreated consumer delivers them again
      this.reread = true
      this.messages?.stop()
    }
    journal.onFatal = (message) => {
      logEvent('fatal', { message: 'journal worker failed; stopping', detail: message })
      process.exitCode = 1
      void this.stop()
    }
    logEvent('journal-open', { path: cfg.journal.path, rows: ready.rows, streamSeq: ready.streamSeq })
    const nc = await connectWithRetry(
      c,
      `spillway-consume-${c.durable}`,
      'consume.nats',
      'consume-error',
      () => this.stopping !== null,
    )
    if (nc === null) return
    this.nc = nc
    logEvent('consume-connected', { server: nc.getServer(), stream: c.stream, durable: c.durable })
    this.statsTimer = setInterval(() => void this.postStats(), kStatsIntervalMs)
    while (this.stopping === null) {
      this.reread = false
      const messages = await this.openConsumer(nc)
      if (messages === null) break
      this.messages = messages
      if (this.stopping !== null || this.reread) messages.stop()
      for await (const m of messages) {
        if (this.reread) break // what the stopped read still hands out comes again from the next one
        this.take(m)
      }
      if (!this.reread) return
      logEvent('consume-reread', {
        after: this.committedSeq,
        reason: 'a message arrived before one it follows',
      })
    }
  }

  /** Stops reading, waits for the worker to commit what it holds, acknowledges it, and closes. */
  stop(): Promise<void> {
    if (this.stopping === null) this.stopping = this.doStop()
    return this.stopping
  }

  private async doStop(): Promise<void> {
    if (this.statsTimer !== null) clearInterval(this.statsTimer)
    this.messages?.stop()
    if (this.journal !== null) {
      await this.postStats()
      await this.journal.stop()
    }
    if (this.nc !== null) {
      await this.nc.flush().catch(() => {})
      await this.nc.close()
    }
    logEvent('stopped', {
      received: this.received,
      journaled: this.journal?.journaled ?? 0,
      streamSeq: this.committedSeq,
    })
  }

  /**
   * Creates the durable consumer (or re-creates it right after the committed sequence) and starts
   * reading it; null once stopping. Every request here can time out while the cluster elects a new
   * leader (a node restarting): each is retried until it answers, never allowed to end the process.
   */
  private async openConsumer(nc: NatsConnection): Promise<ConsumerMessages | null> {
    const c = this.cfg.consume.nats
    for (let attempt = 0; ; attempt++) {
      try {
        const jsm = await jetstreamManager(nc)
        this.jsm = jsm
        let info = null
        try {
          info = await jsm.consumers.info(c.stream, c.durable)
        } catch (err) {
          if (!/consumer not found/i.test((err as Error).message)) throw err
        }
        const s = this.committedSeq
        if (info !== null && info.delivered.stream_seq > s) {
          logEvent('consume-reset', {
            durable: c.durable,
            delivered: info.delivered.stream_seq,
            committed: s,
            reason: 'the log delivered past what the journal committed; reading again right after it',
          })
          await jsm.consumers.delete(c.stream, c.durable)
          info = null
        }
        if (info === null) {
          await jsm.consumers.add(c.stream, {
            durable_name: c.durable,
            ack_policy: AckPolicy.Explicit,
            ack_wait: nanos(c.ackWaitSeconds * 1000),
            max_ack_pending: kMaxAckPending,
            ...(c.filterSubject !== '' ? { filter_subject: c.filterSubject } : {}),
            ...(s > 0
              ? { deliver_policy: DeliverPolicy.StartSequence, opt_start_seq: s + 1 }
              : { deliver_policy: DeliverPolicy.All }),
          })
        }
        const consumer = await jetstream(nc).consumers.get(c.stream, c.durable)
        return await consumer.consume({ max_messages: kMaxAckPending })
      } catch (err) {
        if (attempt === 0)
          logEvent('consume-waiting', {
            stream: c.stream,
            message: (err as Error).message,
            retry: 'every second (the stream appears when the first edge forwards)',
          })
        if (this.stopping !== null) return null
        await new Promise((r) => setTimeout(r, kRetryMs))
      }
    }
  }

  private take(m: JsMsg): void {
    this.received++
    this.pending.push(m)
    const h = m.headers
    const instance = h?.get(kHdrInstance) ?? ''
    const pos = (h?.get(kHdrPos) ?? '').split(':').map(Number)
    const prev = (h?.get(kHdrPrev) ?? '').split(':').map(Number)
    const hasPrev = prev.length === 2 && prev.every(Number.isSafeInteger)
    if (instance !== '' && pos.length === 3 && pos.every(Number.isSafeInteger)) {
      const ab = new ArrayBuffer(m.data.length)
      new Uint8Array(ab).set(m.data)
      this.journal!.postRemote({
        epoch: this.epoch,
        seq: m.seq,
        edge: h?.get(kHdrEdge) || null,
        instance,
        seg: pos[0]!,
        start: pos[1]!,
        end: pos[2]!,
        prevSeg: hasPrev ? prev[0]! : -1,
        prevOff: hasPrev ? prev[1]! : 0,
        buf: ab,
        len: ab.byteLength,
      })
      return
    }
    // Published by something other than an edge: the payload is one message, journaled as received from
    // transport "nats" with the subject as its peer.
    const data = Buffer.from(m.data.buffer, m.data.byteOffset, m.data.length)
    const prefix = connPrefix('nats', m.subject)
    const out = Buffer.allocUnsafe(maxRecordBytes(prefix.length, data.length))
    const ms = Buffer.from(String(Math.floor(m.info.timestampNanos / 1e6)), 'latin1')
    const len = this.encoder.encode(out, 0, ms, prefix, data, 0, data.length, 0)
    const ab = new ArrayBuffer(len)
    out.copy(new Uint8Array(ab), 0, 0, len)
    this.journal!.postRemote({
      epoch: this.epoch,
      seq: m.seq,
      edge: null,
      instance: '',
      seg: 0,
      start: 0,
      end: 0,
      prevSeg: -1,
      prevOff: 0,
      buf: ab,
      len,
    })
  }

  private committed(seq: number): void {
    if (seq <= this.committedSeq && this.pending.length === 0) return
    this.committedSeq = seq
    const keep: JsMsg[] = []
    for (const m of this.pending) {
      if (m.seq <= seq) m.ack()
      else keep.push(m)
    }
    this.pending = keep
  }

  private async postStats(): Promise<void> {
    const c = this.cfg.consume.nats
    try {
      const info = await this.jsm!.consumers.info(c.stream, c.durable)
      this.numPending = info.num_pending
      // The log counts deliveries this process never got (lost in transit, as when the consumer's leader
      // moved) as awaiting acknowledgement: with nothing of ours in flight for two rounds, read again
      // now rather than wait ack_wait for the redelivery.
      this.lostRounds = info.num_ack_pending > 0 && this.pending.length === 0 ? this.lostRounds + 1 : 0
      if (this.lostRounds >= 2 && !this.reread) {
        this.lostRounds = 0
        this.reread = true
        this.messages?.stop()
      }
    } catch {
      // the log is away: keep the last figure
    }
    this.journal?.postStats({
      consume_received_total: this.received,
      consume_pending_messages: this.numPending,
      consume_stream_seq: this.committedSeq,
    })
  }
}
