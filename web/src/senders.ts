// Who is logging: each sender, when it was last heard from, how much it sent lately, and the ones that
// went quiet (what `spillway senders` shows), with the addresses that claimed each name.

import { get, kSeverities, type Sender } from './api.js'
import { $, clear, el, row } from './dom.js'
import { duration, localTime } from './time.js'

const kQuietMs = 15 * 60_000
let timer: number | null = null

async function load(): Promise<void> {
  const r = await get<{ now: number; senders: Sender[] }>('/api/senders', new URLSearchParams())
  const quietOnly = $<HTMLInputElement>('quiet-only').checked
  const tb = $<HTMLTableElement>('senders').tBodies[0]!
  clear(tb)
  for (const s of r.senders) {
    const silent = r.now - s.last_seen
    if (quietOnly && silent < kQuietMs) continue
    const addresses = el('span', s.addresses.length === 0 ? '-' : s.addresses.join(', '))
    if (s.addresses.length > 1) {
      addresses.className = 'claimed'
      addresses.title = `${s.addresses.length} addresses sent as ${s.sender} in the last hour`
    }
    const tr = row(
      [
        s.sender,
        addresses,
        s.peer,
        localTime(s.last_seen),
        duration(silent),
        String(s.messages),
        `${(s.recent / 15).toFixed(1)}/min`,
        kSeverities[s.worst_severity_hour] ?? '-',
      ],
      silent >= kQuietMs ? 'quiet' : `sev-${s.worst_severity_hour}`,
    )
    tb.append(tr)
  }
}

export function showSenders(): void {
  void load()
  timer = window.setInterval(() => void load(), 5000)
}

export function hideSenders(): void {
  if (timer !== null) clearInterval(timer)
  timer = null
}

export function initSenders(): void {
  $('quiet-only').addEventListener('change', () => void load())
}
