import { createConnection } from 'node:net'
import test from 'ava'
import { query, sendTcp, startServer, waitFor } from '../helpers/server.js'

interface Row {
  msg: string
  orig_len: number | null
}

function journaled(journalPath: string, msg: string): Promise<Row> {
  return waitFor(
    `"${msg.slice(0, 30)}" in the journal`,
    () => {
      const r = query<Row>(journalPath, 'SELECT msg, orig_len FROM messages WHERE msg = ?', msg)
      return r[0]
    },
    20_000,
  )
}

test('a 10 MB line without a newline is cut once and the connection goes on', async (t) => {
  const srv = await startServer(t)
  await sendTcp(srv.tcpPort, [Buffer.alloc(10 * 1024 * 1024, 0x61), '\n<13>after ten megabytes\n'])
  await journaled(srv.journalPath, 'after ten megabytes')
  const cut = query<Row>(srv.journalPath, 'SELECT msg, orig_len FROM messages WHERE orig_len IS NOT NULL')
  t.is(cut.length, 1)
  t.is(cut[0]!.orig_len, 10 * 1024 * 1024)
  t.is(cut[0]!.msg.length, 65536)
})

test('octet counts that are huge, negative, not numbers or longer than the frame', async (t) => {
  const srv = await startServer(t)
  await sendTcp(srv.tcpPort, [
    '99999999999999 <13>huge count\n',
    '-5 <13>negative\n',
    '12a <13>not a number\n',
  ])
  await sendTcp(srv.tcpPort, ['300 <13>claims 300 bytes, has fewer']) // then the peer closes
  await sendTcp(srv.tcpPort, ['<13>valid after them\n'])
  await journaled(srv.journalPath, 'valid after them')
  // The bad counts are not lengths: those frames are lines, kept whole.
  await journaled(srv.journalPath, '99999999999999 <13>huge count')
  await journaled(srv.journalPath, '-5 <13>negative')
  await journaled(srv.journalPath, '12a <13>not a number')
  // A frame cut short by the peer is kept, flagged with the length it claimed.
  const short = await journaled(srv.journalPath, 'claims 300 bytes, has fewer')
  t.is(short.orig_len, 300)
})

test('a sender dripping one byte at a time is framed right and does not hold others up', async (t) => {
  const srv = await startServer(t)
  const slow = createConnection({ host: '127.0.0.1', port: srv.tcpPort })
  slow.on('error', () => {})
  const bytes = Buffer.from('<13>slow and steady\n')
  let i = 0
  const drip = setInterval(() => {
    if (i < bytes.length) slow.write(bytes.subarray(i, ++i))
    else {
      clearInterval(drip)
      slow.end()
    }
  }, 20)
  t.teardown(() => clearInterval(drip))
  await sendTcp(srv.tcpPort, ['<13>fast one\n'])
  await journaled(srv.journalPath, 'fast one')
  t.is(
    query(srv.journalPath, "SELECT 1 FROM messages WHERE msg LIKE 'slow%'").length,
    0,
    'slow finished too early',
  )
  await journaled(srv.journalPath, 'slow and steady')
})

test('a peer that resets mid-frame: what arrived is kept, and the server goes on', async (t) => {
  const srv = await startServer(t)
  await new Promise<void>((resolve) => {
    const s = createConnection({ host: '127.0.0.1', port: srv.tcpPort }, () => {
      s.write('<13>complete before reset\n<13>half a mess', () => {
        setTimeout(() => {
          s.resetAndDestroy()
          resolve()
        }, 100)
      })
    })
    s.on('error', () => {})
  })
  await journaled(srv.journalPath, 'complete before reset')
  await journaled(srv.journalPath, 'half a mess')
  await sendTcp(srv.tcpPort, ['<13>valid after the reset\n'])
  await journaled(srv.journalPath, 'valid after the reset')
  t.pass()
})
