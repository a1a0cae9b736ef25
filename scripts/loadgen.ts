// A syslog load generator: N messages of SIZE bytes over C TCP connections (LF or octet-counted), or
// over UDP. Messages are prebuilt into large buffers so the generator spends its time in write(), not
// in building strings. Each message carries its connection and sequence number.
//
//   node dist/scripts/loadgen.js --port 5140 --messages 1000000 --conns 10 [--size 200] [--octet] [--udp]

import { createSocket } from 'node:dgram'
import { createConnection } from 'node:net'
import { parseArgs } from 'node:util'

export interface LoadOptions {
  port: number
  host?: string
  messages: number
  conns: number
  size: number
  octet?: boolean
}

export interface LoadResult {
  sent: number
  /** Seconds from the first connect until the server had read everything and closed every socket. */
  seconds: number
}

/** One message of exactly `size` bytes including its terminator (or octet-count header). */
export function message(conn: number, seq: number, size: number, octet: boolean, connWidth = 1): Buffer {
  const head = `<13>Nov 23 10:00:00 loadhost loadgen[${String(conn).padStart(connWidth, '0')}]: seq=${String(seq).padStart(9, '0')} `
  if (!octet) return Buffer.from(`${head}${'x'.repeat(Math.max(0, size - head.length - 1))}\n`)
  let body = ''
  for (let pad = size - head.length; pad > 0; pad--) {
    body = `${head}${'x'.repeat(pad)}`
    const framed = `${Buffer.byteLength(body)} ${body}`
    if (framed.length <= size) return Buffer.from(framed)
  }
  return Buffer.from(`${Buffer.byteLength(head)} ${head}`)
}

function block(conn: number, from: number, count: number, size: number, octet: boolean, width = 1): Buffer {
  const parts: Buffer[] = []
  for (let i = 0; i < count; i++) parts.push(message(conn, from + i, size, octet, width))
  return Buffer.concat(parts)
}

/**
 * One block per connection, made from one template by writing the connection number into each message:
 * building every block message by message would cost the generator ~1 µs a message, as much as the
 * server spends, once there are many connections each sending little.
 */
function blocks(conns: number, count: number, size: number, octet: boolean): Buffer[] {
  const width = String(conns - 1).length
  const template = block(0, 0, count, size, octet, width)
  const each = template.length / count // every message has the same length: conn and seq are fixed-width
  const at = template.indexOf('loadgen[') + 'loadgen['.length
  return Array.from({ length: conns }, (_, conn) => {
    const b = Buffer.from(template)
    const digits = Buffer.from(String(conn).padStart(width, '0'))
    for (let i = 0; i < count; i++) digits.copy(b, i * each + at)
    return b
  })
}

export function tcpLoad(o: LoadOptions): Promise<LoadResult> {
  const per = Math.floor(o.messages / o.conns)
  const perBlock = Math.max(1, Math.min(per, Math.floor((256 * 1024) / o.size)))
  const bufs = blocks(o.conns, perBlock, o.size, o.octet ?? false) // built before the clock starts
  const t0 = process.hrtime.bigint()
  const conns = Array.from(
    { length: o.conns },
    (_, c) =>
      new Promise<number>((resolve, reject) => {
        // One block per connection, rewritten: the sequence numbers repeat every block, which is
        // enough to tell connections apart and costs the generator nothing per message.
        const buf = bufs[c]!
        const s = createConnection({ host: o.host ?? '127.0.0.1', port: o.port })
        let left = per
        const pump = () => {
          while (left > 0) {
            const n = Math.min(left, perBlock)
            left -= n
            const chunk = n === perBlock ? buf : buf.subarray(0, (buf.length / perBlock) * n)
            if (!s.write(chunk)) return
          }
          s.end()
        }
        s.on('connect', pump)
        s.on('drain', pump)
        s.on('error', reject)
        s.on('close', () => resolve(per))
        s.resume()
      }),
  )
  return Promise.all(conns).then((sent) => ({
    sent: sent.reduce((a, b) => a + b, 0),
    seconds: Number(process.hrtime.bigint() - t0) / 1e9,
  }))
}

/** Sends datagrams as fast as the socket takes them, at most `inflight` unacknowledged sends. */
export function udpLoad(o: LoadOptions, inflight = 256): Promise<LoadResult> {
  const s = createSocket('udp4')
  const msgs = Array.from({ length: 1024 }, (_, i) => message(0, i, o.size, false).subarray(0, o.size - 1))
  const t0 = process.hrtime.bigint()
  let sent = 0
  let acked = 0
  return new Promise((resolve, reject) => {
    const onSent = (err: Error | null) => {
      if (err) return reject(err)
      acked++
      if (acked === o.messages) {
        s.close()
        resolve({ sent: acked, seconds: Number(process.hrtime.bigint() - t0) / 1e9 })
      } else pump()
    }
    const pump = () => {
      while (sent < o.messages && sent - acked < inflight) {
        s.send(msgs[sent & 1023]!, o.port, o.host ?? '127.0.0.1', onSent)
        sent++
      }
    }
    pump()
  })
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const { values } = parseArgs({
    options: {
      port: { type: 'string', default: '5140' },
      host: { type: 'string', default: '127.0.0.1' },
      messages: { type: 'string', default: '100000' },
      conns: { type: 'string', default: '10' },
      size: { type: 'string', default: '200' },
      octet: { type: 'boolean', default: false },
      udp: { type: 'boolean', default: false },
    },
  })
  const o: LoadOptions = {
    port: Number(values.port),
    host: values.host,
    messages: Number(values.messages),
    conns: Number(values.conns),
    size: Number(values.size),
    octet: values.octet,
  }
  const r = await (values.udp ? udpLoad(o) : tcpLoad(o))
  process.stdout.write(`${JSON.stringify({ ...r, rate: Math.round(r.sent / r.seconds) })}\n`)
}
