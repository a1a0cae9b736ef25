import test from 'ava'
import { ParsedMessage, parseSyslog } from '../../src/journal/parse.js'
import { checkZone, setZone, wallClockToUnix } from '../../src/journal/zone.js'

// "local" is this process's TZ. Under TZ=UTC (as CI runs) it would equal the UTC case and prove
// nothing, so this file runs in a zone of its own, before any time is read (Node applies a TZ set at
// run time). Kolkata has no summer time: its offset is +05:30 on every date.
process.env.TZ = 'Asia/Kolkata'

test.afterEach(() => setZone('local'))

test('UTC and local zones', (t) => {
  setZone('UTC')
  t.is(wallClockToUnix(2026, 10, 23, 10, 0, 0, 5), Date.UTC(2026, 10, 23, 10, 0, 0, 5))
  setZone('local')
  t.is(new Date(Date.UTC(2026, 10, 23, 4, 30)).getHours(), 10, 'this process reads times in Kolkata')
  t.is(wallClockToUnix(2026, 10, 23, 10, 0, 0, 5), Date.UTC(2026, 10, 23, 4, 30, 0, 5))
  t.is(wallClockToUnix(2026, 5, 1, 23, 59, 59, 999), Date.UTC(2026, 5, 1, 18, 29, 59, 999))
})

test('an IANA zone applies its offset, summer and winter', (t) => {
  setZone('Europe/Berlin')
  t.is(wallClockToUnix(2026, 0, 15, 12, 0, 0, 0), Date.UTC(2026, 0, 15, 11, 0, 0, 0)) // CET, +01:00
  t.is(wallClockToUnix(2026, 6, 15, 12, 0, 0, 0), Date.UTC(2026, 6, 15, 10, 0, 0, 0)) // CEST, +02:00
  setZone('America/New_York')
  t.is(wallClockToUnix(2026, 10, 23, 23, 30, 15, 250), Date.UTC(2026, 10, 24, 4, 30, 15, 250)) // EST
  setZone('Asia/Kolkata')
  t.is(wallClockToUnix(2026, 10, 23, 10, 0, 0, 0), Date.UTC(2026, 10, 23, 4, 30, 0, 0)) // +05:30
})

test('an unknown zone is refused', (t) => {
  t.throws(() => checkZone('Mars/Olympus_Mons'), { instanceOf: RangeError })
})

test('zone-less BSD times are read in the configured zone; times with a zone are not', (t) => {
  const p = new ParsedMessage()
  const at = Date.UTC(2026, 10, 23, 12, 0, 0)
  setZone('Asia/Kolkata')
  parseSyslog('<13>Nov 23 10:00:00 host app: x', at, p)
  t.is(p.ts, Date.UTC(2026, 10, 23, 4, 30, 0))
  parseSyslog('<13>1 2026-11-23T10:00:00Z host app - - - x', at, p)
  t.is(p.ts, Date.UTC(2026, 10, 23, 10, 0, 0))
  setZone('UTC')
  parseSyslog('<13>Nov 23 10:00:00 host app: x', at, p)
  t.is(p.ts, Date.UTC(2026, 10, 23, 10, 0, 0))
})
