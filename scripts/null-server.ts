// A syslog "server" that only reads and counts lines (TCP) and datagrams (UDP): what a load generator
// reaches when the server costs nothing, so a comparison can tell the generator's ceiling from the
// servers'. Prints one JSON line per TCP load: lines, and seconds from the first connection to the
// last close. With --out FILE it appends one LF per message received, as a server appends a line per
// message, so bench:peers counts it like the others (target "null").
//
//   node dist/scripts/null-server.js --port 5999 [--conns 10] [--out FILE]
//   then: bash ../shared/peers/load.sh 5999 1000000 10   or   node dist/scripts/loadgen.js --port 5999

import { createSocket } from 'node:dgram'
import { appendFileSync } from 'node:fs'
import { createServer } from 'node:net'
import { parseArgs } from 'node:util'

const { values } = parseArgs({
  options: {
    port: { type: 'string', default: '5999' },
    conns: { type: 'string', default: '10' },
    out: { type: 'string' },
  },
})
const port = Number(values.port)
const want = Number(values.conns)
const out = values.out
const record = (n: number) => {
  if (out !== undefined && n > 0) appendFileSync(out, Buffer.alloc(n, 0x0a))
}
let lines = 0
let open = 0
let closed = 0
let t0 = 0n
const server = createServer((s) => {
  if (open++ === 0) t0 = process.hrtime.bigint()
  let mine = 0
  s.on('data', (b: Buffer) => {
    for (let p = b.indexOf(10); p !== -1; p = b.indexOf(10, p + 1)) mine++
  })
  s.on('end', () => s.end())
  s.on('close', () => {
    lines += mine
    record(mine)
    if (++closed < want) return
    const seconds = Number(process.hrtime.bigint() - t0) / 1e9
    process.stdout.write(`${JSON.stringify({ lines, seconds, rate: Math.round(lines / seconds) })}\n`)
    lines = open = closed = 0
  })
})
// UDP: one datagram is one message; counted, and recorded every 50 ms. Node's dgram is no ceiling for
// UDP: at loggen's ~200 k datagrams/s it drops a few per cent itself.
let datagrams = 0
const udp = createSocket('udp4')
udp.on('message', () => datagrams++)
let up = 0
const listening = () => {
  if (++up === 2) process.stderr.write(`null-server listening on 127.0.0.1:${port} (TCP and UDP)\n`)
}
server.listen(port, '127.0.0.1', listening)
udp.bind(port, '127.0.0.1', listening)
setInterval(() => {
  record(datagrams)
  datagrams = 0
}, 50).unref()
