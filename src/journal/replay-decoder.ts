// The replay decoder thread: reads nothing and writes nothing, it only turns chunks of spool records into
// rows (journal/decode.ts) while the journal worker inserts the chunk before. Replaying a backlog is the
// journal's longest job, and decoding is a fifth of it; here it runs on the other core, so the worker
// thread spends its time in SQLite. Spawned by, and answering only to, the journal worker.

import { setPriority } from 'node:os'
import { parentPort, workerData } from 'node:worker_threads'
import { RecordDecoder } from './decode.js'
import { RowPacker } from './packed-rows.js'
import type { DecoderOptions, FromDecoder, ToDecoder } from './protocol.js'
import { setZone } from './zone.js'

const kLF = 0x0a
// As the journal worker: work the kernel runs after the socket thread's.
const kNice = 10

const port = parentPort
if (port === null) throw new Error('journal/replay-decoder.ts must run as a worker thread')
const opts = workerData as DecoderOptions
setZone(opts.timezone)
try {
  setPriority(kNice)
} catch {
  // not permitted or not supported: the thread runs at the process's priority
}

const counts = { parseErrors: 0, invalidUtf8: 0, withNul: 0 }
const decoder = new RecordDecoder(counts)

port.on('message', (m: ToDecoder) => {
  const buf = Buffer.from(m.buf, 0, m.len)
  counts.parseErrors = counts.invalidUtf8 = counts.withNul = 0
  const packer = new RowPacker(opts.batchRows)
  const corrupt: FromDecoder['corrupt'] = []
  for (let p = 0, lf = buf.indexOf(kLF); lf !== -1; p = lf + 1, lf = buf.indexOf(kLF, p)) {
    if (decoder.decode(buf, p, lf)) packer.add(decoder.rec, decoder.parsed)
    else corrupt.push({ off: p, len: lf + 1 - p, reason: decoder.rec.error ?? 'corrupt' })
  }
  const rows = packer.take()
  const out: FromDecoder = { id: m.id, buf: m.buf, ...rows, corrupt, ...counts }
  port.postMessage(out, [m.buf, rows.nums.buffer as ArrayBuffer])
})
