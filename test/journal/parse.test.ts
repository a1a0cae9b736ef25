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

test('a malformed PRI keeps the whole frame in msg with parse_error set and no header', (t) => {
  for (const text of ['<999>x', '<abc>x', '<13']) {
    const p = parse(text)
    t.is(p.parseError, 1, text)
    t.is(p.msg, text)
    t.is(p.host, null)
    t.is(p.facility, null)
  }
})

test('one bad part of an RFC 5424 header flags the row, keeps the frame, and costs no other part', (t) => {
  for (const [text, ts] of [
    ['<13>1 2003-13-45T99:00:00Z h a p m - x', null],
    ['<13>1 now h a p m - x', null],
    ['<13>1 2003-10-11T22:14:15Z h a p m [unterminated x="1" x', Date.UTC(2003, 9, 11, 22, 14, 15)],
    ['<13>1 2003-10-11T22:14:15Z h a p m [bad x] x', Date.UTC(2003, 9, 11, 22, 14, 15)],
    ['<13>1 2003-10-11T22:14:15Z h a p m -x', Date.UTC(2003, 9, 11, 22, 14, 15)],
  ] as const) {
    const p = parse(text)
    t.is(p.parseError, 1, text)
    t.is(p.msg, text)
    t.is(p.ts, ts, text)
    t.deepEqual([p.host, p.app, p.procid, p.msgid, p.sd], ['h', 'a', 'p', 'm', null], text)
    t.deepEqual([p.facility, p.severity], [1, 5], text)
  }
  // A frame that ends inside the header keeps the fields it has.
  const short = parse('<13>1 2003-10-11T22:14:15Z h a')
  t.is(short.parseError, 1)
  t.is(short.msg, '<13>1 2003-10-11T22:14:15Z h a')
  t.deepEqual(
    [short.ts, short.host, short.app, short.procid],
    [Date.UTC(2003, 9, 11, 22, 14, 15), 'h', 'a', null],
  )
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

// Defects other projects' vectors found (issue 26): each of these lost or misplaced header fields before.

test('VMware ESXi: SD values without quotes are read to the next space or ]', (t) => {
  const p = parse(
    '<166>1 2024-05-01T10:00:00.123Z esxi01.lab Hostd 2099431 - [Originator@6876 sub=Vimsvc.TaskManager ' +
      'opID=esxui-13c6-6b16 user=vpxuser:VSPHERE.LOCAL\\Administrator] Task Completed',
  )
  t.is(p.parseError, 0)
  t.is(p.ts, Date.UTC(2024, 4, 1, 10, 0, 0, 123))
  t.deepEqual([p.host, p.app, p.procid, p.msgid], ['esxi01.lab', 'Hostd', '2099431', null])
  t.deepEqual(JSON.parse(p.sd!), {
    'Originator@6876': {
      sub: 'Vimsvc.TaskManager',
      opID: 'esxui-13c6-6b16',
      user: 'vpxuser:VSPHERE.LOCAL\\Administrator',
    },
  })
  t.is(p.msg, 'Task Completed')
  // spaces after '=' before a quoted value (rsyslog's own test data)
  const q = parse('<165>1 2003-10-11T22:14:15.003Z h evntslog - ID47 [ex@32473 iut="3" eventSource= "App"] x')
  t.deepEqual(JSON.parse(q.sd!), { 'ex@32473': { iut: '3', eventSource: 'App' } })
  t.is(q.msg, 'x')
})

test('RFC 5424: a timestamp without an offset is read in parse.timezone, and the header is kept', (t) => {
  const p = parse('<134>1 2009-10-16T11:51:56 exchange MSExchange_ADAccess 20208 - - An event')
  t.is(p.parseError, 0)
  t.is(p.ts, new Date(2009, 9, 16, 11, 51, 56).getTime())
  t.deepEqual([p.host, p.app, p.procid, p.msg], ['exchange', 'MSExchange_ADAccess', '20208', 'An event'])
})

test('BSD: spaces between PRI and the time', (t) => {
  const p = parse('<38> Mar  7 19:06:53 example tag: testmessage')
  t.is(p.ts, new Date(2026, 2, 7, 19, 6, 53).getTime())
  t.deepEqual([p.host, p.app, p.msg], ['example', 'tag', 'testmessage'])
})

test('BSD: months in capitals (Dell switches) or small letters', (t) => {
  const p = parse('<190>NOV 22 00:00:33 192.168.33.8-1 CMDLOGGER[165319912]: cmd_logger_api.c(83) logged in')
  t.is(p.ts, new Date(2026, 10, 22, 0, 0, 33).getTime())
  t.deepEqual([p.host, p.app, p.procid], ['192.168.33.8-1', 'CMDLOGGER', '165319912'])
  t.is(p.msg, 'cmd_logger_api.c(83) logged in')
  t.is(parse('<13>aug 10 22:18:24 host tag: x').ts, new Date(2026, 7, 10, 22, 18, 24).getTime())
})

test('BSD: "tag[pid]:text" with no space after the colon', (t) => {
  const p = parse('<13>Feb 13 20:07:26 74794bfb6795 root[8539]:syslog message')
  t.deepEqual([p.host, p.app, p.procid, p.msg], ['74794bfb6795', 'root', '8539', 'syslog message'])
  const q = parse('<13>Feb 13 20:07:26 root[8539]:no host')
  t.deepEqual([q.host, q.app, q.procid, q.msg], [null, 'root', '8539', 'no host'])
})

test('BSD: a host name ending in "::" (IPv6) is a host, not a tag', (t) => {
  const p = parse('<0>Jan 10 01:00:00 0002:: prg0: msgtxt')
  t.deepEqual([p.host, p.app, p.msg], ['0002::', 'prg0', 'msgtxt'])
})

test('BSD without a time: "app[pid]: text" is still a tag; "word: text" stays free text', (t) => {
  const p = parse('<15> openvpn[2499]: PTHREAD support initialized')
  t.deepEqual(
    [p.ts, p.host, p.app, p.procid, p.msg],
    [null, null, 'openvpn', '2499', 'PTHREAD support initialized'],
  )
  const q = parse('<12>pyapp[29753]: python warning')
  t.deepEqual([q.app, q.procid, q.msg], ['pyapp', '29753', 'python warning'])
  const r = parse('<13>error: disk full')
  t.deepEqual([r.app, r.msg], [null, 'error: disk full'])
})

test('impossible dates are flagged with ts NULL, never rolled over; the rest of the header is kept', (t) => {
  for (const text of [
    '<13>Feb 30 10:00:00 host app: text',
    '<13>Apr 31 2026 10:00:00 host app: text',
    '<13>2026-02-30T10:00:00Z host app: text',
    '<13>1 2026-02-30T10:00:00Z host app - - - text',
    '<13>1 2026-02-29T10:00:00 host app - - - text',
  ]) {
    const p = parse(text)
    t.is(p.ts, null, text)
    t.is(p.parseError, 1, text)
    t.is(p.msg, text)
    t.deepEqual([p.host, p.app], ['host', 'app'], text)
  }
  // Feb 29 without a year: the receive year (2026) has none, so it is flagged; in 2028 it is a date.
  t.is(parse('<13>Feb 29 10:00:00 host app: x').parseError, 1)
  const leap = parse('<13>Feb 29 10:00:00 host app: x', Date.UTC(2028, 2, 1))
  t.is(leap.ts, new Date(2028, 1, 29, 10, 0, 0).getTime())
  t.is(leap.parseError, 0)
  t.is(parseRfc3339('2028-02-29T10:00:00Z'), Date.UTC(2028, 1, 29, 10))
  t.is(parseRfc3339('2026-02-29T10:00:00Z'), null)
})

test('fractions of a second with more than 9 digits are read (to the millisecond)', (t) => {
  const a = parse('<7>1 2006-10-29T01:59:59.1561234567891Z h a - - - x')
  t.is(a.ts, Date.UTC(2006, 9, 29, 1, 59, 59, 156))
  t.is(a.parseError, 0)
  const b = parse(`<7>2006-11-10T10:43:21.156${'0'.repeat(50)}+01:00 bzorp openvpn[2499]: PTHREAD`)
  t.is(b.ts, Date.UTC(2006, 10, 10, 9, 43, 21, 156))
  t.deepEqual([b.host, b.app, b.procid], ['bzorp', 'openvpn', '2499'])
  const c = parse('<13>Nov 23 10:00:00.1234567890123 host app: x')
  t.is(c.ts, new Date(2026, 10, 23, 10, 0, 0, 123).getTime())
  t.deepEqual([c.host, c.app, c.msg], ['host', 'app', 'x'])
})

test('RFC 5424 with a VERSION other than 1: read as RFC 5424 so nothing is lost, and flagged', (t) => {
  const text = '<78>5 2016-01-15T00:04:01+00:00 host1 CROND 10391 - [sdid] some_message'
  const p = parse(text)
  t.deepEqual(
    [p.ts, p.host, p.app, p.procid, p.sd],
    [Date.UTC(2016, 0, 15, 0, 4, 1), 'host1', 'CROND', '10391', '{"sdid":{}}'],
  )
  t.is(p.parseError, 1)
  t.is(p.msg, text)
  // without a header after it, a number is just text
  t.deepEqual(
    [parse('<13>5 people logged in').msg, parse('<13>5 people logged in').parseError],
    ['5 people logged in', 0],
  )
})

test('RFC 5424: a control character in a header field makes that field a bad part', (t) => {
  const p = parse('<1>1 - host\nname app - - - x')
  t.deepEqual([p.host, p.app, p.parseError], [null, 'app', 1])
})

test('BSD: a colon after the time, and an ISO date and time apart', (t) => {
  const p = parse('<38>Mar 7 2008 19:06:53: example tag: testmessage')
  t.deepEqual(
    [p.ts, p.host, p.app, p.msg],
    [new Date(2008, 2, 7, 19, 6, 53).getTime(), 'example', 'tag', 'testmessage'],
  )
  const q = parse('<7>2006-10-29 02:00:00.156+01:00 host app: x')
  t.deepEqual([q.ts, q.host, q.app, q.msg], [Date.UTC(2006, 9, 29, 1, 0, 0, 156), 'host', 'app', 'x'])
})

test('Cisco: a host between the time and the mnemonic', (t) => {
  const p = parse('<0>91: *Oct 07 03:10:04: mydevice.com %CRYPTO-4-RECVD_PKT_INV_SPI: decaps: bad spi')
  t.deepEqual([p.host, p.app, p.msg], ['mydevice.com', 'CRYPTO-4-RECVD_PKT_INV_SPI', 'decaps: bad spi'])
})
