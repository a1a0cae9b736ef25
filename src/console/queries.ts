// The socket thread's side of the console's queries: a small pool of query processes
// (console/query-process.ts), each running one request at a time. Nothing here touches SQLite; the socket
// thread only sends a request and waits for its message. A request that passes its time limit has its
// process killed (SIGKILL: a statement stops at once, see query-process.ts) and the caller told so; the
// next request starts a new process. Processes are started on demand and stopped after a minute unused,
// so a server whose console nobody opens runs none.

import { type ChildProcess, fork } from 'node:child_process'
import type { Request, Response } from './query-process.js'

type Body = Request extends infer R ? (R extends { id: number } ? Omit<R, 'id'> : never) : never

export class QueryTimeout extends Error {}
export class QueryRefused extends Error {}

const kIdleMs = 60_000
const kMain = new URL('./query-process.js', import.meta.url)

interface Pending {
  id: number
  body: Body
  limitMs: number
  resolve(v: unknown): void
  reject(err: Error): void
}

class Slot {
  proc: ChildProcess | null = null
  /** The process has opened the journal: a request sent now starts running at once. */
  ready = false
  busy: Pending | null = null
  timer: NodeJS.Timeout | null = null
  idle: NodeJS.Timeout | null = null
}

export class QueryPool {
  private readonly journalPath: string
  private readonly slots: Slot[]
  private readonly queue: Pending[] = []
  private nextId = 1
  private closed = false
  /** Requests stopped at their time limit (their process killed). */
  timeouts = 0
  /** Processes started. */
  started = 0

  constructor(journalPath: string, size = 2) {
    this.journalPath = journalPath
    this.slots = Array.from({ length: size }, () => new Slot())
  }

  /**
   * Runs a request in a query process. `signal` cancels it (the HTTP client went away): a queued request
   * is dropped, a running one has its process killed.
   */
  run<T>(body: Body, limitMs: number, signal?: AbortSignal): Promise<T> {
    if (this.closed) return Promise.reject(new Error('the console is stopping'))
    return new Promise<T>((resolve, reject) => {
      const p: Pending = {
        id: this.nextId++,
        body,
        limitMs,
        resolve: resolve as (v: unknown) => void,
        reject,
      }
      this.queue.push(p)
      signal?.addEventListener('abort', () => this.cancel(p), { once: true })
      this.dispatch()
    })
  }

  private cancel(p: Pending): void {
    const queued = this.queue.indexOf(p)
    if (queued >= 0) {
      this.queue.splice(queued, 1)
      p.reject(new Error('cancelled'))
      return
    }
    const slot = this.slots.find((s) => s.busy === p)
    if (slot === undefined || slot.proc === null) return
    const proc = slot.proc
    slot.proc = null
    this.finish(slot)
    proc.kill('SIGKILL')
    p.reject(new Error('cancelled'))
  }

  private dispatch(): void {
    for (const slot of this.slots) {
      if (slot.busy !== null) continue
      const p = this.queue.shift()
      if (p === undefined) return
      this.start(slot, p)
    }
  }

  private spawn(slot: Slot): ChildProcess {
    const proc = fork(kMain, [this.journalPath], {
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
      execArgv: ['--enable-source-maps'],
    })
    this.started++
    slot.ready = false
    proc.on('message', (m: Response | { ready: true }) => {
      if (slot.proc !== proc) return
      if ('ready' in m) {
        slot.ready = true
        if (slot.busy !== null) this.send(slot, slot.busy)
        return
      }
      const p = slot.busy
      if (p === null || m.id !== p.id) return
      this.finish(slot)
      if (m.ok) p.resolve(m.value)
      else p.reject(m.refused ? new QueryRefused(m.error) : new Error(m.error))
    })
    proc.on('exit', (code, signal) => {
      if (slot.proc !== proc) return
      slot.proc = null
      const p = slot.busy
      if (p !== null) {
        this.finish(slot)
        p.reject(new Error(`the query process exited (${signal ?? `code ${code}`})`))
      }
    })
    proc.on('error', () => {}) // an exit follows
    return proc
  }

  private start(slot: Slot, p: Pending): void {
    if (slot.idle !== null) clearTimeout(slot.idle)
    slot.idle = null
    slot.proc ??= this.spawn(slot)
    slot.busy = p
    if (slot.ready) this.send(slot, p)
  }

  /** Sends a request to a ready process; its time limit runs from now (a process start is not counted). */
  private send(slot: Slot, p: Pending): void {
    const proc = slot.proc!
    slot.timer = setTimeout(() => {
      // Past the limit: the statement is stopped by killing its process.
      this.timeouts++
      slot.proc = null
      this.finish(slot)
      proc.kill('SIGKILL')
      p.reject(
        new QueryTimeout(`the query took longer than ${p.limitMs} ms (console.timeLimitMs) and was stopped`),
      )
    }, p.limitMs)
    proc.send({ id: p.id, ...p.body })
  }

  private finish(slot: Slot): void {
    if (slot.timer !== null) clearTimeout(slot.timer)
    slot.timer = null
    slot.busy = null
    if (slot.proc !== null && !this.closed) this.idleOut(slot, slot.proc)
    setImmediate(() => this.dispatch())
  }

  /** A process left unused for kIdleMs is stopped. */
  private idleOut(slot: Slot, proc: ChildProcess): void {
    if (slot.idle !== null) clearTimeout(slot.idle)
    slot.idle = setTimeout(() => {
      if (slot.proc === proc && slot.busy === null) {
        slot.proc = null
        proc.disconnect()
      }
    }, kIdleMs)
    slot.idle.unref()
  }

  /** Starts a process for the next request, unless one is there. */
  warm(): void {
    const slot = this.slots[0]!
    if (this.closed || slot.proc !== null || slot.busy !== null) return
    slot.proc = this.spawn(slot)
    this.idleOut(slot, slot.proc)
  }

  /** Processes running now (for tests and health). */
  get running(): number {
    return this.slots.filter((s) => s.proc !== null).length
  }

  close(): void {
    this.closed = true
    for (const p of this.queue.splice(0)) p.reject(new Error('the console is stopping'))
    for (const slot of this.slots) {
      if (slot.timer !== null) clearTimeout(slot.timer)
      if (slot.idle !== null) clearTimeout(slot.idle)
      const p = slot.busy
      slot.busy = null
      p?.reject(new Error('the console is stopping'))
      slot.proc?.kill('SIGKILL')
      slot.proc = null
    }
  }
}
