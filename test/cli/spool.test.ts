import { spawnSync } from 'node:child_process'
import { mkdirSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import test from 'ava'
import { connPrefix, maxRecordBytes, RecordEncoder } from '../../src/spool/record.js'
import { listSegments, segmentName } from '../../src/spool/segment.js'
import { tempDir } from '../helpers/server.js'

const main = new URL('../../src/cli/main.js', import.meta.url).pathname

function records(msgs: string[], at: number, origLen = 0): Buffer {
  const enc = new RecordEncoder()
  const prefix = connPrefix('tcp', '192.0.2.7:514')
  const now = Buffer.from(String(at))
  const out = Buffer.alloc(msgs.reduce((n, m) => n + maxRecordBytes(prefix.length, Buffer.byteLength(m)), 0))
  let off = 0
  for (const m of msgs) {
    const b = Buffer.from(m)
    off = enc.encode(out, off, now, prefix, b, 0, b.length, origLen)
  }
  return out.subarray(0, off)
}

function spillway(cwd: string, ...args: string[]): { status: number | null; stdout: string } {
  const r = spawnSync(process.execPath, [main, ...args], { cwd, encoding: 'utf8' })
  return { status: r.status, stdout: r.stdout + r.stderr }
}

const t0 = Date.UTC(2026, 10, 23, 10, 0, 0)

function fixture(dir: string, bad: boolean): void {
  const spool = join(dir, 'spool')
  mkdirSync(spool, { recursive: true })
  writeFileSync(join(spool, '000000000003.spool'), records(['<13>one', '<13>two\nlines'], t0))
  const second = [records(['<13>three'], t0 + 1000), records(['<13>cut'], t0 + 2000, 99999)]
  if (bad) second.push(Buffer.from('garbage\n'), records(['<13>torn'], t0 + 3000).subarray(0, 20))
  writeFileSync(join(spool, '000000000004.spool'), Buffer.concat(second))
}

test('spool ls lists segments with their records and receive times', (t) => {
  const dir = tempDir(t)
  fixture(dir, false)
  const r = spillway(dir, 'spool', 'ls')
  t.is(r.status, 0)
  t.regex(r.stdout, /000000000003\.spool +\d+ +2 {2}2026-11-23T10:00:00\.000Z +2026-11-23T10:00:00\.000Z/)
  t.regex(r.stdout, /000000000004\.spool +\d+ +2 {2}2026-11-23T10:00:01\.000Z +2026-11-23T10:00:02\.000Z/)
  t.regex(r.stdout, /2 segment\(s\), 4 record\(s\)/)
})

test('a segment numbered past 12 digits is listed, verified and printed like any other', (t) => {
  const dir = tempDir(t)
  const spool = join(dir, 'spool')
  mkdirSync(spool, { recursive: true })
  writeFileSync(join(spool, '999999999999.spool'), records(['<13>last of twelve'], t0))
  writeFileSync(join(spool, '1000000000000.spool'), records(['<13>first of thirteen'], t0 + 1000))
  t.deepEqual(listSegments(spool), [999_999_999_999, 1_000_000_000_000])
  t.is(segmentName(1_000_000_000_000), '1000000000000.spool')
  const ls = spillway(dir, 'spool', 'ls')
  t.regex(ls.stdout, /^1000000000000\.spool +\d+ +1 {2}2026-11-23T10:00:01\.000Z/m)
  t.regex(ls.stdout, /2 segment\(s\), 2 record\(s\)/)
  t.regex(spillway(dir, 'spool', 'verify').stdout, /ok: 2 record\(s\)/)
  t.regex(spillway(dir, 'spool', 'cat').stdout, /first of thirteen/)
})

test('spool ls says how many bytes were set aside as corrupt', (t) => {
  const dir = tempDir(t)
  fixture(dir, false)
  mkdirSync(join(dir, 'spool', 'corrupt'))
  writeFileSync(join(dir, 'spool', 'corrupt', '000000000002.spool.0.bad'), 'garbage\n')
  writeFileSync(join(dir, 'spool', 'corrupt', '000000000002.spool.8.bad'), 'more garbage\n')
  const r = spillway(dir, 'spool', 'ls')
  t.regex(r.stdout, /^2 file\(s\), 21 bytes, set aside as corrupt in \S+\/spool\/corrupt$/m)
})

test('spool cat prints records readably, escapes undone as JSON-style escapes', (t) => {
  const dir = tempDir(t)
  fixture(dir, false)
  const r = spillway(dir, 'spool', 'cat')
  t.is(r.status, 0)
  t.deepEqual(r.stdout.trim().split('\n'), [
    '2026-11-23T10:00:00.000Z tcp 192.0.2.7:514 <13>one',
    '2026-11-23T10:00:00.000Z tcp 192.0.2.7:514 <13>two\\nlines',
    '2026-11-23T10:00:01.000Z tcp 192.0.2.7:514 <13>three',
    '2026-11-23T10:00:02.000Z tcp 192.0.2.7:514 [cut from 99999 B] <13>cut',
  ])
  t.is(spillway(dir, 'spool', 'cat', '3').stdout.trim().split('\n').length, 2)
})

test('spool verify passes a good spool and names every bad record and a torn tail', (t) => {
  const good = tempDir(t)
  fixture(good, false)
  const ok = spillway(good, 'spool', 'verify')
  t.is(ok.status, 0)
  t.regex(ok.stdout, /ok: 4 record\(s\), every checksum matches/)
  const badDir = tempDir(t)
  fixture(badDir, true)
  const bad = spillway(badDir, 'spool', 'verify')
  t.is(bad.status, 1)
  t.regex(bad.stdout, /000000000004\.spool offset \d+: 8 bytes, record too short/)
  t.regex(bad.stdout, /000000000004\.spool offset \d+: 20 bytes, torn record at end of segment/)
  t.regex(bad.stdout, /2 problem\(s\), 4 good record\(s\)/)
})

test('spool with no or an unknown subcommand is a usage error', (t) => {
  const dir = tempDir(t)
  t.is(spillway(dir, 'spool').status, 2)
  t.is(spillway(dir, 'spool', 'frob').status, 2)
})
