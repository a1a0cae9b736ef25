// `spillway stats [--watch]`: what the running server is doing, from its /status endpoint (config
// "metrics"); without one, from the journal's stats table, saying how old that is.

import { get } from 'node:http'
import { parseArgs } from 'node:util'
import { loadConfig, resolvePaths } from '../config/load.js'
import { ErrorCodes, SpillwayError } from '../errors.js'
import { readStatsTable } from '../journal/stats-table.js'

interface Status {
  at: number
  problems: string[]
  stats: Record<string, number>
}

/** The server answered, but not with its status (wrong credentials, say): it is running. */
class Answered extends Error {}

/** The credentials metrics.token or metrics.user/password ask for, as a header; none when not set. */
function authorization(m: { token: string; user: string; password: string }): Record<string, string> {
  if (m.token !== '') return { authorization: `Bearer ${m.token}` }
  if (m.password !== '')
    return { authorization: `Basic ${Buffer.from(`${m.user}:${m.password}`).toString('base64')}` }
  return {}
}

function fetchStatus(host: string, port: number, headers: Record<string, string>): Promise<Status> {
  return new Promise((resolve, reject) => {
    const req = get({ host, port, path: '/status', timeout: 3000, headers }, (res) => {
      let body = ''
      res.on('data', (d: Buffer) => {
        body += d.toString()
      })
      res.on('end', () => {
        if (res.statusCode !== 200) {
          reject(new Answered(`HTTP ${res.statusCode}: ${body.trim().slice(0, 200)}`))
          return
        }
        try {
          resolve(JSON.parse(body) as Status)
        } catch (err) {
          reject(new Answered(`not the status JSON (${(err as Error).message})`))
        }
      })
    })
    req.on('timeout', () => req.destroy(new Error('no answer in 3 s')))
    req.on('error', reject)
  })
}

function mb(n: number): string {
  return `${(n / 1048576).toFixed(1)} MB`
}

export function render(
  s: Record<string, number>,
  prev: Status | null,
  now: Status,
  problems: string[],
): string {
  const v = (k: string) => s[k] ?? 0
  const kinds = ['tcp', 'tls', 'udp', 'relp']
  const received = kinds.reduce((n, k) => n + v(`received_${k}_total`), 0)
  const lines: string[] = []
  if (prev !== null) {
    const dt = (now.at - prev.at) / 1000
    const p = prev.stats
    const before = kinds.reduce((n, k) => n + (p[`received_${k}_total`] ?? 0), 0)
    const inRate = (received - before) / dt
    const outRate = (v('journal_rows_total') - (p.journal_rows_total ?? 0)) / dt
    lines.push(`rate         ${Math.round(inRate)} msgs/s in, ${Math.round(outRate)} rows/s journaled`)
  }
  lines.push(
    `health       ${problems.length === 0 ? 'ok' : problems.join('; ')}`,
    `connections  ${v('connections_open')} open, ${v('connections_opened_total')} opened`,
    `received     ${received} (${kinds.map((k) => `${k} ${v(`received_${k}_total`)}`).join(', ')}); journaled ${v('journal_rows_total')}`,
    `spool        ${mb(v('spool_backlog_bytes'))} in ${v('spool_segments')} segment(s) not yet journaled; oldest ~${v('journal_lag_seconds').toFixed(1)} s old (journal lag)`,
    `memory       ${mb(v('memory_buffered_bytes'))} held in memory, not yet on disk (memory lanes ${mb(v('memory_lane_bytes'))}, spool writes ${mb(v('spool_unwritten_bytes'))}, partial frames ${mb(v('partial_frame_bytes'))}); RSS ${mb(v('rss_bytes'))}; loop p99 ${v('event_loop_delay_p99_ms').toFixed(1)} ms (${v('event_loop_delay_own_p99_ms').toFixed(1)} ms its own, without waits for a CPU)`,
    `dropped      spool full ${v('dropped_spool_full_total')}, udp in kernel ${Math.max(0, v('udp_kernel_drops_total'))}, udp queue ${v('dropped_udp_queue_total')}`,
    `refused      max connections ${v('connections_refused_max_total')} (at ${v('connections_max')}), per source ${v('connections_refused_per_source_total')}, not allowed ${v('refused_not_allowed_total')}, out of file descriptors ${v('connections_refused_open_files_total')}`,
    `other        truncated ${v('truncated_total')}, parse errors ${v('parse_errors_total')}, idle timeouts ${v('idle_timeouts_total')}, frame timeouts ${v('frame_timeouts_total')}, corrupt spool records ${v('spool_corrupt_records_total')}`,
  )
  if (s.forward_connected !== undefined) {
    lines.push(
      `forward      ${v('forward_connected') === 1 ? 'connected' : 'NOT connected'}; ${v('forwarded_total')} forwarded; lag ${v('forward_lag_messages')} msgs, ${v('forward_lag_seconds').toFixed(1)} s; ${v('forward_publish_errors_total')} publish errors`,
    )
  }
  return `${lines.join('\n')}\n`
}

/** The server writes its figures every 2 s: older than this, it is not running (or cannot write them). */
const kStaleMs = 10_000
const kWatchMs = 2000

/** Why the stats table says no server is running, or null when one is. */
export function notRunning(stats: Record<string, number>, at: number, now: number): string | null {
  const ago = `${Math.round((now - at) / 1000)} s ago`
  if (at === 0) return 'not running (its journal has no figures yet)'
  if (stats.server_running === 0) return `not running (stopped ${ago}, at ${new Date(at).toISOString()})`
  if (now - at > kStaleMs)
    return `not running (no figures written for ${ago}: it was killed, or cannot write its journal)`
  return null
}

export async function statsCommand(argv: string[]): Promise<void> {
  let values: { config?: string | undefined; watch: boolean }
  try {
    values = parseArgs({
      args: argv,
      options: { config: { type: 'string' }, watch: { type: 'boolean', short: 'w', default: false } },
      strict: true,
    }).values as typeof values
  } catch (err) {
    throw new SpillwayError(ErrorCodes.usage, `stats: ${(err as Error).message}`)
  }
  const cfg = resolvePaths(loadConfig(values.config))
  const out = (s: string) => process.stdout.write(s)
  if (cfg.metrics.port === 0) return fromTable(cfg.journal.path, values.watch, out)
  const url = `http://${cfg.metrics.host}:${cfg.metrics.port}/status`
  const ask = async (): Promise<Status> => {
    try {
      return await fetchStatus(cfg.metrics.host, cfg.metrics.port, authorization(cfg.metrics))
    } catch (err) {
      if (err instanceof Answered)
        throw new SpillwayError(
          ErrorCodes.journal,
          `${url} answered, but not with the server's status: ${err.message}`,
        )
      throw new SpillwayError(
        ErrorCodes.journal,
        `the server is not running: no answer at ${url} (${(err as Error).message}); is spillway serve running with this config?`,
      )
    }
  }
  let prev = await ask()
  if (!values.watch) {
    await new Promise((r) => setTimeout(r, 1000))
    const now = await ask()
    out(render(now.stats, prev, now, now.problems))
    process.exitCode = now.problems.length === 0 ? 0 : 1
    return
  }
  for (;;) {
    await new Promise((r) => setTimeout(r, kWatchMs))
    const now = await ask()
    out(`\n${new Date(now.at).toISOString()}\n${render(now.stats, prev, now, now.problems)}`)
    prev = now
  }
}

/**
 * No metrics listener to ask: the figures the server writes to the journal's stats table every 2 s. Exit
 * 1 when they say it is not running; --watch prints them again every 2 s until it stops.
 */
async function fromTable(journalPath: string, watch: boolean, out: (s: string) => void): Promise<void> {
  let prev: Status | null = null
  for (;;) {
    const t = readStatsTable(journalPath)
    const now = Date.now()
    const down = notRunning(t.stats, t.at, now)
    const status: Status = { at: t.at, problems: down === null ? [] : [down], stats: t.stats }
    out(
      `${prev === null ? '' : '\n'}(from the journal's stats table, written ${Math.round((now - t.at) / 1000)} s ago: this config has no metrics listener, metrics.port is 0)\n`,
    )
    out(render(t.stats, prev !== null && prev.at < t.at ? prev : null, status, status.problems))
    if (down !== null) {
      process.stderr.write(`spillway: the server is ${down}\n`)
      process.exitCode = 1
      return
    }
    if (!watch) return
    prev = status
    await new Promise((r) => setTimeout(r, kWatchMs))
  }
}
