import { mkdirSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import test from 'ava'
import { RecordDecoder } from '../../src/journal/decode.js'
import type { Row as JournalRow } from '../../src/journal/tail.js'
import { connPrefix, maxRecordBytes, RecordEncoder } from '../../src/spool/record.js'
import { query, startServer, tempDir, waitFor, waitForRows } from '../helpers/server.js'

// Messages a replay has to carry through its decoder thread unchanged: escapes, NULs, invalid UTF-8,
// characters outside Latin-1, free text, both header grammars, a cut message, and a UDP sender.
const kOdd: { msg: Buffer; transport: 'tcp' | 'udp'; origLen: number }[] = [
  {
    msg: Buffer.from('<165>1 2026-11-23T10:00:00.123Z web1 nginx 4242 ID47 [ex@32473 a="1"] hello\\world'),
    transport: 'tcp',
    origLen: 0,
  },
  {
    msg: Buffer.from('<13>Nov 23 10:00:00 web2 cron[77]: line one\nline two\r'),
    transport: 'tcp',
    origLen: 0,
  },
  { msg: Buffer.from('<14>1 - h app - - - nul\u0000inside\u0000\u0000'), transport: 'udp', origLen: 0 },
  {
    msg: Buffer.concat([
      Buffer.from('<14>1 - h app - - - bad '),
      Buffer.from([0xff, 0xfe]),
      Buffer.from(' utf8'),
    ]),
    transport: 'tcp',
    origLen: 0,
  },
  { msg: Buffer.from('<14>1 - héllo app - - - grüße 🚀 日本'), transport: 'tcp', origLen: 0 },
  { msg: Buffer.from('<999>not a syslog header'), transport: 'tcp', origLen: 0 },
  { msg: Buffer.from('<14>1 - h app - - - cut short'), transport: 'tcp', origLen: 70_000 },
]

/** A journal row as `spillway tail` reads it, without the id (the journal assigns it). */
type Row = Omit<JournalRow, 'id' | 'edge'>

// 20,000 records of ~100 bytes in 4,000-row chunks: ~400 KB each, above the size that goes inline.
const kRecords = 20_000

test('a spooled backlog replays through the decoder thread exactly as the records decode, in order, with its counters', async (t) => {
  const dir = tempDir(t)
  const spool = join(dir, 'spool')
  mkdirSync(spool)
  // Records in runs from three peers, the odd ones spread through them; rows cross several chunk
  // boundaries and the read-ahead runs full.
  const enc = new RecordEncoder()
  const now = Buffer.from('1764000000000')
  const out = Buffer.alloc(4 * 1024 * 1024)
  const expected: Row[] = []
  const counts = { parseErrors: 0, invalidUtf8: 0, withNul: 0 }
  const decoder = new RecordDecoder(counts)
  let off = 0
  for (let i = 0; i < kRecords; i++) {
    const odd = i % 97 === 5 ? kOdd[Math.floor(i / 97) % kOdd.length]! : null
    const peer = `192.0.2.${1 + (Math.floor(i / 50) % 3)}:514`
    const prefix = connPrefix(odd?.transport ?? 'tcp', peer)
    const msg = odd?.msg ?? Buffer.from(`<30>Nov 23 10:00:00 host${i % 5} app${i % 3}[${i}]: message ${i}`)
    if (off + maxRecordBytes(prefix.length, msg.length) > out.length) throw new Error('test spool too small')
    off = enc.encode(out, off, now, prefix, msg, 0, msg.length, odd?.origLen ?? 0)
  }
  // Decoded once the buffer is whole: the record reader scans ahead in the buffer it is given.
  for (let p = 0, lf = out.indexOf(0x0a); lf !== -1 && lf < off; p = lf + 1, lf = out.indexOf(0x0a, p)) {
    t.true(decoder.decode(out, p, lf))
    const r = decoder.rec
    const m = decoder.parsed
    expected.push({
      received_at: r.receivedAt,
      ts: m.ts,
      facility: m.facility,
      severity: m.severity,
      host: m.host,
      app: m.app,
      procid: m.procid,
      msgid: m.msgid,
      sd: m.sd,
      msg: m.msg,
      peer: r.peer,
      transport: r.transport,
      orig_len: r.origLen > 0 ? r.origLen : null,
      parse_error: m.parseError,
    })
  }
  writeFileSync(join(spool, '000000000001.spool'), out.subarray(0, off))
  // What the records decode to, checked here so the comparison below cannot pass on a broken decoder.
  const first = expected[5]!
  t.like(first, {
    host: 'web1',
    app: 'nginx',
    procid: '4242',
    msgid: 'ID47',
    msg: 'hello\\world',
    facility: 20,
  })
  t.is(first.sd, '{"ex@32473":{"a":"1"}}') // structured data as JSON
  t.is(expected[102]!.msg, 'line one\nline two\r')
  t.is(expected[199]!.msg, 'nul\ufffdinside')
  t.is(expected[199]!.transport, 'udp')
  t.is(expected[296]!.msg, 'bad \ufffd\ufffd utf8')
  t.is(expected[393]!.host, 'héllo')
  t.is(expected[393]!.msg, 'grüße 🚀 日本')
  t.is(expected[490]!.parse_error, 1)
  t.is(expected[587]!.orig_len, 70_000)

  const srv = await startServer(t, { dir, config: { journal: { batchRows: 4000 } } })
  await waitForRows(srv.journalPath, kRecords)
  const rows = query<Row>(
    srv.journalPath,
    `SELECT received_at, ts, facility, severity, host, app, procid, msgid, sd, msg, peer, transport,
       orig_len, parse_error FROM messages ORDER BY id`,
  )
  t.is(rows.length, kRecords)
  for (let i = 0; i < rows.length; i++) {
    if (JSON.stringify(rows[i]) !== JSON.stringify(expected[i])) {
      t.deepEqual(rows[i], expected[i], `row ${i + 1}`)
      break
    }
  }
  // The counters match what decoding the records counted.
  const stat = (name: string) =>
    query<{ value: number }>(srv.journalPath, `SELECT value FROM stats WHERE name = '${name}'`)[0]?.value
  await waitFor('the journal counters', () => (stat('journal_rows_total') === kRecords ? true : undefined))
  t.true(counts.parseErrors > 0 && counts.withNul > 0 && counts.invalidUtf8 > 0)
  t.is(stat('parse_errors_total'), counts.parseErrors)
  t.is(stat('nul_messages_total'), counts.withNul)
  t.is(stat('invalid_utf8_total'), counts.invalidUtf8)
  // Through the decoder thread: every 4,000-row chunk of this backlog (~400 KB each, above the 256 KiB
  // below which the worker decodes inline) was decoded there, none inline.
  t.is(stat('replay_decoder_rows_total'), kRecords, 'rows decoded by the decoder thread')
  t.is(await srv.stop(), 0)
})
