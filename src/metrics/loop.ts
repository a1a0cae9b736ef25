// The socket thread's event-loop delay, and how much of it was the thread's own.
//
// A timer that should fire every kResolutionMs fires late when the thread was busy (its own work, a
// garbage collection, a wait on a lock), or when it was ready to run and the kernel ran other threads:
// on a machine whose CPUs are all busy, say with a load generator's hundred sender threads, the second
// can be most of the delay. Linux counts that wait per thread (/proc/thread-self/schedstat, the second
// field: nanoseconds spent runnable but not running), so each late tick is split: `own` is the lateness
// less the CPU wait in the same interval. A high delay with a low own delay means the machine's CPUs
// were busy with others, not that this thread blocked. Elsewhere the wait is unknown and own = delay.
// Runs on the socket thread; one pread per tick.

import { closeSync, openSync, readSync } from 'node:fs'
import { createHistogram, type RecordableHistogram } from 'node:perf_hooks'

export const kResolutionMs = 5

export interface LoopDelay {
  p99Ms: number
  maxMs: number
  /** The same, less the CPU wait (own work, GC, lock waits). */
  ownP99Ms: number
  ownMaxMs: number
  /** Milliseconds this thread waited for a CPU while runnable, since start(); -1 if unknown here. */
  cpuWaitMs: number
}

export class LoopMonitor {
  private readonly delay: RecordableHistogram = createHistogram()
  private readonly own: RecordableHistogram = createHistogram()
  private readonly stat = Buffer.alloc(128)
  private fd = -1
  /** Whether this platform tells the CPU wait (Linux). */
  private known = false
  private timer: NodeJS.Timeout | null = null
  private last = 0
  private lastWaitNs = 0
  private firstWaitNs = 0

  /** Call on the thread to be measured: /proc/thread-self names the caller. */
  start(): void {
    if (this.timer !== null) return
    let waitNs = -1
    try {
      this.fd = openSync('/proc/thread-self/schedstat', 'r')
      waitNs = this.readWaitNs()
    } catch {
      this.fd = -1
    }
    this.begin(performance.now(), waitNs)
    this.timer = setInterval(() => this.tick(), kResolutionMs)
    this.timer.unref()
  }

  /**
   * Starts measuring at `now` (ms) with the thread's CPU wait so far, `waitNs` (-1: unknown here).
   * start() passes the real clock and /proc; a test can drive sample() with a simulated one.
   */
  begin(now: number, waitNs: number): void {
    this.last = now
    this.known = waitNs >= 0
    this.firstWaitNs = this.lastWaitNs = Math.max(0, waitNs)
  }

  /** A tick of the timer that came at `now`, with the thread's CPU wait so far `waitNs`. */
  sample(now: number, waitNs: number): void {
    const lateMs = Math.max(0, now - this.last - kResolutionMs)
    this.last = now
    let waitMs = 0
    if (this.known) {
      waitMs = (waitNs - this.lastWaitNs) / 1e6
      this.lastWaitNs = waitNs
    }
    // Histograms take integers >= 1: microseconds, plus one.
    this.delay.record(Math.round(lateMs * 1000) + 1)
    this.own.record(Math.round(Math.max(0, lateMs - waitMs) * 1000) + 1)
  }

  stop(): void {
    if (this.timer !== null) clearInterval(this.timer)
    this.timer = null
    if (this.fd < 0) return
    this.lastWaitNs = this.readWaitNs()
    closeSync(this.fd)
    this.fd = -1
  }

  read(): LoopDelay {
    const ms = (h: RecordableHistogram, p: number) => (h.count === 0 ? 0 : (h.percentile(p) - 1) / 1000)
    const waitNs = this.fd >= 0 ? this.readWaitNs() : this.lastWaitNs
    return {
      p99Ms: ms(this.delay, 99),
      maxMs: ms(this.delay, 100),
      ownP99Ms: ms(this.own, 99),
      ownMaxMs: ms(this.own, 100),
      cpuWaitMs: this.known ? (waitNs - this.firstWaitNs) / 1e6 : -1,
    }
  }

  private tick(): void {
    this.sample(performance.now(), this.fd >= 0 ? this.readWaitNs() : 0)
  }

  /** The second field of "run_ns wait_ns slices\n"; pread at 0 makes the kernel write it afresh. */
  private readWaitNs(): number {
    const n = readSync(this.fd, this.stat, 0, this.stat.length, 0)
    let i = this.stat.indexOf(0x20)
    let v = 0
    while (++i < n) {
      const c = this.stat[i]!
      if (c < 0x30 || c > 0x39) break
      v = v * 10 + (c - 0x30)
    }
    return v
  }
}
