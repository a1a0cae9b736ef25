// The server's health and the figures `spillway stats` prints: ingest rate, spool backlog, journal and
// full-text lag, WAL size, the health checks' verdict. Refreshed every 2 s.

import { get } from './api.js'
import { $, clear, el } from './dom.js'

interface Status {
  at: number
  problems: string[]
  stats: Record<string, number>
}

let timer: number | null = null
let prev: Status | null = null

function mb(n: number): string {
  return `${(n / 1048576).toFixed(1)} MB`
}

function figure(name: string, value: string, note = ''): HTMLElement {
  const box = el('div', undefined, 'figure')
  box.append(el('div', name, 'figure-name'), el('div', value, 'figure-value'))
  if (note !== '') box.append(el('div', note, 'figure-note'))
  return box
}

async function load(): Promise<void> {
  const s = await get<Status>('/api/health', new URLSearchParams())
  const v = (k: string) => s.stats[k] ?? 0
  const verdict = $('verdict')
  verdict.textContent = s.problems.length === 0 ? 'Healthy' : `Unhealthy: ${s.problems.join('; ')}`
  verdict.className = s.problems.length === 0 ? 'ok' : 'error'
  const kinds = ['tcp', 'tls', 'udp', 'relp']
  const received = kinds.reduce((n, k) => n + v(`received_${k}_total`), 0)
  let rate = '…'
  let journaled = '…'
  if (prev !== null && s.at > prev.at) {
    const dt = (s.at - prev.at) / 1000
    const p = (k: string) => prev!.stats[k] ?? 0
    rate = `${Math.round((received - kinds.reduce((n, k) => n + p(`received_${k}_total`), 0)) / dt)} msgs/s`
    journaled = `${Math.round((v('journal_rows_total') - p('journal_rows_total')) / dt)} rows/s`
  }
  prev = s
  const box = $('figures')
  clear(box)
  box.append(
    figure(
      'ingest rate',
      rate,
      `${received} received (${kinds.map((k) => `${k} ${v(`received_${k}_total`)}`).join(', ')})`,
    ),
    figure('journal rate', journaled, `${v('journal_rows_total')} journaled`),
    figure(
      'spool backlog',
      mb(v('spool_backlog_bytes')),
      `${v('spool_segments')} segment(s) not yet journaled`,
    ),
    figure(
      'journal lag',
      `${v('journal_lag_seconds').toFixed(1)} s`,
      'age of the oldest message not yet journaled',
    ),
    figure(
      'full-text lag',
      `${v('fts_lag_rows')} rows`,
      `${v('fts_lag_seconds').toFixed(1)} s behind; searches scan those rows`,
    ),
    figure('WAL size', mb(v('journal_wal_bytes'))),
    figure('connections', String(v('connections_open')), `${v('connections_opened_total')} opened`),
    figure('memory', mb(v('rss_bytes')), `${mb(v('memory_buffered_bytes'))} buffered`),
    figure(
      'event loop p99',
      `${v('event_loop_delay_p99_ms').toFixed(1)} ms`,
      `${v('event_loop_delay_own_p99_ms').toFixed(1)} ms its own`,
    ),
    figure(
      'dropped',
      String(
        v('dropped_spool_full_total') +
          Math.max(0, v('udp_kernel_drops_total')) +
          v('dropped_udp_queue_total'),
      ),
      `spool full ${v('dropped_spool_full_total')}, udp kernel ${Math.max(0, v('udp_kernel_drops_total'))}, udp queue ${v('dropped_udp_queue_total')}`,
    ),
    figure('parse errors', String(v('parse_errors_total')), `${v('truncated_total')} truncated`),
  )
}

export function showHealth(): void {
  prev = null
  const tick = () =>
    load().catch((err: Error) => {
      $('verdict').textContent = `The server does not answer: ${err.message}`
      $('verdict').className = 'error'
    })
  void tick()
  timer = window.setInterval(tick, 2000)
}

export function hideHealth(): void {
  if (timer !== null) clearInterval(timer)
  timer = null
}
