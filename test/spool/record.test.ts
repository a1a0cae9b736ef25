import test from 'ava'
import { sealRecords } from '../../src/spool/native.js'
import {
  connPrefix,
  maxRecordBytes,
  RecordEncoder,
  RecordError,
  RecordReader,
  unescapeMsg,
} from '../../src/spool/record.js'

function encode(msgs: Buffer[], origLen = 0): Buffer {
  const enc = new RecordEncoder()
  const prefix = connPrefix('tcp', '127.0.0.1:5140')
  const now = Buffer.from('1763904364123')
  const out = Buffer.alloc(msgs.reduce((n, m) => n + maxRecordBytes(prefix.length, m.length), 0))
  let off = 0
  for (const m of msgs) off = enc.encode(out, off, now, prefix, m, 0, m.length, origLen)
  return out.subarray(0, off)
}

function readAll(buf: Buffer): { ok: boolean; text: string; error: string | null }[] {
  const r = new RecordReader()
  const out = []
  let p = 0
  while (p < buf.length) {
    const lf = buf.indexOf(0x0a, p)
    const ok = r.read(buf, p, lf)
    out.push({ ok, text: ok ? r.msgText() : '', error: r.error })
    p = lf + 1
  }
  return out
}

test('a record is one readable line with its fields', (t) => {
  const buf = encode([Buffer.from('<13>hello world')])
  const line = buf.toString()
  t.regex(line, /^[0-9a-f]{8} 1763904364123 tcp 127\.0\.0\.1:5140 - <13>hello world\n$/)
  const r = new RecordReader()
  t.true(r.read(buf, 0, buf.length - 1))
  t.is(r.receivedAt, 1763904364123)
  t.is(r.transport, 'tcp')
  t.is(r.peer, '127.0.0.1:5140')
  t.is(r.origLen, 0)
  t.is(r.msgText(), '<13>hello world')
})

test('newlines, carriage returns and backslashes are escaped so a record never spans lines', (t) => {
  const msgs = ['a\nb', 'c\rd\\e', '\\n is not a newline', 'plain', '\n\n\\', 'tail\\']
  const buf = encode(msgs.map((m) => Buffer.from(m)))
  t.is(buf.toString().split('\n').length - 1, msgs.length)
  t.deepEqual(
    readAll(buf).map((r) => r.text),
    msgs,
  )
})

test('the original length of a cut message is kept', (t) => {
  const buf = encode([Buffer.from('<13>cut')], 70000)
  t.regex(buf.toString(), / 70000 <13>cut\n$/)
  const r = new RecordReader()
  t.true(r.read(buf, 0, buf.length - 1))
  t.is(r.origLen, 70000)
})

test('random bytes round-trip through a record exactly', (t) => {
  let seed = 7
  const rnd = () => {
    seed = (seed * 1103515245 + 12345) & 0x7fffffff
    return seed
  }
  const msgs: Buffer[] = []
  for (let i = 0; i < 300; i++) {
    const m = Buffer.alloc(rnd() % 300)
    for (let j = 0; j < m.length; j++) m[j] = rnd() & 0xff
    msgs.push(m)
  }
  const buf = encode(msgs)
  const r = new RecordReader()
  let p = 0
  for (const m of msgs) {
    const lf = buf.indexOf(0x0a, p)
    t.true(r.read(buf, p, lf))
    t.deepEqual(unescapeMsg(buf, r.msgStart, r.msgEnd), m)
    p = lf + 1
  }
  t.is(p, buf.length)
})

test('a flipped byte is caught by the checksum; a torn or foreign line is rejected', (t) => {
  const buf = encode([Buffer.from('<13>one'), Buffer.from('<13>two')])
  const bad = Buffer.from(buf)
  bad[bad.indexOf('two')] = 0x54
  const res = readAll(bad)
  t.true(res[0]!.ok)
  t.false(res[1]!.ok)
  t.is(res[1]!.error, RecordError.crc)
  const r = new RecordReader()
  const garbage = Buffer.from('garbage appended by something else')
  t.false(r.read(garbage, 0, garbage.length))
  t.is(r.error, RecordError.header)
  const torn = buf.subarray(0, 12)
  t.false(r.read(torn, 0, torn.length))
})

test('records encoded unsealed into a dirty buffer, then copied and sealed in one call each, equal records encoded one by one', (t) => {
  const enc = new RecordEncoder()
  const prefix = connPrefix('udp', '[::1]:514')
  const now = Buffer.from('1763904364123')
  // Escapes, a cut message, a long one (folded, not tabled), an empty one.
  const msgs = ['<13>a', 'back\\slash\nand\rCR', 'x'.repeat(5000), '', '<14>1 - h app - - - é'].map((m) =>
    Buffer.from(m),
  )
  const size = msgs.reduce((n, m) => n + maxRecordBytes(prefix.length, m.length), 0)
  // The bytes a checksum goes into start out as LFs: sealing must not take them for record ends.
  const out = Buffer.alloc(size, 0x0a)
  let off = 0
  for (const [i, m] of msgs.entries())
    off = enc.encodeUnsealed(out, off, now, prefix, m, 0, m.length, i === 2 ? 9000 : 0)
  enc.finishCopies() // the messages' bytes: copied in one call, before the checksums
  t.is(sealRecords(out, 0, off), msgs.length)
  const one = new RecordEncoder()
  const want = Buffer.alloc(size)
  let w = 0
  for (const [i, m] of msgs.entries())
    w = one.encode(want, w, now, prefix, m, 0, m.length, i === 2 ? 9000 : 0)
  t.deepEqual(out.subarray(0, off), want.subarray(0, w))
  t.true(readAll(out.subarray(0, off)).every((r) => r.ok))
  // Sealing again changes nothing.
  t.is(sealRecords(out, 0, off), msgs.length)
  t.deepEqual(out.subarray(0, off), want.subarray(0, w))
})

test('sealing a range that does not end in a whole record throws instead of writing a checksum', (t) => {
  const buf = encode([Buffer.from('<13>one'), Buffer.from('<13>two')])
  const copy = Buffer.from(buf)
  t.throws(() => sealRecords(buf, 0, buf.length - 1), { instanceOf: RangeError, message: /whole record/ })
  t.throws(() => sealRecords(buf, 0, buf.length + 1), { instanceOf: RangeError })
  t.throws(() => sealRecords(buf, 3, 2), { instanceOf: RangeError })
  t.is(sealRecords(buf, 0, 0), 0)
  // The first record was whole: it was sealed (with the same checksum) before the second was refused.
  t.deepEqual(buf, copy)
})
