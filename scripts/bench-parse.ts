// Header-parser micro-benchmark: for each dialect of the test corpus, parses its lines round-robin on this
// thread for about a second (after a warm-up) and prints one JSON line {bench, dialect, msgsPerSec}, then
// the whole corpus mixed, then a summary line. Run:  npx tsc && node dist/scripts/bench-parse.js [secs]

import { ParsedMessage, parseSyslog } from '../src/journal/parse.js'
import { corpus, kReceivedAt } from '../test/journal/corpus.js'

const kSeconds = Number(process.argv[2] ?? '1')
const parsed = new ParsedMessage()
// Consumed after the loops so that the parsing cannot be optimized away.
let sink = 0

/** Messages per second parsing `lines` round-robin for `seconds`; reads the clock every 1024 messages. */
function rate(lines: string[], seconds: number): number {
  const until = performance.now() + seconds * 1000
  let n = 0
  let i = 0
  const start = performance.now()
  let now = start
  while (now < until) {
    for (let k = 0; k < 1024; k++) {
      parseSyslog(lines[i]!, kReceivedAt, parsed)
      sink += parsed.msg.length
      if (++i === lines.length) i = 0
    }
    n += 1024
    now = performance.now()
  }
  return n / ((now - start) / 1000)
}

const byDialect = new Map<string, string[]>()
for (const e of corpus) {
  const lines = byDialect.get(e.dialect)
  if (lines === undefined) byDialect.set(e.dialect, [e.line])
  else lines.push(e.line)
}
const all = corpus.map((e) => e.line)

rate(all, Math.min(0.5, kSeconds))
const rates: number[] = []
for (const [dialect, lines] of byDialect) {
  const msgsPerSec = Math.round(rate(lines, kSeconds))
  rates.push(msgsPerSec)
  console.log(JSON.stringify({ bench: 'parse', dialect, lines: lines.length, msgsPerSec }))
}
const mixed = Math.round(rate(all, kSeconds))
console.log(JSON.stringify({ bench: 'parse', dialect: 'mixed', lines: all.length, msgsPerSec: mixed }))
rates.sort((a, b) => a - b)
console.log(
  JSON.stringify({
    bench: 'parse-summary',
    dialects: rates.length,
    minMsgsPerSec: rates[0],
    medianMsgsPerSec: rates[Math.floor(rates.length / 2)],
    maxMsgsPerSec: rates[rates.length - 1],
    mixedMsgsPerSec: mixed,
    node: process.version,
    sink: sink > 0,
  }),
)
