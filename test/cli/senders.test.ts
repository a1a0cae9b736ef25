import { execFile, spawnSync } from 'node:child_process'
import { createConnection } from 'node:net'
import { join } from 'node:path'
import { promisify } from 'node:util'
import test from 'ava'
import { need } from '../helpers/programs.js'
import { query, sendTcp, sendUdp, startServer, waitFor, waitForRows } from '../helpers/server.js'

const main = new URL('../../src/cli/main.js', import.meta.url).pathname
const run = promisify(execFile)

test('the senders view and spillway senders: who sends, how much, the worst this hour, who went quiet', async (t) => {
  const srv = await startServer(t)
  await sendTcp(srv.tcpPort, [
    '<14>1 - web1 nginx - - - a\n<11>1 - web1 nginx - - - b\n<14>1 - db1 pg - - - c\n',
    'no header at all\n',
  ])
  await sendUdp(srv.udpPort, ['<12>1 - fw1 fw - - - d'])
  await waitForRows(srv.journalPath, 5)
  const rows = await waitFor('the sender rows', () => {
    const r = query<{
      sender: string
      messages: number
      worst_recent_severity: string
      silent_seconds: number
    }>(
      srv.journalPath,
      'SELECT sender, messages, worst_recent_severity, silent_seconds FROM senders ORDER BY sender',
    )
    return r.length === 4 ? r : undefined
  })
  t.deepEqual(
    rows.map((r) => [r.sender, r.messages, r.worst_recent_severity]),
    [
      ['127.0.0.1', 1, 'notice'], // no host in the message: its address stands in
      ['db1', 1, 'info'],
      ['fw1', 1, 'warning'],
      ['web1', 2, 'err'],
    ],
  )
  t.true(rows.every((r) => r.silent_seconds >= 0 && r.silent_seconds < 60))
  // the view works in the stock sqlite3 shell too
  const { stdout } = await run(need('sqlite3'), [
    srv.journalPath,
    "select messages from senders where sender = 'web1'",
  ])
  t.is(stdout.trim(), '2')
  const cli = (...args: string[]) =>
    spawnSync(process.execPath, [main, '--config', join(srv.dir, 'config.json'), 'senders', ...args], {
      cwd: srv.dir, // relative paths in a config are resolved against the working directory
      encoding: 'utf8',
    })
  const all = cli()
  t.is(all.status, 0, all.stderr)
  t.regex(all.stdout, /web1 +127\.0\.0\.1:\d+ +\S+ +\d+s +2 {2}err/)
  // --quiet 1s: those silent for a second or more. web1 keeps sending, a line every 50 ms, while the
  // others stay silent; the CLI is asked until they have been silent a second (a poll with a deadline;
  // however long the CLI takes to start, web1 was seen within the last 50 ms plus a commit).
  const web1 = createConnection({ host: '127.0.0.1', port: srv.tcpPort })
  const ticker = setInterval(() => web1.write('<14>1 - web1 nginx - - - still here\n'), 50)
  t.teardown(() => {
    clearInterval(ticker)
    web1.destroy()
  })
  await waitFor('web1 seen again', () =>
    (query<{ n: number }>(srv.journalPath, "SELECT messages AS n FROM sender_stats WHERE sender = 'web1'")[0]
      ?.n ?? 0) > 2
      ? true
      : undefined,
  )
  // (Asked asynchronously: spawnSync would stop this process's ticker while the CLI runs.)
  const names = await waitFor('the other three to be quiet for a second', async () => {
    const { stdout } = await run(
      process.execPath,
      [main, '--config', join(srv.dir, 'config.json'), 'senders', '--quiet', '1s', '--json'],
      {
        cwd: srv.dir,
      },
    )
    const q = stdout
      .trim()
      .split('\n')
      .filter((l) => l !== '')
      .map((l) => JSON.parse(l).sender)
      .sort()
    return q.length === 3 ? q : undefined
  })
  t.deepEqual(names, ['127.0.0.1', 'db1', 'fw1'])
  t.is(cli('--quiet', 'soon').status, 2)
})
