// The replay decoder thread: reads nothing and writes nothing, it only turns chunks of spool records into
// rows (journal/decode.ts) while the journal worker inserts the chunk before. Replaying a backlog is the
// journal's longest job, and decoding is a fifth of it; here it runs on the other core, so the worker
// thread spends its time in SQLite. Spawned by, and answering only to, the journal worker.

import { parentPort, workerData } from 'node:worker_threads'
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
// Row buffers the worker returned once it committed their chunk: filled again, never reallocated.
const spare: { text: ArrayBuffer; nums: ArrayBuffer }[] = []

port.on('message', (m: ToDecoder) => {
  if (m.rows !== null) spare.push(m.rows)
  const buf = Buffer.from(m.buf, 0, m.len)
  counts.parseErrors = counts.invalidUtf8 = counts.withNul = 0
  const reuse = spare.pop()
  const packer = new RowPacker(
    reuse === undefined ? Buffer.allocUnsafeSlow(m.len) : Buffer.from(reuse.text),
    new Float64Array(reuse?.nums ?? new ArrayBuffer(rowsBytes(opts.batchRows))),
  )
  const corrupt: FromDecoder['corrupt'] = []
  for (let p = 0, lf = buf.indexOf(kLF); lf !== -1; p = lf + 1, lf = buf.indexOf(kLF, p)) {
    if (decoder.decode(buf, p, lf)) packer.add(decoder.rec, decoder.parsed)
    else corrupt.push({ off: p, len: lf + 1 - p, reason: decoder.rec.error ?? 'corrupt' })
  }
  const out: FromDecoder = {
    id: m.id,
    buf: m.buf,
    text: packer.text.buffer as ArrayBuffer,
    textLen: packer.textBytes,
    ascii: packer.ascii,
    nums: packer.nums.buffer as ArrayBuffer,
    count: packer.count,
    corrupt,
    ...counts,
  }
  port.postMessage(out, [out.buf, out.text, out.nums])
})
