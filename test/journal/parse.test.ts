import test from 'ava'
import { ParsedMessage, parseRfc3339, parseSyslog } from '../../src/journal/parse.js'

const received = Date.UTC(2026, 10, 23, 12, 0, 0)

function parse(text: string, at = received): ParsedMessage {
  const p = new ParsedMessage()
  parseSyslog(text, at, p)
  return { ...p } as ParsedMessage
}

test('RFC 5424 example with structured data (RFC 5424 6.5, example 3)', (t) => {
  const p = parse(
    '<165>1 2003-10-11T22:14:15.003Z mymachine.example.com evntslog - ID47 ' +
      '[exampleSDID@32473 iut="3" eventSource="Application" eventID="1011"] An application event log entry...',
  )
  t.is(p.facility, 20)
  t.is(p.severity, 5)
  t.is(p.ts, Date.UTC(2003, 9, 11, 22, 14, 15, 3))
  t.is(p.host, 'mymachine.example.com')
  t.is(p.app, 'evntslog')
  t.is(p.procid, null)
  t.is(p.msgid, 'ID47')
  t.deepEqual(JSON.parse(p.sd!), {
    'exampleSDID@32473': { iut: '3', eventSource: 'Application', eventID: '1011' },
  })
  t.is(p.msg, 'An application event log entry...')
  t.is(p.parseError, 0)
})

test('RFC 5424: numeric offset, NILVALUEs, BOM, escapes and repeated parameters', (t) => {
  const p = parse(
    '<34>1 2003-08-24T05:14:15.000003-07:00 192.0.2.1 myproc 8710 - ' +
      '[a x="1" x="2"][b q="say \\"hi\\" \\\\ \\]"] \ufeff\'su root\' failed',
  )
  t.is(p.ts, Date.UTC(2003, 7, 24, 12, 14, 15, 0))
  t.is(p.procid, '8710')
  t.deepEqual(JSON.parse(p.sd!), { a: { x: ['1', '2'] }, b: { q: 'say "hi" \\ ]' } })
  t.is(p.msg, "'su root' failed")
  const nil = parse('<13>1 - - - - - -')
  t.is(nil.ts, null)
  t.is(nil.host, null)
  t.is(nil.msg, '')
  t.is(nil.parseError, 0)
})

test('RFC 3164 with host, tag and pid; one-digit day; the year comes from the receive time', (t) => {
  const p = parse('<38>Nov  3 09:05:01 web1 sshd[4242]: Accepted publickey for root')
  t.is(p.facility, 4)
  t.is(p.severity, 6)
  t.is(p.ts, new Date(2026, 10, 3, 9, 5, 1).getTime())
  t.is(p.host, 'web1')
  t.is(p.app, 'sshd')
  t.is(p.procid, '4242')
  t.is(p.msg, 'Accepted publickey for root')
})

test('RFC 3164: a December message received in January belongs to the year before', (t) => {
  const jan = new Date(2027, 0, 1, 0, 0, 5).getTime()
  t.is(parse('<13>Dec 31 23:59:58 h app: x', jan).ts, new Date(2026, 11, 31, 23, 59, 58).getTime())
})

test('RFC 3164 without hostname, and with an RFC 3339 time (rsyslog high precision)', (t) => {
  const a = parse('<13>Nov 23 10:00:00 cron: job done')
  t.is(a.host, null)
  t.is(a.app, 'cron')
  t.is(a.msg, 'job done')
  const b = parse('<13>2026-11-23T10:00:00.123456+00:00 host1 app[7]: precise')
  t.is(b.ts, Date.UTC(2026, 10, 23, 10, 0, 0, 123))
  t.is(b.host, 'host1')
  t.is(b.app, 'app')
  t.is(b.procid, '7')
  t.is(b.msg, 'precise')
})

test('no PRI: RFC 3164 defaults (user.notice) and the whole line as the message', (t) => {
  const p = parse('line one')
  t.is(p.facility, 1)
  t.is(p.severity, 5)
  t.is(p.msg, 'line one')
  t.is(p.parseError, 0)
})

test('a malformed PRI or 5424 header keeps the whole frame in msg with parse_error set', (t) => {
  for (const text of [
    '<999>x',
    '<abc>x',
    '<13',
    '<13>1 2003-13-45T99:00:00Z h a p m - x',
    '<13>1 now h a p m - x',
  ]) {
    const p = parse(text)
    t.is(p.parseError, 1, text)
    t.is(p.msg, text)
    t.is(p.host, null)
  }
})

test('RFC 3339 parsing rejects what is not a timestamp', (t) => {
  t.is(parseRfc3339('1985-04-12T23:20:50.52Z'), Date.UTC(1985, 3, 12, 23, 20, 50, 520))
  t.is(parseRfc3339('1985-04-12T23:20:50Z'), Date.UTC(1985, 3, 12, 23, 20, 50))
  for (const s of [
    '1985-04-12 23:20:50Z',
    '1985-04-12T23:20:50',
    '1985-04-12T23:20:50+0100',
    'x'.repeat(25),
  ]) {
    t.is(parseRfc3339(s), null, s)
  }
})

test('arbitrary bytes never throw', (t) => {
  let seed = 99
  for (let i = 0; i < 5000; i++) {
    let s = ''
    const n = i % 80
    for (let j = 0; j < n; j++) {
      seed = (seed * 1103515245 + 12345) & 0x7fffffff
      s += '<>1 -[]="\\ 0123456789:TZ.abcNovDec'[seed % 35]
    }
    t.notThrows(() => parse(s))
  }
})

test('RFC 3164 tags without a colon, as rsyslog relays RFC 5424 messages', (t) => {
  const p = parse('<28>Nov 23 13:45:01 vm rslf rslf 0 via rsyslog')
  t.is(p.host, 'vm')
  t.is(p.app, 'rslf')
  t.is(p.msg, 'rslf 0 via rsyslog')
  const q = parse('<28>Nov 23 13:45:01 vm app[12] text')
  t.is(q.app, 'app')
  t.is(q.procid, '12')
  t.is(q.msg, 'text')
})
