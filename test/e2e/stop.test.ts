import { readdirSync } from 'node:fs'
import { createConnection } from 'node:net'
import test from 'ava'
import { query, startServer, waitFor, waitForRows } from '../helpers/server.js'

/** Writes numbered messages as fast as the socket takes them until the server closes it. */
function flood(port: number, conn: number): Promise<number> {
  return new Promise((resolve) => {
    const s = createConnection({ host: '127.0.0.1', port })
    let seq = 0
    const pump = () => {
      while (seq < 200_000) {
        let chunk = ''
        for (let i = 0; i < 100; i++) chunk += `<13>1 - c${conn} flood - - - conn=${conn} seq=${seq++}\n`
        if (!s.write(chunk)) return
      }
      s.end()
    }
    s.on('connect', pump)
    s.on('drain', pump)
    s.on('error', () => {})
    s.on('close', () => resolve(seq))
  })
}

test('SIGTERM under load: exit 0, and every message the server read is journaled once, in order, after restart', async (t) => {
  const first = await startServer(t, { config: { spool: { thresholdBytes: 64 * 1024 } } })
  const conns = 6
  const senders = Array.from({ length: conns }, (_, c) => flood(first.tcpPort, c))
  await waitForRows(first.journalPath, 2000)
  t.is(await first.stop(), 0)
  await Promise.all(senders)
  const m = /stopped received=(\d+) spooled=(\d+) journaled=(\d+)/.exec(first.stderr())
  t.truthy(m, first.stderr())
  const received = Number(m![1])
  t.true(received > 2000)
  // What did not reach the journal before the stop is in the spool; a restart replays it.
  const second = await startServer(t, { dir: first.dir })
  await waitForRows(second.journalPath, received)
  const rows = query<{ host: string; msg: string }>(
    second.journalPath,
    'SELECT host, msg FROM messages ORDER BY id',
  )
  t.is(rows.length, received)
  const next = new Map<string, number>()
  for (const r of rows) {
    const i = next.get(r.host) ?? 0
    if (r.msg !== `conn=${r.host.slice(1)} seq=${i}`) {
      t.fail(`${r.host}: expected seq=${i}, got ${r.msg}`)
      break
    }
    next.set(r.host, i + 1)
  }
  await waitFor('the spool to be emptied', () =>
    readdirSync(second.spoolDir).some((f) => f.endsWith('.spool')) ? undefined : true,
  )
  t.is(await second.stop(), 0)
  t.regex(second.stderr(), /stopped received=0 /)
})
