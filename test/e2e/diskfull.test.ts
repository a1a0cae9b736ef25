// The spool and the journal on real, awkward filesystems mounted for the test (needs root, as CI runs):
// a small tmpfs (disk full), and ramfs, which refuses O_DIRECT.
import { execFileSync } from 'node:child_process'
import { mkdirSync, rmSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import anyTest, { type ExecutionContext } from 'ava'
import { need } from '../helpers/programs.js'
import { holdWriteLock, query, sendTcp, startServer, tempDir, waitFor } from '../helpers/server.js'

// Mounting needs root (CI runs as root); elsewhere these are skipped, and say so in ava's output.
const test: (title: string, fn: (t: ExecutionContext) => Promise<void>) => void =
  process.getuid?.() === 0 ? anyTest : anyTest.skip

function tmpfs(t: ExecutionContext, size: string): string {
  const dir = join(tempDir(t), 'small')
  mkdirSync(dir)
  execFileSync(need('mount'), ['-t', 'tmpfs', '-o', `size=${size}`, 'tmpfs', dir])
  t.teardown(() => execFileSync('umount', ['-l', dir]))
  return dir
}

function lines(tag: string, n: number): string {
  let s = ''
  for (let i = 0; i < n; i++)
    s += `<13>1 - full app - - - ${tag} ${String(i).padStart(6, '0')} ${'z'.repeat(100)}\n`
  return s
}

function count(journalPath: string, tag: string): number {
  return query<{ n: number }>(
    journalPath,
    'SELECT count(*) AS n FROM messages WHERE msg LIKE ?',
    `${tag} %`,
  )[0]!.n
}

test('spool disk full (ENOSPC): logged once, /healthz says so, nothing lost, recovers by itself when space returns', async (t) => {
  const small = tmpfs(t, '2m')
  // Fill most of it, leaving the spool ~256 KiB.
  writeFileSync(join(small, 'filler'), Buffer.alloc(1792 * 1024))
  const dir = tempDir(t)
  const srv = await startServer(t, {
    dir,
    metrics: true,
    config: {
      spool: { dir: join(small, 'spool'), thresholdBytes: 0, segmentBytes: 65536 },
      journal: { path: join(dir, 'journal.db') },
    },
  })
  // The journal held meanwhile: no segment is journaled and deleted, so no space comes back before the
  // filler goes, and the episode is one episode however fast the journal would replay.
  const lock = await holdWriteLock(t, srv.journalPath)
  const n = 5000 // ~700 KB of records: far more than the space left
  // Durable mode: a sender whose records cannot be written waits (it is not read again) until they are.
  const a = sendTcp(srv.tcpPort, [lines('a', n)])
  await waitFor('spool-error ENOSPC', () =>
    /spool-error .*error=ENOSPC/.test(srv.stderr()) ? true : undefined,
  )
  const health = await fetch(`http://127.0.0.1:${srv.metricsPort}/healthz`)
  t.is(health.status, 503)
  t.regex(await health.text(), /^spool: cannot be written \(see spool-error on stderr\)$/m)
  // Still serving while the disk is full: a new sender is accepted (its first read waits in memory).
  const b = sendTcp(srv.tcpPort, [lines('b', 10)])
  rmSync(join(small, 'filler'))
  await waitFor('spool-recovered', () => (/spool-recovered/.test(srv.stderr()) ? true : undefined))
  await lock.release()
  await Promise.all([a, b])
  await waitFor('every message journaled', () =>
    count(srv.journalPath, 'a') === n && count(srv.journalPath, 'b') === 10 ? true : undefined,
  )
  t.is(srv.stderr().match(/spool-error/g)?.length, 1, 'the episode is logged once, not per attempt')
  await waitFor('healthy again', async () =>
    (await fetch(`http://127.0.0.1:${srv.metricsPort}/healthz`)).status === 200 ? true : undefined,
  )
  const dupes = query<{ n: number }>(
    srv.journalPath,
    'SELECT count(*) - count(DISTINCT msg) AS n FROM messages',
  )[0]!.n
  t.is(dupes, 0)
  t.is(await srv.stop(), 0)
})

test('journal disk full (SQLITE_FULL): logged once, connections spill, recovers when space returns', async (t) => {
  const small = tmpfs(t, '8m')
  const dir = tempDir(t)
  const journalPath = join(small, 'journal.db')
  const srv = await startServer(t, {
    dir,
    config: { journal: { path: journalPath, fullText: false }, spool: { thresholdBytes: 65536 } },
  })
  // Fill the filesystem around the journal, then send more than fits.
  writeFileSync(join(small, 'filler'), Buffer.alloc(7 * 1024 * 1024))
  const n = 10_000 // ~3 MB of journal with its indexes: more than is left, less than the whole
  await sendTcp(srv.tcpPort, [lines('c', n)])
  await waitFor('journal-busy SQLITE_FULL', () =>
    /journal-busy code=SQLITE_FULL/.test(srv.stderr()) ? true : undefined,
  )
  rmSync(join(small, 'filler'))
  await waitFor('every message journaled', () => (count(journalPath, 'c') === n ? true : undefined)).catch(
    (err) => {
      t.log(srv.stderr())
      throw err
    },
  )
  // The worker thread's stderr reaches the process's asynchronously: the line may follow the rows.
  await waitFor('journal-recovered', () =>
    /journal-recovered after=SQLITE_FULL/.test(srv.stderr()) ? true : undefined,
  )
  // Once per episode, not per retry (every 100 ms): each journal-busy is followed by its
  // journal-recovered before the next. (Space a checkpoint frees can end an episode before the filler
  // goes, and the next batch start another: how many depends on timing, their alternation does not.)
  const episodes = [...srv.stderr().matchAll(/journal-(busy|recovered)/g)].map((m) => m[1])
  t.true(episodes.length >= 2, episodes.join(' '))
  t.true(
    episodes.every((e, i) => e === (i % 2 === 0 ? 'busy' : 'recovered')),
    `busy and recovered do not alternate: ${episodes.join(' ')}`,
  )
  const check = query<{ integrity_check: string }>(journalPath, 'PRAGMA integrity_check')
  t.deepEqual(check, [{ integrity_check: 'ok' }])
  t.is(await srv.stop(), 0)
})

test('spool disk full with limits.memoryBytes reached: the spool.whenFull policy applies ("drop" here), counted', async (t) => {
  // Memory mode, with a threshold the first read passes: spilling connections are read on while their
  // records wait for the disk (durable mode would make them wait instead, see the test above).
  const small = tmpfs(t, '2m')
  writeFileSync(join(small, 'filler'), Buffer.alloc(1792 * 1024))
  const dir = tempDir(t)
  const srv = await startServer(t, {
    dir,
    config: {
      limits: { memoryBytes: 1024 * 1024 },
      spool: { dir: join(small, 'spool'), thresholdBytes: 1024, segmentBytes: 65536, whenFull: 'drop' },
      journal: { path: join(dir, 'journal.db') },
    },
  })
  // The journal held meanwhile: nothing in memory is committed and no segment is deleted, so no space
  // comes back and nothing leaves memory before the filler goes, however fast this machine journals.
  const lock = await holdWriteLock(t, srv.journalPath)
  // First fill the disk; then, while writes fail, send far more than the 1 MiB that may wait in memory.
  const first = 3000
  const n = 20_000 // ~3 MB in all
  const all = lines('d', n)
  const cut = all.indexOf(`d ${String(first).padStart(6, '0')} `) - '<13>1 - full app - - - '.length
  await sendTcp(srv.tcpPort, [all.slice(0, cut)])
  await waitFor('spool-error ENOSPC', () =>
    /spool-error .*error=ENOSPC/.test(srv.stderr()) ? true : undefined,
  )
  await sendTcp(srv.tcpPort, [all.slice(cut)])
  await waitFor('spool-full on stderr', () =>
    /spool-full .*policy=drop/.test(srv.stderr()) ? true : undefined,
  )
  rmSync(join(small, 'filler'))
  await lock.release()
  const stat = (name: string) =>
    query<{ value: number }>(srv.journalPath, 'SELECT value FROM stats WHERE name = ?', name)[0]?.value ?? 0
  await waitFor('received = journaled + dropped', () => {
    const dropped = stat('dropped_spool_full_total')
    return dropped > 0 && stat('received_tcp_total') === n && count(srv.journalPath, 'd') + dropped === n
      ? true
      : undefined
  })
  t.pass()
})

test('a spool on a filesystem that refuses O_DIRECT (ramfs): said once, written through the page cache, nothing lost', async (t) => {
  const ram = join(tempDir(t), 'ram')
  mkdirSync(ram)
  execFileSync(need('mount'), ['-t', 'ramfs', 'ramfs', ram])
  t.teardown(() => execFileSync('umount', ['-l', ram]))
  const dir = tempDir(t)
  const srv = await startServer(t, {
    dir,
    config: {
      spool: { dir: join(ram, 'spool'), thresholdBytes: 0, segmentBytes: 1024 * 1024 },
      journal: { path: join(dir, 'journal.db') },
    },
  })
  const n = 40_000 // ~5 MB: writes far above the direct-write size, and several segments
  await Promise.all([sendTcp(srv.tcpPort, [lines('r', n / 2)]), sendTcp(srv.tcpPort, [lines('s', n / 2)])])
  await waitFor('every message journaled', () =>
    count(srv.journalPath, 'r') === n / 2 && count(srv.journalPath, 's') === n / 2 ? true : undefined,
  )
  t.is(srv.stderr().match(/spool-direct-off /g)?.length, 1, srv.stderr())
  t.regex(srv.stderr(), /spool-direct-off .*error=EINVAL/)
  const direct = await waitFor(
    'the stats table',
    () =>
      query<{ value: number }>(
        srv.journalPath,
        "SELECT value FROM stats WHERE name = 'spool_direct_bytes_written_total'",
      )[0],
  )
  t.is(direct.value, 0)
  t.is(await srv.stop(), 0)
})
