import { execFileSync } from 'node:child_process'
import { lstatSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import test from 'ava'
import { connPrefix, maxRecordBytes, RecordEncoder } from '../../src/spool/record.js'
import { query, startServer, tempDir, waitFor, waitForRows } from '../helpers/server.js'

function records(msgs: string[]): Buffer {
  const enc = new RecordEncoder()
  const prefix = connPrefix('tcp', '192.0.2.7:514')
  const now = Buffer.from(String(Date.now()))
  const out = Buffer.alloc(msgs.reduce((n, m) => n + maxRecordBytes(prefix.length, Buffer.byteLength(m)), 0))
  let off = 0
  for (const m of msgs) {
    const b = Buffer.from(m)
    off = enc.encode(out, off, now, prefix, b, 0, b.length, 0)
  }
  return out.subarray(0, off)
}

test('a corrupt record and a torn tail are set aside with a warning; the good records around them are journaled', async (t) => {
  const dir = tempDir(t)
  const spool = join(dir, 'spool')
  mkdirSync(spool)
  const flipped = records(['<13>1 - h app - - - flipped'])
  flipped[flipped.indexOf('flipped')] = 0x46 // a bit flip on disk: the checksum no longer matches
  const garbage = Buffer.from('\u0000\u0000garbage appended by a crashed writer\n')
  const torn = records(['<13>1 - h app - - - torn'])
  const good = records(['<13>1 - h app - - - one', '<13>1 - h app - - - two'])
  writeFileSync(join(spool, '000000000001.spool'), Buffer.concat([good, flipped, garbage]))
  writeFileSync(
    join(spool, '000000000002.spool'),
    Buffer.concat([records(['<13>1 - h app - - - three']), torn.subarray(0, torn.length - 7)]),
  )
  const srv = await startServer(t, { dir })
  await waitForRows(srv.journalPath, 3)
  await waitFor('the spool segments to be deleted', () =>
    readdirSync(spool).some((f) => f.endsWith('.spool')) ? undefined : true,
  )
  const rows = query<{ msg: string; peer: string }>(
    srv.journalPath,
    'SELECT msg, peer FROM messages ORDER BY id',
  )
  t.deepEqual(
    rows.map((r) => r.msg),
    ['one', 'two', 'three'],
  )
  t.is(rows[0]!.peer, '192.0.2.7:514')
  // The worker thread's stderr reaches the process's asynchronously.
  const warnings = await waitFor('three spool-corrupt warnings', () => {
    const w = srv.stderr().match(/spool-corrupt .*/g) ?? []
    return w.length >= 3 ? w : undefined
  })
  t.is(warnings.length, 3, srv.stderr())
  t.regex(
    warnings[0]!,
    new RegExp(`segment=1 offset=${good.length} bytes=${flipped.length} reason="checksum mismatch"`),
  )
  t.regex(
    warnings[1]!,
    new RegExp(
      `segment=1 offset=${good.length + flipped.length} bytes=${garbage.length} reason="malformed header"`,
    ),
  )
  t.regex(warnings[2]!, /segment=2 .*reason="torn record at end of segment"/)
  // Nothing is thrown away: the bad bytes are kept for inspection.
  const aside = readdirSync(join(spool, 'corrupt')).sort()
  t.deepEqual(aside.slice(0, 2), [
    `000000000001.spool.${good.length}.bad`,
    `000000000001.spool.${good.length + flipped.length}.bad`,
  ])
  t.is(aside.length, 3)
  t.deepEqual(readFileSync(join(spool, 'corrupt', aside[0]!)), flipped)
  const kept = Buffer.concat(aside.map((f) => readFileSync(join(spool, 'corrupt', f))))
  t.true(kept.includes('garbage appended'))
  t.true(kept.includes('Flipped'))
  t.true(kept.includes(torn.subarray(0, torn.length - 7)))
  await waitFor('the corrupt-records counter', () => {
    const r = query<{ value: number }>(
      srv.journalPath,
      "SELECT value FROM stats WHERE name = 'spool_corrupt_records_total'",
    )
    return r[0]?.value === 3 ? true : undefined
  })
  t.is(await srv.stop(), 0)
})

test('a directory and a FIFO named like segments are moved to spool/corrupt/ at start; the real segments replay', async (t) => {
  const dir = tempDir(t)
  const spool = join(dir, 'spool')
  mkdirSync(spool)
  writeFileSync(join(spool, '000000000002.spool'), records(['<13>1 - h app - - - before']))
  // A directory (an operator's mkdir, a restore gone wrong) and a FIFO: reading either crashed or hung replay.
  mkdirSync(join(spool, '000000000003.spool'))
  writeFileSync(join(spool, '000000000003.spool', 'inside'), 'kept as it was')
  execFileSync('mkfifo', [join(spool, '000000000004.spool')])
  writeFileSync(join(spool, '000000000005.spool'), records(['<13>1 - h app - - - after']))
  for (let run = 0; run < 2; run++) {
    // A second start finds nothing left to set aside: no crash loop either way.
    const srv = await startServer(t, { dir })
    await waitForRows(srv.journalPath, 2)
    t.deepEqual(
      query<{ msg: string }>(srv.journalPath, 'SELECT msg FROM messages ORDER BY id').map((r) => r.msg),
      ['before', 'after'],
    )
    t.is(await srv.stop(), 0)
    const moved = srv.stderr().match(/spool-corrupt .*/g) ?? []
    if (run === 1) {
      t.deepEqual(moved, [])
      break
    }
    t.is(moved.length, 2, srv.stderr())
    t.regex(
      moved[0]!,
      /segment=3 reason="not a regular file \(directory\)" movedTo=\S+corrupt\/000000000003\.spool\.directory/,
    )
    t.regex(
      moved[1]!,
      /segment=4 reason="not a regular file \(fifo\)" movedTo=\S+corrupt\/000000000004\.spool\.fifo/,
    )
  }
  t.true(lstatSync(join(spool, 'corrupt', '000000000003.spool.directory')).isDirectory())
  t.is(
    readFileSync(join(spool, 'corrupt', '000000000003.spool.directory', 'inside'), 'utf8'),
    'kept as it was',
  )
  t.true(lstatSync(join(spool, 'corrupt', '000000000004.spool.fifo')).isFIFO())
})
