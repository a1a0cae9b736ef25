// The UDP receive thread (native/udp_receiver.c) packs datagrams from many senders into batches; these
// tests check what must survive that: each datagram's own sender, order per sender, sizes up to the
// largest datagram, IPv6, and a stop right behind a burst.

import { createSocket } from 'node:dgram'
import test from 'ava'
import { query, rowCount, sendUdp, startServer, waitForRows } from '../helpers/server.js'

interface Row {
  peer: string
  msg: string
  orig_len: number | null
}

/** Sends msgs from one socket, each send after the previous one completed; resolves to the socket's port. */
function sendFrom(port: number, host: string, msgs: (string | Buffer)[]): Promise<number> {
  const s = createSocket(host.includes(':') ? 'udp6' : 'udp4')
  return new Promise((resolve, reject) => {
    s.on('error', reject)
    let i = 0
    const next = (err?: Error | null) => {
      if (err) return reject(err)
      if (i === msgs.length) {
        const local = s.address().port
        s.close()
        return resolve(local)
      }
      s.send(msgs[i++]!, port, host, next)
    }
    s.bind(0, host, () => next())
  })
}

test('several UDP senders at once: each datagram keeps its own sender, in order per sender', async (t) => {
  const srv = await startServer(t)
  const senders = 4
  const each = 300
  const ports = await Promise.all(
    Array.from({ length: senders }, (_, s) =>
      sendFrom(
        srv.udpPort,
        '127.0.0.1',
        Array.from({ length: each }, (_, i) => `<13>1 - h${s} app - - - sender=${s} seq=${i}`),
      ),
    ),
  )
  await waitForRows(srv.journalPath, senders * each)
  const rows = query<Row>(srv.journalPath, 'SELECT peer, msg FROM messages ORDER BY id')
  for (let s = 0; s < senders; s++) {
    const mine = rows.filter((r) => r.msg.startsWith(`sender=${s} `))
    t.deepEqual(
      mine.map((r) => r.msg),
      Array.from({ length: each }, (_, i) => `sender=${s} seq=${i}`),
    )
    t.true(
      mine.every((r) => r.peer === `127.0.0.1:${ports[s]}`),
      `sender ${s} is 127.0.0.1:${ports[s]}`,
    )
  }
})

test('the largest datagram is journaled whole; past limits.maxMessageBytes it is cut and flagged', async (t) => {
  const big = Buffer.alloc(65_507, 'x')
  big.write('<13>')
  const whole = await startServer(t)
  await sendUdp(whole.udpPort, ['<13>before', big, '<13>after'])
  await waitForRows(whole.journalPath, 3)
  const rows = query<Row>(whole.journalPath, 'SELECT msg, orig_len FROM messages ORDER BY id')
  t.deepEqual(
    rows.map((r) => [r.msg.length, r.orig_len]),
    [
      [6, null],
      [65_503, null],
      [5, null],
    ],
  )

  const cut = await startServer(t, { config: { limits: { maxMessageBytes: 1000 } } })
  await sendUdp(cut.udpPort, [big])
  await waitForRows(cut.journalPath, 1)
  const [row] = query<Row>(cut.journalPath, 'SELECT msg, orig_len FROM messages')
  t.is(row!.orig_len, 65_507)
  t.is(row!.msg.length, 1000 - '<13>'.length)
})

test('a UDP listener on IPv6 names its senders as [address]:port', async (t) => {
  const srv = await startServer(t, {
    config: {
      listeners: [
        { transport: 'tcp', host: '127.0.0.1', port: 0 },
        { transport: 'udp', host: '::1', port: 0 },
      ],
    },
  })
  const port = await sendFrom(srv.udpPort, '::1', ['<13>over ipv6'])
  await waitForRows(srv.journalPath, 1)
  t.deepEqual(query<Row>(srv.journalPath, 'SELECT peer, msg FROM messages'), [
    { peer: `[::1]:${port}`, msg: 'over ipv6' },
  ])
})

test('SIGTERM right behind a UDP burst: every datagram the server counted is journaled, in order', async (t) => {
  const first = await startServer(t)
  const sent = 20_000
  await sendUdp(
    first.udpPort,
    Array.from({ length: sent }, (_, i) => `<13>seq=${i}`),
  )
  t.is(await first.stop(), 0)
  const m = /stopped received=(\d+)/.exec(first.stderr())
  t.truthy(m, first.stderr())
  const received = Number(m![1])
  t.true(received > 0 && received <= sent)
  // What did not reach the journal before the stop is in the spool; a restart replays it.
  const second = await startServer(t, { dir: first.dir })
  await waitForRows(second.journalPath, received)
  const seqs = query<Row>(second.journalPath, 'SELECT msg FROM messages ORDER BY id').map((r) =>
    Number(r.msg.slice(4)),
  )
  t.is(seqs.length, received)
  t.is(rowCount(second.journalPath), received)
  t.true(
    seqs.every((s, i) => i === 0 || s > seqs[i - 1]!),
    'one sender: journal order is send order',
  )
})
