// Crash harness: what a kill -9 loses, per delivery mode, measured the way a sender would reconcile.
//
//   npm run crash -- [--mode memory,durable,durable-fsync-batch,...] [--runs 3] [--messages 100000]
//                    [--conns 4] [--pause-ms 0]
//
// Per run: a fresh directory and server; N numbered messages (`c=<conn> seq=<n>`, ~110 B) over C TCP
// connections, as fast as the kernel takes them; /status is polled until the server says it has read all
// N (received_tcp_total); kill -9 at once; a restart replays the spool; then the journal is counted:
// distinct and duplicate (conn, seq), and per connection the holes (a seq missing while a later one of
// the same connection survived: what misleads anyone reconciling by "last sequence seen") and the tail
// lost after the last survivor. One JSON line per run, then a summary line per mode (worst of the runs).
//
// Modes: memory (the default config), durable (spool.thresholdBytes 0), durable-fsync-<policy>
// (spool.fsync "batch" or an interval such as "100ms").

import { parseArgs } from 'node:util'
import { oneRun, type Result } from './crash-harness.js'

const { values } = parseArgs({
  options: {
    mode: { type: 'string', default: 'memory,durable' },
    runs: { type: 'string', default: '3' },
    messages: { type: 'string', default: '100000' },
    conns: { type: 'string', default: '4' },
    'pause-ms': { type: 'string', default: '0' },
  },
})
const o = {
  modes: values.mode.split(','),
  runs: Number(values.runs),
  messages: Number(values.messages),
  conns: Number(values.conns),
  pauseMs: Number(values['pause-ms']),
}
for (const mode of o.modes) {
  const results: Result[] = []
  for (let run = 1; run <= o.runs; run++) {
    const r = await oneRun(mode, run, o)
    results.push(r)
    console.log(JSON.stringify({ bench: 'crash-loss', ...r }))
  }
  console.log(
    JSON.stringify({
      bench: 'crash-loss-summary',
      mode,
      runs: o.runs,
      messages: results[0]!.sent,
      conns: o.conns,
      worstLost: Math.max(...results.map((r) => r.lost)),
      lost: results.map((r) => r.lost),
      worstHoles: Math.max(...results.map((r) => r.holes)),
      duplicates: Math.max(...results.map((r) => r.duplicates)),
      node: process.version,
    }),
  )
}
