import { spawn, spawnSync } from 'node:child_process'
import { chmodSync } from 'node:fs'
import { createConnection } from 'node:net'
import { join } from 'node:path'
import test from 'ava'
import { need } from '../helpers/programs.js'
import {
  holdWriteLock,
  query,
  sendTcp,
  sendUdp,
  startServer,
  stat,
  unprivileged,
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
  const srv = await startServer(t, { metrics: true })
  const port = srv.metricsPort
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
  t.regex(stats.stdout, /received +4 \(tcp 3, tls 0, udp 1, relp 0\); journaled 4/)
  t.regex(
    stats.stdout,
    /^spool +[\d.]+ MB in \d+ segment\(s\) not yet journaled; oldest ~[\d.]+ s old \(journal lag\)$/m,
  )
  t.regex(m.body, /^spillway_spool_segments \d+$/m)
  // A write lock held elsewhere: the journal cannot be written, and health says so.
  const lock = await holdWriteLock(t, srv.journalPath)
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
  t.regex(down.stderr, /the server is not running: no answer at http:\/\/127\.0\.0\.1:\d+\/status \(/)
})

function stats(dir: string, ...args: string[]) {
  return spawnSync(process.execPath, [main, '--config', join(dir, 'config.json'), 'stats', ...args], {
    cwd: dir,
    encoding: 'utf8',
  })
}

test('spillway stats without a metrics listener reads the stats table, and exits 1 once the server stopped', async (t) => {
  const srv = await startServer(t)
  await sendTcp(srv.tcpPort, ['<13>one\n'])
  await waitFor('the stats table to count the message', () =>
    stat(srv.journalPath, 'received_tcp_total') === 1 ? true : undefined,
  )
  const r = stats(srv.dir)
  t.is(r.status, 0, r.stderr)
  t.regex(r.stdout, /from the journal's stats table, written \d+ s ago: this config has no metrics listener/)
  t.regex(r.stdout, /^health +ok$/m)
  t.regex(r.stdout, /received +1 \(tcp 1, tls 0, udp 0, relp 0\)/)
  t.is(await srv.stop(), 0)
  // As systemctl is-active would: not running is exit 1, said plainly, with the last figures.
  const down = stats(srv.dir)
  t.is(down.status, 1)
  t.regex(down.stdout, /^health +not running \(stopped \d+ s ago, at \d{4}-/m)
  t.regex(down.stdout, /received +1 \(tcp 1, tls 0, udp 0, relp 0\)/)
  t.regex(down.stderr, /^spillway: the server is not running \(stopped/m)
})

test('spillway stats --watch without a metrics listener prints every 2 s until the server stops, then exits 1', async (t) => {
  const srv = await startServer(t)
  await waitFor('the first figures', () => (stat(srv.journalPath, 'server_running') === 1 ? true : undefined))
  const watch = spawn(
    process.execPath,
    [main, '--config', join(srv.dir, 'config.json'), 'stats', '--watch'],
    {
      cwd: srv.dir,
    },
  )
  t.teardown(() => watch.kill('SIGKILL'))
  let out = ''
  let err = ''
  watch.stdout.on('data', (d: Buffer) => {
    out += d
  })
  watch.stderr.on('data', (d: Buffer) => {
    err += d
  })
  const exited = new Promise<number | null>((resolve) => watch.on('exit', (code) => resolve(code)))
  await waitFor(
    'two rounds of figures',
    () => ((out.match(/^health +ok$/gm) ?? []).length >= 2 ? true : undefined),
    20_000,
  )
  t.is(await srv.stop(), 0)
  t.is(await exited, 1)
  t.regex(out, /^health +not running \(stopped/m)
  t.regex(err, /the server is not running/)
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

test('bytes waiting in the spool writer (the disk refusing writes) count as memory in stats, /metrics and spillway stats', async (t) => {
  const srv = await startServer(t, {
    wrap: unprivileged(),
    metrics: true,
    config: { spool: { thresholdBytes: 65536 } },
  })
  const port = srv.metricsPort
  // The journal cannot commit (a write lock held elsewhere), so the connection spills; and the segment
  // cannot be created, so what it spills waits in the writer's memory, retried every second.
  const lock = await holdWriteLock(t, srv.journalPath)
  t.teardown(() => lock.release())
  await sendTcp(srv.tcpPort, ['<13>1 - mem app - - - first\n'])
  await waitFor('journal-busy', () => (/journal-busy code=SQLITE_BUSY/.test(srv.stderr()) ? true : undefined))
  chmodSync(srv.spoolDir, 0o555)
  const n = 20_000
  let text = ''
  for (let i = 0; i < n; i++) text += `<13>1 - mem app - - - waiting ${i} ${'m'.repeat(100)}\n`
  await sendTcp(srv.tcpPort, [text])
  await waitFor('spool-error', () => (/spool-error .*error=EACCES/.test(srv.stderr()) ? true : undefined))
  const status = await waitFor('every message read', async () => {
    const s = JSON.parse((await scrape(port, '/status')).body) as { stats: Record<string, number> }
    return s.stats.received_tcp_total === n + 1 ? s.stats : undefined
  })
  t.true(status.memory_lane_bytes! > 0, String(status.memory_lane_bytes))
  t.true(status.spool_unwritten_bytes! > text.length / 2, String(status.spool_unwritten_bytes))
  t.is(
    status.memory_buffered_bytes,
    status.memory_lane_bytes! + status.spool_unwritten_bytes! + status.partial_frame_bytes!,
  )
  t.true(status.memory_buffered_bytes! > text.length, String(status.memory_buffered_bytes))
  const m = await scrape(port, '/metrics')
  t.true(metric(m.body, 'spillway_memory_buffered_bytes')! > text.length)
  t.true(metric(m.body, 'spillway_memory_buffered_part_bytes{part="spool_unwritten"}')! > text.length / 2)
  const stats = spawnSync(process.execPath, [main, '--config', join(srv.dir, 'config.json'), 'stats'], {
    cwd: srv.dir,
    encoding: 'utf8',
  })
  const mb =
    /^memory +([\d.]+) MB held in memory, not yet on disk \(memory lanes [\d.]+ MB, spool writes ([\d.]+) MB, partial frames 0\.0 MB\); RSS/m.exec(
      stats.stdout,
    )
  t.truthy(mb, stats.stdout)
  t.true(Number(mb![1]) >= 2 && Number(mb![2]) >= 1, stats.stdout)
  chmodSync(srv.spoolDir, 0o755)
  await lock.release()
  await waitForRows(srv.journalPath, n + 1, 60_000)
  const after = await waitFor('nothing held any more', async () => {
    const s = JSON.parse((await scrape(port, '/status')).body) as { stats: Record<string, number> }
    return s.stats.memory_buffered_bytes === 0 ? s.stats : undefined
  })
  t.is(after.spool_unwritten_bytes, 0)
  t.is(await srv.stop(), 0)
})

test('spillway stats --watch prints a block at each refresh that follows the server, and exits 1 once it is gone', async (t) => {
  const srv = await startServer(t, { metrics: true })
  const p = spawn(process.execPath, [main, '--config', join(srv.dir, 'config.json'), 'stats', '--watch'], {
    cwd: srv.dir,
  })
  t.teardown(() => p.kill())
  let out = ''
  let err = ''
  p.stdout.on('data', (d: Buffer) => {
    out += d.toString()
  })
  p.stderr.on('data', (d: Buffer) => {
    err += d.toString()
  })
  const exited = new Promise<number | null>((resolve) => p.on('exit', (code) => resolve(code)))
  /** The blocks printed so far: a time line, then the figures. */
  const blocks = () => out.split(/\n(?=\d{4}-\d\d-\d\dT[\d:.]+Z\n)/).filter((b) => /^\d{4}-/.test(b.trim()))
  const blockWith = (what: string, re: RegExp) => waitFor(what, () => blocks().find((b) => re.test(b)))
  const first = await blockWith('a first block', /^health +ok$/m)
  t.regex(first, /^rate +\d+ msgs\/s in, \d+ rows\/s journaled$/m)
  await sendTcp(srv.tcpPort, ['<13>one\n<13>two\n'])
  await blockWith(
    'the messages in a later block',
    /^received +2 \(tcp 2, tls 0, udp 0, relp 0\); journaled 2$/m,
  )
  // The journal held by another writer: a later block says so (the watch goes on while unhealthy).
  const lock = await holdWriteLock(t, srv.journalPath)
  await sendTcp(srv.tcpPort, ['<13>three\n'])
  await blockWith('unhealthy', /^health +journal: cannot be written \(SQLITE_BUSY\)$/m)
  await lock.release()
  await blockWith('healthy again with three', /^received +3 .*journaled 3$/m)
  t.is(p.exitCode, null, 'still watching')
  t.is(await srv.stop(), 0)
  t.is(await exited, 1)
  t.regex(err, /the server is not running: no answer at http:\/\/127\.0\.0\.1:\d+\/status/)
})

// README: /healthz answers 503 when "a listener is down". A listening socket destroyed under the server
// (here with ss -K, as root) gives Node no event; the listener asks the kernel (SO_ACCEPTCONN).
const asRoot = process.getuid?.() === 0 ? test : test.skip
asRoot(
  `/healthz answers 503 once a TCP listener no longer listens${process.getuid?.() === 0 ? '' : ' (skipped: ss -K needs root)'}`,
  async (t) => {
    const srv = await startServer(t, { metrics: true })
    spawnSync(need('ss'), ['-K', 'state', 'listening', `sport = :${srv.tcpPort}`], { stdio: 'ignore' })
    const refused = await new Promise<boolean>((resolve) => {
      const c = createConnection({ host: '127.0.0.1', port: srv.tcpPort }, () => {
        c.destroy()
        resolve(false)
      })
      c.on('error', () => resolve(true))
    })
    t.true(refused, 'the listener still accepts: ss -K did not take it down')
    const h = await waitFor(
      'unhealthy',
      async () => {
        const r = await scrape(srv.metricsPort, '/healthz')
        return r.status === 503 ? r : undefined
      },
      3000,
    )
    t.regex(h.body, /^listener tcp 127\.0\.0\.1:0: down$/m)
    await waitFor('listener-down on stderr', () =>
      /listener-down transport=tcp/.test(srv.stderr()) ? true : undefined,
    )
  },
)
