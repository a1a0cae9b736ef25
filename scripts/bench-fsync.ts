// What spool.fsync costs: the spool writer alone (no sockets, no journal), fed as durable mode feeds it,
// each of C connections appending one 64 KiB read of 200-byte records and waiting until it is written
// before its next. Reports records/s and the syncs per policy, alternating the policies run by run so a
// noisy machine's drift falls on all of them alike; medians.
//
//   npm run build && node dist/scripts/bench-fsync.js [--records 1000000] [--conns 10] [--runs 5]
//     [--policies off,batch,200ms,1s] [--dir /path/on/the/disk/to/measure]

import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { parseArgs } from 'node:util'
import { parseFsync } from '../src/spool/fsync.js'
import { connPrefix, RecordEncoder } from '../src/spool/record.js'
import { SpoolWriter } from '../src/spool/writer.js'
import { median } from './bench-util.js'

const { values } = parseArgs({
  options: {
    records: { type: 'string', default: '1000000' },
    conns: { type: 'string', default: '10' },
    runs: { type: 'string', default: '5' },
    policies: { type: 'string', default: 'off,batch,200ms,1s' },
    dir: { type: 'string', default: tmpdir() },
  },
})
const N = Number(values.records)
const conns = Number(values.conns)
const runs = Number(values.runs)
const policies = values.policies.split(',')
const msg = Buffer.from(`<13>Nov 23 10:00:00 web-017.eu1.example.net app[42]: ${'x'.repeat(140)}`)
const perRead = Math.floor((64 * 1024) / (msg.length + 1))

async function run(policy: string): Promise<{ rate: number; syncs: number; syncSeconds: number }> {
  const dir = mkdtempSync(join(values.dir, 'spillway-fsync-'))
  const spool = new SpoolWriter(dir, 1, 64 * 1024 * 1024, true, parseFsync(policy) ?? 0)
  const enc = new RecordEncoder()
  spool.beforeSeal = () => enc.finishCopies() // as the router does: copies before checksums
  const now = Buffer.from(String(Date.now()))
  const prefixes = Array.from({ length: conns }, (_, i) => connPrefix('tcp', `127.0.0.1:${40000 + i}`))
  // Each connection's last record ends at (seg, off); it may append again once that is written.
  const waiting: (() => void)[] = []
  let writtenSeg = 0
  let writtenOff = 0
  spool.onWritten = (seg, off) => {
    writtenSeg = seg
    writtenOff = off
    for (const w of waiting.splice(0)) w()
  }
  let sent = 0
  const t0 = performance.now()
  await Promise.all(
    prefixes.map(async (prefix) => {
      while (sent < N) {
        let seg = 0
        let off = 0
        for (let i = 0; i < perRead && sent < N; i++, sent++) {
          spool.reserve(1024)
          const end = enc.encodeUnsealed(spool.buf, spool.len, now, prefix, msg, 0, msg.length, 0)
          seg = spool.seg
          off = spool.off + (end - spool.len)
          spool.commit(end)
        }
        enc.finishCopies()
        spool.flushIfIdle()
        while (writtenSeg < seg || (writtenSeg === seg && writtenOff < off))
          await new Promise<void>((resolve) => waiting.push(resolve))
      }
    }),
  )
  await spool.drain()
  const secs = (performance.now() - t0) / 1000
  spool.close()
  rmSync(dir, { recursive: true, force: true })
  return { rate: Math.round(N / secs), syncs: spool.syncs, syncSeconds: spool.syncSeconds }
}

const results = new Map<string, { rate: number; syncs: number; syncSeconds: number }[]>()
for (let r = 0; r < runs; r++) {
  for (const p of policies) {
    const res = await run(p)
    results.set(p, [...(results.get(p) ?? []), res])
    console.log(JSON.stringify({ bench: 'fsync', policy: p, run: r + 1, records: N, conns, ...res }))
  }
}
const base = median((results.get(policies[0]!) ?? []).map((x) => x.rate))
console.log(
  `\nmedians of ${runs}, ${N} records of ${msg.length + 1} B, ${conns} writers of 64 KiB reads, ${values.dir}`,
)
console.log('| spool.fsync | records/s | vs first | syncs | sync s |')
console.log('|---|---|---|---|---|')
for (const p of policies) {
  const xs = results.get(p)!
  const rate = median(xs.map((x) => x.rate))
  console.log(
    `| ${p} | ${rate.toLocaleString('en')} | ${(rate / base).toFixed(2)} | ${median(xs.map((x) => x.syncs))} | ${median(xs.map((x) => x.syncSeconds)).toFixed(2)} |`,
  )
}
