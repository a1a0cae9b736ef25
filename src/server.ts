// Wires the stages together: listeners -> framing -> router (connection buffer) -> spool -> journal.
// This module runs on the socket thread; SQLite runs only in the journal worker (journal/worker.ts).

import { accessSync, constants, mkdirSync, statSync } from 'node:fs'
import { monitorEventLoopDelay } from 'node:perf_hooks'
import { Router } from './buffer/router.js'
import type { Config } from './config/load.js'
import { ErrorCodes, SpillwayError } from './errors.js'
import { JournalClient } from './journal/client.js'
import { ConnectionGate } from './listen/gate.js'
import { TcpListener } from './listen/tcp.js'
import { UdpListener } from './listen/udp.js'
import { logEvent } from './log.js'
import { Counters } from './metrics/counters.js'
import { MetricsServer } from './metrics/http.js'
import { udpRcvbufErrors, udpSocketDrops } from './metrics/kernel.js'
import { listSegments, segmentPath } from './spool/segment.js'
import { SpoolWriter } from './spool/writer.js'

const kStatsIntervalMs = 2000
// The delay histogram records whole timer intervals; the delay is what exceeds the resolution.
const kLoopResolutionMs = 5

export interface Bound {
  transport: 'tcp' | 'udp' | 'tls'
  host: string
  port: number
}

export class Server {
  readonly config: Config
  readonly counters = new Counters()
  readonly gate: ConnectionGate
  bound: Bound[] = []
  private journal: JournalClient | null = null
  private spool: SpoolWriter | null = null
  private router: Router | null = null
  private listeners: (TcpListener | UdpListener)[] = []
  private statsTimer: NodeJS.Timeout | null = null
  private metrics: MetricsServer | null = null
  private readonly loopDelay = monitorEventLoopDelay({ resolution: kLoopResolutionMs })
  private stopping: Promise<void> | null = null

  constructor(config: Config) {
    this.config = config
    this.gate = new ConnectionGate(config.limits.maxConnections, config.limits.maxConnectionsPerSource)
  }

  async start(): Promise<void> {
    const cfg = this.config
    this.loopDelay.enable()
    // The worker first: its cursor says which segment numbers are taken, so the writer starts past them.
    const journal = new JournalClient({
      journalPath: cfg.journal.path,
      spoolDir: cfg.spool.dir,
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
    })
    this.journal = journal
    checkSpoolDir(cfg.spool.dir) // fails loudly, before anything is accepted, if spool.dir is unusable
    const ready = await journal.start()
    const onDisk = listSegments(cfg.spool.dir)
    const firstSeg = Math.max(ready.cursorSeg, onDisk.at(-1) ?? 0) + 1
    const spool = new SpoolWriter(cfg.spool.dir, firstSeg, cfg.spool.segmentBytes)
    // A backlog left by an earlier run counts against spool.maxBytes until it is replayed.
    for (const seg of onDisk)
      if (seg >= ready.cursorSeg) spool.adopt(seg, statSync(segmentPath(cfg.spool.dir, seg)).size)
    this.spool = spool
    const router = new Router(
      {
        threshold: cfg.spool.thresholdBytes,
        memoryBytes: cfg.limits.memoryBytes,
        spoolMaxBytes: cfg.spool.maxBytes,
        whenFull: cfg.spool.whenFull,
      },
      spool,
      journal,
      this.counters,
    )
    router.setCursor(ready.cursorSeg, ready.cursorOff)
    this.router = router
    spool.onWritten = (seg, off) => journal.postSpooled(seg, off)
    journal.postSpooled(firstSeg, 0)
    journal.onProgress = (p) => {
      router.acked(p.acked)
      router.setCursor(p.cursorSeg, p.cursorOff)
      if (p.cursorSeg === spool.seg && p.cursorOff === spool.off) spool.rollIfIdle()
    }
    journal.onFatal = (message) => {
      logEvent('fatal', { message: 'journal worker failed; stopping', detail: message })
      process.exitCode = 1
      void this.stop()
    }
    logEvent('journal-open', {
      path: cfg.journal.path,
      rows: ready.rows,
      spool: cfg.spool.dir,
      segment: firstSeg,
    })

    const max = cfg.limits.maxMessageBytes
    for (const l of cfg.listeners) {
      const listener =
        l.transport !== 'udp'
          ? new TcpListener(l, router, this.counters, cfg.limits, this.gate)
          : new UdpListener(l, router, this.counters, max, cfg.udp.recvBufferBytes, this.gate)
      this.listeners.push(listener)
      const bound = await listener.listen()
      this.bound.push({ transport: l.transport, host: bound.host, port: bound.port })
      logEvent('listening', { transport: l.transport, ...bound })
    }
    if (cfg.metrics.port > 0) {
      this.metrics = new MetricsServer(this)
      const port = await this.metrics.listen(cfg.metrics.host, cfg.metrics.port)
      logEvent('metrics', { url: `http://${cfg.metrics.host}:${port}/metrics` })
    }
    this.statsTimer = setInterval(() => journal.postStats(this.stats()), kStatsIntervalMs)
    this.statsTimer.unref()
  }

  stats(): Record<string, number> {
    const mem = process.memoryUsage()
    return {
      ...this.counters.snapshot(),
      connections_refused_max_total: this.gate.refused.max_connections,
      connections_refused_per_source_total: this.gate.refused.max_connections_per_source,
      refused_not_allowed_total: this.gate.refused.not_allowed,
      spool_bytes_written_total: this.spool?.bytesWritten ?? 0,
      connections_open: this.listeners.reduce((n, l) => n + (l instanceof TcpListener ? l.conns.size : 0), 0),
      rss_bytes: mem.rss,
      journal_rows_total: this.journal?.journaled ?? 0,
      parse_errors_total: this.journal?.parseErrors ?? 0,
      spool_corrupt_records_total: this.journal?.corrupt ?? 0,
      journal_lag_seconds: this.journalLagSeconds(),
      spool_backlog_bytes: this.spool?.backlog ?? 0,
      spool_segments: this.spool?.segments ?? 0,
      udp_kernel_drops_total:
        udpSocketDrops(this.bound.filter((b) => b.transport === 'udp').map((b) => b.port)) ?? -1,
      udp_rcvbuf_errors_system_total: udpRcvbufErrors() ?? -1,
      memory_buffered_bytes: this.router?.memTotal ?? 0,
      event_loop_delay_p99_ms: Math.max(0, this.loopDelay.percentile(99) / 1e6 - kLoopResolutionMs),
      event_loop_delay_max_ms: Math.max(0, this.loopDelay.max / 1e6 - kLoopResolutionMs),
    }
  }

  /** SIGHUP: TLS listeners re-read their certificates; established connections are not touched. */
  reloadTls(): void {
    for (const l of this.listeners) if (l instanceof TcpListener) l.reloadTls()
  }

  /** How old the oldest message not yet journaled is, roughly: 0 when the journal has everything. */
  private journalLagSeconds(): number {
    const behind = (this.spool?.backlog ?? 0) > 0 || (this.router?.memTotal ?? 0) > 0
    const last = this.journal?.lastReceivedAt ?? 0
    return behind && last > 0 ? Math.max(0, (Date.now() - last) / 1000) : 0
  }

  /** Why the server is not healthy: empty when it is. */
  problems(): string[] {
    const out: string[] = []
    if (this.journal === null || this.journal.dead) out.push('journal: the worker has stopped')
    else if (this.journal.failing !== null) out.push(`journal: cannot be written (${this.journal.failing})`)
    if (this.spool?.failing) out.push('spool: cannot be written (see spool-error on stderr)')
    for (const l of this.listeners)
      if (!l.up) out.push(`listener ${l.config.transport} ${l.config.host}:${l.config.port}: down`)
    return out
  }

  /**
   * Graceful stop: stop accepting and close connections, write out every buffered record (memory batches
   * to the journal, spool bytes to disk), then let the worker commit and close. Nothing accepted is lost;
   * what is still in the spool is replayed at the next start.
   */
  stop(): Promise<void> {
    if (this.stopping === null) this.stopping = this.doStop()
    return this.stopping
  }

  private async doStop(): Promise<void> {
    if (this.statsTimer !== null) clearInterval(this.statsTimer)
    await this.metrics?.close()
    await Promise.all(this.listeners.map((l) => l.close()))
    this.router?.flush()
    if (this.spool !== null) {
      await this.spool.drain()
      this.spool.close()
    }
    if (this.journal !== null) {
      this.journal.postStats(this.stats())
      await this.journal.stop()
    }
    this.loopDelay.disable()
    const s = this.stats()
    logEvent('stopped', {
      received: s.received_tcp_total! + s.received_udp_total!,
      spooled: s.spooled_total,
      journaled: this.journal?.journaled ?? 0,
      truncated: s.truncated_total,
      partialDropped: s.partial_frames_dropped_at_stop_total,
      peakRssMB: Math.round(process.resourceUsage().maxRSS / 1024),
      loopDelayP99ms: s.event_loop_delay_p99_ms!.toFixed(2),
    })
  }
}

function checkSpoolDir(dir: string): void {
  try {
    mkdirSync(dir, { recursive: true })
    accessSync(dir, constants.W_OK | constants.R_OK)
  } catch (err) {
    throw new SpillwayError(
      ErrorCodes.spoolDir,
      `spool: directory ${dir} is not usable: ${(err as Error).message}; check spool.dir and its permissions`,
      { cause: err },
    )
  }
}
