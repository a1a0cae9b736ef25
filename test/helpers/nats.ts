// Real NATS JetStream servers for the scale-out tests: nats-server (Debian's package, which .ci/run
// installs) on loopback ports, one node or a three-node cluster, each with its own store directory.

import { type ChildProcess, spawn } from 'node:child_process'
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { jetstreamManager } from '@nats-io/jetstream'
import { connect, type NatsConnection } from '@nats-io/transport-node'
import type { ExecutionContext } from 'ava'
import { onFreePorts, peerListening, spawnPeer } from './peers.js'
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
    const peer = spawnPeer(t, 'nats-server', ['-c', conf])
    node.proc = peer.proc
    node.log = peer.log
    node.kill = peer.kill
    await peerListening(`nats-server ${name}`, peer, cluster === null ? [port] : [port, cluster.port])
    await waitFor(
      `nats-server ${name} ready`,
      () => (/Server is ready/.test(peer.log()) ? true : undefined),
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
  const node = await onFreePorts(1, ([port]) => startNode(t, dir, 'n1', port!, null, extra))
  await jetStreamReady(t, [node.url], client)
  return node
}

/** Three JetStream nodes in one cluster, ready once JetStream answers through the first. */
export async function startNatsCluster(t: ExecutionContext, dir: string): Promise<NatsNode[]> {
  const nodes = await onFreePorts(6, async (all) => {
    const ports = all.slice(0, 3)
    const cports = all.slice(3)
    const started = await Promise.allSettled(
      [0, 1, 2].map((i) =>
        startNode(t, dir, `n${i + 1}`, ports[i]!, {
          port: cports[i]!,
          routes: cports.filter((_, j) => j !== i),
        }),
      ),
    )
    const failed = started.find((r) => r.status === 'rejected')
    if (failed === undefined) return started.map((r) => (r as PromiseFulfilledResult<NatsNode>).value)
    // One node's port was taken: all three start again on new ports (the routes name each other's).
    for (const r of started) if (r.status === 'fulfilled') await r.value.kill()
    throw failed.reason
  })
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
