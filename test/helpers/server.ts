// Starts the real server as a child process in its own temporary directory, on free ports, and gives
// tests what they need to talk to it and to read what it wrote.

import { type ChildProcess, spawn } from 'node:child_process'
import { createSocket } from 'node:dgram'
import {
  closeSync,
  constants,
  mkdtempSync,
  openSync,
  readdirSync,
  readFileSync,
  rmSync,
  unlinkSync,
  writeFileSync,
} from 'node:fs'
import { createConnection, createServer } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { ExecutionContext } from 'ava'
import Database from 'better-sqlite3'
import { need } from './programs.js'

const kMain = new URL('../../src/cli/main.js', import.meta.url).pathname

export interface Running {
  dir: string
  tcpPort: number
  udpPort: number
  /** The metrics listener's port when ServerOptions.metrics asked for one, else 0. */
  metricsPort: number
  journalPath: string
  spoolDir: string
  proc: ChildProcess
  stderr(): string
  /** SIGTERM, then the exit code. */
  stop(): Promise<number | null>
  kill9(): Promise<void>
  exited: Promise<number | null>
}

export function tempDir(t: ExecutionContext): string {
  const dir = mkdtempSync(join(tmpdir(), 'spillway-test-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  return dir
}

/**
 * Why files in `dir` cannot be opened with O_DIRECT (ramfs, some overlay filesystems), or null when
 * they can (ext4, xfs, tmpfs).
 */
export function noDirect(dir: string): string | null {
  if (constants.O_DIRECT === undefined) return 'this platform has no O_DIRECT'
  const probe = join(dir, '.direct-probe')
  writeFileSync(probe, '')
  try {
    closeSync(openSync(probe, constants.O_RDONLY | constants.O_DIRECT))
    return null
  } catch (err) {
    return `${dir} refuses O_DIRECT (${(err as NodeJS.ErrnoException).code})`
  } finally {
    unlinkSync(probe)
  }
}

/**
 * Whether the temporary directories tests use take O_DIRECT, decided once when a test file loads, so
 * tests that need it are registered with test.skip (and the reason in their title) where it is not.
 */
export function tmpNoDirect(): string | null {
  const dir = mkdtempSync(join(tmpdir(), 'spillway-probe-'))
  try {
    return noDirect(dir) === null ? null : `the temporary directory ${tmpdir()} refuses O_DIRECT`
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
}

export interface ServerOptions {
  dir?: string
  config?: Record<string, unknown>
  /** A command the server runs under (`prlimit --nofile=...`, `setpriv ...`), before node. */
  wrap?: string[]
  /** Environment of the server process (TZ, ...), added to this process's. */
  env?: Record<string, string>
  /** Turn the metrics listener on, on a free port (then in metricsPort). */
  metrics?: boolean
}

/**
 * Runs the server without the capabilities that let root write any file, so file modes bind it as they
 * bind the unprivileged user a service runs as (the tests run as root in CI). Empty when not root.
 */
export function unprivileged(): string[] {
  return process.getuid?.() === 0 ? ['setpriv', '--bounding-set=-dac_override,-dac_read_search,-fowner'] : []
}

/**
 * Starts `spillway serve` with `opts.config` (TCP and UDP listeners on 127.0.0.1, ports picked by the
 * kernel, unless it names its own). Its listeners bind port 0 and the server logs the ports it got; the
 * metrics listener cannot (port 0 turns it off), so it gets a port that was free a moment ago, and
 * another one if a parallel test took that before the server bound it.
 */
export async function startServer(t: ExecutionContext, opts: ServerOptions = {}): Promise<Running> {
  if (opts.metrics !== true) return startOnce(t, opts, 0)
  for (let attempt = 1; ; attempt++) {
    const port = await freeMetricsPort()
    try {
      return await startOnce(t, opts, port)
    } catch (err) {
      if (attempt === 5 || !/metrics \S+: cannot listen: .*EADDRINUSE/.test((err as Error).message)) throw err
    }
  }
}

function freeMetricsPort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer()
    s.on('error', reject)
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port
      s.close(() => resolve(port))
    })
  })
}

async function startOnce(t: ExecutionContext, opts: ServerOptions, metricsPort: number): Promise<Running> {
  const dir = opts.dir ?? tempDir(t)
  const config: Record<string, unknown> = {
    listeners: [
      { transport: 'tcp', host: '127.0.0.1', port: 0 },
      { transport: 'udp', host: '127.0.0.1', port: 0 },
    ],
    metrics: { port: 0 }, // the HTTP listener's default port is fixed: tests that want it pick a free one
    ...opts.config,
  }
  if (metricsPort > 0) config.metrics = { host: '127.0.0.1', port: metricsPort }
  const configPath = join(dir, 'config.json')
  writeFileSync(configPath, JSON.stringify(config))
  const [cmd, ...args] = [
    ...(opts.wrap ?? []),
    process.execPath,
    '--enable-source-maps',
    kMain,
    'serve',
    '--config',
    configPath,
  ]
  const proc = spawn(cmd!, args, {
    cwd: dir,
    env: { ...process.env, ...opts.env },
    stdio: ['ignore', 'inherit', 'pipe'],
  })
  let err = ''
  const exited = new Promise<number | null>((resolve) => proc.on('exit', (code) => resolve(code)))
  const ports = await new Promise<{ tcp: number; udp: number }>((resolve, reject) => {
    const found: { tcp?: number; udp?: number } = {}
    proc.stderr!.on('data', (d: Buffer) => {
      err += d.toString()
      for (const m of err.matchAll(/listening transport=(tcp|udp) host=\S+ port=(\d+)/g)) {
        found[m[1] as 'tcp' | 'udp'] ??= Number(m[2]) // the first listener of each transport
      }
      const wantUdp = (config.listeners as { transport: string }[]).some((l) => l.transport === 'udp')
      // The metrics listener starts after the others: a port taken there ends the start too.
      const metricsUp = metricsPort === 0 || / metrics url=/.test(err)
      if (found.tcp !== undefined && (found.udp !== undefined || !wantUdp) && metricsUp)
        resolve({ tcp: found.tcp, udp: found.udp ?? 0 })
    })
    exited.then((code) => reject(new Error(`server exited with ${code} before listening:\n${err}`)))
  })
  let killed = false
  t.teardown(async () => {
    if (!killed && proc.exitCode === null) {
      proc.kill('SIGKILL')
      await exited
    }
  })
  return {
    dir,
    tcpPort: ports.tcp,
    udpPort: ports.udp,
    metricsPort,
    journalPath: join(dir, 'journal.db'),
    spoolDir: join(dir, 'spool'),
    proc,
    stderr: () => err,
    exited,
    stop: async () => {
      killed = true
      proc.kill('SIGTERM')
      return exited
    },
    kill9: async () => {
      killed = true
      proc.kill('SIGKILL')
      await exited
    },
  }
}

/**
 * How long a wait may take before the test fails. Generous on purpose: the suite runs at nice 10 on two
 * cores shared with other work, where a process can get a few percent of a CPU; a passing test never
 * waits for it.
 */
export const kDeadlineMs = 60_000

/** Polls `check` (sync or async) until it returns a value that is not undefined, or fails after `ms`. */
export async function waitFor<T>(
  what: string,
  check: () => T | undefined | Promise<T | undefined>,
  ms = kDeadlineMs,
): Promise<T> {
  const deadline = Date.now() + ms
  let last: unknown
  for (;;) {
    try {
      const v = await check()
      if (v !== undefined) return v
    } catch (err) {
      last = err
    }
    if (Date.now() > deadline)
      throw new Error(`timed out after ${ms} ms waiting for ${what}${last ? `: ${last}` : ''}`)
    await new Promise((r) => setTimeout(r, 25))
  }
}

export function query<T = Record<string, unknown>>(
  journalPath: string,
  sql: string,
  ...params: unknown[]
): T[] {
  const db = new Database(journalPath, { readonly: true, fileMustExist: true })
  try {
    return db.prepare(sql).all(...params) as T[]
  } finally {
    db.close()
  }
}

/** A figure of the journal's stats table (written by the server every 2 s and at stop). */
export function stat(journalPath: string, name: string): number | undefined {
  return query<{ value: number }>(journalPath, 'SELECT value FROM stats WHERE name = ?', name)[0]?.value
}

export function rowCount(journalPath: string): number {
  return query<{ n: number }>(journalPath, 'SELECT count(*) AS n FROM messages')[0]!.n
}

/** Waits until the journal holds at least n rows. */
export function waitForRows(journalPath: string, n: number, ms = kDeadlineMs): Promise<number> {
  return waitFor(
    `${n} rows in ${journalPath}`,
    () => {
      const c = rowCount(journalPath)
      return c >= n ? c : undefined
    },
    ms,
  )
}

/** Sends data over one TCP connection (chunks written as given), half-closes, waits for the close. */
export function sendTcp(port: number, chunks: (string | Buffer)[]): Promise<void> {
  return new Promise((resolve, reject) => {
    const s = createConnection({ host: '127.0.0.1', port }, () => {
      for (const c of chunks) s.write(c)
      s.end()
    })
    s.on('error', reject)
    s.on('close', () => resolve())
    s.resume()
  })
}

export function sendUdp(port: number, msgs: (string | Buffer)[]): Promise<void> {
  const s = createSocket('udp4')
  return new Promise((resolve, reject) => {
    let left = msgs.length
    s.on('error', reject)
    for (const m of msgs) {
      s.send(m, port, '127.0.0.1', (err) => {
        if (err) reject(err)
        if (--left === 0) {
          s.close()
          resolve()
        }
      })
    }
  })
}

/** Records (lines) currently in the spool's segment files. */
export function spoolRecords(spoolDir: string): string[] {
  const out: string[] = []
  for (const f of readdirSync(spoolDir)
    .filter((n) => n.endsWith('.spool'))
    .sort()) {
    const text = readFileSync(join(spoolDir, f), 'utf8')
    for (const line of text.split('\n')) if (line !== '') out.push(line)
  }
  return out
}

/**
 * A `sqlite3` shell holding the journal's write lock (BEGIN IMMEDIATE), as an operator might by
 * accident: the server must keep accepting and spill until it is released.
 */
export async function holdWriteLock(
  t: ExecutionContext,
  journalPath: string,
): Promise<{ release(sqlBeforeCommit?: string): Promise<void> }> {
  const p = spawn(need('sqlite3'), [journalPath], { stdio: ['pipe', 'pipe', 'pipe'] })
  let out = ''
  const done = new Promise<void>((resolve) => p.on('exit', () => resolve()))
  p.stdin!.on('error', () => {}) // EPIPE when the teardown ended it first
  // A test that fails while holding it must not leave the shell (and the lock) behind.
  t.teardown(async () => {
    if (p.exitCode === null && p.signalCode === null) p.kill('SIGKILL')
    await done
  })
  await new Promise<void>((resolve, reject) => {
    p.stdout!.on('data', (d: Buffer) => {
      out += d.toString()
      if (out.includes('locked')) resolve()
    })
    p.stderr!.on('data', (d: Buffer) => reject(new Error(`sqlite3: ${d}`)))
    p.stdin!.write(".timeout 10000\nBEGIN IMMEDIATE;\nSELECT 'locked';\n")
  })
  return {
    release: async (sql = '') => {
      if (p.exitCode !== null || p.signalCode !== null) return // ended by the teardown already
      p.stdin!.end(`${sql}\nCOMMIT;\n.quit\n`)
      await done
    },
  }
}
