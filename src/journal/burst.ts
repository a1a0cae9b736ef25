// When the journal worker leaves the spool alone: during a burst it could not keep up with anyway.
//
// One worker replays ~250 k rows/s of 200-byte messages, ~60 MB/s of spool records. While the socket
// thread spools faster than that, replaying only takes CPU from it and from the senders on the same
// cores, and the backlog grows either way. Over loggen's 10 M messages on two cores, 100 senders
// finished in 9.1 s instead of 10.1 (10 senders: no change), and the socket thread's loop delay p99
// fell from 11-13 to 8.5 ms (docs/BENCHMARKS.md). Below the rate (a steady load, durable mode
// included) replay runs as soon as records are written, so latency is unchanged.
// Pure logic with the clock passed in; the worker (journal/worker.ts) owns the timer.

export class BurstGate {
  private readonly bytesPerSec: number
  private readonly windowMs: number
  private readonly quietMs: number
  private bytes = 0
  private lastAt = Number.NEGATIVE_INFINITY
  private windowAt = Number.NEGATIVE_INFINITY
  private windowBytes = 0
  private inBurst = false
  private since = 0
  private doneMs = 0
  /** Bursts replay waited for. */
  yields = 0

  /**
   * A burst: more than bytesPerSec spooled over the last windowMs. It ends when the rate falls below
   * that, or at once when nothing was spooled for quietMs.
   */
  constructor(bytesPerSec: number, windowMs: number, quietMs: number) {
    this.bytesPerSec = bytesPerSec
    this.windowMs = windowMs
    this.quietMs = quietMs
  }

  /** The spool writer reported `bytes` more on disk. */
  spooled(bytes: number, now: number): void {
    if (bytes <= 0) return
    this.bytes += bytes
    this.lastAt = now
  }

  /** Whether replay should wait now (look again within quietMs). */
  waits(now: number): boolean {
    let burst = this.inBurst
    if (now - this.lastAt >= this.quietMs) burst = false
    else if (now - this.windowAt >= this.windowMs) {
      // A window longer than windowMs (the worker was busy, or the spool quiet) averages over all of it:
      // a quiet spell in it can only hide a burst until the next window, never make one.
      burst = ((this.bytes - this.windowBytes) * 1000) / (now - this.windowAt) > this.bytesPerSec
      this.windowAt = now
      this.windowBytes = this.bytes
    }
    if (burst !== this.inBurst) {
      if (burst) {
        this.yields++
        this.since = now
      } else this.doneMs += now - this.since
      this.inBurst = burst
    }
    return burst
  }

  /** Milliseconds replay has waited for bursts, the current one included. */
  waitedMs(now: number): number {
    return this.doneMs + (this.inBurst ? now - this.since : 0)
  }
}
