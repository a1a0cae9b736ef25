import { readFileSync } from 'node:fs'
import { Socket } from 'node:net'
import test from 'ava'
import fc from 'fast-check'
import { type Bounds, Router } from '../../src/buffer/router.js'
import { TcpConn } from '../../src/listen/conn.js'
import { Counters } from '../../src/metrics/counters.js'
import { RecordReader, unescapeMsg } from '../../src/spool/record.js'
import { listSegments, segmentPath } from '../../src/spool/segment.js'
import { SpoolWriter } from '../../src/spool/writer.js'
import { Batches } from '../helpers/batches.js'
import { tempDir } from '../helpers/server.js'

// A connection's reads go through the framer into records whose message bytes are copied when the read
// is done, not frame by frame (spool/record.ts). These tests read the way the listener does: into one
// reused buffer, overwritten after every read as the next connection's read would, with frames that
// straddle reads (framed in the connection's carry) followed in the same read by the next frame's start.

function messagesOf(buf: Buffer): string[] {
  const r = new RecordReader()
  const out: string[] = []
  for (let p = 0; p < buf.length; ) {
    const lf = buf.indexOf(0x0a, p)
    if (!r.read(buf, p, lf)) throw new Error(`record at ${p}: ${r.error}`)
    out.push(r.msgText())
    p = lf + 1
  }
  return out
}

/**
 * A router whose records go to the spool in `dir` (every one, when `spooled`) or to memory batches, and
 * the records it produced once everything is written: segment bytes, or the batches posted.
 */
function lanes(dir: string, spooled: boolean): { router: Router; records: () => Promise<Buffer> } {
  const bounds: Bounds = {
    threshold: spooled ? 0 : 1 << 30,
    memoryBytes: 1 << 30,
    spoolMaxBytes: 0,
    whenFull: 'block',
    maxUnwritten: 0,
  }
  const spool = new SpoolWriter(dir, 1, 1 << 30)
  const batches = new Batches()
  const router = new Router(bounds, spool, batches, new Counters())
  return {
    router,
    records: async () => {
      router.flush()
      await spool.drain()
      spool.close()
      if (!spooled) return Buffer.concat(batches.posted)
      return Buffer.concat(listSegments(dir).map((seg) => readFileSync(segmentPath(dir, seg))))
    },
  }
}

/** Sends `wire` to a connection in reads of the given sizes; returns the messages that came out. */
async function through(dir: string, wire: Buffer, sizes: number[], spooled: boolean): Promise<string[]> {
  const { router, records } = lanes(dir, spooled)
  const conn = new TcpConn(new Socket(), router, 64 * 1024, new Counters().framing)
  const shared = Buffer.alloc(64 * 1024)
  let at = 0
  for (let i = 0; at < wire.length; i++) {
    const n = Math.min(sizes[i % sizes.length]!, wire.length - at, shared.length)
    wire.copy(shared, 0, at, at + n)
    at += n
    conn.onRead(n, shared)
    shared.fill('#') // the next connection's read
  }
  conn.framer.finish(conn, true)
  shared.fill('%')
  return messagesOf(await records())
}

const message = fc.oneof(
  fc.string({ minLength: 1, maxLength: 300 }).map((s) => `<13>${s.replace(/[\r\n]/g, ' ')}`),
  fc.constant(`<14>${'long '.repeat(400)}`),
  fc.constant('<13>back\\slash'),
)

for (const spooled of [false, true]) {
  test(`every message comes out whole and in order when reads reuse one buffer (${spooled ? 'spool' : 'memory'} lane)`, async (t) => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(message, { minLength: 1, maxLength: 60 }),
        fc.array(fc.integer({ min: 1, max: 700 }), { minLength: 1, maxLength: 8 }),
        async (msgs, sizes) => {
          const got = await through(tempDir(t), Buffer.from(`${msgs.join('\n')}\n`), sizes, spooled)
          t.deepEqual(got, msgs)
        },
      ),
      { numRuns: 60 },
    )
  })
}

test('a frame completed from the carry, then the next frame begun in the same read, are both kept', async (t) => {
  // Read 1 holds a whole message and half of the next; read 2 finishes it and starts a third, which
  // the framer copies over the carry that still holds the second's bytes.
  const wire = Buffer.from('<13>first\n<13>second-message\n<13>third-message-is-longer\n')
  const got = await through(tempDir(t), wire, [16, 20, 100], false)
  t.deepEqual(got, ['<13>first', '<13>second-message', '<13>third-message-is-longer'])
})

/** The message bytes of each record in buf, escapes undone: what the journal will decode. */
function rawMessagesOf(buf: Buffer): Buffer[] {
  const r = new RecordReader()
  const out: Buffer[] = []
  for (let p = 0; p < buf.length; ) {
    const lf = buf.indexOf(0x0a, p)
    if (!r.read(buf, p, lf)) throw new Error(`record at ${p}: ${r.error}`)
    out.push(unescapeMsg(buf, r.msgStart, r.msgEnd))
    p = lf + 1
  }
  return out
}

// Arbitrary bytes (backslashes, CR, LF, NUL, invalid UTF-8) that do not end in LF or CR: those end a
// frame and are dropped by the framer, whatever the framing.
const anyBytes = fc
  .uint8Array({ minLength: 0, maxLength: 200 })
  .map((b) => Buffer.concat([Buffer.from('<13>'), Buffer.from(b), Buffer.from('.')]))

test('connections reading in turn into one buffer: every octet-counted message keeps its exact bytes', async (t) => {
  // The listener's connections share one read buffer. A frame of one connection must never be encoded
  // with what the encoder learnt about the buffer while it held another connection's read.
  await fc.assert(
    fc.asyncProperty(
      fc.array(fc.tuple(fc.integer({ min: 0, max: 3 }), anyBytes), { minLength: 1, maxLength: 40 }),
      fc.boolean(),
      async (sends, spooled) => {
        const { router, records } = lanes(tempDir(t), spooled)
        const framing = new Counters().framing
        const conns = [0, 1, 2, 3].map(() => new TcpConn(new Socket(), router, 64 * 1024, framing))
        const shared = Buffer.alloc(64 * 1024, '#')
        for (const [c, msg] of sends) {
          const frame = Buffer.concat([Buffer.from(`${msg.length} `), msg])
          frame.copy(shared, 0)
          conns[c]!.onRead(frame.length, shared)
        }
        const out = await records()
        t.deepEqual(
          rawMessagesOf(out).map((b) => b.toString('hex')),
          sends.map(([, m]) => m.toString('hex')),
        )
      },
    ),
    { numRuns: 100 },
  )
})

test('a backslash in a frame read after another connection’s shorter frame is stored as sent', async (t) => {
  // The case found in the field: a 68-byte frame, then a 116-byte frame with a backslash whose message
  // starts one byte further into the shared buffer.
  const { router, records } = lanes(tempDir(t), false)
  const framing = new Counters().framing
  const a = new TcpConn(new Socket(), router, 64 * 1024, framing)
  const b = new TcpConn(new Socket(), router, 64 * 1024, framing)
  const shared = Buffer.alloc(64 * 1024, 0x20)
  const first = `<13>${'x'.repeat(64)}`
  const second = `<13>back\\slash ${'y'.repeat(97)}`
  for (const [conn, msg] of [
    [a, first],
    [b, second],
  ] as const) {
    const n = shared.write(`${Buffer.byteLength(msg)} ${msg}`, 0)
    conn.onRead(n, shared)
  }
  t.deepEqual(messagesOf(await records()), [first, second])
})
