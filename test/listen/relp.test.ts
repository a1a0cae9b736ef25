import { once } from 'node:events'
import { connect, createServer, type Socket } from 'node:net'
import test, { type ExecutionContext } from 'ava'
import { type Bounds, Router } from '../../src/buffer/router.js'
import { RelpConn, RelpCounters } from '../../src/listen/relp.js'
import { Counters } from '../../src/metrics/counters.js'
import { SpoolWriter } from '../../src/spool/writer.js'
import { Batches } from '../helpers/batches.js'
import { tempDir } from '../helpers/server.js'

/** A connected socket pair on loopback: the server's end goes to a RelpConn, the client's to the test. */
async function pair(t: ExecutionContext): Promise<{ server: Socket; client: Socket; got: () => string }> {
  const srv = createServer()
  srv.listen(0, '127.0.0.1')
  await once(srv, 'listening')
  const a = srv.address()
  const client = connect({ host: '127.0.0.1', port: typeof a === 'object' && a !== null ? a.port : 0 })
  const [server] = (await once(srv, 'connection')) as [Socket]
  srv.close()
  let got = ''
  client.on('data', (d: Buffer) => {
    got += d.toString('latin1')
  })
  t.teardown(() => {
    client.destroy()
    server.destroy()
  })
  return { server, client, got: () => got }
}

function session(t: ExecutionContext, bounds: Partial<Bounds> = {}) {
  const spool = new SpoolWriter(tempDir(t), 1, 1 << 30)
  t.teardown(async () => {
    await spool.drain()
    spool.close()
  })
  const all: Bounds = {
    threshold: 1 << 20,
    memoryBytes: 1 << 30,
    spoolMaxBytes: 0,
    whenFull: 'block',
    maxUnwritten: 0,
    ...bounds,
  }
  const router = new Router(all, spool, new Batches(), new Counters())
  return { spool, router }
}

const frame = (txnr: number, command: string, data: string) =>
  data === '' ? `${txnr} ${command} 0\n` : `${txnr} ${command} ${Buffer.byteLength(data)} ${data}\n`

/** Polls until the client has received `want` (a regex) or fails. */
async function received(got: () => string, want: RegExp): Promise<string> {
  const deadline = Date.now() + 10_000
  while (!want.test(got())) {
    if (Date.now() > deadline)
      throw new Error(`client never received ${want}; it has ${JSON.stringify(got())}`)
    await new Promise((r) => setTimeout(r, 5))
  }
  return got()
}

test('a syslog frame is answered only once the spool has written past its record, in frame order', async (t) => {
  const { spool, router } = session(t)
  const { server, got } = await pair(t)
  const conn = new RelpConn(server, router, 65536, new RelpCounters(), new Set(), false)
  server.on('data', conn.onData)
  const wire =
    frame(1, 'open', 'relp_version=0\ncommands=syslog') +
    frame(2, 'syslog', '<13>first') +
    frame(3, 'syslog', '<13>second')
  conn.onData(Buffer.from(wire))
  await received(got, /^1 rsp \d+ 200 OK\n/)
  const afterFirst = { seg: conn.spoolSeg, off: conn.spoolOff }
  t.true(afterFirst.off > 0)
  // Nothing is acknowledged while the spool has written less than the records.
  conn.written(1, 1)
  t.true(conn.owes, 'both answers still owed')
  // Written up to the end of the last record: both, in order (txnr 2 then 3).
  await spool.drain()
  conn.written(conn.spoolSeg, conn.spoolOff)
  t.regex(await received(got, /3 rsp 6 200 OK\n$/), /\n2 rsp 6 200 OK\n3 rsp 6 200 OK\n$/)
})

test('a message the spool.whenFull "drop" policy discards is answered 500, so the sender keeps it', async (t) => {
  const { router } = session(t, { spoolMaxBytes: 1, whenFull: 'drop' })
  const { server, got } = await pair(t)
  const conn = new RelpConn(server, router, 65536, new RelpCounters(), new Set(), false)
  conn.onData(Buffer.from(frame(1, 'open', 'commands=syslog') + frame(2, 'syslog', '<13>dropped')))
  t.regex(await received(got, /2 rsp/), /\n2 rsp \d+ 500 spool full: message not kept\n$/)
})

test('close is answered after every pending answer, then the connection ends', async (t) => {
  const { spool, router } = session(t)
  const { server, client, got } = await pair(t)
  const conn = new RelpConn(server, router, 65536, new RelpCounters(), new Set(), false)
  conn.onData(
    Buffer.from(frame(1, 'open', 'commands=syslog') + frame(2, 'syslog', '<13>x') + frame(3, 'close', '')),
  )
  await received(got, /^1 rsp/)
  t.notRegex(got(), /3 rsp 0/, 'close waits behind the answer it owes')
  await spool.drain()
  conn.written(conn.spoolSeg, conn.spoolOff)
  await once(client, 'end')
  t.regex(got(), /\n2 rsp 6 200 OK\n3 rsp 0\n$/)
})
