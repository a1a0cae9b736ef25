// Real NATS JetStream servers for the scale-out tests: nats-server (Debian's package, which .ci/run
// installs) on loopback ports, one node or a three-node cluster, each with its own store directory.

import { type ChildProcess, spawn } from 'node:child_process'
import { createHash } from 'node:crypto'
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { jetstreamManager } from '@nats-io/jetstream'
import { createAccount, createOperator, createUser, type KeyPair } from '@nats-io/nkeys'
import { type Authenticator, connect, type NatsConnection } from '@nats-io/transport-node'
import type { ExecutionContext } from 'ava'
import { onFreePorts, peerListening, spawnPeer } from './peers.js'
import { kDeadlineMs, waitFor } from './server.js'

const kMain = new URL('../../src/cli/main.js', import.meta.url).pathname

/** What a test's own client needs to get in: credentials, or TLS files. */
export interface NatsClientOptions {
  user?: string
  pass?: string
  token?: string
  /** credsAuthenticator(...) of a credentials file. */
  authenticator?: Authenticator
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
    await waitFor(`nats-server ${name} ready`, () => (/Server is ready/.test(peer.log()) ? true : undefined))
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
    kDeadlineMs,
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
  await waitFor('spillway consume to connect', () => (/consume-connected/.test(err) ? true : undefined))
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

const b64url = (b: Uint8Array | string) => Buffer.from(b).toString('base64url')

/** A NATS JWT (version 2 claims), signed by `issuer`: what nsc writes. */
function natsJwt(issuer: KeyPair, subject: string, name: string, nats: Record<string, unknown>): string {
  const claims = {
    jti: '',
    iat: Math.floor(Date.now() / 1000),
    iss: issuer.getPublicKey(),
    name,
    sub: subject,
    nats: { ...nats, version: 2 },
  }
  // The claims' id: base32 of their SHA-512/256 with the id empty, as the jwt library computes it.
  const digest = createHash('sha512-256').update(JSON.stringify(claims)).digest()
  claims.jti = base32(digest)
  const head = b64url(JSON.stringify({ typ: 'JWT', alg: 'ed25519-nkey' }))
  const body = b64url(JSON.stringify(claims))
  return `${head}.${body}.${b64url(issuer.sign(new TextEncoder().encode(`${head}.${body}`)))}`
}

/** RFC 4648 base32 without padding. */
function base32(b: Uint8Array): string {
  const abc = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567'
  let out = ''
  let bits = 0
  let value = 0
  for (const byte of b) {
    value = (value << 8) | byte
    bits += 8
    while (bits >= 5) {
      out += abc[(value >>> (bits - 5)) & 31]
      bits -= 5
    }
  }
  if (bits > 0) out += abc[(value << (5 - bits)) & 31]
  return out
}

const kNoLimits = {
  subs: -1,
  data: -1,
  payload: -1,
  imports: -1,
  exports: -1,
  wildcards: true,
  conn: -1,
  leaf: -1,
}

/** A credentials file as nsc writes it: the user's JWT, then its NKey seed. */
function credsFile(path: string, jwt: string, user: KeyPair): string {
  const seed = new TextDecoder().decode(user.getSeed())
  writeFileSync(
    path,
    `-----BEGIN NATS USER JWT-----\n${jwt}\n------END NATS USER JWT------\n\n` +
      `-----BEGIN USER NKEY SEED-----\n${seed}\n------END USER NKEY SEED------\n`,
  )
  return path
}

/**
 * Decentralized (operator mode) auth, as nsc sets it up: an operator, an account with JetStream, and
 * users with credentials files. `config` goes into the server's config; `creds(name)` writes a user of
 * the account; `foreignCreds()` a user of an account the server does not know.
 */
export function operatorAuth(dir: string): {
  config: string
  creds(name: string): string
  foreignCreds(): string
} {
  const operator = createOperator()
  const system = createAccount()
  const account = createAccount()
  const opJwt = natsJwt(operator, operator.getPublicKey(), 'operator', {
    type: 'operator',
    system_account: system.getPublicKey(),
  })
  const sysJwt = natsJwt(operator, system.getPublicKey(), 'SYS', { type: 'account', limits: kNoLimits })
  const accJwt = natsJwt(operator, account.getPublicKey(), 'logs', {
    type: 'account',
    limits: { ...kNoLimits, mem_storage: -1, disk_storage: -1, streams: -1, consumer: -1 },
  })
  writeFileSync(join(dir, 'operator.jwt'), opJwt)
  const user = (acc: KeyPair, name: string) => {
    const u = createUser()
    const jwt = natsJwt(acc, u.getPublicKey(), name, {
      type: 'user',
      pub: {},
      sub: {},
      subs: -1,
      data: -1,
      payload: -1,
    })
    return credsFile(join(dir, `${name}.creds`), jwt, u)
  }
  return {
    config: `operator: "${join(dir, 'operator.jwt')}"
system_account: ${system.getPublicKey()}
resolver: MEMORY
resolver_preload: { ${account.getPublicKey()}: "${accJwt}", ${system.getPublicKey()}: "${sysJwt}" }`,
    creds: (name) => user(account, name),
    foreignCreds: () => user(createAccount(), 'foreign'),
  }
}

export interface StreamMessage {
  seq: number
  subject: string
  instance: string
  /** Spillway-Pos: segment, start and end offsets of the spool records it carries. */
  seg: number
  start: number
  end: number
  records: number
}

/** Every message the stream holds, in order, with the spool position an edge published it from. */
export async function streamMessages(nc: NatsConnection, stream: string): Promise<StreamMessage[]> {
  const jsm = await jetstreamManager(nc)
  const { first_seq, last_seq } = (await jsm.streams.info(stream)).state
  const out: StreamMessage[] = []
  for (let seq = first_seq; seq <= last_seq && last_seq > 0; seq += 100) {
    const batch = await Promise.all(
      Array.from({ length: Math.min(100, last_seq - seq + 1) }, (_, i) =>
        jsm.streams.getMessage(stream, { seq: seq + i }),
      ),
    )
    for (const m of batch) {
      if (m === null) continue // deleted
      const [s, a, b] = (m.header?.get('Spillway-Pos') ?? '').split(':').map(Number)
      out.push({
        seq: m.seq,
        subject: m.subject,
        instance: m.header?.get('Spillway-Instance') ?? '',
        seg: s ?? -1,
        start: a ?? -1,
        end: b ?? -1,
        records: Number(m.header?.get('Spillway-Records') ?? 0),
      })
    }
  }
  return out
}
