import test from 'ava'
import fc from 'fast-check'
import { RelpFramer, type RelpSink } from '../../src/framing/relp.js'

interface Frame {
  txnr: number
  command: string
  data: string
  origLen: number
}

class Collect implements RelpSink {
  frames: Frame[] = []
  errors: string[] = []
  onRelpFrame(txnr: number, command: string, buf: Buffer, start: number, end: number, origLen: number): void {
    this.frames.push({ txnr, command, data: buf.toString('latin1', start, end), origLen })
  }
  onRelpError(reason: string): void {
    this.errors.push(reason)
  }
}

function frameOf(txnr: number, command: string, data: string): string {
  const len = Buffer.byteLength(data, 'latin1')
  return len === 0 ? `${txnr} ${command} 0\n` : `${txnr} ${command} ${len} ${data}\n`
}

function run(chunks: Buffer[], max = 1024): Collect {
  const f = new RelpFramer(max)
  const sink = new Collect()
  for (const c of chunks) f.push(c, sink)
  return sink
}

const session: Frame[] = [
  {
    txnr: 1,
    command: 'open',
    data: 'relp_version=0\nrelp_software=librelp,1.11.0,x\ncommands=syslog',
    origLen: 0,
  },
  { txnr: 2, command: 'syslog', data: '<13>Nov 23 10:00:00 web1 app: hello', origLen: 0 },
  { txnr: 3, command: 'syslog', data: '<14>1 - h a - - - two\nlines\n', origLen: 0 },
  { txnr: 4, command: 'syslog', data: '9 <13>looks like a count', origLen: 0 },
  { txnr: 5, command: 'close', data: '', origLen: 0 },
]
const wire = Buffer.from(session.map((f) => frameOf(f.txnr, f.command, f.data)).join(''), 'latin1')

test('a session as omrelp sends it comes out frame by frame, at every split point', (t) => {
  t.deepEqual(run([wire]).frames, session)
  for (let i = 1; i < wire.length; i++) {
    const r = run([wire.subarray(0, i), wire.subarray(i)])
    t.deepEqual(r.frames, session, `split at ${i}`)
    t.deepEqual(r.errors, [])
  }
  const bytes = [...wire].map((b) => Buffer.from([b]))
  t.deepEqual(run(bytes).frames, session, 'one byte per read')
})

test('reads into one reused buffer: the bytes past a read are not part of it', (t) => {
  const shared = Buffer.alloc(wire.length + 16)
  for (let cut = 1; cut < wire.length; cut += 7) {
    const f = new RelpFramer(1024)
    const sink = new Collect()
    for (const piece of [wire.subarray(0, cut), wire.subarray(cut)]) {
      shared.fill('\n')
      piece.copy(shared, 0)
      f.push(shared, sink, piece.length)
    }
    t.deepEqual(sink.frames, session, `cut at ${cut}`)
  }
})

test('DATA longer than the limit is cut once, flagged with its length, and the next frame parses', (t) => {
  const big = `<13>${'x'.repeat(300)}`
  const s = Buffer.from(frameOf(7, 'syslog', big) + frameOf(8, 'syslog', '<13>next'), 'latin1')
  for (let i = 1; i < s.length; i += 13) {
    const r = run([s.subarray(0, i), s.subarray(i)], 64)
    t.deepEqual(r.frames, [
      { txnr: 7, command: 'syslog', data: big.slice(0, 64), origLen: big.length },
      { txnr: 8, command: 'syslog', data: '<13>next', origLen: 0 },
    ])
  }
})

test('what is not RELP is a protocol error, said once, and nothing after it is read', (t) => {
  for (const [bad, reason] of [
    ['hello world\n', /transaction number/],
    ['1 syslog 5 <13>abc\n', /no LF after the data/],
    ['1 syslog 3x<1>\n', /no space before data/],
    ['1 sys-log 0\n', /bad command/],
    ['1 close 0 \n', /no LF after a frame without data/],
    ['1234567890 syslog 0\n', /transaction number/],
    ['1 syslog  3 abc\n', /missing data length/],
  ] as const) {
    const r = run([
      Buffer.from(`${frameOf(1, 'open', 'commands=syslog')}${bad}${frameOf(3, 'syslog', 'after')}`),
    ])
    t.is(r.frames.length, 1, bad)
    t.is(r.errors.length, 1, bad)
    t.regex(r.errors[0]!, reason)
  }
})

test('property: any frames, any DATA bytes, cut into reads anywhere, come out as sent', (t) => {
  const frame = fc.record({
    txnr: fc.integer({ min: 1, max: 999_999_999 }),
    command: fc.constantFrom('syslog', 'open', 'close', 'rsp', 'x'),
    data: fc.uint8Array({ maxLength: 200 }).map((b) => Buffer.from(b).toString('latin1')),
  })
  fc.assert(
    fc.property(
      fc.array(frame, { maxLength: 20 }),
      fc.array(fc.integer({ min: 1, max: 97 }), { minLength: 1 }),
      (frames, cuts) => {
        const s = Buffer.from(frames.map((f) => frameOf(f.txnr, f.command, f.data)).join(''), 'latin1')
        const chunks: Buffer[] = []
        for (let at = 0, i = 0; at < s.length; i++) {
          chunks.push(s.subarray(at, at + cuts[i % cuts.length]!))
          at += cuts[i % cuts.length]!
        }
        const r = run(chunks, 4096)
        t.deepEqual(r.errors, [])
        t.deepEqual(
          r.frames,
          frames.map((f) => ({ ...f, origLen: 0 })),
        )
      },
    ),
    { numRuns: 300 },
  )
})
