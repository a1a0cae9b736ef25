// Framing micro-benchmark: frames/s of the TCP framer over 64 KiB reads of 200-byte messages, LF-framed
// and octet-counted, one core, no sockets. One JSON line per case.
//   npm run bench:framing

import { Framer, type FrameSink, FramingCounters } from '../src/framing/framer.js'
import { message } from './loadgen.js'

class Count implements FrameSink {
  n = 0
  bytes = 0
  onFrame(_buf: Buffer, start: number, end: number): void {
    this.n++
    this.bytes += end - start
  }
}

for (const octet of [false, true]) {
  const parts: Buffer[] = []
  for (let i = 0; i < 50_000; i++) parts.push(message(i % 10, i, 200, octet))
  const stream = Buffer.concat(parts)
  const chunks: Buffer[] = []
  for (let p = 0; p < stream.length; p += 65536) chunks.push(stream.subarray(p, p + 65536))
  const framer = new Framer(65536, new FramingCounters())
  const sink = new Count()
  const t0 = performance.now()
  while (performance.now() - t0 < 1000) {
    for (const c of chunks) framer.push(c, sink)
  }
  const secs = (performance.now() - t0) / 1000
  const rate = Math.round(sink.n / secs)
  process.stdout.write(
    `${JSON.stringify({ bench: 'framing', framing: octet ? 'octet-counted' : 'lf', frames: sink.n, secs: Math.round(secs * 1000) / 1000, rate, node: process.version })}\n`,
  )
}
