import { execFile } from 'node:child_process'
import { hostname } from 'node:os'
import { promisify } from 'node:util'
import test from 'ava'
import { startRsyslogRelay, startSyslogNgRelay } from '../helpers/peers.js'
import { need } from '../helpers/programs.js'
import { query, startServer, waitFor } from '../helpers/server.js'

const run = promisify(execFile)

interface Row {
  host: string | null
  app: string | null
  procid: string | null
  msg: string
  severity: number
  facility: number
  ts: number | null
}

function logger(port: number, tag: string, msg: string, format = '--rfc5424'): Promise<unknown> {
  const args = [
    '--server',
    '127.0.0.1',
    '--port',
    String(port),
    '--tcp',
    format,
    '-t',
    tag,
    '-p',
    'daemon.warning',
  ]
  return run(need('logger'), [...args, msg])
}

function rowsFor(journalPath: string, tag: string, n: number): Promise<Row[]> {
  return waitFor(`${n} rows from ${tag}`, () => {
    const r = query<Row>(journalPath, 'SELECT * FROM messages WHERE msg LIKE ? ORDER BY id', `${tag} %`)
    return r.length >= n ? r : undefined
  })
}

test('rsyslog relays with omfwd, LF-framed and octet-counted: host, app and severity survive', async (t) => {
  const srv = await startServer(t)
  const relay = await startRsyslogRelay(t, srv.dir, srv.tcpPort)
  for (let i = 0; i < 5; i++) {
    await logger(relay.lfPort, 'rslf', `rslf ${i} via rsyslog traditional`)
    await logger(relay.octetPort, 'rsoctet', `rsoctet ${i} via rsyslog octet-counted 5424`)
  }
  const lf = await rowsFor(srv.journalPath, 'rslf', 5)
  const oc = await rowsFor(srv.journalPath, 'rsoctet', 5)
  t.deepEqual(
    lf.map((r) => r.msg),
    [0, 1, 2, 3, 4].map((i) => `rslf ${i} via rsyslog traditional`),
  )
  t.deepEqual(
    oc.map((r) => r.msg),
    [0, 1, 2, 3, 4].map((i) => `rsoctet ${i} via rsyslog octet-counted 5424`),
  )
  for (const r of [...lf, ...oc]) {
    t.is(r.facility, 3)
    t.is(r.severity, 4)
    t.truthy(r.ts)
    t.truthy(r.host)
  }
  t.true(lf.every((r) => r.app === 'rslf'))
  t.true(oc.every((r) => r.app === 'rsoctet'))
})

test('syslog-ng relays through network() (LF) and syslog() (octet-counted RFC 5424)', async (t) => {
  const srv = await startServer(t)
  const port = await startSyslogNgRelay(t, srv.dir, srv.tcpPort)
  // network() sources expect BSD syslog, so the sender speaks RFC 3164 to it
  for (let i = 0; i < 3; i++) await logger(port, 'sng', `sng ${i} via syslog-ng`, '--rfc3164')
  // each message arrives twice: once per destination
  const rows = await rowsFor(srv.journalPath, 'sng', 6)
  t.is(rows.length, 6)
  for (let i = 0; i < 3; i++) t.is(rows.filter((r) => r.msg === `sng ${i} via syslog-ng`).length, 2)
  for (const r of rows) {
    t.is(r.app, 'sng')
    t.is(r.facility, 3)
    t.is(r.severity, 4)
    t.truthy(r.ts)
    t.is(r.host, hostname())
  }
})
