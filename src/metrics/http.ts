// The HTTP listener (config "metrics"; metrics.port 0 turns it off): Prometheus text at /metrics
// (prom-client), health at /healthz, the raw status as JSON at /status for `spillway stats`, and the web
// console at / (console/http.ts). GET and HEAD only; credentials when metrics.token or .password is set.
// Values are read from the server's counters when scraped; nothing is done per message.

import { timingSafeEqual } from 'node:crypto'
import { createServer, type Server as HttpServer } from 'node:http'
import { Counter, collectDefaultMetrics, Gauge, Registry } from 'prom-client'
import type { ConsoleHttp } from '../console/http.js'
import { ErrorCodes, SpillwayError } from '../errors.js'
import { logEvent } from '../log.js'

export interface StatusSource {
  /** The server's counters and gauges, by stats-table name. */
  stats(): Record<string, number>
  /** Why the server is unhealthy, or an empty list. */
  problems(): string[]
}

type Def = [name: string, help: string, from: (s: Record<string, number>) => Record<string, number>]

// Prometheus names for the stats-table values; a label set per entry of what `from` returns.
const kCounters: Def[] = [
  [
    'spillway_messages_received_total',
    'Messages read from sockets.',
    (s) => ({
      'transport=tcp': s.received_tcp_total!,
      'transport=tls': s.received_tls_total!,
      'transport=udp': s.received_udp_total!,
      'transport=relp': s.received_relp_total!,
    }),
  ],
  [
    'spillway_messages_journaled_total',
    'Rows committed to the journal.',
    (s) => ({ '': s.journal_rows_total! }),
  ],
  [
    'spillway_messages_spooled_total',
    'Messages written through the spool.',
    (s) => ({ '': s.spooled_total! }),
  ],
  [
    'spillway_messages_dropped_total',
    'Messages dropped, by reason.',
    (s) => ({
      'reason=spool_full': s.dropped_spool_full_total!,
      'reason=udp_kernel': Math.max(0, s.udp_kernel_drops_total!),
      'reason=udp_queue': s.dropped_udp_queue_total!,
    }),
  ],
  [
    'spillway_messages_truncated_total',
    'Messages cut to limits.maxMessageBytes.',
    (s) => ({ '': s.truncated_total! }),
  ],
  ['spillway_parse_errors_total', 'Frames no header grammar fits.', (s) => ({ '': s.parse_errors_total! })],
  [
    'spillway_connections_refused_total',
    'TCP connections closed at accept (and UDP datagrams refused), by reason.',
    (s) => ({
      'reason=max_connections': s.connections_refused_max_total!,
      'reason=max_connections_per_source': s.connections_refused_per_source_total!,
      'reason=not_allowed': s.refused_not_allowed_total!,
      'reason=open_files': s.connections_refused_open_files_total!,
    }),
  ],
  [
    'spillway_idle_timeouts_total',
    'Connections closed for silence.',
    (s) => ({ '': s.idle_timeouts_total! }),
  ],
  [
    'spillway_frame_timeouts_total',
    'Connections closed because a message stayed unfinished past limits.frameTimeoutSeconds.',
    (s) => ({ '': s.frame_timeouts_total! }),
  ],
  [
    'spillway_spool_corrupt_records_total',
    'Spool records set aside as corrupt.',
    (s) => ({ '': s.spool_corrupt_records_total! }),
  ],
  [
    'spillway_forwarded_total',
    'Messages acknowledged by the NATS JetStream log (forward.nats).',
    (s) => ({ '': s.forwarded_total! }),
  ],
  [
    'spillway_forward_publish_errors_total',
    'Publishes to the log that failed and were retried.',
    (s) => ({ '': s.forward_publish_errors_total! }),
  ],
  [
    'spillway_socket_thread_cpu_wait_seconds_total',
    'Time the socket thread was ready to run while the kernel ran other threads (Linux only).',
    (s) => ({ '': s.socket_thread_cpu_wait_seconds_total! }),
  ],
]
const kGauges: Def[] = [
  [
    'spillway_forward_lag_messages',
    'Messages spooled and not yet acknowledged by the log.',
    (s) => ({ '': s.forward_lag_messages! }),
  ],
  [
    'spillway_forward_lag_seconds',
    'Age of the oldest message not yet acknowledged by the log; 0 when caught up.',
    (s) => ({ '': s.forward_lag_seconds! }),
  ],
  ['spillway_forward_connected', '1 while connected to the log.', (s) => ({ '': s.forward_connected! })],
  ['spillway_connections', 'Open TCP connections.', (s) => ({ '': s.connections_open! })],
  ['spillway_spool_bytes', 'Spooled bytes not yet journaled.', (s) => ({ '': s.spool_backlog_bytes! })],
  [
    'spillway_spool_segments',
    'Spool segment files holding records not yet journaled.',
    (s) => ({ '': s.spool_segments! }),
  ],
  [
    'spillway_memory_buffered_bytes',
    'Received bytes held in memory, not yet on disk (journal or spool): the sum of the parts.',
    (s) => ({ '': s.memory_buffered_bytes! }),
  ],
  [
    'spillway_memory_buffered_part_bytes',
    'Of those: memory lanes not yet committed, spooled records not yet written, unfinished frames.',
    (s) => ({
      'part=memory_lanes': s.memory_lane_bytes!,
      'part=spool_unwritten': s.spool_unwritten_bytes!,
      'part=partial_frames': s.partial_frame_bytes!,
    }),
  ],
  [
    'spillway_journal_lag_seconds',
    'Age of what the journal has not committed yet; 0 when caught up.',
    (s) => ({ '': s.journal_lag_seconds! }),
  ],
  [
    'spillway_event_loop_delay_p99_seconds',
    'Socket thread event-loop delay, p99.',
    (s) => ({ '': s.event_loop_delay_p99_ms! / 1000 }),
  ],
  [
    'spillway_event_loop_delay_own_p99_seconds',
    'Socket thread event-loop delay less its wait for a CPU (its own work, GC, lock waits), p99.',
    (s) => ({ '': s.event_loop_delay_own_p99_ms! / 1000 }),
  ],
  ['spillway_resident_memory_bytes', 'Resident set size.', (s) => ({ '': s.rss_bytes! })],
]

function labels(key: string): Record<string, string> {
  if (key === '') return {}
  const [k, v] = key.split('=') as [string, string]
  return { [k]: v }
}

/** The label a metric's values are keyed by ("transport=tcp": transport), or none. */
function labelNames(from: Def[2]): string[] {
  const names = Object.keys(from(new Proxy({}, { get: () => 0 })))
  return names[0] === '' ? [] : [names[0]!.split('=')[0]!]
}

/** One stats() per scrape, not one per metric. */
function cached(source: StatusSource): StatusSource {
  let at = 0
  let last: Record<string, number> = {}
  return {
    stats() {
      const now = Date.now()
      if (now - at > 100) {
        last = source.stats()
        at = now
      }
      return last
    },
    problems: () => source.problems(),
  }
}

export function metricsRegistry(live: StatusSource): Registry {
  const source = cached(live)
  const registry = new Registry()
  // process_* (CPU, RSS, open fds, start time) and nodejs_* (heap, GC, event-loop lag, handles) of the
  // server process, as every Node exporter has them; computed at scrape time.
  collectDefaultMetrics({ register: registry })
  for (const [name, help, from] of kCounters) {
    new Counter({
      name,
      help,
      labelNames: labelNames(from),
      registers: [registry],
      collect() {
        this.reset()
        // A metric whose feature is off (forwarding) has no value: it stays at 0.
        for (const [k, v] of Object.entries(from(source.stats()))) if (v !== undefined) this.inc(labels(k), v)
      },
    })
  }
  for (const [name, help, from] of kGauges) {
    new Gauge({
      name,
      help,
      labelNames: labelNames(from),
      registers: [registry],
      collect() {
        for (const [k, v] of Object.entries(from(source.stats()))) if (v !== undefined) this.set(labels(k), v)
      },
    })
  }
  return registry
}

export interface HttpOptions {
  /** "Authorization: Bearer TOKEN", or TOKEN as a basic-auth password; "" = not required. */
  token: string
  /** HTTP basic auth; "" = not required. */
  user: string
  password: string
  /** The web console at / (console/http.ts), or null. */
  console: ConsoleHttp | null
}

// Text from the journal is attacker-controlled: no inline script or style can run, nothing is framed,
// and the browser takes every response as the type it is sent as.
const kSecurityHeaders = {
  'content-security-policy':
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; " +
    "base-uri 'none'; form-action 'self'; frame-ancestors 'none'",
  'x-content-type-options': 'nosniff',
  'x-frame-options': 'DENY',
  'referrer-policy': 'no-referrer',
}

function same(a: string, b: string): boolean {
  const x = Buffer.from(a)
  const y = Buffer.from(b)
  return x.length === y.length && timingSafeEqual(x, y)
}

/** Whether a request carries the credentials the listener asks for (any, when none are set). */
export function authorized(
  header: string | undefined,
  o: Pick<HttpOptions, 'token' | 'user' | 'password'>,
): boolean {
  if (o.token === '' && o.password === '') return true
  const [scheme = '', value = ''] = (header ?? '').split(' ', 2)
  if (scheme.toLowerCase() === 'bearer') return o.token !== '' && same(value, o.token)
  if (scheme.toLowerCase() !== 'basic') return false
  const decoded = Buffer.from(value, 'base64').toString('utf8')
  const colon = decoded.indexOf(':')
  if (colon < 0) return false
  const user = decoded.slice(0, colon)
  const password = decoded.slice(colon + 1)
  return (
    (o.token !== '' && same(password, o.token)) ||
    (o.password !== '' && same(user, o.user) && same(password, o.password))
  )
}

export class MetricsServer {
  private readonly http: HttpServer
  private readonly registry: Registry
  private readonly console: ConsoleHttp | null
  private lastError: string | undefined

  constructor(source: StatusSource, opts: HttpOptions) {
    this.registry = metricsRegistry(source)
    this.console = opts.console
    this.http = createServer((req, res) => {
      for (const [k, v] of Object.entries(kSecurityHeaders)) res.setHeader(k, v)
      // Every path here only reads: anything but GET and HEAD is refused before it is looked at.
      if (req.method !== 'GET' && req.method !== 'HEAD') {
        res.writeHead(405, { allow: 'GET, HEAD', 'content-type': 'text/plain' })
        res.end(`${req.method} is not allowed: this listener answers GET and HEAD only\n`)
        return
      }
      if (!authorized(req.headers.authorization, opts)) {
        res.writeHead(401, {
          'www-authenticate': 'Basic realm="spillway", charset="UTF-8"',
          'content-type': 'text/plain',
        })
        res.end('credentials required (metrics.token, or metrics.user and metrics.password)\n')
        return
      }
      let url: URL
      try {
        url = new URL(req.url ?? '/', 'http://localhost')
      } catch {
        res.writeHead(400, { 'content-type': 'text/plain' })
        res.end('bad request target\n')
        return
      }
      const path = url.pathname
      if (path === '/metrics') {
        this.registry.metrics().then(
          (text) => {
            res.writeHead(200, { 'content-type': this.registry.contentType })
            res.end(text)
          },
          (err: Error) => {
            res.writeHead(500)
            res.end(`${err.message}\n`)
          },
        )
      } else if (path === '/healthz') {
        const problems = source.problems()
        res.writeHead(problems.length === 0 ? 200 : 503, { 'content-type': 'text/plain' })
        res.end(problems.length === 0 ? 'ok\n' : `${problems.join('\n')}\n`)
      } else if (path === '/status') {
        res.writeHead(200, { 'content-type': 'application/json' })
        res.end(
          JSON.stringify({
            at: Date.now(),
            pid: process.pid,
            problems: source.problems(),
            stats: source.stats(),
          }),
        )
      } else if (this.console === null || !this.console.handle(req, res, url)) {
        res.writeHead(404, { 'content-type': 'text/plain' })
        res.end(
          `not found: try ${this.console === null ? '' : '/ (the console), '}/metrics, /healthz or /status\n`,
        )
      }
    })
  }

  listen(host: string, port: number): Promise<number> {
    return new Promise((resolve, reject) => {
      this.http.once('error', (err) =>
        reject(
          new SpillwayError(ErrorCodes.listen, `metrics ${host}:${port}: cannot listen: ${err.message}`, {
            cause: err,
          }),
        ),
      )
      this.http.listen(port, host, () => {
        // From now on an accept error (EMFILE) is the scraper's loss, not the server's end.
        this.http.removeAllListeners('error')
        this.http.on('error', (err: NodeJS.ErrnoException) => {
          if (this.lastError !== err.code) logEvent('metrics-error', { error: err.code ?? err.message })
          this.lastError = err.code
        })
        const a = this.http.address()
        resolve(typeof a === 'object' && a !== null ? a.port : port)
      })
    })
  }

  close(): Promise<void> {
    this.console?.close()
    this.http.closeAllConnections()
    return new Promise((resolve) => this.http.close(() => resolve()))
  }
}
