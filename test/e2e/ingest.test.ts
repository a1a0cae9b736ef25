import { execFile } from 'node:child_process'
import { promisify } from 'node:util'
import test from 'ava'
import { need } from '../helpers/programs.js'
import { query, rowCount, sendTcp, sendUdp, startServer, waitFor, waitForRows } from '../helpers/server.js'

const run = promisify(execFile)

interface Row {
  id: number
  host: string | null
  app: string | null
  msg: string
  transport: string
  peer: string
  severity: number
  facility: number
  ts: number | null
  received_at: number
  orig_len: number | null
}

test('logger (TCP 5424, UDP 3164, octet-counted) and nc all land in the journal', async (t) => {
  const srv = await startServer(t)
  const logger = (...args: string[]) => run(need('logger'), ['--server', '127.0.0.1', ...args])
  const before = Date.now()
  await logger('--port', String(srv.tcpPort), '--tcp', '--rfc5424', '-t', 'app5424', 'hello tcp')
  await logger(
    '--port',
    String(srv.udpPort),
    '--udp',
    '--rfc3164',
    '-t',
    'app3164',
    '-p',
    'local3.err',
    'hello udp',
  )
  await logger(
    '--port',
    String(srv.tcpPort),
    '--tcp',
    '--octet-count',
    '--rfc5424',
    '-t',
    'appoctet',
    'hello octet',
  )
  need('nc')
  await run(need('bash'), ['-c', `printf 'line one\\nline two\\n' | nc -q1 127.0.0.1 ${srv.tcpPort}`])
  await waitForRows(srv.journalPath, 5, 5000)
  const rows = query<Row>(srv.journalPath, 'SELECT * FROM messages ORDER BY id')
  const byMsg = new Map(rows.map((r) => [r.msg, r]))
  t.deepEqual([...byMsg.keys()].sort(), ['hello octet', 'hello tcp', 'hello udp', 'line one', 'line two'])
  t.is(byMsg.get('hello tcp')!.app, 'app5424')
  t.is(byMsg.get('hello tcp')!.transport, 'tcp')
  t.is(byMsg.get('hello octet')!.app, 'appoctet')
  const udp = byMsg.get('hello udp')!
  t.is(udp.app, 'app3164')
  t.is(udp.transport, 'udp')
  t.is(udp.facility, 19)
  t.is(udp.severity, 3)
  t.truthy(udp.host)
  t.is(byMsg.get('line one')!.app, null)
  for (const r of rows) {
    t.regex(r.peer, /^127\.0\.0\.1:\d+$/)
    t.true(r.received_at >= before - 1000 && r.received_at <= Date.now())
  }
  // the human view
  const view = query<{ severity: string; facility: string; received: string }>(
    srv.journalPath,
    "SELECT severity, facility, received FROM log WHERE msg = 'hello udp'",
  )
  t.deepEqual(
    { severity: view[0]!.severity, facility: view[0]!.facility },
    { severity: 'err', facility: 'local3' },
  )
  t.regex(view[0]!.received, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/)
  t.is(await srv.stop(), 0)
})

test('the sqlite3 shell reads the journal while the server runs', async (t) => {
  const srv = await startServer(t)
  await sendTcp(srv.tcpPort, ['<13>Nov 23 10:00:00 web1 nginx[12]: GET /\n'])
  await waitForRows(srv.journalPath, 1)
  const { stdout } = await run(need('sqlite3'), [
    srv.journalPath,
    'select id, host, app, msg from messages order by id desc limit 10',
  ])
  t.is(stdout.trim(), '1|web1|nginx|GET /')
})

test('many connections at once: every message exactly once, in order per connection', async (t) => {
  const srv = await startServer(t)
  const conns = 40
  const per = 500
  await Promise.all(
    Array.from({ length: conns }, (_, c) => {
      const lines: string[] = []
      for (let i = 0; i < per; i++) lines.push(`<14>1 - h${c} load - - - c=${c} i=${i}\n`)
      // some connections octet-counted, the rest LF; written in odd-sized pieces
      const text =
        c % 3 === 0 ? lines.map((l) => `${l.length - 1} ${l.slice(0, -1)}`).join('') : lines.join('')
      const chunks: string[] = []
      for (let p = 0; p < text.length; p += 777) chunks.push(text.slice(p, p + 777))
      return sendTcp(srv.tcpPort, chunks)
    }),
  )
  await waitForRows(srv.journalPath, conns * per)
  const rows = query<{ host: string; msg: string }>(
    srv.journalPath,
    'SELECT host, msg FROM messages ORDER BY id',
  )
  t.is(rows.length, conns * per)
  const next = new Map<string, number>()
  for (const r of rows) {
    const i = next.get(r.host) ?? 0
    t.is(r.msg, `c=${r.host.slice(1)} i=${i}`)
    next.set(r.host, i + 1)
  }
  t.is(next.size, conns)
})

test('memory batches that fill the staging buffer, wave after wave: every message exact and in order', async (t) => {
  // Eight connections read in one event-loop turn fill a 256 KiB staging buffer; full ones are handed
  // to the worker whole and come back with the acks to carry the next waves.
  const srv = await startServer(t)
  const waves = 6
  const conns = 8
  const per = 1500
  const pad = 'x'.repeat(60)
  for (let w = 0; w < waves; w++) {
    await Promise.all(
      Array.from({ length: conns }, (_, c) => {
        let text = ''
        for (let i = 0; i < per; i++) text += `<14>1 - c${c} app - - - w=${w} i=${i} ${pad}\n`
        return sendTcp(srv.tcpPort, [text])
      }),
    )
    await waitForRows(srv.journalPath, (w + 1) * conns * per)
  }
  const rows = query<{ host: string; msg: string }>(
    srv.journalPath,
    'SELECT host, msg FROM messages ORDER BY id',
  )
  t.is(rows.length, waves * conns * per)
  const next = new Map<string, number>()
  const wrong: string[] = []
  for (const r of rows) {
    const k = next.get(r.host) ?? 0
    if (r.msg !== `w=${Math.floor(k / per)} i=${k % per} ${pad}`) wrong.push(`${r.host}: ${r.msg}`)
    next.set(r.host, k + 1)
  }
  t.deepEqual(wrong.slice(0, 3), [])
})

test('UDP: one datagram is one message; trailing newlines are not part of it', async (t) => {
  const srv = await startServer(t)
  const msgs = Array.from({ length: 50 }, (_, i) => `<13>Nov 23 10:00:00 fw1 kernel: drop ${i}\n`)
  await sendUdp(srv.udpPort, [...msgs, 'multi\nline datagram\n'])
  await waitForRows(srv.journalPath, 51)
  const rows = query<Row>(srv.journalPath, 'SELECT * FROM messages ORDER BY id')
  t.deepEqual(
    rows.map((r) => r.msg).sort(),
    [...msgs.map((_, i) => `drop ${i}`), 'multi\nline datagram'].sort(),
  )
  t.true(rows.every((r) => r.transport === 'udp'))
  t.regex(srv.stderr(), /listening transport=udp host=127\.0\.0\.1 port=\d+ recvBufferBytes=\d+/)
})

test('a UDP receive buffer the kernel will not grant is reported, not silently shrunk', async (t) => {
  const srv = await startServer(t, { config: { udp: { recvBufferBytes: 1024 * 1024 * 1024 } } })
  const m = /udp-recv-buffer-capped port=\d+ requested=1073741824 effective=(\d+)/.exec(srv.stderr())
  t.truthy(m, srv.stderr())
  t.true(Number(m![1]) < 1073741824)
  t.regex(srv.stderr(), new RegExp(`listening transport=udp .*recvBufferBytes=${m![1]}`))
})

test('an oversized message is cut, flagged with its length, and the connection goes on', async (t) => {
  const srv = await startServer(t, { config: { limits: { maxMessageBytes: 1000 } } })
  const big = `<13>${'x'.repeat(5000)}`
  await sendTcp(srv.tcpPort, [`${big}\n`, `${big.length} ${big}`, '<13>after\n'])
  await waitForRows(srv.journalPath, 3)
  const rows = query<Row>(srv.journalPath, 'SELECT * FROM messages ORDER BY id')
  t.is(rows.length, 3)
  t.is(rows[0]!.orig_len, 5004)
  t.is(rows[0]!.msg.length, 996)
  t.is(rows[1]!.orig_len, 5004)
  t.is(rows[2]!.msg, 'after')
  t.is(rows[2]!.orig_len, null)
  const stats = await waitFor('truncation counter', () => {
    const r = query<{ value: number }>(
      srv.journalPath,
      "SELECT value FROM stats WHERE name = 'truncated_total'",
    )
    return r[0]?.value === 2 ? r : undefined
  })
  t.is(stats[0]!.value, 2)
})

test('hostile bytes never stop the server: a valid message after them is journaled', async (t) => {
  const srv = await startServer(t)
  const garbage = Buffer.alloc(64 * 1024)
  for (let i = 0; i < garbage.length; i++) garbage[i] = (i * 7919) & 0xff
  await sendTcp(srv.tcpPort, [garbage, '\n', Buffer.from([0xff, 0xfe, 0x00, 0x0a]), '<13>still alive\n'])
  await sendUdp(srv.udpPort, [garbage.subarray(0, 1000), Buffer.alloc(0)])
  const rows = await waitFor('the valid message', () => {
    const r = query<Row>(srv.journalPath, "SELECT * FROM messages WHERE msg = 'still alive'")
    return r.length === 1 ? r : undefined
  })
  t.is(rows.length, 1)
  t.is(await srv.stop(), 0)
})

test('UDP datagrams dropped are counted: received + kernel drops + queue drops = sent', async (t) => {
  const srv = await startServer(t, { config: { udp: { recvBufferBytes: 4096 } } })
  const sent = 20_000
  const msgs = Array.from({ length: sent }, (_, i) => `<13>burst ${i}`)
  await sendUdp(srv.udpPort, msgs)
  const counts = await waitFor('received + drops = sent', () => {
    const get = (name: string) =>
      query<{ value: number }>(srv.journalPath, 'SELECT value FROM stats WHERE name = ?', name)[0]?.value ?? 0
    const c = {
      received: get('received_udp_total'),
      drops: get('udp_kernel_drops_total') + get('dropped_udp_queue_total'),
    }
    return c.received + c.drops === sent ? c : undefined
  })
  t.true(counts.drops > 0, 'a 4 KiB buffer should have overflowed')
  await waitForRows(srv.journalPath, counts.received)
  t.is(rowCount(srv.journalPath), counts.received)
})
