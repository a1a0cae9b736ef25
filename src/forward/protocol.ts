// Messages between the socket thread (forward/client.ts) and the forward worker (forward/worker.ts).

import type { ForwardNatsConfig } from '../config/load.js'

export interface ForwardOptions {
  spoolDir: string
  /** spool.directIo: large spool reads bypass the page cache (spool/reader.ts). */
  directIo: boolean
  /** Where a spool directory that has never forwarded starts: its oldest segment. */
  firstSeg: number
  /** forward.nats with edge filled in (the host name when the config leaves it empty). */
  nats: ForwardNatsConfig
}

export type ToForwarder =
  /** The spool writer's progress: segment `seg` holds complete records up to `off`. */
  { t: 'spooled'; seg: number; off: number } | { t: 'stop' }

export interface ForwardProgress {
  t: 'progress'
  /** Every record before (seg, off) is acknowledged by the log. */
  seg: number
  off: number
  /** Records acknowledged since start. */
  forwarded: number
  /** Records in the spool, not yet forwarded, when the worker started. */
  backlogAtStart: number
  /** Receive time of the oldest record not yet acknowledged; 0 when caught up. */
  oldestMs: number
  connected: boolean
  publishErrors: number
  /** Publishes the log recognised as repeats (Nats-Msg-Id in its window): retries after a lost ack. */
  duplicates: number
}

export type FromForwarder =
  | { t: 'ready'; instance: string; seg: number; off: number }
  | ForwardProgress
  | { t: 'stopped' }
  | { t: 'fatal'; message: string }
