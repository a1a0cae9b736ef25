// Who may connect, and how many at once. Checked once per accepted connection (or UDP datagram), never
// per message. Every refusal is counted by reason; the log says so at most once per reason per
// kLogEveryMs, with how many were refused since, so a flood of refusals cannot flood the log.

import { BlockList, isIPv4 } from 'node:net'
import { logEvent } from '../log.js'

export const RefusalReason = {
  maxConnections: 'max_connections',
  maxPerSource: 'max_connections_per_source',
  notAllowed: 'not_allowed',
  tlsHandshake: 'tls_handshake',
  openFiles: 'open_files',
} as const
export type RefusalReason = (typeof RefusalReason)[keyof typeof RefusalReason]

const kLogEveryMs = 10_000
/** After accept() failed for want of descriptors (EMFILE), connections are closed at once this long. */
const kAcceptPauseMs = 1000

/** A listener's allow-list; null allows everyone. */
export function allowList(cidrs: readonly string[]): BlockList | null {
  if (cidrs.length === 0) return null
  const list = new BlockList()
  for (const c of cidrs) {
    const [addr = '', bits] = c.split('/')
    const type = isIPv4(addr) ? 'ipv4' : 'ipv6'
    if (bits === undefined) list.addAddress(addr, type)
    else list.addSubnet(addr, Number(bits), type)
  }
  return list
}

/** "::ffff:10.1.2.3" (an IPv4 peer on a dual-stack socket) is checked and counted as 10.1.2.3. */
export function plainAddress(address: string): string {
  return address.startsWith('::ffff:') && isIPv4(address.slice(7)) ? address.slice(7) : address
}

export function allowed(list: BlockList | null, address: string): boolean {
  if (list === null) return true
  const a = plainAddress(address)
  return list.check(a, isIPv4(a) ? 'ipv4' : 'ipv6')
}

export class ConnectionGate {
  readonly refused: Record<RefusalReason, number> = {
    max_connections: 0,
    max_connections_per_source: 0,
    not_allowed: 0,
    tls_handshake: 0,
    open_files: 0,
  }
  open = 0
  /** limits.maxConnections, or less when the open-file limit leaves less (listen/fd-limit.ts). */
  max: number
  /** accept() failed with EMFILE or ENFILE: until then, connections are closed at once. */
  private pausedUntil = 0
  private readonly perSource = new Map<string, number>()
  private readonly maxPerSource: number
  private readonly lastLog = new Map<RefusalReason, { at: number; since: number }>()

  constructor(max: number, maxPerSource: number) {
    this.max = max
    this.maxPerSource = maxPerSource
  }

  /** Admits a connection from `address` (counting it open) or returns why not. */
  admit(address: string, list: BlockList | null, listener: string): RefusalReason | null {
    const source = plainAddress(address)
    let reason: RefusalReason | null = null
    let limit = 0
    if (this.pausedUntil > 0 && !this.pauseOver()) {
      reason = RefusalReason.openFiles
    } else if (!allowed(list, source)) {
      reason = RefusalReason.notAllowed
    } else if (this.open >= this.max) {
      reason = RefusalReason.maxConnections
      limit = this.max
    } else if ((this.perSource.get(source) ?? 0) >= this.maxPerSource) {
      reason = RefusalReason.maxPerSource
      limit = this.maxPerSource
    }
    if (reason !== null) {
      this.refuse(reason, source, listener, limit)
      return reason
    }
    this.open++
    this.perSource.set(source, (this.perSource.get(source) ?? 0) + 1)
    return null
  }

  /**
   * accept() failed for want of descriptors: something beyond the connections holds them (a forwarder
   * catching up, many metrics scrapes). libuv has closed the connections waiting in the backlog; for
   * kAcceptPauseMs those that still arrive are closed at once too, so they hold no descriptor the spool
   * or the journal needs, and the episode is logged once. Nothing else stops.
   */
  acceptFailed(listener: string, error: string): void {
    if (this.pausedUntil === 0)
      logEvent('accept-paused', {
        listener,
        error,
        openConnections: this.open,
        seconds: kAcceptPauseMs / 1000,
        hint: 'the process is out of file descriptors: raise LimitNOFILE= (systemd) or ulimit -n',
      })
    this.pausedUntil = Date.now() + kAcceptPauseMs
  }

  /** Whether the pause after EMFILE is over; the first admission after it ends the episode. */
  private pauseOver(): boolean {
    if (Date.now() < this.pausedUntil) return false
    this.pausedUntil = 0
    logEvent('accept-resumed', { refusedMeanwhile: this.refused.open_files })
    return true
  }

  release(address: string): void {
    const source = plainAddress(address)
    this.open--
    const n = (this.perSource.get(source) ?? 1) - 1
    if (n === 0) this.perSource.delete(source)
    else this.perSource.set(source, n)
  }

  /** Counts a refusal, and logs it unless this reason was logged within kLogEveryMs. */
  refuse(reason: RefusalReason, source: string, listener: string, limit: number, detail?: string): void {
    this.refused[reason]++
    const now = Date.now()
    const last = this.lastLog.get(reason)
    if (last !== undefined && now - last.at < kLogEveryMs) {
      last.since++
      return
    }
    const fields: Record<string, string | number> = { reason, peer: source, listener }
    if (limit > 0) fields.limit = limit
    if (detail !== undefined) fields.error = detail
    fields.refusedSinceLastLine = last?.since ?? 0
    logEvent('connection-refused', fields)
    this.lastLog.set(reason, { at: now, since: 0 })
  }
}
