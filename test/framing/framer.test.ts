import test from 'ava'
import fc from 'fast-check'
import { Framer, type FrameSink, FramingCounters } from '../../src/framing/framer.js'

interface Frame {
  text: string
  origLen: number
}

class Collect implements FrameSink {
  frames: Frame[] = []
  onFrame(buf: Buffer, start: number, end: number, origLen: number): void {
    this.frames.push({ text: buf.toString('latin1', start, end), origLen })
  }
}

function frame(chunks: Buffer[], max = 1024, flush = true): { frames: Frame[]; counters: FramingCounters } {
  const counters = new FramingCounters()
  const f = new Framer(max, counters)
  const sink = new Collect()
  for (const c of chunks) f.push(c, sink)
  f.finish(sink, flush)
  return { frames: sink.frames, counters }
}

function octet(msg: string): string {
  return `${Buffer.byteLength(msg, 'latin1')} ${msg}`
}

/** Every way of cutting `stream` in two, plus one byte per read. */
function splits(stream: Buffer): Buffer[][] {
  const out: Buffer[][] = [[stream]]
  for (let i = 1; i < stream.length; i++) out.push([stream.subarray(0, i), stream.subarray(i)])
  const bytes: Buffer[] = []
  for (let i = 0; i < stream.length; i++) bytes.push(stream.subarray(i, i + 1))
  out.push(bytes)
  return out
}

// Lines that start with a number are LF lines until the connection has sent an octet-counted frame;
// after that, `LEN SP` is a count whatever follows it (sticky octet counting).
const mixed = Buffer.from(
  [
    '<13>plain line\n',
    '2024 backup done, a line that starts with digits\n',
    '12 not-a-pri so LF framed\n',
    octet('<14>octet with\nembedded newline'),
    '<15>crlf line\r\n',
    '\n',
    '\r\n',
    octet('<11>second octet'),
    octet('no PRI: counted all the same'),
    octet('<12>x'),
    '<13>last line\n',
  ].join(''),
  'latin1',
)

const mixedFrames: Frame[] = [
  { text: '<13>plain line', origLen: 0 },
  { text: '2024 backup done, a line that starts with digits', origLen: 0 },
  { text: '12 not-a-pri so LF framed', origLen: 0 },
  { text: '<14>octet with\nembedded newline', origLen: 0 },
  { text: '<15>crlf line', origLen: 0 },
  { text: '<11>second octet', origLen: 0 },
  { text: 'no PRI: counted all the same', origLen: 0 },
  { text: '<12>x', origLen: 0 },
  { text: '<13>last line', origLen: 0 },
]

test('mixed LF and octet-counted frames: every split point yields the same messages', (t) => {
  for (const chunks of splits(mixed)) {
    const { frames, counters } = frame(chunks)
    t.deepEqual(frames, mixedFrames, `split into ${chunks.map((c) => c.length).join('+')}`)
    t.is(counters.octetFrames, 4)
    t.is(counters.lfFrames, 5)
    t.is(counters.emptyLines, 2)
  }
})

test('reads into one reused buffer: bytes past each read, even newlines, are not part of it', (t) => {
  // The TCP listener reads every connection into one shared 64 KiB buffer (listen/read-buffer.ts):
  // only buf[0, n) is this read, the rest is whatever an earlier read left there.
  const stale = Buffer.from('\n\n<99>stale\n'.repeat(8), 'latin1')
  const shared = Buffer.alloc(mixed.length + stale.length)
  for (const chunks of [...splits(mixed), splits(mixed.subarray(0, 60))[7]!]) {
    const want = frame(chunks, 40)
    const counters = new FramingCounters()
    const f = new Framer(40, counters)
    const sink = new Collect()
    for (const c of chunks) {
      stale.copy(shared, c.length)
      c.copy(shared, 0)
      f.push(shared, sink, c.length)
    }
    f.finish(sink, true)
    t.deepEqual(sink.frames, want.frames, `split into ${chunks.map((c) => c.length).join('+')}`)
    t.deepEqual(counters, want.counters)
  }
})

test('every split into three pieces of a short mixed stream yields the same messages', (t) => {
  const s = Buffer.from(`${octet('<1>ab\ncd')}<2>ef\r\n${octet('<3>g')}`, 'latin1')
  const want = [
    { text: '<1>ab\ncd', origLen: 0 },
    { text: '<2>ef', origLen: 0 },
    { text: '<3>g', origLen: 0 },
  ]
  for (let i = 1; i < s.length; i++) {
    for (let j = i + 1; j < s.length; j++) {
      t.deepEqual(
        frame([s.subarray(0, i), s.subarray(i, j), s.subarray(j)]).frames,
        want,
        `cuts at ${i},${j}`,
      )
    }
  }
})

test('an oversized LF line is cut once, flagged with its length, and its tail is not a message', (t) => {
  const long = `<13>${'a'.repeat(200)}`
  const s = Buffer.from(`<13>before\n${long}\n<13>after\n`, 'latin1')
  for (const chunks of splits(s)) {
    const { frames, counters } = frame(chunks, 64)
    t.deepEqual(frames, [
      { text: '<13>before', origLen: 0 },
      { text: long.slice(0, 64), origLen: long.length },
      { text: '<13>after', origLen: 0 },
    ])
    t.is(counters.truncated, 1)
  }
})

test('an oversized octet-counted frame is cut, its remaining bytes skipped exactly, the next frame parses', (t) => {
  const big = `<13>${'b\n'.repeat(100)}`
  const s = Buffer.from(`${octet(big)}${octet('<13>next')}<13>lf after\n`, 'latin1')
  for (const chunks of splits(s)) {
    const { frames, counters } = frame(chunks, 64)
    t.deepEqual(frames, [
      { text: big.slice(0, 64), origLen: big.length },
      { text: '<13>next', origLen: 0 },
      { text: '<13>lf after', origLen: 0 },
    ])
    t.is(counters.truncated, 1)
  }
})

test('a declared count beyond the octet cap is not trusted as a length: the line is LF-framed', (t) => {
  const { frames } = frame([Buffer.from('999999999 <13>liar\n<13>ok\n')], 64)
  t.deepEqual(frames, [
    { text: '999999999 <13>liar', origLen: 0 },
    { text: '<13>ok', origLen: 0 },
  ])
})

test('counts with too many digits, no space or no PRI after them are LF lines', (t) => {
  const { frames } = frame([Buffer.from('1234567890123 <13>x\n12x <13>y\n5 hello\n-5 <13>z\n')])
  t.deepEqual(
    frames.map((f) => f.text),
    ['1234567890123 <13>x', '12x <13>y', '5 hello', '-5 <13>z'],
  )
})

test('at end of stream, an unterminated line is a message and a cut octet frame is flagged', (t) => {
  t.deepEqual(frame([Buffer.from('<13>a\n<13>no newline')]).frames, [
    { text: '<13>a', origLen: 0 },
    { text: '<13>no newline', origLen: 0 },
  ])
  t.deepEqual(frame([Buffer.from('20 <13>only ten')]).frames, [{ text: '<13>only ten', origLen: 20 }])
  t.deepEqual(frame([Buffer.from('12')]).frames, [{ text: '12', origLen: 0 }])
})

test('when the server closes a connection, an unfinished frame is dropped and counted', (t) => {
  const { frames, counters } = frame([Buffer.from('<13>a\n<13>half')], 1024, false)
  t.deepEqual(frames, [{ text: '<13>a', origLen: 0 }])
  t.is(counters.partialDropped, 1)
})

test('NUL bytes and binary garbage pass through as message bytes', (t) => {
  const bin = Buffer.from([0x3c, 0x31, 0x3e, 0x00, 0xff, 0xfe, 0x01, 0x0a])
  const { frames } = frame([bin])
  t.deepEqual(frames, [
    { text: Buffer.from([0x3c, 0x31, 0x3e, 0x00, 0xff, 0xfe, 0x01]).toString('latin1'), origLen: 0 },
  ])
})

test('LF and CR at the end of an octet-counted frame are framing, not content', (t) => {
  const { frames } = frame([
    Buffer.from(`${octet('<13>with newline\n')}${octet('<13>crlf\r\n')}${octet('<13>in\nside')}`),
  ])
  t.deepEqual(
    frames.map((f) => f.text),
    ['<13>with newline', '<13>crlf', '<13>in\nside'],
  )
})

test('sticky octet counting: after one octet-counted frame, a frame without a PRI is one message', (t) => {
  // The field case: an octet-counted stream with one PRI-less message used to fall back to LF framing
  // and glue the rest of the connection.
  const s = Buffer.from(
    `${octet('<13>first')}${octet('hello without pri')}${octet('42 starts with a number')}${octet('<14>after')}`,
    'latin1',
  )
  for (const chunks of splits(s)) {
    const { frames, counters } = frame(chunks)
    t.deepEqual(
      frames.map((f) => f.text),
      ['<13>first', 'hello without pri', '42 starts with a number', '<14>after'],
    )
    t.is(counters.octetFrames, 4)
  }
})

test('before any octet-counted frame a count needs a PRI after it; an absurd count is never trusted', (t) => {
  // A leading line that only looks like a count stays a line, and so does a hostile count later.
  const { frames } = frame([Buffer.from(`12 apples\n${octet('<13>x')}999999999 swallow\n${octet('y')}`)], 64)
  t.deepEqual(
    frames.map((f) => f.text),
    ['12 apples', '<13>x', '999999999 swallow', 'y'],
  )
})

test('NUL-terminated frames (Python SysLogHandler over TCP) are one message each, at every split', (t) => {
  const s = Buffer.from('<11>python error\0<12>python warning\0<14>python info\0', 'latin1')
  for (const chunks of splits(s)) {
    const { frames, counters } = frame(chunks)
    t.deepEqual(
      frames.map((f) => f.text),
      ['<11>python error', '<12>python warning', '<14>python info'],
      `split into ${chunks.map((c) => c.length).join('+')}`,
    )
    t.is(counters.nulFrames, 3)
    t.is(counters.lfFrames, 0)
  }
})

test('a NUL-terminated connection keeps LF inside a message: a traceback is one record', (t) => {
  const tb = '<11>failed\nTraceback (most recent call last):\n  File "x.py", line 1\nValueError: x'
  const s = Buffer.from(`<14>start\0${tb}\n\0<13>end\r\n\0`, 'latin1')
  for (const chunks of splits(s)) {
    t.deepEqual(
      frame(chunks).frames.map((f) => f.text),
      ['<14>start', tb, '<13>end'],
    )
  }
})

test('on an LF connection a NUL inside a line is message content, not a trailer', (t) => {
  // After the first LF has decided the connection, at every split point.
  const later = Buffer.from('<13>first\n<13>a\0b\n<13>c\0\0<d\n', 'latin1')
  for (const chunks of splits(later)) {
    const { frames, counters } = frame(chunks)
    t.deepEqual(
      frames.map((f) => f.text),
      ['<13>first', '<13>a\0b', '<13>c\0\0<d'],
    )
    t.is(counters.nulFrames, 0)
  }
  // In the first line, a NUL followed by anything but '<' or NUL is content too (read in one piece).
  t.deepEqual(
    frame([Buffer.from('<13>a\0b\n<13>c\n', 'latin1')]).frames.map((f) => f.text),
    ['<13>a\0b', '<13>c'],
  )
})

test('octet-counted and NUL-terminated frames mix on one connection', (t) => {
  const s = Buffer.from(`<13>nul one\0${octet('<14>oct\0et')}<15>nul two\0${octet('free text')}`, 'latin1')
  for (const chunks of splits(s)) {
    t.deepEqual(
      frame(chunks).frames.map((f) => f.text),
      ['<13>nul one', '<14>oct\0et', '<15>nul two', 'free text'],
    )
  }
})

test('an oversized NUL-terminated frame is cut once and its tail skipped to the NUL', (t) => {
  const long = `<13>${'z\n'.repeat(100)}`
  const s = Buffer.from(`<13>before\0${long}\0<13>after\0`, 'latin1')
  for (const chunks of splits(s)) {
    const { frames, counters } = frame(chunks, 64)
    t.deepEqual(frames, [
      { text: '<13>before', origLen: 0 },
      { text: long.slice(0, 64), origLen: long.length },
      { text: '<13>after', origLen: 0 },
    ])
    t.is(counters.truncated, 1)
  }
})

// Property: any stream of frames of every kind that one sender can produce, cut into reads anywhere,
// frames into exactly the messages that were sent.
const kLtByte = 0x3c
const payload = (forbid: number[], maxLength = 120) =>
  fc
    .uint8Array({ minLength: 1, maxLength })
    .map((b) => Buffer.from(b.map((x) => (forbid.includes(x) ? 0x2e : x))))
    // What ends a frame's text: trailing LF and CR are framing; the text is never empty.
    .filter((b) => b[b.length - 1] !== 0x0a && b[b.length - 1] !== 0x0d)

const connection = fc.constantFrom('lf', 'nul').chain((trailer) =>
  fc
    .array(
      fc.record({
        octet: fc.boolean(),
        lfText: payload([0x0a]),
        nulText: payload([0x00]),
        octetText: payload([]),
      }),
      { minLength: 1, maxLength: 25 },
    )
    .map((frames) => ({ trailer, frames })),
)

function looksCounted(b: Buffer): boolean {
  return /^[1-9][0-9]{0,8} /.test(b.toString('latin1', 0, 11))
}

test('property: any mix of frame kinds, cut into reads anywhere, yields the frames sent', (t) => {
  fc.assert(
    fc.property(connection, fc.array(fc.integer({ min: 1, max: 300 }), { minLength: 1 }), (conn, cuts) => {
      const wire: Buffer[] = []
      const want: string[] = []
      let sticky = false
      let decided = false
      let afterDeciding = false
      for (const f of conn.frames) {
        const second = afterDeciding
        afterDeciding = false
        if (f.octet) {
          // The first counted frame must show its PRI; after it, anything goes.
          const text = sticky ? f.octetText : Buffer.concat([Buffer.from([kLtByte]), f.octetText])
          sticky = true
          wire.push(Buffer.from(`${text.length} `), text)
          want.push(text.toString('latin1'))
          continue
        }
        let text = conn.trailer === 'lf' ? f.lfText : f.nulText
        // What follows a NUL sender's first frame shows that the NUL was a trailer: a PRI (or a count,
        // or another NUL). Every real NUL sender puts a PRI first.
        if (second && conn.trailer === 'nul' && text[0] !== kLtByte)
          text = Buffer.concat([Buffer.from('<'), text])
        // A trailer frame that could be read as a count is not one this sender can send unambiguously.
        if (looksCounted(text) && (sticky || text.includes(kLtByte)))
          text = Buffer.concat([Buffer.from('x'), text])
        if (!decided) {
          // The first trailer frame decides the connection: an LF sender's holds no NUL, a NUL
          // sender's no LF (see framer.ts for what happens otherwise).
          text = Buffer.from(text.map((x) => (x === 0x00 || x === 0x0a ? 0x2e : x)))
          decided = true
          afterDeciding = true
        }
        if (conn.trailer === 'lf' && text[text.length - 1] === 0x0d)
          text = Buffer.concat([text, Buffer.from('.')])
        wire.push(text, Buffer.from([conn.trailer === 'lf' ? 0x0a : 0x00]))
        want.push(text.toString('latin1'))
      }
      const stream = Buffer.concat(wire)
      const chunks: Buffer[] = []
      for (let at = 0, i = 0; at < stream.length; i++) {
        const n = cuts[i % cuts.length]!
        chunks.push(stream.subarray(at, at + n))
        at += n
      }
      t.deepEqual(
        frame(chunks, 4096).frames.map((f) => f.text),
        want,
      )
    }),
    { numRuns: 500 },
  )
})
