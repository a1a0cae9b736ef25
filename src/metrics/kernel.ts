// UDP loss happens in the kernel, before Spillway sees a byte: a datagram that arrives while the socket's
// receive buffer is full is dropped there. Linux counts those drops per socket (/proc/net/udp, udp6: the
// last column) and for the whole system (/proc/net/snmp, Udp: RcvbufErrors). Read when stats are taken,
// never on the hot path. Elsewhere these files do not exist and the figures are null.

import { readFileSync } from 'node:fs'

/** Kernel drops on the UDP sockets bound to these local ports (summed), or null if unknown here. */
export function udpSocketDrops(ports: readonly number[]): number | null {
  if (ports.length === 0) return 0
  const want = new Set(ports.map((p) => p.toString(16).toUpperCase().padStart(4, '0')))
  let total = 0
  let seen = false
  for (const file of ['/proc/net/udp', '/proc/net/udp6']) {
    let text: string
    try {
      text = readFileSync(file, 'utf8')
    } catch {
      continue
    }
    seen = true
    for (const line of text.split('\n').slice(1)) {
      const f = line.trim().split(/\s+/)
      const local = f[1]
      if (local === undefined || f.length < 13) continue
      if (want.has(local.slice(local.lastIndexOf(':') + 1))) total += Number(f[f.length - 1])
    }
  }
  return seen ? total : null
}

/** System-wide UDP receive-buffer errors since boot, or null if unknown here. */
export function udpRcvbufErrors(): number | null {
  let text: string
  try {
    text = readFileSync('/proc/net/snmp', 'utf8')
  } catch {
    return null
  }
  const lines = text.split('\n').filter((l) => l.startsWith('Udp:'))
  if (lines.length < 2) return null
  const names = lines[0]!.split(/\s+/)
  const values = lines[1]!.split(/\s+/)
  const i = names.indexOf('RcvbufErrors')
  return i > 0 ? Number(values[i]) : null
}
