// The socket thread's handle on the forward worker: relays the spool writer's progress and keeps the
// forwarder's last report for stats and /metrics. It never waits on the worker except at start and stop.

import { hostname } from 'node:os'
import { Worker } from 'node:worker_threads'
import type { ForwardNatsConfig } from '../config/load.js'
import { ErrorCodes, SpillwayError } from '../errors.js'
import { logEvent } from '../log.js'
import type { ForwardOptions, ForwardProgress, FromForwarder, ToForwarder } from './protocol.js'

export class ForwardClient {
  readonly edge: string
  onProgress: (p: ForwardProgress) => void = () => {}
  onFatal: (message: string) => void = () => {}
  last: ForwardProgress | null = null
  instance = ''
  private readonly worker: Worker
  private readonly ready: Promise<{ seg: number; off: number }>
  private readonly stopped: Promise<void>

  constructor(spoolDir: string, directIo: boolean, firstSeg: number, nats: ForwardNatsConfig) {
    this.edge = nats.edge === '' ? edgeName(hostname()) : nats.edge
    const opts: ForwardOptions = { spoolDir, directIo, firstSeg, nats: { ...nats, edge: this.edge } }
    this.worker = new Worker(new URL('./worker.js', import.meta.url), { workerData: opts })
    let onReady!: (r: { seg: number; off: number }) => void
    let failed!: (err: Error) => void
    let onStopped!: () => void
    this.ready = new Promise((resolve, reject) => {
      onReady = resolve
      failed = reject
    })
    this.stopped = new Promise((resolve) => {
      onStopped = resolve
    })
    let isReady = false
    this.worker.on('message', (m: FromForwarder) => {
      switch (m.t) {
        case 'ready':
          isReady = true
          this.instance = m.instance
          onReady(m)
          break
        case 'progress':
          this.last = m
          this.onProgress(m)
          break
        case 'stopped':
          onStopped()
          break
        case 'fatal':
          logEvent('forward-fatal', { message: m.message })
          if (isReady) this.onFatal(m.message)
          else failed(new SpillwayError(ErrorCodes.spoolDir, m.message))
          break
      }
    })
    this.worker.on('error', (err) => {
      const message = `forward: ${err.message}`
      if (!isReady) failed(new SpillwayError(ErrorCodes.spoolDir, message, { cause: err }))
      else this.onFatal(message)
    })
    this.worker.on('exit', () => onStopped())
  }

  start(): Promise<{ seg: number; off: number }> {
    return this.ready
  }

  postSpooled(seg: number, off: number): void {
    this.post({ t: 'spooled', seg, off })
  }

  /** Finishes the publish in flight (or gives up on an absent log after a second), saves the position. */
  stop(): Promise<void> {
    this.post({ t: 'stop' })
    return this.stopped
  }

  private post(m: ToForwarder): void {
    this.worker.postMessage(m)
  }
}

/** A host name as an edge name: its first label, with anything but letters, digits, - and _ as -. */
export function edgeName(host: string): string {
  return (host.split('.')[0] ?? host).replace(/[^A-Za-z0-9_-]/g, '-') || 'edge'
}
