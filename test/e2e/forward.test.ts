// Scale-out: edges forward their spool to a real NATS JetStream, `spillway consume` journals the stream
// centrally. Every scenario checks, message by message, that the central journal holds each accepted
// message exactly once, in per-connection order, tagged with its edge.

import { spawnSync } from 'node:child_process'
import { mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs'
import { createConnection } from 'node:net'
import { join } from 'node:path'
import { jetstream, jetstreamManager } from '@nats-io/jetstream'
import { credsAuthenticator, headers, type NatsConnection } from '@nats-io/transport-node'
import test, { type ExecutionContext } from 'ava'
import {
  natsClient,
  operatorAuth,
  type StreamMessage,
  startConsumer,
  startNats,
  startNatsCluster,
  streamMessages,
} from '../helpers/nats.js'
import { onFreePorts, type Peer, peerListening, spawnPeer } from '../helpers/peers.js'
import { pki } from '../helpers/pki.js'
import { holdWriteLock, query, rowCount, startServer, tempDir, waitFor } from '../helpers/server.js'

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

async function stats(srv: { journalPath: string }): Promise<Record<string, number>> {
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
    await waitFor('35,000 rows centrally', () => (rowCount(central.journalPath) >= 35_000 ? true : undefined))
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
    // The journal and the forwarder both consumed each edge's spool: no segment is left, only the
    // forward position.
    for (const e of [e1, e2]) t.deepEqual(readdirSync(e.spoolDir).sort(), ['forward.state'], e.spoolDir)
    t.deepEqual(
      query<{ instance: string; edge: string }>(
        central.journalPath,
        'SELECT edge FROM edge_cursor ORDER BY edge',
      ).map((r) => r.edge),
      ['edge-1', 'edge-2'],
    )
  },
)

/**
 * Waits until the stream's de-duplication window has passed for everything published before this call:
 * a probe published now under an id is stored again under the same id only once the window is over.
 */
async function windowPassed(nc: NatsConnection, subject: string, id: string): Promise<void> {
  const js = jetstream(nc)
  const probe = new TextEncoder().encode('<14>probe')
  await js.publish(subject, probe, { msgID: id })
  await waitFor('the de-duplication window to pass', async () =>
    (await js.publish(subject, probe, { msgID: id })).duplicate ? undefined : true,
  )
}

/**
 * The edge's messages in the stream, each once: per instance, each message starts where the one before
 * it ended (or at the start of a later segment). A message published again would start before that.
 */
function checkPublishedOnce(
  t: ExecutionContext,
  msgs: StreamMessage[],
  subject: string,
  records: number,
): void {
  const mine = msgs.filter((m) => m.subject === subject)
  const last = new Map<string, StreamMessage>()
  for (const m of mine) {
    const prev = last.get(m.instance)
    if (
      prev !== undefined &&
      !(m.seg === prev.seg ? m.start === prev.end : m.seg > prev.seg && m.start === 0)
    )
      t.fail(
        `stream seq ${m.seq} (${m.seg}:${m.start}) does not follow seq ${prev.seq} (${prev.seg}:${prev.end})`,
      )
    last.set(m.instance, m)
  }
  t.is(
    mine.reduce((n, m) => n + m.records, 0),
    records,
    'records in the stream',
  )
}

test.serial(
  'kill -9 of an edge mid-forward, three times: after restarts the stream and the central journal have every message once',
  async (t) => {
    const nats = await startNats(t, tempDir(t))
    const dir = tempDir(t)
    // Small messages to the log (~40 records each) so forwarding takes long enough to be interrupted;
    // a de-duplication window of a second, which each restart waits out, so that the log cannot hide a
    // message the restarted edge published again.
    const config = edgeConfig([nats.url], 'k9', { batchBytes: 4096, duplicateWindowSeconds: 1 })
    // The probes go to syslog.probe: the central journal reads only the edge's subject.
    const central = await startConsumer(t, tempDir(t), { servers: [nats.url], filterSubject: 'syslog.k9' })
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
      const forwarded = (await streamMessages(nc, 'SYSLOG'))
        .filter((m) => m.subject === 'syslog.k9')
        .reduce((n, m) => n + m.records, 0)
      t.true(forwarded < 100_000, `round ${round}: forwarding had finished before the kill`)
      await windowPassed(nc, 'syslog.probe', `probe-${round}`)
      e = await startServer(t, { dir, config: { ...config, limits: { maxMessageBytes: 1024 } } })
    }
    await waitFor(
      '100,000 rows centrally',
      () => (rowCount(central.journalPath) >= 100_000 ? true : undefined),
      60_000,
    )
    t.is(await e.stop(), 0)
    t.is(await central.stop(), 0)
    checkPublishedOnce(t, await streamMessages(nc, 'SYSLOG'), 'syslog.k9', 100_000)
    checkExactlyOnce(t, central.journalPath, [{ edge: 'k9', tag: 'k', conns: 5, n: 20_000 }])
    // Nothing came twice to the central journal either: none was dropped there as a duplicate.
    t.deepEqual(
      query(central.journalPath, "SELECT value FROM stats WHERE name = 'consume_duplicate_records_total'"),
      [{ value: 0 }],
    )
  },
)

test.serial(
  'kill -9 of the consumer between delivery and commit, three times: nothing lost, nothing doubled',
  async (t) => {
    const nats = await startNats(t, tempDir(t))
    const e = await startServer(t, {
      config: { ...edgeConfig([nats.url], 'c9', { batchBytes: 4096 }), limits: { maxMessageBytes: 1024 } },
    })
    const centralDir = tempDir(t)
    const consumerNats = { servers: [nats.url] }
    const nc = await natsClient(t, [nats.url])
    const jsm = await jetstreamManager(nc)
    const sent: { edge: string; tag: string; conns: number; n: number }[] = []
    for (let round = 0; round < 3; round++) {
      const c = await startConsumer(t, centralDir, consumerNats)
      if (round > 0) {
        // The last one was killed with messages delivered and not committed: this one reads again
        // from right after the journal's commit, not after the log's delivery.
        await waitFor('consume-reset', () => (/consume-reset /.test(c.stderr()) ? true : undefined))
      }
      // The moment between delivery and commit, held open: the journal is locked, then messages are
      // sent; what the log delivers now cannot be committed.
      const lock = await holdWriteLock(t, c.journalPath)
      await sendNumbered(e.tcpPort, `r${round}`, 2, 5000)
      sent.push({ edge: 'c9', tag: `r${round}`, conns: 2, n: 5000 })
      await waitFor('messages delivered past the commit', async () => {
        const info = await jsm.consumers.info('SYSLOG', 'spillway-journal')
        const committed = query<{ stream_seq: number }>(
          c.journalPath,
          'SELECT stream_seq FROM consume_cursor',
        )[0]
        return info.delivered.stream_seq > (committed?.stream_seq ?? 0) ? true : undefined
      })
      await c.kill9()
      await lock.release()
    }
    const last = await startConsumer(t, centralDir, consumerNats)
    await waitFor('consume-reset', () => (/consume-reset /.test(last.stderr()) ? true : undefined))
    await waitFor('30,000 rows centrally', () => (rowCount(last.journalPath) >= 30_000 ? true : undefined))
    t.is(await last.stop(), 0)
    t.is(await e.stop(), 0)
    checkExactlyOnce(t, last.journalPath, sent)
  },
)

test.serial(
  'an edge whose saved position is behind the log resumes from the log, past the de-duplication window',
  async (t) => {
    const nats = await startNats(t, tempDir(t))
    const dir = tempDir(t)
    const config = edgeConfig([nats.url], 'behind', { duplicateWindowSeconds: 1 })
    // (The probe below goes to syslog.probe: the central journal reads only the edge's subject.)
    const central = await startConsumer(t, tempDir(t), {
      servers: [nats.url],
      filterSubject: 'syslog.behind',
    })
    let e = await startServer(t, { dir, config })
    await sendNumbered(e.tcpPort, 'p', 2, 3000)
    await waitFor('6,000 rows centrally', () => (rowCount(central.journalPath) >= 6000 ? true : undefined))
    t.is(await e.stop(), 0)
    const nc = await natsClient(t, [nats.url])
    const edgeMessages = async () =>
      (await streamMessages(nc, 'SYSLOG')).filter((m) => m.subject === 'syslog.behind').length
    const stored = await edgeMessages()
    // As if the edge crashed after the log acknowledged but before it saved its position, and stayed down
    // longer than the window: the saved position goes back to the start of the spool.
    const statePath = join(dir, 'spool', 'forward.state')
    const [instance] = readFileSync(statePath, 'latin1').split(' ')
    writeFileSync(statePath, `${`${instance} 1 0`.padEnd(63, ' ')}\n`)
    await windowPassed(nc, 'syslog.probe', 'probe') // de-duplication cannot help from here on
    e = await startServer(t, { dir, config })
    await waitFor('forward-resume', () =>
      /forward-resume .*the log has it/.test(e.stderr()) ? true : undefined,
    )
    t.is(await edgeMessages(), stored, 'nothing was published again')
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

/** A nats-server with these arguments on 127.0.0.1:port, once it listens there and says it is ready. */
async function plainNats(t: ExecutionContext, port: number, args: string[]): Promise<Peer> {
  const p = spawnPeer(t, 'nats-server', ['-a', '127.0.0.1', '-p', String(port), ...args])
  await peerListening('nats-server', p, [port])
  await waitFor('nats-server ready', () => (/Server is ready/.test(p.log()) ? true : undefined))
  return p
}

test.serial(
  'a NATS server without JetStream: the consumer waits instead of exiting, and journals once JetStream is there',
  async (t) => {
    const [port, plain] = await onFreePorts(1, async ([p]) => [p!, await plainNats(t, p!, [])] as const)
    const central = await startConsumer(t, tempDir(t), { servers: [`127.0.0.1:${port}`] })
    // Asking for the account's JetStream limits fails here: that request is retried like the rest.
    await waitFor('consume-waiting', () => (/consume-waiting/.test(central.stderr()) ? true : undefined))
    await plain.kill()
    await plainNats(t, port, ['-js', '-sd', tempDir(t)])
    const nc = await natsClient(t, [`127.0.0.1:${port}`])
    await (await jetstreamManager(nc)).streams.add({ name: 'SYSLOG', subjects: ['syslog.*'] })
    await jetstream(nc).publish('syslog.late', new TextEncoder().encode('<14>1 - h app - - - after the wait'))
    await waitFor('the message journaled', () => (rowCount(central.journalPath) === 1 ? true : undefined))
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
  'a token: the edge and the consumer authenticate with it; a wrong one is a clear error while the edge keeps receiving',
  async (t) => {
    const nats = await startNats(t, tempDir(t), 'authorization { token: "s3cret-token" }', {
      token: 's3cret-token',
    })
    const e = await startServer(t, { config: edgeConfig([nats.url], 'tok', { token: 's3cret-token' }) })
    const central = await startConsumer(t, tempDir(t), { servers: [nats.url], token: 's3cret-token' })
    await sendNumbered(e.tcpPort, 't', 1, 500)
    await waitFor('500 rows centrally', () => (rowCount(central.journalPath) >= 500 ? true : undefined))
    t.is(await e.stop(), 0)
    t.is(await central.stop(), 0)
    checkExactlyOnce(t, central.journalPath, [{ edge: 'tok', tag: 't', conns: 1, n: 500 }])
    const bad = await startServer(t, { config: edgeConfig([nats.url], 'bad', { token: 'wrong' }) })
    await waitFor('forward-error', () =>
      /forward-error stage=connect .*Authorization Violation; check forward\.nats\.user\/password, token or credsFile/.test(
        bad.stderr(),
      )
        ? true
        : undefined,
    )
    await sendNumbered(bad.tcpPort, 'v', 1, 100)
    await waitFor('journaled locally', () => (rowCount(bad.journalPath) === 100 ? true : undefined))
    t.is(await bad.stop(), 0)
  },
)

test.serial(
  'credentials files (operator mode, JWT and NKey): edge and consumer get in; a user of an account the server does not know does not',
  async (t) => {
    const dir = tempDir(t)
    const auth = operatorAuth(dir)
    const nats = await startNats(t, dir, auth.config, {
      authenticator: credsAuthenticator(readFileSync(auth.creds('test'))),
    })
    const e = await startServer(t, {
      config: edgeConfig([nats.url], 'creds', { credsFile: auth.creds('edge') }),
    })
    const central = await startConsumer(t, tempDir(t), {
      servers: [nats.url],
      credsFile: auth.creds('central'),
    })
    await sendNumbered(e.tcpPort, 'k', 1, 500)
    await waitFor('500 rows centrally', () => (rowCount(central.journalPath) >= 500 ? true : undefined))
    t.is(await e.stop(), 0)
    t.is(await central.stop(), 0)
    checkExactlyOnce(t, central.journalPath, [{ edge: 'creds', tag: 'k', conns: 1, n: 500 }])
    const stranger = await startServer(t, {
      config: edgeConfig([nats.url], 'stranger', { credsFile: auth.foreignCreds() }),
    })
    await waitFor('forward-error', () =>
      /forward-error stage=connect .*Authorization Violation; check forward\.nats\.user\/password, token or credsFile/.test(
        stranger.stderr(),
      )
        ? true
        : undefined,
    )
    t.is(await stranger.stop(), 0)
  },
)

test.serial(
  'createStream false: the edge does not create the stream, says so, keeps the spool, and forwards once it exists',
  async (t) => {
    const nats = await startNats(t, tempDir(t))
    const e = await startServer(t, { config: edgeConfig([nats.url], 'nocreate', { createStream: false }) })
    await sendNumbered(e.tcpPort, 'n', 1, 300)
    await waitFor('forward-error stage=stream', () =>
      /forward-error stage=stream stream=SYSLOG .*stream not found/.test(e.stderr()) ? true : undefined,
    )
    const nc = await natsClient(t, [nats.url])
    const jsm = await jetstreamManager(nc)
    t.deepEqual(await jsm.streams.names().next(), [], 'the edge created the stream')
    t.notRegex(e.stderr(), /forward-stream-created/)
    // Created by hand, as an operator would with other settings: the edge finds it and forwards.
    await jsm.streams.add({ name: 'SYSLOG', subjects: ['syslog.*'], num_replicas: 1 })
    const central = await startConsumer(t, tempDir(t), { servers: [nats.url] })
    await waitFor('300 rows centrally', () => (rowCount(central.journalPath) >= 300 ? true : undefined))
    t.is(await e.stop(), 0)
    t.is(await central.stop(), 0)
    checkExactlyOnce(t, central.journalPath, [{ edge: 'nocreate', tag: 'n', conns: 1, n: 300 }])
    t.deepEqual(readdirSync(e.spoolDir).sort(), ['forward.state'])
  },
)

test.serial(
  'consume.nats.filterSubject: a central journal reads only its share of the edges (a wildcard token); the stream holds all',
  async (t) => {
    const nats = await startNats(t, tempDir(t))
    // NATS wildcards match whole tokens: the edges of a share have a token of their own in their
    // subject, and the stream (made by hand: an edge makes one of its own pattern only) takes them all.
    const nc = await natsClient(t, [nats.url])
    await (await jetstreamManager(nc)).streams.add({ name: 'SYSLOG', subjects: ['syslog.>'] })
    const share = (edge: string, group: string) =>
      edgeConfig([nats.url], edge, { subject: `syslog.${group}.{edge}`, createStream: false })
    const web = await startServer(t, { config: share('web-1', 'web') })
    const db = await startServer(t, { config: share('db-1', 'db') })
    const central = await startConsumer(t, tempDir(t), { servers: [nats.url], filterSubject: 'syslog.web.*' })
    await Promise.all([sendNumbered(web.tcpPort, 'w', 2, 1000), sendNumbered(db.tcpPort, 'd', 2, 1000)])
    await waitFor('both edges in the stream', async () => {
      const m = await streamMessages(nc, 'SYSLOG')
      const n = (subject: string) => m.filter((x) => x.subject === subject).reduce((a, x) => a + x.records, 0)
      return n('syslog.web.web-1') === 2000 && n('syslog.db.db-1') === 2000 ? true : undefined
    })
    await waitFor('2,000 rows centrally', () => (rowCount(central.journalPath) >= 2000 ? true : undefined))
    // Nothing left for it in the stream: db-1's messages are not its to read.
    await waitFor('the consumer with nothing pending', async () =>
      (await stats(central)).consume_pending_messages === 0 ? true : undefined,
    )
    t.is(await web.stop(), 0)
    t.is(await db.stop(), 0)
    t.is(await central.stop(), 0)
    checkExactlyOnce(t, central.journalPath, [{ edge: 'web-1', tag: 'w', conns: 2, n: 1000 }])
  },
)

test.serial(
  'consume.nats.ackWaitSeconds: the log redelivers what the consumer has not acknowledged after that long; still once in the journal',
  async (t) => {
    const nats = await startNats(t, tempDir(t))
    const e = await startServer(t, {
      config: { ...edgeConfig([nats.url], 'ack', { batchBytes: 4096 }), limits: { maxMessageBytes: 1024 } },
    })
    const central = await startConsumer(t, tempDir(t), { servers: [nats.url], ackWaitSeconds: 1 })
    const nc = await natsClient(t, [nats.url])
    const jsm = await jetstreamManager(nc)
    const ackWait = await waitFor(
      'the durable consumer',
      async () => (await jsm.consumers.info('SYSLOG', 'spillway-journal')).config.ack_wait,
    )
    t.is(ackWait, 1_000_000_000) // nanoseconds
    // Nothing can be committed, so nothing is acknowledged: after a second the log sends it again.
    const lock = await holdWriteLock(t, central.journalPath)
    await sendNumbered(e.tcpPort, 'a', 1, 2000)
    await waitFor('a redelivery', async () =>
      (await jsm.consumers.info('SYSLOG', 'spillway-journal')).num_redelivered > 0 ? true : undefined,
    )
    await lock.release()
    await waitFor('2,000 rows centrally', () => (rowCount(central.journalPath) >= 2000 ? true : undefined))
    t.is(await e.stop(), 0)
    t.is(await central.stop(), 0)
    checkExactlyOnce(t, central.journalPath, [{ edge: 'ack', tag: 'a', conns: 1, n: 2000 }])
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
    await waitFor('forward-error', () =>
      /forward-error stage=connect .*check forward\.nats\.tls/.test(stranger.stderr()) ? true : undefined,
    ).catch((err: Error) => {
      throw new Error(`${err.message}\n${stranger.stderr()}`)
    })
    t.is(await stranger.stop(), 0)
  },
)

test.serial(
  'the log unreachable for a while: the spool fills, lag shows, forwarding resumes by itself',
  async (t) => {
    const nats = await startNats(t, tempDir(t))
    const e = await startServer(t, {
      metrics: true,
      config: {
        ...edgeConfig([nats.url], 'away'),
        journal: { enabled: false },
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
    const health = await fetch(`http://127.0.0.1:${e.metricsPort}/healthz`)
    t.is(health.status, 503)
    t.regex(await health.text(), /forward: not connected to NATS/)
    const metrics = await (await fetch(`http://127.0.0.1:${e.metricsPort}/metrics`)).text()
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
    await waitFor('12,000 rows centrally', () => (rowCount(central.journalPath) >= 12_000 ? true : undefined))
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
