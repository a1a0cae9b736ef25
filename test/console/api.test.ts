import { spawnSync } from 'node:child_process'
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import test from 'ava'
import { startConsole } from '../helpers/console.js'
import { query, rowCount, sendTcp, sendUdp, waitFor, waitForRows } from '../helpers/server.js'

const kMain = new URL('../../src/cli/main.js', import.meta.url).pathname

/** Query processes of this journal still alive (a killed one must be gone). */
function queryProcesses(journalPath: string): number[] {
  const out: number[] = []
  for (const pid of readdirSync('/proc').filter((p) => /^\d+$/.test(p))) {
    try {
      const cmd = readFileSync(`/proc/${pid}/cmdline`, 'utf8')
      if (cmd.includes('query-process.js') && cmd.includes(journalPath)) out.push(Number(pid))
    } catch {
      // gone meanwhile
    }
  }
  return out
}

async function sql(
  url: string,
  text: string,
  extra = '',
): Promise<{ status: number; body: Record<string, unknown> }> {
  const res = await fetch(`${url}/api/sql?sql=${encodeURIComponent(text)}${extra}`)
  return { status: res.status, body: (await res.json()) as Record<string, unknown> }
}

test('the HTTP listener answers GET and HEAD only, on every path, with a CSP that forbids inline script', async (t) => {
  const srv = await startConsole(t)
  for (const path of [
    '/',
    '/metrics',
    '/status',
    '/healthz',
    '/api/rows',
    '/api/sql?sql=select%201',
    '/nope',
  ]) {
    for (const method of ['POST', 'PUT', 'DELETE', 'PATCH']) {
      const res = await fetch(`${srv.url}${path}`, { method, body: method === 'DELETE' ? null : 'x' })
      t.is(res.status, 405, `${method} ${path}`)
      t.is(res.headers.get('allow'), 'GET, HEAD')
    }
  }
  const head = await fetch(`${srv.url}/`, { method: 'HEAD' })
  t.is(head.status, 200)
  t.is(await head.text(), '')
  const page = await fetch(`${srv.url}/`)
  const csp = page.headers.get('content-security-policy') ?? ''
  t.regex(csp, /script-src 'self'/)
  t.notRegex(csp, /unsafe-inline|unsafe-eval/)
  t.is(page.headers.get('x-content-type-options'), 'nosniff')
  // The page itself has no inline script or style to allow.
  const html = await page.text()
  t.notRegex(html, /<script(?![^>]*\bsrc=)[^>]*>/)
  t.notRegex(html, /\son\w+=|style=/)
  t.regex(await (await fetch(`${srv.url}/app/main.js`)).text(), /import/)
  t.regex(await (await fetch(`${srv.url}/app/uPlot.esm.js`)).text(), /uPlot/)
})

test('with metrics.token or user and password set, every path needs them', async (t) => {
  const srv = await startConsole(t, {}, { token: 's3cret-token', user: 'ops', password: 'pw:with:colons' })
  const basic = (u: string, p: string) => `Basic ${Buffer.from(`${u}:${p}`).toString('base64')}`
  for (const path of ['/', '/metrics', '/status', '/healthz', '/api/rows']) {
    const none = await fetch(`${srv.url}${path}`)
    t.is(none.status, 401, path)
    t.regex(none.headers.get('www-authenticate') ?? '', /^Basic realm="spillway"/)
    const h = (authorization: string) => fetch(`${srv.url}${path}`, { headers: { authorization } })
    t.is((await h('Bearer s3cret-token')).status, 200, path)
    t.is((await h(basic('anyone', 's3cret-token'))).status, 200, path) // a browser: the token as password
    t.is((await h(basic('ops', 'pw:with:colons'))).status, 200, path)
    t.is((await h('Bearer wrong')).status, 401, path)
    t.is((await h(basic('ops', 'wrong'))).status, 401, path)
    t.is((await h(basic('root', 'pw:with:colons'))).status, 401, path)
  }
  // spillway stats sends the config's credentials; with wrong ones it says who answered, and how.
  const stats = (config: string) =>
    spawnSync(process.execPath, [kMain, '--config', config, 'stats'], { cwd: srv.dir, encoding: 'utf8' })
  const ok = stats(join(srv.dir, 'config.json'))
  t.is(ok.status, 0, ok.stderr)
  t.regex(ok.stdout, /^health +ok$/m)
  const wrong = join(srv.dir, 'wrong.json')
  const config = JSON.parse(readFileSync(join(srv.dir, 'config.json'), 'utf8'))
  writeFileSync(
    wrong,
    JSON.stringify({ ...config, metrics: { ...config.metrics, token: 'nope', password: '', user: '' } }),
  )
  const refused = stats(wrong)
  t.is(refused.status, 1)
  t.regex(
    refused.stderr,
    /\/status answered, but not with the server's status: HTTP 401: credentials required/,
  )
})

test('rows, histogram and message: filters in the URL, with the CLI words', async (t) => {
  const srv = await startConsole(t)
  await sendTcp(srv.tcpPort, [
    '<11>1 - web1 nginx 1 - - upstream timeout on /api\n',
    '<14>1 - web1 nginx 1 - - GET / 200\n',
    '<12>1 - db1 postgres 7 - [origin@1 ip="10.0.0.5" sw="pg" sw="x"] connection refused by peer\n',
    '<999>not a header\n',
  ])
  await sendUdp(srv.udpPort, ['<14>1 - web2 kernel - - - over udp'])
  await waitForRows(srv.journalPath, 5)
  const rows = async (q: string) => {
    const r = (await (await fetch(`${srv.url}/api/rows?${q}`)).json()) as { rows: { msg: string }[] }
    return r.rows.map((x) => x.msg).sort()
  }
  t.is((await rows('')).length, 5)
  t.deepEqual(await rows('host=web1'), ['GET / 200', 'upstream timeout on /api'])
  t.deepEqual(await rows('app=postgres'), ['connection refused by peer'])
  t.deepEqual(await rows('severity=warning'), ['connection refused by peer', 'upstream timeout on /api'])
  t.deepEqual(await rows('transport=udp'), ['over udp'])
  t.deepEqual(await rows('parse_errors=1'), ['<999>not a header'])
  t.deepEqual(await rows('grep=REFUSED%20by'), ['connection refused by peer'])
  t.is((await rows('peer=127.0.0.1')).length, 5)
  t.deepEqual(await rows('peer=192.0.2.1'), [])
  t.deepEqual(await rows('since=2000-01-01T00:00:00Z&until=2000-01-02T00:00:00Z'), [])
  // Where a live tail of this view starts: the journal's newest row, matched or not.
  const none = (await (await fetch(`${srv.url}/api/rows?host=nobody`)).json()) as { newestId: number }
  t.is(none.newestId, 5)
  const bad = await fetch(`${srv.url}/api/rows?severity=loud`)
  t.is(bad.status, 400)
  t.regex(((await bad.json()) as { error: string }).error, /severity must be emerg, alert/)
  const h = (await (await fetch(`${srv.url}/api/histogram?since=1h&buckets=12`)).json()) as {
    counts: number[][]
  }
  t.is(h.counts.length, 9)
  t.is(
    h.counts.flat().reduce((a, b) => a + b, 0),
    5,
  )
  t.is(
    h.counts[3]!.reduce((a, b) => a + b, 0),
    1,
  ) // err
  t.is(
    h.counts[8]!.reduce((a, b) => a + b, 0),
    1,
  ) // the parse error has no severity
  const id = query<{ id: number }>(srv.journalPath, "SELECT id FROM messages WHERE app = 'postgres'")[0]!.id
  const m = (await (await fetch(`${srv.url}/api/message?id=${id}`)).json()) as { sd: string; host: string }
  t.is(m.host, 'db1')
  t.deepEqual(JSON.parse(m.sd), { 'origin@1': { ip: '10.0.0.5', sw: ['pg', 'x'] } })
  t.is((await fetch(`${srv.url}/api/message?id=999999`)).status, 404)
})

test('live tail: rows journaled after the stream opened arrive as server-sent events', async (t) => {
  const srv = await startConsole(t)
  await sendTcp(srv.tcpPort, ['<13>before\n'])
  await waitForRows(srv.journalPath, 1)
  const ac = new AbortController()
  t.teardown(() => ac.abort())
  const res = await fetch(`${srv.url}/api/live?grep=wanted`, { signal: ac.signal })
  t.regex(res.headers.get('content-type') ?? '', /^text\/event-stream/)
  const reader = res.body!.getReader()
  let text = ''
  void (async () => {
    for (;;) {
      const { value, done } = await reader.read()
      if (done) return
      text += Buffer.from(value).toString()
    }
  })().catch(() => {}) // aborted at the end
  // The stream starts at the newest row: only what is journaled from now on, and only what matches.
  await waitFor('the stream to be polling', () => (text.includes('retry:') ? true : undefined))
  await sendTcp(srv.tcpPort, ['<13>wanted one\n<13>other\n<13>wanted two\n'])
  const events = await waitFor('the wanted rows', () => (/wanted two/.test(text) ? text : undefined))
  t.regex(events, /^id: \d+\nevent: rows\ndata: \[/m)
  t.notRegex(events, /before|"other"/)
  t.regex(events, /wanted one/)
})

test('SQL: a read returns rows (JSON and CSV); ATTACH, load_extension, writing PRAGMAs and writes are refused and change nothing', async (t) => {
  const srv = await startConsole(t, { console: { maxRows: 3 } })
  await sendTcp(srv.tcpPort, ['<13>one\n<13>two\n<13>three\n<13>=HYPERLINK("http://evil","x")\n'])
  await waitForRows(srv.journalPath, 4)
  const ok = await sql(srv.url, 'SELECT id, msg FROM messages ORDER BY id')
  t.is(ok.status, 200)
  t.deepEqual(ok.body.columns, ['id', 'msg'])
  t.deepEqual(ok.body.rows, [
    [1, 'one'],
    [2, 'two'],
    [3, 'three'],
  ])
  t.is(ok.body.truncated, true) // console.maxRows: 3
  const csv = await (
    await fetch(
      `${srv.url}/api/sql?sql=${encodeURIComponent('SELECT msg FROM messages WHERE id = 4')}&format=csv`,
    )
  ).text()
  // A spreadsheet would run a cell starting with "=": it is prefixed with '.
  t.is(csv, `msg\r\n"'=HYPERLINK(""http://evil"",""x"")"\r\n`)
  const other = join(srv.dir, 'other.db')
  for (const [text, want] of [
    [`ATTACH '${other}' AS other`, /ATTACH is refused/],
    ["SELECT load_extension('/tmp/evil.so')", /load_extension is refused/],
    ['PRAGMA query_only = 0', /PRAGMA query_only = \.\.\. is refused/],
    ['PRAGMA journal_mode = DELETE', /refused/],
    ['BEGIN IMMEDIATE', /BEGIN is refused/],
    ['DELETE FROM messages', /DELETE is refused/],
    ['WITH x AS (SELECT 1) DELETE FROM messages', /would write/],
    [`VACUUM INTO '${other}'`, /VACUUM is refused/],
  ] as const) {
    const r = await sql(srv.url, text)
    t.is(r.status, 400, text)
    t.is(r.body.refused, true, text)
    t.regex(String(r.body.error), want, text)
  }
  t.false(existsSync(other))
  t.is(rowCount(srv.journalPath), 4)
})

test('a query past console.timeLimitMs is stopped by killing its process; the next one runs', async (t) => {
  const srv = await startConsole(t, { console: { timeLimitMs: 300 } })
  const forever = 'WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) SELECT count(*) FROM c'
  for (let i = 0; i < 3; i++) {
    const r = await sql(srv.url, forever)
    t.is(r.status, 400)
    t.is(r.body.timeout, true)
    t.regex(String(r.body.error), /took longer than 300 ms \(console\.timeLimitMs\) and was stopped/)
  }
  // Each stopped statement's process is gone: no more than the pool's two remain.
  await waitFor('killed query processes to be gone', () =>
    queryProcesses(srv.journalPath).length <= 2 ? true : undefined,
  )
  const ok = await sql(srv.url, 'SELECT 42 AS answer')
  t.deepEqual(ok.body.rows, [[42]])
})

test('a slow query neither stops ingestion nor lingers once its client goes away', async (t) => {
  const srv = await startConsole(t, { console: { timeLimitMs: 600_000 } })
  const forever = 'WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) SELECT count(*) FROM c'
  const ac = new AbortController()
  let settled = false
  const pending = fetch(`${srv.url}/api/sql?sql=${encodeURIComponent(forever)}`, { signal: ac.signal }).then(
    () => (settled = true),
    () => (settled = true),
  )
  await waitFor('the query to be running', () =>
    queryProcesses(srv.journalPath).length > 0 ? true : undefined,
  )
  // The query runs in another process: the socket thread keeps taking and journaling messages.
  const lines = Array.from({ length: 200 }, (_, i) => `<13>during the query ${i}\n`)
  await sendTcp(srv.tcpPort, [lines.join('')])
  await waitForRows(srv.journalPath, 200)
  t.is((await fetch(`${srv.url}/healthz`)).status, 200)
  t.false(settled)
  ac.abort()
  await pending
  await waitFor('the abandoned query process to be killed', () =>
    queryProcesses(srv.journalPath).length === 0 ? true : undefined,
  )
  t.pass()
})
