import { connect } from 'node:net'
import { join } from 'node:path'
import test from 'ava'
import { pki } from '../helpers/pki.js'
import { RelpWitness, startRelpRelay } from '../helpers/relp.js'
import {
  query,
  type Running,
  rowCount,
  spoolRecords,
  startServer,
  tempDir,
  waitFor,
} from '../helpers/server.js'

// rsyslog's omrelp (Debian's rsyslog-relp) sending to a "relp" listener: what it was told was received
// must be in the journal, whatever happens to the server.

/** The RELP listener's port, once the server says it listens (after its TCP listener). */
function relpPort(srv: Running): Promise<number> {
  return waitFor('the relp listener', () => {
    const m = /listening transport=relp host=\S+ port=(\d+)/.exec(srv.stderr())
    return m === null ? undefined : Number(m[1])
  })
}

function config(port: number, tls?: Record<string, string>): Record<string, unknown> {
  return {
    listeners: [
      { transport: 'tcp', host: '127.0.0.1', port: 0 },
      { transport: 'relp', host: '127.0.0.1', port, ...(tls ? { tls } : {}) },
    ],
  }
}

/** Sends numbered RFC 5424 messages to rsyslog's input, as fast as it takes them. */
function send(port: number, from: number, to: number, tag = 'relpapp'): Promise<void> {
  return new Promise((resolve, reject) => {
    const s = connect({ host: '127.0.0.1', port }, () => {
      let text = ''
      for (let i = from; i < to; i++) text += `<134>1 2026-12-06T10:00:00Z relphost ${tag} 42 - - n=${i}\n`
      s.end(text)
    })
    s.on('error', reject)
    s.on('close', () => resolve())
    s.resume()
  })
}

function numbers(journalPath: string): number[] {
  return query<{ msg: string }>(journalPath, "SELECT msg FROM messages WHERE transport LIKE 'relp%'").map(
    (r) => Number(r.msg.slice(2)),
  )
}

test('rsyslog omrelp: every message journaled once with its header, answered only once on disk', async (t) => {
  const srv = await startServer(t, { config: config(0) })
  const relay = await startRelpRelay(t, srv.dir, await relpPort(srv))
  await send(relay.inputPort, 0, 500)
  await waitFor('500 rows', () => (rowCount(srv.journalPath) >= 500 ? true : undefined), 30_000)
  const rows = query<{
    host: string
    app: string
    procid: string
    facility: number
    severity: number
    msg: string
    transport: string
  }>(
    srv.journalPath,
    'SELECT host, app, procid, facility, severity, msg, transport FROM messages ORDER BY id',
  )
  t.deepEqual(
    rows.map((r) => r.msg),
    Array.from({ length: 500 }, (_, i) => `n=${i}`),
    'in order, each once, without the LF rsyslog ends its template with',
  )
  for (const r of rows) {
    t.is(r.host, 'relphost')
    t.is(r.app, 'relpapp')
    t.is(r.procid, '42')
    t.is(r.facility, 16)
    t.is(r.severity, 6)
    t.is(r.transport, 'relp')
  }
  t.is(await srv.stop(), 0)
  t.regex(srv.stderr(), /stopped received=500 /)
})

test('rsyslog omrelp, kill -9 three times mid-stream: every message the server acknowledged is journaled', async (t) => {
  // A witness between rsyslog and the server records which messages the server answered 200 OK: those
  // are what the server promised. (rsyslog's omrelp itself can drop messages that were in its window
  // when a session broke and could not be re-established at once, rsyslog#2610: counted, not blamed.)
  const dir = tempDir(t)
  let srv = await startServer(t, { dir, config: config(0) })
  const port = await relpPort(srv)
  const witness = new RelpWitness(() => port)
  const relay = await startRelpRelay(t, dir, await witness.listen(t))
  const n = 60_000
  await send(relay.inputPort, 0, n)
  const atKill: number[] = []
  for (const mark of [10_000, 25_000, 40_000]) {
    await waitFor(`${mark} rows`, () => (rowCount(srv.journalPath) >= mark ? true : undefined), 60_000)
    await srv.kill9()
    atKill.push(rowCount(srv.journalPath))
    // The same port: rsyslog reconnects (through the witness) to where it was sending.
    srv = await startServer(t, { dir, config: config(port) })
    await relpPort(srv)
  }
  t.log(`rows at the kills: ${atKill.join(', ')} of ${n}`)
  t.true(
    atKill.some((r) => r < n),
    'the stream had ended before a kill: nothing was in flight',
  )
  // What rsyslog still holds arrives (all of it, unless omrelp dropped some: then the wait gives up).
  await waitFor(
    'every message',
    () => (new Set(numbers(srv.journalPath)).size === n ? true : undefined),
    30_000,
  ).catch(() => undefined)
  // The server's promise, checked in an order no commit can slip through: what it had acknowledged,
  // then the spool (written, not yet journaled), then the journal (a record leaves the spool only after
  // it is committed there).
  const acked = [...witness.acked]
  const spooled = new Set(spoolRecords(srv.spoolDir).map((r) => r.slice(r.lastIndexOf(' ') + 1)))
  const got = numbers(srv.journalPath)
  const journaled = new Set(got.map((i) => `n=${i}`))
  const tail = (m: string) => m.slice(m.lastIndexOf(' ') + 1).trimEnd()
  t.deepEqual(
    acked.filter((m) => !journaled.has(tail(m)) && !spooled.has(tail(m))),
    [],
    'acknowledged, and neither journaled nor spooled',
  )
  const duplicates = got.length - journaled.size
  t.log(
    `journaled ${journaled.size} of ${n}; acknowledged ${acked.length}; never sent again by rsyslog: ` +
      `${n - journaled.size}; duplicates: ${duplicates}`,
  )
  // At most what omrelp had unanswered (its window, 128) per kill.
  t.true(duplicates <= 3 * 128, `${duplicates} duplicates`)
  t.is(await srv.stop(), 0)
})

test('RELP over TLS (omrelp tls="on", certvalid): journaled as relp-tls', async (t) => {
  const d = pki(t)
  const tls = { cert: join(d, 'server.crt'), key: join(d, 'server.key') }
  const srv = await startServer(t, { config: config(0, tls) })
  const relay = await startRelpRelay(t, srv.dir, await relpPort(srv), {
    ca: join(d, 'ca.crt'),
    cert: join(d, 'client.crt'),
    key: join(d, 'client.key'),
  })
  await send(relay.inputPort, 0, 100, 'relptls')
  await waitFor('100 rows', () => (rowCount(srv.journalPath) >= 100 ? true : undefined), 30_000)
  const rows = query<{ transport: string; app: string }>(
    srv.journalPath,
    'SELECT transport, app FROM messages',
  )
  t.true(rows.every((r) => r.transport === 'relp-tls' && r.app === 'relptls'))
})

/** A raw RELP client: sends `text`, returns what the server answered until it closed. */
function converse(port: number, text: string): Promise<string> {
  return new Promise((resolve, reject) => {
    let got = ''
    const s = connect({ host: '127.0.0.1', port }, () => s.write(text))
    s.on('data', (d) => {
      got += d.toString('latin1')
      if (/rsp 0\n$/.test(got) || /serverclose/.test(got)) s.end()
    })
    s.on('error', reject)
    s.on('close', () => resolve(got))
  })
}

test('the session as librelp defines it: open, syslog, close; refusals and protocol errors', async (t) => {
  const srv = await startServer(t, { config: config(0) })
  const port = await relpPort(srv)
  const frame = (txnr: number, command: string, data: string) => `${txnr} ${command} ${data.length} ${data}\n`
  const ok = await converse(
    port,
    frame(1, 'open', 'relp_version=0\nrelp_software=test,1,x\ncommands=syslog') +
      frame(2, 'syslog', '<13>hello over relp') +
      frame(3, 'syslog', '<13>second') +
      '4 close 0\n',
  )
  t.regex(ok, /^1 rsp \d+ 200 OK\nrelp_version=0\nrelp_software=spillway,[^\n]*\ncommands=syslog\n/)
  t.regex(ok, /\n2 rsp 6 200 OK\n3 rsp 6 200 OK\n4 rsp 0\n$/)
  // Before open, and a client that does not offer syslog: refused, the connection closed.
  t.is(await converse(port, frame(1, 'syslog', '<13>x')), '1 rsp 20 500 session not open\n')
  t.regex(await converse(port, frame(1, 'open', 'commands=somethingelse')), /^1 rsp \d+ 500 required command/)
  // Not RELP at all: closed, counted, logged.
  t.is(await converse(port, 'GET / HTTP/1.1\r\n\r\n'), '')
  await waitFor('relp-error on stderr', () => (/relp-error .*reason=/.test(srv.stderr()) ? true : undefined))
  await waitFor('the two messages', () => (rowCount(srv.journalPath) >= 2 ? true : undefined))
  t.deepEqual(
    query<{ msg: string }>(srv.journalPath, 'SELECT msg FROM messages ORDER BY id').map((r) => r.msg),
    ['hello over relp', 'second'],
  )
})
