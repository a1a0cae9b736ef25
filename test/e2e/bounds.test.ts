import { readdirSync, statSync } from 'node:fs'
import { createConnection } from 'node:net'
import { join } from 'node:path'
import test, { type ExecutionContext } from 'ava'
import {
  holdWriteLock,
  query,
  sendTcp,
  sendUdp,
  startServer,
  stat,
  waitFor,
  waitForRows,
} from '../helpers/server.js'

function spoolBytes(dir: string): number {
  return readdirSync(dir)
    .filter((f) => f.endsWith('.spool'))
    .reduce((n, f) => n + statSync(join(dir, f)).size, 0)
}

function line(i: number): string {
  return `<13>1 - bounds app - - - seq=${String(i).padStart(7, '0')} ${'x'.repeat(150)}\n`
}

/** Writes n lines as fast as the socket takes them; resolves with the time it took. */
function flood(port: number, n: number): { done: Promise<number>; written: () => number } {
  let i = 0
  const t0 = Date.now()
  const s = createConnection({ host: '127.0.0.1', port })
  const done = new Promise<number>((resolve, reject) => {
    const pump = () => {
      while (i < n) {
        let chunk = ''
        for (let k = 0; k < 100 && i < n; k++) chunk += line(i++)
        if (!s.write(chunk)) return
      }
      s.end()
    }
    s.on('connect', pump)
    s.on('drain', pump)
    s.on('error', reject)
    s.on('close', () => resolve(Date.now() - t0))
    s.resume()
  })
  return { done, written: () => i }
}

const kQuota = 256 * 1024

/** The journal holds flood()'s n messages, each once, in the order sent. */
function checkFlooded(t: ExecutionContext, journalPath: string, n: number): void {
  const rows = query<{ msg: string }>(journalPath, 'SELECT msg FROM messages ORDER BY id')
  t.is(rows.length, n)
  const wrong = rows.findIndex((r, i) => !r.msg.startsWith(`seq=${String(i).padStart(7, '0')} `))
  if (wrong >= 0) t.fail(`row ${wrong}: ${rows[wrong]!.msg.slice(0, 20)}`)
}

test('spool full, "block": the sender waits, the spool stays near its quota, and nothing is lost', async (t) => {
  const srv = await startServer(t, {
    metrics: true,
    config: { spool: { thresholdBytes: 0, maxBytes: kQuota, whenFull: 'block' } },
  })
  const lock = await holdWriteLock(t, srv.journalPath)
  const n = 100_000 // ~20 MB: more than the kernel's socket buffers can hold
  const sender = flood(srv.tcpPort, n)
  await waitFor('spool-full on stderr', () =>
    /spool-full backlogBytes=\d+ limit=262144 policy=block/.test(srv.stderr()) ? true : undefined,
  )
  // Held back: the server stops reading the connection (live counters at /status: the stats table
  // cannot be written while the journal is locked), so the sender cannot finish.
  await waitFor('the connection paused', async () => {
    const r = await fetch(`http://127.0.0.1:${srv.metricsPort}/status`)
    const { stats } = (await r.json()) as { stats: Record<string, number> }
    return (stats.paused_spool_full_total ?? 0) >= 1 ? true : undefined
  })
  t.true(sender.written() < n, 'the sender was never made to wait')
  // Nothing is journaled while the lock is held, so the backlog is every spool byte on disk.
  const backlog = spoolBytes(srv.spoolDir)
  t.true(backlog <= kQuota + 128 * 1024, `backlog ${backlog} B far over the ${kQuota} B quota`)
  await lock.release()
  await sender.done
  await waitForRows(srv.journalPath, n, 60_000)
  checkFlooded(t, srv.journalPath, n)
  t.regex(srv.stderr(), /spool-full-end backlogBytes=\d+ resumed=1 droppedTotal=0/)
  await waitFor('the pause counter', () =>
    (stat(srv.journalPath, 'paused_spool_full_total') ?? 0) >= 1 ? true : undefined,
  )
  t.is(stat(srv.journalPath, 'dropped_spool_full_total'), 0)
})

test('spool full, "drop": what does not fit is dropped and counted exactly; UDP is dropped too', async (t) => {
  const srv = await startServer(t, {
    config: { spool: { thresholdBytes: 0, maxBytes: kQuota, whenFull: 'drop' } },
  })
  const lock = await holdWriteLock(t, srv.journalPath)
  const n = 20_000
  await flood(srv.tcpPort, n).done
  await sendUdp(
    srv.udpPort,
    Array.from({ length: 50 }, (_, i) => `<13>udp ${i}`),
  )
  // (the stats table cannot be written while the lock is held: the log says it)
  await waitFor('spool-full on stderr', () =>
    /spool-full backlogBytes=\d+ limit=262144 policy=drop/.test(srv.stderr()) ? true : undefined,
  )
  await lock.release()
  // Every message read is either journaled or counted as dropped, never both, never neither.
  await waitFor('received = journaled + dropped', () => {
    const rows = query<{ n: number }>(srv.journalPath, 'SELECT count(*) AS n FROM messages')[0]!.n
    const dropped = stat(srv.journalPath, 'dropped_spool_full_total') ?? 0
    const received =
      (stat(srv.journalPath, 'received_tcp_total') ?? 0) + (stat(srv.journalPath, 'received_udp_total') ?? 0)
    return received === n + 50 && rows + dropped === received && rows > 0 ? true : undefined
  })
  t.true((stat(srv.journalPath, 'dropped_spool_full_total') ?? 0) > 0)
  // The journal caught up, the quota freed: new messages are journaled again.
  await waitFor('spool-full-end', () => (/spool-full-end/.test(srv.stderr()) ? true : undefined))
  await sendTcp(srv.tcpPort, ['<13>after the episode\n'])
  await waitFor('the message after the episode', () =>
    query(srv.journalPath, "SELECT 1 FROM messages WHERE msg = 'after the episode'").length === 1
      ? true
      : undefined,
  )
  t.pass()
})

test('spool.maxUnwrittenBytes: a sender faster than the disk waits for the writer; nothing lost, in order', async (t) => {
  // 64 KiB: one full 64 KiB read encodes to more than that, so the connection is paused after such a
  // read and read again once its records are written.
  const srv = await startServer(t, {
    config: { spool: { thresholdBytes: 0, maxUnwrittenBytes: 65536 } },
  })
  const n = 100_000
  const sender = flood(srv.tcpPort, n)
  await sender.done
  await waitForRows(srv.journalPath, n, 60_000)
  checkFlooded(t, srv.journalPath, n)
  await waitFor('the disk-wait counter', () =>
    (stat(srv.journalPath, 'paused_disk_behind_total') ?? 0) >= 1 ? true : undefined,
  )
  t.is(stat(srv.journalPath, 'dropped_spool_full_total'), 0)
})

test('limits.memoryBytes bounds memory over all connections: past it, they spill', async (t) => {
  const srv = await startServer(t, {
    config: { limits: { memoryBytes: 1024 * 1024 }, spool: { thresholdBytes: 64 * 1024 * 1024 } },
  })
  const lock = await holdWriteLock(t, srv.journalPath)
  await Promise.all(Array.from({ length: 20 }, (_, c) => flood(srv.tcpPort, 2000 + c).done))
  // Each connection sent ~400 KB, far below its 64 MiB threshold: only the global cap makes them spill.
  const spooled = await waitFor('records in the spool', () => {
    const b = spoolBytes(srv.spoolDir)
    return b > 4 * 1024 * 1024 ? b : undefined
  })
  t.true(spooled > 4 * 1024 * 1024)
  await lock.release()
  const total = Array.from({ length: 20 }, (_, c) => 2000 + c).reduce((a, b) => a + b, 0)
  await waitForRows(srv.journalPath, total, 30_000)
  t.is(query<{ n: number }>(srv.journalPath, 'SELECT count(*) AS n FROM messages')[0]!.n, total)
})
