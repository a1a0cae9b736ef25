// parse.timezone end to end: zone-less times (RFC 3164 and its kin) are read in the configured zone,
// "local" meaning the server's TZ; times that carry a zone are not touched. Zones without summer time,
// so the expected instants do not depend on the date the test runs.
import test from 'ava'
import { query, sendTcp, startServer, waitForRows } from '../helpers/server.js'

const kMonths = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec']

// Yesterday's date (UTC), so the year inferred for a BSD time is this one (or, on 1 January, the last).
const day = new Date(Date.now() - 86_400_000)
const y = day.getUTCFullYear()
const mo = day.getUTCMonth()
const d = day.getUTCDate()
const bsd = `<13>${kMonths[mo]} ${String(d).padStart(2, ' ')} 10:00:00 host1 app: zone-less`
const iso = '<13>1 2026-11-23T10:00:00.000+01:00 host1 app - - - with its zone'

/** The journaled ts of both messages, sent to a server with this config and environment. */
async function times(
  t: import('ava').ExecutionContext,
  parse: Record<string, unknown> | undefined,
  tz: string,
): Promise<{ bsd: number; iso: number }> {
  const srv = await startServer(t, { config: parse === undefined ? {} : { parse }, env: { TZ: tz } })
  await sendTcp(srv.tcpPort, [`${bsd}\n${iso}\n`])
  await waitForRows(srv.journalPath, 2)
  const rows = query<{ msg: string; ts: number }>(srv.journalPath, 'SELECT msg, ts FROM messages')
  const ts = (m: string) => rows.find((r) => r.msg === m)!.ts
  return { bsd: ts('zone-less'), iso: ts('with its zone') }
}

const wall = Date.UTC(y, mo, d, 10, 0, 0)
const isoAt = Date.UTC(2026, 10, 23, 9, 0, 0)

test('parse.timezone "local" (the default) reads zone-less times in the server\'s TZ', async (t) => {
  t.deepEqual(await times(t, undefined, 'Asia/Tokyo'), { bsd: wall - 9 * 3_600_000, iso: isoAt })
})

test("parse.timezone as an IANA name wins over the server's TZ", async (t) => {
  t.deepEqual(await times(t, { timezone: 'Asia/Kolkata' }, 'Asia/Tokyo'), {
    bsd: wall - 5.5 * 3_600_000,
    iso: isoAt,
  })
})

test('parse.timezone "UTC"', async (t) => {
  t.deepEqual(await times(t, { timezone: 'UTC' }, 'Asia/Tokyo'), { bsd: wall, iso: isoAt })
})

test('an unknown parse.timezone stops the start with exit 2, naming the key', async (t) => {
  const err = await startServer(t, { config: { parse: { timezone: 'Mars/Olympus_Mons' } } }).then(
    () => '',
    (e: Error) => e.message,
  )
  t.regex(err, /exited with 2 before listening/)
  t.regex(err, /parse\.timezone/)
})
