// Wires the stages together: listeners -> framing -> router (connection buffer) -> spool -> journal,
// and, when forward.nats is set, spool -> forwarder -> NATS JetStream.
// This module runs on the socket thread; SQLite runs only in the journal worker (journal/worker.ts), and
// publishing to NATS only in the forward worker (forward/worker.ts).

import { accessSync, constants, mkdirSync, statSync } from 'node:fs'
import type { Socket } from 'node:net'
import { Router } from './buffer/router.js'
import type { Config, ListenerConfig } from './config/load.js'
import { ConsoleHttp } from './console/http.js'
import { ErrorCodes, SpillwayError } from './errors.js'
import { ForwardClient } from './forward/client.js'
import type { ForwardProgress } from './forward/protocol.js'
import { readForwardState } from './forward/state.js'
import { JournalClient, journalOptions } from './journal/client.js'
import { TcpConn } from './listen/conn.js'
import { fdBudget } from './listen/fd-limit.js'
import { ConnectionGate } from './listen/gate.js'
import { RelpConn, RelpCounters } from './listen/relp.js'
import { unixPeer } from './listen/socket-state.js'
import { TcpListener } from './listen/tcp.js'
import { UdpListener } from './listen/udp.js'
import { logEvent } from './log.js'
import { Counters } from './metrics/counters.js'
import { MetricsServer } from './metrics/http.js'
import { udpRcvbufErrors, udpSocketDrops } from './metrics/kernel.js'
import { LoopMonitor } from './metrics/loop.js'
import { parseFsync } from './spool/fsync.js'
import { listSegments, segmentPath, setAsideStrays } from './spool/segment.js'
import { SpoolWriter } from './spool/writer.js'

const kStatsIntervalMs = 2000

export interface Bound {
  transport: ListenerConfig['transport']
  /** The address, or for unix sockets the path. */
  host: string
  port: number
}

export class Server {
  readonly config: Config
  readonly counters = new Counters()
  readonly relp = new RelpCounters()
  /** Open RELP sessions: each is told when the spool has written what it must acknowledge. */
  private readonly relpSessions = new Set<RelpConn>()
  readonly gate: ConnectionGate
  bound: Bound[] = []
  private journal: JournalClient | null = null
  private forward: ForwardClient | null = null
  /** How far the journal and the forwarder have each consumed the spool: it is released up to the lower. */
  private journalPos = { seg: 0, off: 0 }
  private forwardPos: { seg: number; off: number } | null = null
  private forwardSegPosted = -1
  private spool: SpoolWriter | null = null
  private router: Router | null = null
  private listeners: (TcpListener | UdpListener)[] = []
  /** Listeners already said to be down (listener-down). */
  private readonly down = new Set<TcpListener | UdpListener>()
  private statsTimer: NodeJS.Timeout | null = null
  private metrics: MetricsServer | null = null
  /** The web console, when the HTTP listener serves it (tests read its query counters). */
  console: ConsoleHttp | null = null
  private readonly loop = new LoopMonitor()
  private stopping: Promise<void> | null = null

  constructor(config: Config) {
    this.config = config
    this.gate = new ConnectionGate(config.limits.maxConnections, config.limits.maxConnectionsPerSource)
  }

  async start(): Promise<void> {
    const cfg = this.config
    this.loop.start()
    checkSpoolDir(cfg.spool.dir) // fails loudly, before anything is accepted, if spool.dir is unusable
    // Before the journal worker or the writer looks at the spool: a non-file named like a segment would
    // fail every start (a crash loop under systemd).
    for (const s of setAsideStrays(cfg.spool.dir))
      logEvent('spool-corrupt', {
        segment: s.seg,
        reason: `not a regular file (${s.kind})`,
        movedTo: s.movedTo,
      })
    const forwarding = cfg.forward.nats.servers.length > 0
    // The journal must not delete what the forwarder has not published: it keeps segments from here on.
    const keepFromSeg = forwarding ? (readForwardState(cfg.spool.dir)?.seg ?? 0) : null
    // The worker first: its cursor says which segment numbers are taken, so the writer starts past them.
    const journal = new JournalClient(
      journalOptions(cfg, {
        spoolDir: cfg.spool.dir,
        store: cfg.journal.enabled,
        keepFromSeg,
        consume: null,
      }),
    )
    this.journal = journal
    const ready = await journal.start()
    this.journalPos = { seg: ready.cursorSeg, off: ready.cursorOff }
    const onDisk = listSegments(cfg.spool.dir)
    const firstSeg = Math.max(ready.cursorSeg, onDisk.at(-1) ?? 0) + 1
    const spool = new SpoolWriter(
      cfg.spool.dir,
      firstSeg,
      cfg.spool.segmentBytes,
      cfg.spool.directIo,
      parseFsync(cfg.spool.fsync) ?? 0,
    )
    this.spool = spool
    if (forwarding) {
      const forward = new ForwardClient(
        cfg.spool.dir,
        cfg.spool.directIo,
        onDisk[0] ?? firstSeg,
        cfg.forward.nats,
      )
      this.forward = forward
      this.forwardPos = await forward.start()
      forward.onProgress = (p) => this.forwarded(p)
      forward.onFatal = (message) => {
        logEvent('fatal', { message: 'forward worker failed; stopping', detail: message })
        process.exitCode = 1
        void this.stop()
      }
      logEvent('forward-open', {
        edge: forward.edge,
        instance: forward.instance,
        servers: cfg.forward.nats.servers.join(','),
        stream: cfg.forward.nats.stream,
        position: `${this.forwardPos.seg}:${this.forwardPos.off}`,
      })
    }
    // A backlog left by an earlier run counts against spool.maxBytes until it is consumed.
    const from = this.releasePoint()
    for (const seg of onDisk)
      if (seg >= from.seg) spool.adopt(seg, statSync(segmentPath(cfg.spool.dir, seg)).size)
    spool.releasedTo(from.seg, from.off)
    const router = new Router(
      {
        // Forwarding publishes from the spool: every message goes through it (durable mode).
        threshold: forwarding ? 0 : cfg.spool.thresholdBytes,
        memoryBytes: cfg.limits.memoryBytes,
        spoolMaxBytes: cfg.spool.maxBytes,
        whenFull: cfg.spool.whenFull,
        maxUnwritten: cfg.spool.maxUnwrittenBytes,
      },
      spool,
      journal,
      this.counters,
    )
    router.setCursor(ready.cursorSeg, ready.cursorOff)
    this.router = router
    const forward = this.forward
    const relpSessions = this.relpSessions
    spool.onWritten = (seg, off) => {
      router.spoolWritten(seg, off)
      for (const session of relpSessions) session.written(seg, off)
      journal.postSpooled(seg, off)
      forward?.postSpooled(seg, off)
    }
    journal.postSpooled(firstSeg, 0)
    forward?.postSpooled(firstSeg, 0)
    journal.onProgress = (p) => {
      router.setJournalStuck(p.failing !== null)
      router.acked(p.acked)
      router.setCursor(p.cursorSeg, p.cursorOff)
      this.journalPos = { seg: p.cursorSeg, off: p.cursorOff }
      this.release()
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

    this.limitConnections()
    for (const l of cfg.listeners) {
      const listener = this.makeListener(l, router)
      this.listeners.push(listener)
      const bound = await listener.listen()
      this.bound.push({ transport: l.transport, host: bound.host, port: bound.port })
      const unix = l.transport === 'unix' || l.transport === 'unix-stream'
      const { host, port, ...rest } = bound
      logEvent(
        'listening',
        unix ? { transport: l.transport, path: host, ...rest } : { transport: l.transport, ...bound },
      )
    }
    if (cfg.metrics.port > 0) {
      const m = cfg.metrics
      const web =
        cfg.console.enabled && cfg.journal.enabled
          ? new ConsoleHttp(
              {
                journalPath: cfg.journal.path,
                timeLimitMs: cfg.console.timeLimitMs,
                maxRows: cfg.console.maxRows,
              },
              {
                stats: () => this.stats(),
                problems: () => this.problems(),
                journaled: () => journal.journaled,
              },
            )
          : null
      this.console = web
      this.metrics = new MetricsServer(this, {
        token: m.token,
        user: m.user,
        password: m.password,
        console: web,
      })
      const port = await this.metrics.listen(m.host, m.port)
      const base = `http://${m.host.includes(':') ? `[${m.host}]` : m.host}:${port}`
      logEvent('metrics', { url: `${base}/metrics` })
      if (web !== null) logEvent('console', { url: `${base}/` })
    }
    this.statsTimer = setInterval(() => {
      this.watchListeners()
      journal.postStats(this.stats())
    }, kStatsIntervalMs)
    this.statsTimer.unref()
  }

  private makeListener(l: ListenerConfig, router: Router): TcpListener | UdpListener {
    const cfg = this.config
    const max = cfg.limits.maxMessageBytes
    switch (l.transport) {
      case 'udp':
      case 'unix':
        return new UdpListener(l, router, this.counters, max, cfg.udp.recvBufferBytes, this.gate)
      case 'relp':
        return new TcpListener(
          l,
          router,
          this.counters,
          cfg.limits,
          this.gate,
          (socket, tls) => new RelpConn(socket, router, max, this.relp, this.relpSessions, tls),
        )
      case 'unix-stream':
        // The peer is who the kernel says connected (SO_PEERCRED), read before the socket is adopted.
        return new TcpListener(
          l,
          router,
          this.counters,
          cfg.limits,
          this.gate,
          (socket) =>
            new TcpConn(socket, router, max, this.counters.framing, 'unix', unixPeer(socketFd(socket))),
        )
      default:
        return new TcpListener(l, router, this.counters, cfg.limits, this.gate)
    }
  }

  /**
   * limits.maxConnections, or what the open-file limit leaves for connections once the server's own
   * files are open (listen/fd-limit.ts), whichever is lower; said at start when it is the limit.
   */
  private limitConnections(): void {
    const want = this.config.limits.maxConnections
    const fds = fdBudget(this.config.listeners.length)
    if (fds.connections >= want) return
    if (fds.connections < 1)
      throw new SpillwayError(
        ErrorCodes.listen,
        `the open-file limit (${fds.soft}) leaves no descriptor for connections: the server keeps ` +
          `${fds.reserved} for its own files; raise it (LimitNOFILE= in the systemd unit, ulimit -n)`,
      )
    this.gate.max = fds.connections
    logEvent('open-file-limit', {
      limit: fds.soft,
      hard: fds.hard,
      maxConnections: want,
      connectionsAllowed: fds.connections,
      reserved: fds.reserved,
      hint: 'limits.maxConnections exceeds what the open-file limit leaves: raise LimitNOFILE= (systemd) or ulimit -n',
    })
  }

  private forwarded(p: ForwardProgress): void {
    this.forwardPos = { seg: p.seg, off: p.off }
    if (p.seg !== this.forwardSegPosted) {
      this.forwardSegPosted = p.seg
      this.journal?.postForwarded(p.seg)
    }
    this.release()
  }

  /** The lower of the journal's and the forwarder's positions: the spool is needed from there on. */
  private releasePoint(): { seg: number; off: number } {
    const j = this.journalPos
    const f = this.forwardPos
    return f !== null && (f.seg < j.seg || (f.seg === j.seg && f.off < j.off)) ? f : j
  }

  /** The journal or the forwarder moved on: spool space may be free, the segment may be sealed. */
  private release(): void {
    const spool = this.spool!
    const at = this.releasePoint()
    spool.releasedTo(at.seg, at.off)
    this.router?.spoolFreed()
    if (at.seg === spool.seg && at.off === spool.off) spool.rollIfIdle()
  }

  /** Forwarding figures for stats and /metrics; none when forwarding is off. */
  private forwardStats(): Record<string, number> {
    if (this.forward === null) return {}
    const f = this.forward.last
    const forwarded = f?.forwarded ?? 0
    return {
      forwarded_total: forwarded,
      forward_lag_messages: Math.max(
        0,
        (f?.backlogAtStart ?? 0) + (this.spool?.recordsWritten ?? 0) - forwarded,
      ),
      forward_lag_seconds: f !== null && f.oldestMs > 0 ? Math.max(0, (Date.now() - f.oldestMs) / 1000) : 0,
      forward_connected: f?.connected ? 1 : 0,
      forward_publish_errors_total: f?.publishErrors ?? 0,
      forward_duplicates_total: f?.duplicates ?? 0,
    }
  }

  stats(): Record<string, number> {
    const mem = memoryUsage()
    const loop = this.loop.read()
    return {
      ...this.forwardStats(),
      ...this.counters.snapshot(),
      received_relp_total: this.relp.received,
      relp_sessions_total: this.relp.sessions,
      relp_acked_total: this.relp.acked,
      relp_refused_total: this.relp.refusedAcks,
      relp_protocol_errors_total: this.relp.protocolErrors,
      connections_refused_max_total: this.gate.refused.max_connections,
      connections_refused_per_source_total: this.gate.refused.max_connections_per_source,
      connections_refused_open_files_total: this.gate.refused.open_files,
      connections_max: this.gate.max,
      refused_not_allowed_total: this.gate.refused.not_allowed,
      spooled_total: this.spool?.recordsWritten ?? 0,
      spool_bytes_written_total: this.spool?.bytesWritten ?? 0,
      spool_syncs_total: this.spool?.syncs ?? 0,
      spool_sync_seconds_total: this.spool?.syncSeconds ?? 0,
      spool_direct_bytes_written_total: this.spool?.directBytes ?? 0,
      connections_open: this.listeners.reduce((n, l) => n + (l instanceof TcpListener ? l.conns.size : 0), 0),
      rss_bytes: mem.rss,
      heap_used_bytes: mem.heapUsed,
      array_buffers_bytes: mem.arrayBuffers,
      journal_rows_total: this.journal?.journaled ?? 0,
      parse_errors_total: this.journal?.parseErrors ?? 0,
      spool_corrupt_records_total: this.journal?.corrupt ?? 0,
      journal_lag_seconds: this.journalLagSeconds(),
      spool_backlog_bytes: this.spool?.backlog ?? 0,
      spool_segments: this.spool?.segments ?? 0,
      udp_kernel_drops_total:
        udpSocketDrops(this.bound.filter((b) => b.transport === 'udp').map((b) => b.port)) ?? -1,
      udp_rcvbuf_errors_system_total: udpRcvbufErrors() ?? -1,
      ...this.memoryHeld(),
      event_loop_delay_p99_ms: loop.p99Ms,
      event_loop_delay_max_ms: loop.maxMs,
      event_loop_delay_own_p99_ms: loop.ownP99Ms,
      event_loop_delay_own_max_ms: loop.ownMaxMs,
      // Linux only: elsewhere the key is absent.
      ...(loop.cpuWaitMs < 0 ? {} : { socket_thread_cpu_wait_seconds_total: loop.cpuWaitMs / 1000 }),
    }
  }

  /**
   * Received bytes held in memory and not yet on disk, in the journal or the spool: the memory lanes'
   * records (batched for the journal worker or in it, not yet committed), spooled records the writer
   * has not written yet (the disk behind, or refusing writes), and unfinished frames held between reads.
   */
  private memoryHeld(): Record<string, number> {
    const lanes = this.router?.memTotal ?? 0
    const unwritten = this.spool?.unwritten ?? 0
    let partial = 0
    for (const l of this.listeners)
      if (l instanceof TcpListener) for (const c of l.conns) partial += c.pendingBytes
    return {
      memory_buffered_bytes: lanes + unwritten + partial,
      memory_lane_bytes: lanes,
      spool_unwritten_bytes: unwritten,
      partial_frame_bytes: partial,
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

  /** A listener that stopped listening while the server runs is said once (and in /healthz, always). */
  private watchListeners(): void {
    for (const l of this.listeners) {
      if (this.down.has(l) || l.up) continue
      this.down.add(l)
      logEvent('listener-down', {
        transport: l.config.transport,
        listener: l.config.path || `${l.config.host}:${l.config.port}`,
        hint: 'its socket was closed from outside the server; restart the server to listen again',
      })
    }
  }

  /** Why the server is not healthy: empty when it is. */
  problems(): string[] {
    const out: string[] = []
    if (this.journal === null || this.journal.dead) out.push('journal: the worker has stopped')
    else if (this.journal.failing !== null) out.push(`journal: cannot be written (${this.journal.failing})`)
    if (this.spool?.failing) out.push('spool: cannot be written (see spool-error on stderr)')
    if (this.forward !== null && this.forward.last !== null && !this.forward.last.connected)
      out.push('forward: not connected to NATS (see forward-disconnected on stderr)')
    for (const l of this.listeners)
      if (!l.up)
        out.push(
          `listener ${l.config.transport} ${l.config.path || `${l.config.host}:${l.config.port}`}: down`,
        )
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
    // RELP sessions: everything they read is written and acknowledged now; they close.
    await Promise.all(this.listeners.map((l) => (l instanceof TcpListener ? l.afterDrain() : undefined)))
    await this.forward?.stop()
    if (this.journal !== null) {
      this.journal.postStats(this.stats())
      await this.journal.stop()
    }
    this.loop.stop()
    const s = this.stats()
    logEvent('stopped', {
      received:
        s.received_tcp_total! + s.received_tls_total! + s.received_udp_total! + s.received_relp_total!,
      spooled: s.spooled_total,
      journaled: this.journal?.journaled ?? 0,
      truncated: s.truncated_total,
      partialDropped: s.partial_frames_dropped_at_stop_total,
      peakRssMB: Math.round(process.resourceUsage().maxRSS / 1024),
      loopDelayP99ms: s.event_loop_delay_p99_ms!.toFixed(2),
      loopDelayOwnP99ms: s.event_loop_delay_own_p99_ms!.toFixed(2),
      cpuWaitMs: Math.round((s.socket_thread_cpu_wait_seconds_total ?? -0.001) * 1000),
    })
  }
}

/** The file descriptor under a socket (Node keeps it on the handle, on Unix). */
function socketFd(socket: Socket): number | undefined {
  return (socket as unknown as { _handle?: { fd?: number } })._handle?.fd
}

/** process.memoryUsage(), which reads /proc/self/stat: out of descriptors (EMFILE), -1 for each. */
function memoryUsage(): { rss: number; heapUsed: number; arrayBuffers: number } {
  try {
    return process.memoryUsage()
  } catch {
    return { rss: -1, heapUsed: -1, arrayBuffers: -1 }
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
