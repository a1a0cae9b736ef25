// Real NATS JetStream servers for the scale-out tests: nats-server (Debian's package, which .ci/run
// installs) on loopback ports, one node or a three-node cluster, each with its own store directory.

import { type ChildProcess, spawn } from 'node:child_process'
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { jetstreamManager } from '@nats-io/jetstream'
import { connect, type NatsConnection } from '@nats-io/transport-node'
import type { ExecutionContext } from 'ava'
import { freePort } from './peers.js'
import { waitFor } from './server.js'

const kMain = new URL('../../src/cli/main.js', import.meta.url).pathname

/** What a test's own client needs to get in: credentials, or TLS files. */
export interface NatsClientOptions {
  user?: string
  pass?: string
  tls?: { caFile?: string; certFile?: string; keyFile?: string }
}

export interface NatsNode {
  name: string
  port: number
  url: string
  proc: ChildProcess
  log(): string
  /** SIGKILL and wait for the exit. */
  kill(): Promise<void>
  /** Starts it again with the same config and store. */
  restart(): Promise<void>
}

function launch(t: ExecutionContext, conf: string) {
  let out = ''
  const proc = spawn('nats-server', ['-c', conf], { stdio: ['ignore', 'pipe', 'pipe'] })
  proc.stdout!.on('data', (d: Buffer) => {
    out += d.toString()
  })
  proc.stderr!.on('data', (d: Buffer) => {
    out += d.toString()
  })
  const exited = new Promise<void>((resolve) => proc.on('exit', () => resolve()))
  t.teardown(async () => {
    if (proc.exitCode === null && proc.signalCode === null) {
      proc.kill('SIGKILL')
      await exited
    }
  })
  return { proc, log: () => out, exited }
}

async function startNode(
  t: ExecutionContext,
  dir: string,
  name: string,
  port: number,
  cluster: { port: number; routes: number[] } | null,
  extra = '',
): Promise<NatsNode> {
  const conf = join(dir, `${name}.conf`)
  const routes = cluster?.routes.map((p) => `"nats://127.0.0.1:${p}"`).join(', ') ?? ''
  writeFileSync(
    conf,
    `server_name: ${name}
listen: 127.0.0.1:${port}
jetstream { store_dir: "${join(dir, name)}" }
${cluster !== null ? `cluster { name: spw, listen: 127.0.0.1:${cluster.port}, routes: [${routes}] }` : ''}
${extra}
`,
  )
  const node = { name, port, url: `127.0.0.1:${port}` } as NatsNode
  const up = async () => {
    const l = launch(t, conf)
    node.proc = l.proc
    node.log = l.log
    node.kill = async () => {
      l.proc.kill('SIGKILL')
      await l.exited
    }
    await waitFor(
      `nats-server ${name} ready`,
      () => (/Server is ready/.test(l.log()) ? true : undefined),
      15_000,
    )
  }
  node.restart = up
  await up()
  return node
}

/** One JetStream node; `extra` is appended to its config (authorization, ...). */
export async function startNats(
  t: ExecutionContext,
  dir: string,
  extra = '',
  client: NatsClientOptions = {},
): Promise<NatsNode> {
  const node = await startNode(t, dir, 'n1', await freePort(), null, extra)
  await jetStreamReady(t, [node.url], client)
  return node
}

/** Three JetStream nodes in one cluster, ready once JetStream answers through the first. */
export async function startNatsCluster(t: ExecutionContext, dir: string): Promise<NatsNode[]> {
  const ports = [await freePort(), await freePort(), await freePort()]
  const cports = [await freePort(), await freePort(), await freePort()]
  const nodes = await Promise.all(
    [0, 1, 2].map((i) =>
      startNode(t, dir, `n${i + 1}`, ports[i]!, {
        port: cports[i]!,
        routes: cports.filter((_, j) => j !== i),
      }),
    ),
  )
  await jetStreamReady(
    t,
    nodes.map((n) => n.url),
  )
  return nodes
}

async function jetStreamReady(
  t: ExecutionContext,
  servers: string[],
  client: NatsClientOptions = {},
): Promise<void> {
  const nc = await natsClient(t, servers, client)
  await waitFor(
    'JetStream to answer',
    async () => {
      const jsm = await jetstreamManager(nc, { timeout: 1000 })
      await jsm.getAccountInfo()
      return true
    },
    30_000,
  )
}

/** A client connection, closed at the end of the test. */
export async function natsClient(
  t: ExecutionContext,
  servers: string[],
  client: NatsClientOptions = {},
): Promise<NatsConnection> {
  const nc = await connect({ servers, maxReconnectAttempts: -1, reconnectTimeWait: 250, ...client })
  t.teardown(() => nc.close())
  return nc
}

export interface ConsumerProc {
  dir: string
  journalPath: string
  stderr(): string
  stop(): Promise<number | null>
  kill9(): Promise<void>
}

/** `spillway consume` in `dir` with a config of its own, started once it has connected to NATS. */
export async function startConsumer(
  t: ExecutionContext,
  dir: string,
  nats: Record<string, unknown>,
  extra: Record<string, unknown> = {},
): Promise<ConsumerProc> {
  const configPath = join(dir, 'consume.json')
  writeFileSync(configPath, JSON.stringify({ listeners: [], consume: { nats }, ...extra }))
  const proc = spawn(process.execPath, ['--enable-source-maps', kMain, 'consume', '--config', configPath], {
    cwd: dir,
    stdio: ['ignore', 'inherit', 'pipe'],
  })
  let err = ''
  proc.stderr!.on('data', (d: Buffer) => {
    err += d.toString()
  })
  const exited = new Promise<number | null>((resolve) => proc.on('exit', (code) => resolve(code)))
  t.teardown(async () => {
    if (proc.exitCode === null && proc.signalCode === null) {
      proc.kill('SIGKILL')
      await exited
    }
  })
  await waitFor(
    'spillway consume to connect',
    () => (/consume-connected/.test(err) ? true : undefined),
    15_000,
  )
  return {
    dir,
    journalPath: join(dir, 'journal.db'),
    stderr: () => err,
    stop: async () => {
      proc.kill('SIGTERM')
      return exited
    },
    kill9: async () => {
      proc.kill('SIGKILL')
      await exited
    },
  }
}
