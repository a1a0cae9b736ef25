import { spawnSync } from 'node:child_process'
import { join } from 'node:path'
import test from 'ava'
import { freePort } from '../helpers/peers.js'
import {
  holdWriteLock,
  query,
  sendTcp,
  sendUdp,
  startServer,
  waitFor,
  waitForRows,
} from '../helpers/server.js'

const main = new URL('../../src/cli/main.js', import.meta.url).pathname

async function scrape(port: number, path: string): Promise<{ status: number; body: string; type: string }> {
  const res = await fetch(`http://127.0.0.1:${port}${path}`)
  return { status: res.status, body: await res.text(), type: res.headers.get('content-type') ?? '' }
}

function metric(text: string, name: string): number | undefined {
  const m = new RegExp(`^${name.replace(/[{}]/g, '\\$&')} (\\S+)$`, 'm').exec(text)
  return m ? Number(m[1]) : undefined
}

test('/metrics in Prometheus text, /healthz failing while the journal cannot be written, spillway stats', async (t) => {
  const port = await freePort()
  const srv = await startServer(t, { config: { metrics: { host: '127.0.0.1', port } } })
  await waitFor('the metrics line', () =>
    new RegExp(`metrics url=http://127\\.0\\.0\\.1:${port}/metrics`).test(srv.stderr()) ? true : undefined,
  )
  await sendTcp(srv.tcpPort, ['<13>one\n<13>two\n<999>bad\n'])
  await sendUdp(srv.udpPort, ['<13>three'])
  await waitForRows(srv.journalPath, 4)
  const m = await waitFor('journaled in metrics', async () => {
    const r = await scrape(port, '/metrics')
    return metric(r.body, 'spillway_messages_journaled_total') === 4 ? r : undefined
  })
  t.regex(m.type, /^text\/plain; version=0\.0\.4/)
  t.regex(m.body, /# TYPE spillway_messages_received_total counter/)
  t.is(metric(m.body, 'spillway_messages_received_total{transport="tcp"}'), 3)
  t.is(metric(m.body, 'spillway_messages_received_total{transport="udp"}'), 1)
  t.is(metric(m.body, 'spillway_parse_errors_total'), 1)
  t.is(metric(m.body, 'spillway_messages_dropped_total{reason="spool_full"}'), 0)
  t.is(metric(m.body, 'spillway_journal_lag_seconds'), 0)
  t.regex(m.body, /^spillway_event_loop_delay_p99_seconds \S+$/m)
  // Each tick's own delay is at most its delay, so each percentile is too.
  const own = metric(m.body, 'spillway_event_loop_delay_own_p99_seconds') ?? -1
  t.true(own >= 0 && own <= metric(m.body, 'spillway_event_loop_delay_p99_seconds')!, String(own))
  t.regex(m.body, /^# TYPE spillway_socket_thread_cpu_wait_seconds_total counter$/m)
  t.true((metric(m.body, 'spillway_socket_thread_cpu_wait_seconds_total') ?? -1) >= 0)
  t.regex(m.body, /^spillway_spool_bytes \d+$/m)
  // prom-client's default collectors: the process and the Node runtime, as every Node exporter has them.
  t.true((metric(m.body, 'process_cpu_user_seconds_total') ?? -1) > 0)
  t.true((metric(m.body, 'process_resident_memory_bytes') ?? -1) > 0)
  t.true((metric(m.body, 'nodejs_heap_size_used_bytes') ?? -1) > 0)
  t.regex(m.body, /^nodejs_eventloop_lag_p99_seconds \S+$/m)
  t.is((await scrape(port, '/healthz')).status, 200)
  const stats = spawnSync(process.execPath, [main, '--config', join(srv.dir, 'config.json'), 'stats'], {
    cwd: srv.dir,
    encoding: 'utf8',
  })
  t.is(stats.status, 0, stats.stderr)
  t.regex(stats.stdout, /^rate +\d+ msgs\/s in, \d+ rows\/s journaled$/m)
  t.regex(stats.stdout, /^health +ok$/m)
  t.regex(stats.stdout, /loop p99 [\d.]+ ms \([\d.]+ ms its own, without waits for a CPU\)$/m)
  t.regex(stats.stdout, /received +4 \(tcp 3, tls 0, udp 1\); journaled 4/)
  t.regex(
    stats.stdout,
    /^spool +[\d.]+ MB in \d+ segment\(s\) not yet journaled; oldest ~[\d.]+ s old \(journal lag\)$/m,
  )
  t.regex(m.body, /^spillway_spool_segments \d+$/m)
  // A write lock held elsewhere: the journal cannot be written, and health says so.
  const lock = await holdWriteLock(srv.journalPath)
  await sendTcp(srv.tcpPort, ['<13>held\n'])
  const h = await waitFor('unhealthy', async () => {
    const r = await scrape(port, '/healthz')
    return r.status === 503 ? r : undefined
  })
  t.regex(h.body, /journal: cannot be written \(SQLITE_BUSY\)/)
  await lock.release()
  await waitFor('healthy again', async () =>
    (await scrape(port, '/healthz')).status === 200 ? true : undefined,
  )
  t.is((await scrape(port, '/nope')).status, 404)
  t.is(await srv.stop(), 0)
  const down = spawnSync(process.execPath, [main, '--config', join(srv.dir, 'config.json'), 'stats'], {
    cwd: srv.dir,
    encoding: 'utf8',
  })
  t.is(down.status, 1)
  t.regex(down.stderr, /no server answers at http:\/\/127\.0\.0\.1:\d+\/status .*is spillway serve running/)
})

test('spillway stats without a metrics listener reads the journal stats table and says so', async (t) => {
  const srv = await startServer(t)
  await sendTcp(srv.tcpPort, ['<13>one\n'])
  await waitForRows(srv.journalPath, 1)
  await new Promise((r) => setTimeout(r, 2200)) // the stats table is refreshed every 2 s
  const r = spawnSync(process.execPath, [main, '--config', join(srv.dir, 'config.json'), 'stats'], {
    cwd: srv.dir,
    encoding: 'utf8',
  })
  t.is(r.status, 0, r.stderr)
  t.regex(r.stdout, /this config has no metrics listener/)
  t.regex(r.stdout, /received +1 \(tcp 1, tls 0, udp 0\)/)
})

test('the stats table stores counters as integers, so they read back as 2, not 2.0', async (t) => {
  const srv = await startServer(t)
  await sendTcp(srv.tcpPort, ['<13>one\n<13>two\n'])
  await waitForRows(srv.journalPath, 2)
  const types = await waitFor('the stats table to count the rows', () => {
    const rows = query<{ name: string; value: number; type: string }>(
      srv.journalPath,
      'SELECT name, value, typeof(value) AS type FROM stats',
    )
    const by = Object.fromEntries(rows.map((r) => [r.name, r]))
    return by.journal_rows_total?.value === 2 ? by : undefined
  })
  t.is(types.journal_rows_total!.type, 'integer')
  t.is(types.received_tcp_total!.type, 'integer')
  t.is(types.rss_bytes!.type, 'integer')
  // A CLI user sees "2", not "2.0".
  const cli = spawnSync(
    'sqlite3',
    [srv.journalPath, "SELECT value FROM stats WHERE name = 'journal_rows_total'"],
    {
      encoding: 'utf8',
    },
  )
  t.is(cli.stdout.trim(), '2')
})
