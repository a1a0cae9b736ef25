// Scale-out: edges forward their spool to a real NATS JetStream, `spillway consume` journals the stream
// centrally. Every scenario checks, message by message, that the central journal holds each accepted
// message exactly once, in per-connection order, tagged with its edge.

import { type ChildProcess, spawn, spawnSync } from 'node:child_process'
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs'
import { createConnection } from 'node:net'
import { join } from 'node:path'
import { jetstream, jetstreamManager } from '@nats-io/jetstream'
import { headers } from '@nats-io/transport-node'
import test, { type ExecutionContext } from 'ava'
import { natsClient, startConsumer, startNats, startNatsCluster } from '../helpers/nats.js'
import { freePort } from '../helpers/peers.js'
import { pki } from '../helpers/pki.js'
import { query, type Running, rowCount, startServer, tempDir, waitFor } from '../helpers/server.js'

const kMain = new URL('../../src/cli/main.js', import.meta.url).pathname

/** Sends `n` numbered messages per connection on `conns` connections; resolves once all are sent. */
function sendNumbered(port: number, tag: string, conns: number, n: number): Promise<void> {
  const one = (c: number) =>
    new Promise<void>((resolve, reject) => {
      const s = createConnection({ host: '127.0.0.1', port })
      let seq = 0
      const pump = () => {
        while (seq < n) {
          let chunk = ''
          for (let i = 0; i < 100 && seq < n; i++)
            chunk += `<14>1 - h${tag} app - - - ${tag}/c${c} s=${seq++}\n`
          if (!s.write(chunk)) return
        }
        s.end()
      }
      s.on('connect', pump)
      s.on('drain', pump)
      s.on('error', reject)
      s.on('close', () => resolve())
      s.resume()
    })
  return Promise.all(Array.from({ length: conns }, (_, c) => one(c))).then(() => undefined)
}

/** Each message of every edge exactly once, each connection's in order, with its edge name. */
function checkExactlyOnce(
  t: import('ava').ExecutionContext,
  journalPath: string,
  expected: { edge: string; tag: string; conns: number; n: number }[],
): void {
  const rows = query<{ msg: string; edge: string | null }>(
    journalPath,
    'SELECT msg, edge FROM messages ORDER BY id',
  )
  const seqs = new Map<string, number[]>()
  for (const r of rows) {
    const [key, s] = r.msg.split(' ')
    const list = seqs.get(`${r.edge} ${key}`) ?? []
    list.push(Number(s!.slice(2)))
    seqs.set(`${r.edge} ${key}`, list)
  }
  let total = 0
  for (const e of expected) {
    for (let c = 0; c < e.conns; c++) {
      const list = seqs.get(`${e.edge} ${e.tag}/c${c}`) ?? []
      total += e.n
      const bad = list.findIndex((s, i) => s !== i)
      if (list.length !== e.n || bad !== -1)
        t.fail(`${e.edge} ${e.tag}/c${c}: ${list.length} of ${e.n} rows; first out of place at index ${bad}`)
    }
  }
  t.is(rows.length, total, 'rows in the central journal')
}

function edgeConfig(servers: string[], edge: string, extra: Record<string, unknown> = {}) {
  return {
    listeners: [{ transport: 'tcp', host: '127.0.0.1', port: 0 }],
    forward: { nats: { servers, edge, ...extra } },
  }
}

async function stats(srv: Running): Promise<Record<string, number>> {
  const rows = query<{ name: string; value: number }>(srv.journalPath, 'SELECT name, value FROM stats')
  return Object.fromEntries(rows.map((r) => [r.name, r.value]))
}

test.serial(
  'two edges forward to one JetStream node; the consumer journals each message once, with its edge',
  async (t) => {
    const nats = await startNats(t, tempDir(t))
    const e1 = await startServer(t, { config: edgeConfig([nats.url], 'edge-1') })
    const e2 = await startServer(t, {
      config: edgeConfig([nats.url], 'edge-2', { subject: 'syslog.{edge}' }),
    })
    const central = await startConsumer(t, tempDir(t), { servers: [nats.url] })
    await Promise.all([sendNumbered(e1.tcpPort, 'a', 4, 5000), sendNumbered(e2.tcpPort, 'b', 3, 5000)])
    await waitFor(
      '35,000 rows centrally',
      () => (rowCount(central.journalPath) >= 35_000 ? true : undefined),
      30_000,
    )
    // The edges still journal locally (journal.enabled defaults to true), with no edge column.
    await waitFor('the edges to journal locally', () =>
      rowCount(e1.journalPath) === 20_000 ? true : undefined,
    )
    t.is(
      query<{ n: number }>(e1.journalPath, 'SELECT count(*) AS n FROM messages WHERE edge IS NULL')[0]!.n,
      20_000,
    )
    t.is(await e1.stop(), 0)
    t.is(await e2.stop(), 0)
    t.is(await central.stop(), 0)
    checkExactlyOnce(t, central.journalPath, [
      { edge: 'edge-1', tag: 'a', conns: 4, n: 5000 },
      { edge: 'edge-2', tag: 'b', conns: 3, n: 5000 },
    ])
    const s = await stats(e1)
    t.is(s.forwarded_total, 20_000)
    t.is(s.forward_lag_messages, 0)
    // Both consumed the spool: nothing is left but the forward position.
    t.deepEqual(
      query<{ instance: string; edge: string }>(
        central.journalPath,
        'SELECT edge FROM edge_cursor ORDER BY edge',
      ).map((r) => r.edge),
      ['edge-1', 'edge-2'],
    )
  },
)

test.serial(
  'kill -9 of an edge mid-forward, three times: after restarts the central journal has every message once',
  async (t) => {
    const nats = await startNats(t, tempDir(t))
    const dir = tempDir(t)
    // Small messages to the log (~40 records each) so forwarding takes long enough to be interrupted.
    const config = edgeConfig([nats.url], 'k9', { batchBytes: 4096 })
    const central = await startConsumer(t, tempDir(t), { servers: [nats.url] })
    const nc = await natsClient(t, [nats.url])
    const jsm = await jetstreamManager(nc)
    let e = await startServer(t, { dir, config: { ...config, limits: { maxMessageBytes: 1024 } } })
    await sendNumbered(e.tcpPort, 'k', 5, 20_000)
    for (let round = 0; round < 3; round++) {
      const before = (await jsm.streams.info('SYSLOG').catch(() => null))?.state.messages ?? 0
      await waitFor('the edge to be forwarding', async () => {
        const now = (await jsm.streams.info('SYSLOG')).state.messages
        return now > before + 20 ? true : undefined
      })
      await e.kill9()
      e = await startServer(t, { dir, config: { ...config, limits: { maxMessageBytes: 1024 } } })
    }
    await waitFor(
      '100,000 rows centrally',
      () => (rowCount(central.journalPath) >= 100_000 ? true : undefined),
      60_000,
    )
    t.is(await e.stop(), 0)
    t.is(await central.stop(), 0)
    checkExactlyOnce(t, central.journalPath, [{ edge: 'k9', tag: 'k', conns: 5, n: 20_000 }])
  },
)

test.serial('kill -9 of the consumer mid-batch, three times: nothing lost, nothing doubled', async (t) => {
  const nats = await startNats(t, tempDir(t))
  const e = await startServer(t, { config: edgeConfig([nats.url], 'c9') })
  await sendNumbered(e.tcpPort, 'c', 4, 50_000)
  const centralDir = tempDir(t)
  const consumerNats = { servers: [nats.url] }
  let resets = 0
  for (let round = 0; round < 3; round++) {
    const c = await startConsumer(t, centralDir, consumerNats)
    const before = round === 0 ? 0 : rowCount(c.journalPath)
    await waitFor('the consumer to be journaling', () => {
      try {
        return rowCount(c.journalPath) > before + 1000 ? true : undefined
      } catch {
        return undefined
      }
    })
    if (/consume-reset/.test(c.stderr())) resets++
    await c.kill9()
  }
  const last = await startConsumer(t, centralDir, consumerNats)
  await waitFor(
    '200,000 rows centrally',
    () => (rowCount(last.journalPath) >= 200_000 ? true : undefined),
    60_000,
  )
  if (/consume-reset/.test(last.stderr())) resets++
  // A kill mid-batch leaves messages delivered but not committed: the restart reads again after the commit.
  t.true(resets > 0, 'no restart found the durable consumer ahead of the journal')
  t.is(await last.stop(), 0)
  t.is(await e.stop(), 0)
  checkExactlyOnce(t, last.journalPath, [{ edge: 'c9', tag: 'c', conns: 4, n: 50_000 }])
})

test.serial(
  'an edge whose saved position is behind the log resumes from the log, past the de-duplication window',
  async (t) => {
    const nats = await startNats(t, tempDir(t))
    const dir = tempDir(t)
    const config = edgeConfig([nats.url], 'behind', { duplicateWindowSeconds: 1 })
    const central = await startConsumer(t, tempDir(t), { servers: [nats.url] })
    let e = await startServer(t, { dir, config })
    await sendNumbered(e.tcpPort, 'p', 2, 3000)
    await waitFor('6,000 rows centrally', () => (rowCount(central.journalPath) >= 6000 ? true : undefined))
    t.is(await e.stop(), 0)
    const nc = await natsClient(t, [nats.url])
    const jsm = await jetstreamManager(nc)
    const stored = (await jsm.streams.info('SYSLOG')).state.messages
    // As if the edge crashed after the log acknowledged but before it saved its position, and stayed down
    // longer than the window: the saved position goes back to the start of the spool.
    const statePath = join(dir, 'spool', 'forward.state')
    const [instance] = readFileSync(statePath, 'latin1').split(' ')
    writeFileSync(statePath, `${`${instance} 1 0`.padEnd(63, ' ')}\n`)
    await new Promise((r) => setTimeout(r, 1500)) // the window (1 s) passes: de-duplication cannot help
    e = await startServer(t, { dir, config })
    await waitFor('forward-resume', () =>
      /forward-resume .*the log has it/.test(e.stderr()) ? true : undefined,
    )
    t.is((await jsm.streams.info('SYSLOG')).state.messages, stored, 'nothing was published again')
    await sendNumbered(e.tcpPort, 'q', 1, 1000)
    await waitFor('7,000 rows centrally', () => (rowCount(central.journalPath) >= 7000 ? true : undefined))
    t.is(await e.stop(), 0)
    t.is(await central.stop(), 0)
    checkExactlyOnce(t, central.journalPath, [
      { edge: 'behind', tag: 'p', conns: 2, n: 3000 },
      { edge: 'behind', tag: 'q', conns: 1, n: 1000 },
    ])
  },
)

test.serial(
  'a damaged forward position is a clear start-up error; a message from another publisher is journaled as is',
  async (t) => {
    const nats = await startNats(t, tempDir(t))
    const dir = tempDir(t)
    mkdirSync(join(dir, 'spool'))
    writeFileSync(join(dir, 'spool', 'forward.state'), 'not a position\n')
    const err = await startServer(t, { dir, config: edgeConfig([nats.url], 'bad') }).then(
      () => '',
      (e: Error) => e.message,
    )
    t.regex(err, /forward\.state is not a forward position .*delete it to forward every segment/)
    // Something other than an edge publishes a plain line to the stream: journaled, transport "nats".
    const central = await startConsumer(t, tempDir(t), { servers: [nats.url] })
    const nc = await natsClient(t, [nats.url])
    await (await jetstreamManager(nc)).streams.add({ name: 'SYSLOG', subjects: ['syslog.*'] })
    await jetstream(nc).publish(
      'syslog.other',
      new TextEncoder().encode('<11>Nov 23 10:00:00 fw1 kernel: drop'),
    )
    await waitFor('the foreign message', () => (rowCount(central.journalPath) === 1 ? true : undefined))
    t.like(query(central.journalPath, 'SELECT host, app, severity, transport, peer, edge FROM messages')[0], {
      host: 'fw1',
      app: 'kernel',
      severity: 3,
      transport: 'nats',
      peer: 'syslog.other',
      edge: null,
    })
    // An instance header with a position that is not SEG:START:END is not an edge's: journaled as is.
    const h = headers()
    h.set('Spillway-Instance', '0123456789abcdef')
    h.set('Spillway-Pos', '1:x')
    await jetstream(nc).publish('syslog.forged', new TextEncoder().encode('<12>forged position'), {
      headers: h,
    })
    await waitFor('the forged message', () => (rowCount(central.journalPath) === 2 ? true : undefined))
    t.like(query(central.journalPath, 'SELECT msg, transport, peer, edge FROM messages WHERE id = 2')[0], {
      msg: 'forged position',
      transport: 'nats',
      peer: 'syslog.forged',
      edge: null,
    })
    t.is(await central.stop(), 0)
  },
)

/** A nats-server with these arguments on 127.0.0.1:port, once it says it is ready. */
async function plainNats(t: ExecutionContext, port: number, args: string[]): Promise<ChildProcess> {
  let out = ''
  const proc = spawn('nats-server', ['-a', '127.0.0.1', '-p', String(port), ...args])
  proc.stdout!.on('data', (d: Buffer) => {
    out += d.toString()
  })
  proc.stderr!.on('data', (d: Buffer) => {
    out += d.toString()
  })
  const exited = new Promise((resolve) => proc.on('exit', resolve))
  t.teardown(async () => {
    if (proc.exitCode === null && proc.signalCode === null) {
      proc.kill('SIGKILL')
      await exited
    }
  })
  await waitFor('nats-server ready', () => (/Server is ready/.test(out) ? true : undefined), 15_000)
  return proc
}

test.serial(
  'a NATS server without JetStream: the consumer waits instead of exiting, and journals once JetStream is there',
  async (t) => {
    const port = await freePort()
    const plain = await plainNats(t, port, [])
    const central = await startConsumer(t, tempDir(t), { servers: [`127.0.0.1:${port}`] })
    // Asking for the account's JetStream limits fails here: that request is retried like the rest.
    await waitFor('consume-waiting', () => (/consume-waiting/.test(central.stderr()) ? true : undefined))
    plain.kill('SIGKILL')
    await new Promise((resolve) => plain.on('exit', resolve))
    await plainNats(t, port, ['-js', '-sd', tempDir(t)])
    const nc = await natsClient(t, [`127.0.0.1:${port}`])
    await (await jetstreamManager(nc)).streams.add({ name: 'SYSLOG', subjects: ['syslog.*'] })
    await jetstream(nc).publish('syslog.late', new TextEncoder().encode('<14>1 - h app - - - after the wait'))
    await waitFor(
      'the message journaled',
      () => (rowCount(central.journalPath) === 1 ? true : undefined),
      30_000,
    )
    t.is(query<{ msg: string }>(central.journalPath, 'SELECT msg FROM messages')[0]!.msg, 'after the wait')
    t.is(await central.stop(), 0)
  },
)

test.serial(
  'user and password: the edge and the consumer authenticate; wrong credentials are a clear error while the edge keeps receiving',
  async (t) => {
    const auth =
      'authorization { users: [ { user: edge, password: e-pass }, { user: central, password: c-pass } ] }'
    const nats = await startNats(t, tempDir(t), auth, { user: 'edge', pass: 'e-pass' })
    const e = await startServer(t, {
      config: edgeConfig([nats.url], 'auth', { user: 'edge', password: 'e-pass' }),
    })
    const central = await startConsumer(t, tempDir(t), {
      servers: [nats.url],
      user: 'central',
      password: 'c-pass',
    })
    await sendNumbered(e.tcpPort, 'u', 1, 500)
    await waitFor('500 rows centrally', () => (rowCount(central.journalPath) >= 500 ? true : undefined))
    t.is(await e.stop(), 0)
    t.is(await central.stop(), 0)
    checkExactlyOnce(t, central.journalPath, [{ edge: 'auth', tag: 'u', conns: 1, n: 500 }])
    // Refused credentials do not stop the edge: it keeps receiving and journaling, says what is wrong
    // once, and keeps trying.
    const bad = await startServer(t, {
      config: edgeConfig([nats.url], 'bad', { user: 'edge', password: 'nope' }),
    })
    await waitFor('forward-error', () =>
      /forward-error stage=connect message="NATS 127\.0\.0\.1:\d+: Authorization Violation; check forward\.nats\.user\/password, token or credsFile"/.test(
        bad.stderr(),
      )
        ? true
        : undefined,
    )
    await sendNumbered(bad.tcpPort, 'v', 1, 100)
    await waitFor('journaled locally', () => (rowCount(bad.journalPath) === 100 ? true : undefined))
    t.is(bad.stderr().match(/forward-error/g)?.length, 1, 'said once')
    t.is(await bad.stop(), 0)
  },
)

test.serial(
  'TLS with client certificates to NATS: edge and consumer get in; a certificate from another CA does not',
  async (t) => {
    const certs = pki(t)
    const f = (name: string) => join(certs, name)
    const tlsConf = `tls { cert_file: "${f('server.crt')}", key_file: "${f('server.key')}", ca_file: "${f('ca.crt')}", verify: true }`
    const mine = { ca: f('ca.crt'), cert: f('client.crt'), key: f('client.key') }
    const nats = await startNats(t, tempDir(t), tlsConf, {
      tls: { caFile: mine.ca, certFile: mine.cert, keyFile: mine.key },
    })
    const e = await startServer(t, { config: edgeConfig([nats.url], 'tls', { tls: mine }) })
    const central = await startConsumer(t, tempDir(t), { servers: [nats.url], tls: mine })
    await sendNumbered(e.tcpPort, 's', 1, 500)
    await waitFor('500 rows centrally', () => (rowCount(central.journalPath) >= 500 ? true : undefined))
    t.is(await e.stop(), 0)
    t.is(await central.stop(), 0)
    checkExactlyOnce(t, central.journalPath, [{ edge: 'tls', tag: 's', conns: 1, n: 500 }])
    const stranger = await startServer(t, {
      config: edgeConfig([nats.url], 'stranger', {
        tls: { ...mine, cert: f('stranger.crt'), key: f('stranger.key') },
      }),
    })
    await waitFor(
      'forward-error',
      () =>
        /forward-error stage=connect .*check forward\.nats\.tls/.test(stranger.stderr()) ? true : undefined,
      20_000,
    ).catch((err: Error) => {
      throw new Error(`${err.message}\n${stranger.stderr()}`)
    })
    t.is(await stranger.stop(), 0)
  },
)

test.serial(
  'the log unreachable for a while: the spool fills, lag shows, forwarding resumes by itself',
  async (t) => {
    const metricsPort = await freePort()
    const nats = await startNats(t, tempDir(t))
    const e = await startServer(t, {
      config: {
        ...edgeConfig([nats.url], 'away'),
        journal: { enabled: false },
        metrics: { port: metricsPort },
      },
    })
    const central = await startConsumer(t, tempDir(t), { servers: [nats.url] })
    await sendNumbered(e.tcpPort, 'x', 2, 1000)
    await waitFor('the first 2,000 centrally', () =>
      rowCount(central.journalPath) >= 2000 ? true : undefined,
    )
    await nats.kill()
    await sendNumbered(e.tcpPort, 'y', 2, 5000)
    // While the log is away the edge holds the messages in its spool and says how far behind it is.
    const away = await waitFor('forward lag to show', async () => {
      const s = await stats(e)
      return s.forward_lag_messages === 10_000 && s.forward_connected === 0 ? s : undefined
    })
    t.true(away.spool_backlog_bytes! > 10_000 * 40, 'the spool holds what was not forwarded')
    const health = await fetch(`http://127.0.0.1:${metricsPort}/healthz`)
    t.is(health.status, 503)
    t.regex(await health.text(), /forward: not connected to NATS/)
    const metrics = await (await fetch(`http://127.0.0.1:${metricsPort}/metrics`)).text()
    t.regex(metrics, /^spillway_forward_lag_messages 10000$/m)
    t.regex(metrics, /^spillway_forward_connected 0$/m)
    const cli = spawnSync(process.execPath, [kMain, '--config', join(e.dir, 'config.json'), 'stats'], {
      cwd: e.dir,
      encoding: 'utf8',
    })
    t.is(cli.status, 1, 'unhealthy while the log is away')
    t.regex(
      cli.stdout,
      /^forward +NOT connected; 2000 forwarded; lag 10000 msgs, [\d.]+ s; \d+ publish errors$/m,
    )
    // journal.enabled false: the edge stores no messages of its own.
    t.is(rowCount(e.journalPath), 0)
    await nats.restart()
    await waitFor(
      '12,000 rows centrally',
      () => (rowCount(central.journalPath) >= 12_000 ? true : undefined),
      30_000,
    )
    const back = await waitFor('forward lag back to 0', async () => {
      const s = await stats(e)
      return s.forward_lag_messages === 0 ? s : undefined
    })
    t.is(back.forward_lag_seconds, 0)
    t.regex(e.stderr(), /forward-disconnected/)
    t.regex(e.stderr(), /forward-reconnected/)
    t.is(await e.stop(), 0)
    t.is(await central.stop(), 0)
    checkExactlyOnce(t, central.journalPath, [
      { edge: 'away', tag: 'x', conns: 2, n: 1000 },
      { edge: 'away', tag: 'y', conns: 2, n: 5000 },
    ])
  },
)

test.serial(
  'a three-node cluster, replicas 3: a node killed and restarted mid-forward loses and doubles nothing',
  async (t) => {
    const nodes = await startNatsCluster(t, tempDir(t))
    const servers = nodes.map((n) => n.url)
    const e = await startServer(t, {
      config: {
        ...edgeConfig(servers, 'r3', { replicas: 3, batchBytes: 4096 }),
        limits: { maxMessageBytes: 1024 },
      },
    })
    const central = await startConsumer(t, tempDir(t), { servers })
    await sendNumbered(e.tcpPort, 'r', 4, 20_000)
    const nc = await natsClient(t, servers)
    const jsm = await jetstreamManager(nc)
    await waitFor('forwarding to have begun', async () =>
      (await jsm.streams.info('SYSLOG')).state.messages > 50 ? true : undefined,
    )
    // The stream's leader is the node that matters: kill it, forward on with the other two, bring it back.
    const leader = (await jsm.streams.info('SYSLOG')).cluster?.leader
    const victim = nodes.find((n) => n.name === leader) ?? nodes[0]!
    await victim.kill()
    // Forwarding goes on with the other two: more rows reach the central journal while it is down.
    // (Counted there, not asked of NATS, whose answers can take seconds during the election.)
    const before = rowCount(central.journalPath)
    await waitFor(
      'forwarding to go on without it',
      () => {
        const n = rowCount(central.journalPath)
        return n > before || n >= 80_000 ? true : undefined
      },
      60_000,
    )
    await victim.restart()
    await waitFor(
      '80,000 rows centrally',
      () => (rowCount(central.journalPath) >= 80_000 ? true : undefined),
      90_000,
    ).catch((err: Error) => {
      // What each side said is what tells a lost message from a slow one.
      throw new Error(`${err.message}\nedge:\n${e.stderr()}\nconsumer:\n${central.stderr()}`)
    })
    t.is(await e.stop(), 0)
    t.is(await central.stop(), 0)
    checkExactlyOnce(t, central.journalPath, [{ edge: 'r3', tag: 'r', conns: 4, n: 20_000 }])
  },
)
