// Other projects' parser vectors (test/journal/vectors/) through a real server over TCP: one per
// connection and all back to back on one connection, LF-framed and octet-counted (RFC 6587 LEN SP MSG).
// Every vector must come out as exactly one row (none lost, split or merged) with the columns the unit
// test (test/journal/vectors.test.ts) records for it.
//
// Not sent: the one empty vector, which is no frame (an empty line is counted, not journaled). Vectors
// whose text holds a raw LF cannot be LF-framed (the LF would end the frame): they go octet-counted only.
// A vector without a PRI cannot open an octet-counted connection (README, Framing: only `LEN SP <`
// starts counting, so that an LF sender's line that begins with a number stays a line); it is sent
// octet-counted after other counted frames, in the back-to-back run.

import { createConnection } from 'node:net'
import test, { type ExecutionContext } from 'ava'
import { ParsedMessage, parseSyslog } from '../../src/journal/parse.js'
import { setZone } from '../../src/journal/zone.js'
import { query, type Running, startServer, waitForRows } from '../helpers/server.js'
import { inputBytes, inputText, type Vector, type VectorRow, vectors } from '../journal/vectors.js'

// The server reads zone-less times in UTC (parse.timezone below); so does the parse that checks it here.
setZone('UTC')
const kConfig = { parse: { timezone: 'UTC' } }

const sendable = vectors.filter((v) => inputBytes(v).length > 0)
const lfSafe = sendable.filter((v) => !inputBytes(v).includes(0x0a))
const withPri = sendable.filter((v) => inputBytes(v)[0] === 0x3c)

const lfFrame = (v: Vector) => Buffer.concat([inputBytes(v), Buffer.from('\n')])
const octetFrame = (v: Vector) => {
  const b = inputBytes(v)
  return Buffer.concat([Buffer.from(`${b.length} `), b])
}

interface Row {
  received_at: number
  ts: number | null
  facility: number | null
  severity: number | null
  host: string | null
  app: string | null
  procid: string | null
  msgid: string | null
  sd: string | null
  msg: string
  parse_error: number
  peer: string
}

/** Writes data on one connection, half-closes, waits for the close; resolves to the local port. */
function send(port: number, data: Buffer): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createConnection({ host: '127.0.0.1', port }, () => {
      const local = s.localPort!
      s.on('close', () => resolve(local))
      s.end(data)
    })
    s.on('error', reject)
    s.resume()
  })
}

function rowsByPeer(srv: Running): Map<string, Row[]> {
  const by = new Map<string, Row[]>()
  for (const r of query<Row>(
    srv.journalPath,
    `SELECT received_at, ts, facility, severity, host, app, procid, msgid, sd, msg, parse_error, peer
     FROM messages ORDER BY id`,
  )) {
    const list = by.get(r.peer)
    if (list === undefined) by.set(r.peer, [r])
    else list.push(r)
  }
  return by
}

const parsed = new ParsedMessage()

/**
 * Why a row is not what vector v must give, or '' when it is. The columns must be what the parser gives
 * the vector's text at the row's receive time; those must be the recorded ones, except that a BSD time
 * without a year takes the receive year, so only the year of ts may differ from the recorded ts.
 */
function mismatch(v: Vector, row: Row | undefined): string {
  if (row === undefined) return `${v.origin} ${v.ref}: no row`
  parseSyslog(inputText(v), row.received_at, parsed)
  const want = { ...parsed }
  const got = {
    ts: row.ts,
    facility: row.facility,
    severity: row.severity,
    host: row.host,
    app: row.app,
    procid: row.procid,
    msgid: row.msgid,
    sd: row.sd,
    msg: row.msg,
    parseError: row.parse_error,
  }
  if (JSON.stringify(got) !== JSON.stringify(want))
    return `${v.origin} ${v.ref}: row ${JSON.stringify(got)}, parser ${JSON.stringify(want)}`
  const recorded: VectorRow = v.expect
  const iso = want.ts === null ? null : new Date(want.ts).toISOString()
  const sameYearless = iso !== null && recorded.ts !== null && iso.slice(4) === recorded.ts.slice(4)
  if (JSON.stringify({ ...want, ts: null }) !== JSON.stringify({ ...recorded, ts: null }))
    return `${v.origin} ${v.ref}: parses to ${JSON.stringify(want)}, recorded ${JSON.stringify(recorded)}`
  if (iso !== recorded.ts && !sameYearless) return `${v.origin} ${v.ref}: ts ${iso}, recorded ${recorded.ts}`
  return ''
}

async function onePerConnection(t: ExecutionContext, list: Vector[], frame: (v: Vector) => Buffer) {
  const srv = await startServer(t, { config: kConfig })
  const byPort = new Map<string, Vector>()
  // A few connections at a time, so that a slow machine is not flooded with connects.
  for (let i = 0; i < list.length; i += 8) {
    const batch = list.slice(i, i + 8)
    const ports = await Promise.all(batch.map((v) => send(srv.tcpPort, frame(v))))
    for (const [k, p] of ports.entries()) byPort.set(`127.0.0.1:${p}`, batch[k]!)
  }
  await waitForRows(srv.journalPath, list.length, 60_000)
  const by = rowsByPeer(srv)
  const wrong: string[] = []
  for (const [peer, v] of byPort) {
    const rows = by.get(peer) ?? []
    if (rows.length !== 1) wrong.push(`${v.origin} ${v.ref}: ${rows.length} rows`)
    else {
      const why = mismatch(v, rows[0])
      if (why !== '') wrong.push(why)
    }
  }
  t.deepEqual(wrong, [])
  t.is(by.size, list.length)
}

async function backToBack(t: ExecutionContext, list: Vector[], frame: (v: Vector) => Buffer) {
  const srv = await startServer(t, { config: kConfig })
  const port = await send(srv.tcpPort, Buffer.concat(list.map(frame)))
  await waitForRows(srv.journalPath, list.length, 60_000)
  const by = rowsByPeer(srv)
  const rows = by.get(`127.0.0.1:${port}`) ?? []
  t.is(rows.length, list.length, 'one row per vector: none lost, split or merged')
  const wrong = list.map((v, i) => mismatch(v, rows[i])).filter((w) => w !== '')
  t.deepEqual(wrong.slice(0, 10), [])
}

test('every vector on its own connection, LF-framed', (t) => onePerConnection(t, lfSafe, lfFrame))

test('every vector with a PRI on its own connection, octet-counted', (t) =>
  onePerConnection(t, withPri, octetFrame))

test('all vectors back to back on one connection, LF-framed', (t) => backToBack(t, lfSafe, lfFrame))

test('all vectors back to back on one connection, octet-counted', async (t) => {
  t.is(inputBytes(sendable[0]!)[0], 0x3c, 'the first frame has a PRI, so that it opens octet counting')
  await backToBack(t, sendable, octetFrame)
})
