import { createConnection, type Socket } from 'node:net'
import test from 'ava'
import { query, sendTcp, startServer, waitFor } from '../helpers/server.js'
import { readByServer } from '../helpers/sockets.js'

interface Row {
  msg: string
  orig_len: number | null
}

function journaled(journalPath: string, msg: string): Promise<Row> {
  return waitFor(`"${msg.slice(0, 30)}" in the journal`, () => {
    const r = query<Row>(journalPath, 'SELECT msg, orig_len FROM messages WHERE msg = ?', msg)
    return r[0]
  })
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

/** Writes `bytes` one byte per write, each once the one before has left the socket. */
async function drip(s: Socket, bytes: Buffer): Promise<void> {
  for (let i = 0; i < bytes.length; i++)
    await new Promise<void>((resolve, reject) =>
      s.write(bytes.subarray(i, i + 1), (err) => (err ? reject(err) : resolve())),
    )
}

test('a sender dripping one byte at a time is framed right and does not hold others up', async (t) => {
  const srv = await startServer(t)
  const slow = createConnection({ host: '127.0.0.1', port: srv.tcpPort })
  slow.setNoDelay(true)
  slow.on('error', () => {})
  await new Promise((resolve) => slow.once('connect', resolve))
  // All but the newline, byte by byte; the server has read them before the fast sender starts.
  await drip(slow, Buffer.from('<13>slow and steady'))
  await waitFor('the dripped bytes read', () =>
    readByServer(srv.tcpPort, slow.localPort!) ? true : undefined,
  )
  await sendTcp(srv.tcpPort, ['<13>fast one\n'])
  await journaled(srv.journalPath, 'fast one')
  t.is(
    query(srv.journalPath, "SELECT 1 FROM messages WHERE msg LIKE 'slow%'").length,
    0,
    'framed before its end',
  )
  await drip(slow, Buffer.from('\n'))
  slow.end()
  await journaled(srv.journalPath, 'slow and steady')
  t.is(query(srv.journalPath, "SELECT 1 FROM messages WHERE msg LIKE '%slow%'").length, 1)
})

test('a peer that resets mid-frame: what arrived is kept, and the server goes on', async (t) => {
  const srv = await startServer(t)
  const s = createConnection({ host: '127.0.0.1', port: srv.tcpPort })
  s.on('error', () => {})
  await new Promise((resolve) => s.once('connect', resolve))
  await new Promise((resolve) => s.write('<13>complete before reset\n<13>half a mess', resolve))
  // The reset only once the server has read every byte: a reset discards what is still unread.
  await waitFor('the bytes read by the server', () =>
    readByServer(srv.tcpPort, s.localPort!) ? true : undefined,
  )
  s.resetAndDestroy()
  await journaled(srv.journalPath, 'complete before reset')
  await journaled(srv.journalPath, 'half a mess')
  await sendTcp(srv.tcpPort, ['<13>valid after the reset\n'])
  await journaled(srv.journalPath, 'valid after the reset')
  t.is(query(srv.journalPath, 'SELECT 1 FROM messages').length, 3)
})
