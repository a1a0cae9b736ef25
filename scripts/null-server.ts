// A TCP server that only reads and counts lines: what a load generator reaches when the server costs
// nothing, so a comparison can tell the generator's ceiling from the servers'. Prints the count and
// the seconds from the first connection to the last close, once every connection has closed.
//
//   node dist/scripts/null-server.js --port 5999 [--conns 10]
//   then: bash ../shared/peers/load.sh 5999 1000000 10   or   node dist/scripts/loadgen.js --port 5999

import { createServer } from 'node:net'
import { parseArgs } from 'node:util'

const { values } = parseArgs({
  options: { port: { type: 'string', default: '5999' }, conns: { type: 'string', default: '10' } },
})
const want = Number(values.conns)
let lines = 0
let open = 0
let closed = 0
let t0 = 0n
const server = createServer((s) => {
  if (open++ === 0) t0 = process.hrtime.bigint()
  s.on('data', (b: Buffer) => {
    for (let p = b.indexOf(10); p !== -1; p = b.indexOf(10, p + 1)) lines++
  })
  s.on('end', () => s.end())
  s.on('close', () => {
    if (++closed < want) return
    const seconds = Number(process.hrtime.bigint() - t0) / 1e9
    process.stdout.write(`${JSON.stringify({ lines, seconds, rate: Math.round(lines / seconds) })}\n`)
    lines = open = closed = 0
  })
})
server.listen(Number(values.port), '127.0.0.1')
