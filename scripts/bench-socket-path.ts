// The socket thread's work per message, without sockets: 64 KiB reads of 200-byte messages through
// one connection (framing, routing, record encoding, message copies, checksums), into spool segments
// on /dev/shm (or the OS temp dir) or into memory batches. The writes themselves run on libuv's pool,
// as in the server. Prints the median of --runs runs of --messages messages, one JSON line per lane.
//
//   npm run bench:socket-path [-- --messages 1000000 --runs 7 --octet]

import { mkdirSync, mkdtempSync, rmSync } from 'node:fs'
import { Socket } from 'node:net'
import { tmpdir } from 'node:os'
import { parseArgs } from 'node:util'
import { Router } from '../src/buffer/router.js'
import { TcpConn } from '../src/listen/conn.js'
import { Counters } from '../src/metrics/counters.js'
import { SpoolWriter } from '../src/spool/writer.js'
import { message } from './loadgen.js'

const { values } = parseArgs({
  options: {
    messages: { type: 'string', default: '1000000' },
    runs: { type: 'string', default: '7' },
    octet: { type: 'boolean', default: false },
  },
})
const N = Number(values.messages)
const runs = Number(values.runs)
const kPer = 20_000
const stream = Buffer.concat(Array.from({ length: kPer }, (_, i) => message(i % 10, i, 200, values.octet)))
const chunks: Buffer[] = []
for (let p = 0; p < stream.length; p += 65536) chunks.push(stream.subarray(p, p + 65536))
const base = (() => {
  try {
    return mkdtempSync('/dev/shm/spillway-bench-')
  } catch {
    return mkdtempSync(`${tmpdir()}/spillway-bench-`)
  }
})()
const turn = () => new Promise((resolve) => setImmediate(resolve))

async function once(spooled: boolean, run: number): Promise<number> {
  const dir = `${base}/${spooled ? 's' : 'm'}${run}`
  const spool = new SpoolWriter(dir, 1, 1 << 30)
  const batches = {
    batchBuffer: () => Buffer.allocUnsafe(256 * 1024),
    postBatch: (_id: number, b: Buffer) => b,
  }
  const bounds = { memoryBytes: 2 ** 40, spoolMaxBytes: 0, whenFull: 'block' as const, maxUnwritten: 0 }
  const router = new Router({ ...bounds, threshold: spooled ? 0 : 2 ** 40 }, spool, batches, new Counters())
  const conn = new TcpConn(new Socket(), router, 65536, new Counters().framing)
  const shared = Buffer.alloc(65536) // one read buffer for every read, as the listener has
  const t0 = process.hrtime.bigint()
  for (let sent = 0; sent < N; sent += kPer) {
    for (let i = 0; i < chunks.length; i++) {
      chunks[i]!.copy(shared)
      conn.onRead(chunks[i]!.length, shared)
      // An event-loop turn every 8 reads (512 KiB), as the router's turn budget allows.
      if ((i & 7) === 7) {
        router.flush()
        await turn()
      }
    }
  }
  router.flush()
  const ms = Number(process.hrtime.bigint() - t0) / 1e6
  await spool.drain()
  spool.close()
  return ms
}

for (const spooled of [true, false]) {
  const ms: number[] = []
  for (let r = 0; r < runs; r++) {
    mkdirSync(`${base}/${spooled ? 's' : 'm'}${r}`)
    ms.push(await once(spooled, r))
  }
  ms.sort((a, b) => a - b)
  const median = ms[Math.floor(ms.length / 2)]!
  process.stdout.write(
    `${JSON.stringify({
      bench: 'socket-path',
      lane: spooled ? 'spool' : 'memory',
      framing: values.octet ? 'octet-counted' : 'lf',
      messages: N,
      medianMs: Math.round(median),
      rate: Math.round(N / (median / 1000)),
      runsMs: ms.map(Math.round),
      node: process.version,
    })}\n`,
  )
}
rmSync(base, { recursive: true, force: true })
