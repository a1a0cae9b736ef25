import { writeFileSync } from 'node:fs'
import test, { type ExecutionContext } from 'ava'
import { kChunkBytes, SpoolReader } from '../../src/spool/reader.js'
import { segmentPath } from '../../src/spool/segment.js'
import { tempDir, tmpNoDirect } from '../helpers/server.js'

// Decided once: where the temporary directory refuses O_DIRECT, the test that reads around the page
// cache does not run, and ava's report lists it as skipped with the reason.
const kNoDirect = tmpNoDirect()

// A segment of 1.5 MiB + 123 bytes: its end is no block boundary.
function segment(dir: string): Buffer {
  const bytes = Buffer.alloc(1536 * 1024 + 123)
  for (let i = 0; i < bytes.length; i++) bytes[i] = (i * 7 + (i >> 12)) & 0xff
  writeFileSync(segmentPath(dir, 3), bytes)
  return bytes
}

// Offsets on and off block boundaries, limits inside the file, at its end and past it.
const kReads: [number, number][] = [
  [0, Number.POSITIVE_INFINITY],
  [1, 70_000],
  [4095, 4096 + 65_536],
  [4096, 1_000_000],
  [100_001, Number.POSITIVE_INFINITY],
  [1536 * 1024 - 70_000, 1536 * 1024 + 123],
  [1536 * 1024 - 65_536 + 7, Number.POSITIVE_INFINITY],
  [10, 100], // small: through the page cache either way
]

/** Reads every case of kReads and checks the bytes; returns the reader (closed) for its counters. */
function readAll(t: ExecutionContext, directIo: boolean): SpoolReader {
  const dir = tempDir(t)
  const bytes = segment(dir)
  const reader = new SpoolReader(dir, directIo)
  const target = Buffer.alloc(kChunkBytes)
  for (const [off, limit] of kReads) {
    const n = reader.readInto(target, 3, off, limit)
    const want = bytes.subarray(off, Math.min(bytes.length, limit, off + target.length))
    t.is(n, want.length, `read at ${off} to ${limit}`)
    t.true(target.subarray(0, n).equals(want), `bytes at ${off} to ${limit}`)
  }
  t.is(reader.readInto(target, 4, 0, 100), -1, 'a missing segment')
  reader.close()
  return reader
}

test("reads return exactly the file's bytes at any offset and limit (directIo false), through the page cache", (t) => {
  t.is(readAll(t, false).directBytes, 0)
})

test("reads return exactly the file's bytes at any offset and limit (directIo true; where O_DIRECT is refused, the fallback)", (t) => {
  readAll(t, true)
})

const directTest = kNoDirect === null ? test : test.skip
directTest(
  `directIo true: the large reads go around the page cache${kNoDirect === null ? '' : ` (skipped: ${kNoDirect})`}`,
  (t) => {
    const reader = readAll(t, true)
    t.true(reader.directBytes > 1_000_000, `${reader.directBytes} B read directly`)
  },
)
