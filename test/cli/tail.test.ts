import { spawn, spawnSync } from 'node:child_process'
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import test from 'ava'
import { sendTcp, startServer, stat, tempDir, waitFor, waitForRows } from '../helpers/server.js'

const main = new URL('../../src/cli/main.js', import.meta.url).pathname

function tail(dir: string, ...args: string[]): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [main, '--config', join(dir, 'config.json'), 'tail', ...args], {
    cwd: dir,
    encoding: 'utf8',
  })
  return { status: r.status, stdout: r.stdout, stderr: r.stderr }
}

const kLines = [
  '<11>1 2026-11-23T10:00:00Z web1 nginx 12 - - upstream timeout on /api\n',
  '<14>1 2026-11-23T10:00:01Z web1 nginx 12 - - GET / 200\n',
  '<12>1 2026-11-23T10:00:02Z db1 postgres 7 - - connection refused by peer\n',
  '<14>1 2026-11-23T10:00:03Z db1 cron - - - job done\n',
  '<10>1 2026-11-23T10:00:04Z web2 kernel - - - Out of memory: Killed process\n',
]

test('tail shows the newest rows, filtered by host, app, severity, time and text', async (t) => {
  const srv = await startServer(t)
  await sendTcp(srv.tcpPort, [kLines.join('')])
  await waitForRows(srv.journalPath, 5)
  const all = tail(srv.dir)
  t.is(all.status, 0, all.stderr)
  const lines = all.stdout.trim().split('\n')
  t.is(lines.length, 5)
  t.regex(
    lines[0]!,
    /^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3} web1 nginx\[12\] err: upstream timeout on \/api$/,
  )
  t.regex(lines[3]!, / db1 cron info: job done$/)
  t.is(tail(srv.dir, '-n', '2').stdout.trim().split('\n').length, 2)
  t.deepEqual(
    tail(srv.dir, '--host', 'db1')
      .stdout.trim()
      .split('\n')
      .map((l) => l.split(': ').at(-1)),
    ['connection refused by peer', 'job done'],
  )
  t.deepEqual(
    tail(srv.dir, '--severity', 'err')
      .stdout.trim()
      .split('\n')
      .map((l) => l.split(' ')[3]),
    ['nginx[12]', 'kernel'],
  )
  t.regex(tail(srv.dir, '--app', 'postgres').stdout, /postgres\[7\] warning: connection refused by peer/)
  t.regex(tail(srv.dir, '--grep', 'TIMEOUT').stdout, /upstream timeout/)
  t.is(tail(srv.dir, '--grep', 'TIMEOUT').stdout.trim().split('\n').length, 1)
  t.is(tail(srv.dir, '--since', '1h').stdout.trim().split('\n').length, 5)
  t.is(tail(srv.dir, '--since', '2099-01-01T00:00:00Z').stdout, '')
  const json = tail(srv.dir, '--json', '-n', '1').stdout.trim()
  t.like(JSON.parse(json), { host: 'web2', app: 'kernel', severity: 2, msg: 'Out of memory: Killed process' })
})

test('tail --grep matches text inside words, the same before and after the full-text index catches up', async (t) => {
  const srv = await startServer(t)
  const lines = ['<13>fooxxxxbar', '<13>xxxx', '<13>XXXX alone', '<13>xx xx', '<13>ÉCOLE', '<13>école']
  await sendTcp(srv.tcpPort, [`${lines.join('\n')}\n`])
  await waitForRows(srv.journalPath, lines.length)
  const grep = (text: string) =>
    tail(srv.dir, '-n', '100', '--grep', text)
      .stdout.trim()
      .split('\n')
      .map((l) => l.split(': ').at(-1))
  const before = [grep('xxxx'), grep('école'), grep('x x')]
  await waitFor('the index to catch up', () =>
    (stat(srv.journalPath, 'fts_indexed_to') ?? 0) >= lines.length ? true : undefined,
  )
  const after = [grep('xxxx'), grep('école'), grep('x x')]
  t.deepEqual(after, before)
  t.deepEqual(after, [['fooxxxxbar', 'xxxx', 'XXXX alone'], ['école'], ['xx xx']])
})

test('tail -f prints the newest matching rows, then follows the rows journaled after them', async (t) => {
  const srv = await startServer(t)
  await sendTcp(srv.tcpPort, ['<13>follow: the one before\n<13>not this one either\n'])
  await waitForRows(srv.journalPath, 2)
  const p = spawn(
    process.execPath,
    [main, '--config', join(srv.dir, 'config.json'), 'tail', '-f', '--grep', 'follow'],
    { cwd: srv.dir },
  )
  t.teardown(() => p.kill())
  let out = ''
  let err = ''
  p.stdout.on('data', (d: Buffer) => {
    out += d.toString()
  })
  p.stderr.on('data', (d: Buffer) => {
    err += d.toString()
  })
  p.on('exit', (code) => {
    err += `[exited ${code}]`
  })
  // The first line is printed once tail has fixed where following starts; only rows journaled after
  // it can appear from here on, and only by following.
  await waitFor('the row from before', () => (/the one before/.test(out) ? true : undefined)).catch(
    (e: Error) => {
      throw new Error(`${e.message}; tail printed ${JSON.stringify(out)}, stderr ${JSON.stringify(err)}`)
    },
  )
  t.is(out.trim().split('\n').length, 1)
  await sendTcp(srv.tcpPort, ['<13>not this one\n<13>follow me\n'])
  await waitFor('the followed row', () => (/follow me/.test(out) ? true : undefined))
  const lines = out.trim().split('\n')
  t.is(lines.length, 2, out)
  t.regex(lines[1]!, /follow me$/)
})

test('tail says clearly when there is no journal, and rejects bad options', (t) => {
  const dir = tempDir(t)
  writeFileSync(join(dir, 'config.json'), '{}')
  const none = tail(dir)
  t.is(none.status, 1)
  t.regex(none.stderr, /no journal at .*journal\.db: start the server/)
  t.is(tail(dir, '--severity', 'loud').status, 2)
  t.is(tail(dir, '--since', 'yesterday-ish').status, 2)
  t.is(tail(dir, '--bogus').status, 2)
})
