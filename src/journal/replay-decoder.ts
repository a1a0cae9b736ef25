// The replay decoder thread: reads chunks of spool records and turns them into rows (journal/decode.ts)
// while the journal worker inserts the chunk before. Replaying a backlog is the journal's longest job, and
// decoding is a fifth of it; here it runs on the other core, so the worker thread spends its time in
// SQLite. Reading is here too: a burst's segments were written around the page cache (spool.directIo),
// so reading them waits for the disk (~4 ms a chunk), and that wait belongs beside the inserts, not
// before them. Writes nothing; spawned by, and answering only to, the journal worker.

import { parentPort, workerData } from 'node:worker_threads'
import { kChunkBytes, SpoolReader } from '../spool/reader.js'
import { RecordDecoder } from './decode.js'
import { lowerThreadPriority } from './nice.js'
import { RowPacker, rowsBytes } from './packed-rows.js'
import type { DecoderOptions, FromDecoder, ToDecoder } from './protocol.js'
import { setZone } from './zone.js'

const kLF = 0x0a

const port = parentPort
if (port === null) throw new Error('journal/replay-decoder.ts must run as a worker thread')
const opts = workerData as DecoderOptions
setZone(opts.timezone)
lowerThreadPriority()

const counts = { parseErrors: 0, invalidUtf8: 0, withNul: 0 }
const decoder = new RecordDecoder(counts)
const reader = new SpoolReader(opts.spoolDir, opts.directIo)
const chunk = Buffer.allocUnsafeSlow(kChunkBytes)
// Row buffers the worker returned once it committed their chunk: filled again, never reallocated.
const spare: { text: ArrayBuffer; nums: ArrayBuffer }[] = []

port.on('message', (m: ToDecoder) => {
  if (m.rows !== null) spare.push(m.rows)
  // A read that fails (EMFILE: out of descriptors for a moment) is declined like a chunk with no whole
  // record: the worker reads inline, where a failure is retried and logged (journal-busy).
  let n = 0
  try {
    n = reader.readInto(chunk, m.seg, m.off, m.limit)
  } catch {
    reader.close()
  }
  // A read that reached the end of what is there: let go of the file, which the worker deletes once
  // it is journaled (an open descriptor would keep its space until the next chunk).
  if (n < chunk.length) reader.close()
  const len = n > 0 ? afterRows(chunk, n, opts.batchRows) : 0
  const buf = chunk.subarray(0, len)
  counts.parseErrors = counts.invalidUtf8 = counts.withNul = 0
  const reuse = spare.pop()
  const packer = new RowPacker(
    reuse === undefined ? Buffer.allocUnsafeSlow(Math.max(len, 1)) : Buffer.from(reuse.text),
    new Float64Array(reuse?.nums ?? new ArrayBuffer(rowsBytes(opts.batchRows))),
  )
  const corrupt: FromDecoder['corrupt'] = []
  for (let p = 0, lf = buf.indexOf(kLF); lf !== -1; p = lf + 1, lf = buf.indexOf(kLF, p)) {
    if (decoder.decode(buf, p, lf)) packer.add(decoder.rec, decoder.parsed)
    else corrupt.push({ off: p, bytes: buf.slice(p, lf + 1), reason: decoder.rec.error ?? 'corrupt' })
  }
  const out: FromDecoder = {
    id: m.id,
    len,
    text: packer.text.buffer as ArrayBuffer,
    textLen: packer.textBytes,
    ascii: packer.ascii,
    nums: packer.nums.buffer as ArrayBuffer,
    count: packer.count,
    corrupt,
    ...counts,
  }
  port.postMessage(out, [out.text, out.nums])
})

/** The offset after the first `max` LF-terminated records in buf[0, n) (0: not one whole record). */
function afterRows(buf: Buffer, n: number, max: number): number {
  let end = 0
  for (let i = 0; i < max; i++) {
    const lf = buf.indexOf(kLF, end)
    if (lf === -1 || lf >= n) break
    end = lf + 1
  }
  return end
}
