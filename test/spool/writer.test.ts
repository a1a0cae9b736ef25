import { readdirSync, readFileSync, statSync } from 'node:fs'
import { join } from 'node:path'
import test from 'ava'
import { connPrefix, maxRecordBytes, RecordEncoder } from '../../src/spool/record.js'
import { SpoolWriter } from '../../src/spool/writer.js'
import { tempDir } from '../helpers/server.js'

test('records written across many flushes, in-flight writes and segment rolls reach disk whole and in order', async (t) => {
  const dir = tempDir(t)
  const segmentBytes = 200_000
  const w = new SpoolWriter(dir, 7, segmentBytes)
  const reported: [number, number][] = []
  w.onWritten = (seg, off) => reported.push([seg, off])
  const enc = new RecordEncoder()
  const prefix = connPrefix('tcp', '127.0.0.1:1')
  const now = Buffer.from('1763904364123')
  const want: string[] = []
  for (let i = 0; i < 20_000; i++) {
    const msg = Buffer.from(`<13>message ${i} ${'y'.repeat(i % 300)}`)
    w.reserve(maxRecordBytes(prefix.length, msg.length))
    w.commit(enc.encode(w.buf, w.len, now, prefix, msg, 0, msg.length, 0))
    want.push(msg.toString())
    // end of an "event-loop turn" every few records; yield sometimes so writes complete in between
    if (i % 7 === 0) w.flushIfIdle()
    if (i % 500 === 0) await new Promise((r) => setImmediate(r))
  }
  await w.drain()
  w.close()
  const files = readdirSync(dir).sort()
  t.true(files.length > 5)
  t.is(files[0], '000000000007.spool')
  const got: string[] = []
  for (const f of files) {
    const size = statSync(join(dir, f)).size
    t.true(size <= segmentBytes, `${f} is ${size} B`)
    for (const line of readFileSync(join(dir, f), 'utf8').split('\n')) {
      if (line !== '') got.push(line.split(' ').slice(5).join(' '))
    }
  }
  t.deepEqual(got, want)
  // what onWritten reported ends exactly at the end of the last file, and only ever moved forward
  const last = reported.at(-1)!
  t.deepEqual(last, [6 + files.length, statSync(join(dir, files.at(-1)!)).size])
  for (let i = 1; i < reported.length; i++) {
    const [a, b] = [reported[i - 1]!, reported[i]!]
    t.true(b[0] > a[0] || (b[0] === a[0] && b[1] >= a[1]))
  }
})
