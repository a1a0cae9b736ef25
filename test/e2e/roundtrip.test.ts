import { connect } from 'node:net'
import test from 'ava'
import fc from 'fast-check'
import { query, type Running, startServer, waitFor } from '../helpers/server.js'

// Whatever bytes a message holds (backslashes, CR and LF inside an octet-counted frame, NUL, invalid
// UTF-8), the journal stores what the README's `msg` column says: the bytes as UTF-8 with U+FFFD for
// what is not, trailing NULs dropped and any other NUL as U+FFFD, trailing LF/CR ending the frame.
// Through a real socket, in memory mode and through the spool (durable mode: every record replayed).

const kHeader = '<13>1 - rt app - - - '

/** What the journal's msg column holds for these message bytes (README, The messages table). */
function expected(body: Buffer): string {
  let end = body.length
  while (end > 0 && (body[end - 1] === 0x0a || body[end - 1] === 0x0d)) end--
  let text = body.subarray(0, end).toString('utf8')
  let t = text.length
  while (t > 0 && text.charCodeAt(t - 1) === 0) t--
  text = text.slice(0, t).replaceAll('\u0000', '\ufffd')
  return text
}

function sendOctet(port: number, bodies: Buffer[]): Promise<void> {
  return new Promise((resolve, reject) => {
    const s = connect({ host: '127.0.0.1', port }, () => {
      for (const b of bodies) {
        const frame = Buffer.concat([Buffer.from(kHeader), b])
        s.write(Buffer.concat([Buffer.from(`${frame.length} `), frame]))
      }
      s.end()
    })
    s.on('error', reject)
    s.on('close', () => resolve())
    s.resume()
  })
}

async function roundTrip(srv: Running, bodies: Buffer[], tag: string): Promise<string[]> {
  // A marker first in each message keeps runs apart and the header parse fixed.
  const marked = bodies.map((b, i) => Buffer.concat([Buffer.from(`${tag}${i}:`), b]))
  await sendOctet(srv.tcpPort, marked)
  const rows = await waitFor(`${marked.length} rows of ${tag}`, () => {
    const r = query<{ msg: string }>(
      srv.journalPath,
      'SELECT msg FROM messages WHERE msg LIKE ? ORDER BY id',
      `${tag}%`,
    )
    return r.length >= marked.length ? r : undefined
  })
  return rows.map((r) => r.msg)
}

// Bytes that end in something other than LF, CR or NUL, and do not start with a BOM (dropped by rule).
const body = fc
  .uint8Array({ minLength: 0, maxLength: 300 })
  .map((b) => Buffer.concat([Buffer.from(b), Buffer.from('.')]))

for (const mode of ['memory', 'durable'] as const) {
  test(`${mode} mode: arbitrary message bytes, octet-counted on one connection, are stored by rule`, async (t) => {
    const srv = await startServer(t, {
      config: mode === 'durable' ? { spool: { thresholdBytes: 0 } } : {},
    })
    let run = 0
    await fc.assert(
      fc.asyncProperty(fc.array(body, { minLength: 1, maxLength: 40 }), async (bodies) => {
        const tag = `r${run++}-`
        const got = await roundTrip(srv, bodies, tag)
        t.deepEqual(
          got,
          bodies.map((b, i) => `${tag}${i}:${expected(b)}`),
        )
      }),
      { numRuns: 15 },
    )
  })
}

test('a backslash in an octet-counted message after other frames on the same connection is stored exactly', async (t) => {
  const srv = await startServer(t)
  const bodies = [
    Buffer.from('x'.repeat(64)),
    Buffer.from('C:\\Users\\spill\\log.txt and a JSON "a\\"b" and \\n that is not a newline'),
    Buffer.from('line one\nline two\r\nthree\\'),
  ]
  t.deepEqual(
    await roundTrip(srv, bodies, 'bs-'),
    bodies.map((b, i) => `bs-${i}:${expected(b)}`),
  )
})
