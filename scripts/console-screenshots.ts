// The web console's screenshots in docs/, taken in headless Chromium from a real server on a journal
// with an hour of synthetic messages (the server's own schema and tallies), plus a few sent over TCP.
//
//   npm run build && node dist/scripts/console-screenshots.js [--out docs]

import { spawn } from 'node:child_process'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { createConnection } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { parseArgs } from 'node:util'
import Database from 'better-sqlite3'
import { chromium } from 'playwright-core'
import { FullTextIndexer } from '../src/journal/fts.js'
import { kFullTextSchema, kSchema } from '../src/journal/schema.js'
import { SenderTally } from '../src/journal/senders.js'
import { VolumeTally } from '../src/journal/volume.js'
import { freePort } from './bench-util.js'

const { values } = parseArgs({ options: { out: { type: 'string', default: 'docs' } } })
const kMain = new URL('../src/cli/main.js', import.meta.url).pathname
const dir = mkdtempSync(join(tmpdir(), 'spillway-shots-'))
const journal = join(dir, 'journal.db')

let seed = 7
/** mulberry32, as bench-queries: every bit usable. */
function rnd(n: number): number {
  seed = (seed + 0x6d2b79f5) | 0
  let x = Math.imul(seed ^ (seed >>> 15), 1 | seed)
  x = (x + Math.imul(x ^ (x >>> 7), 61 | x)) ^ x
  return Math.floor((((x ^ (x >>> 14)) >>> 0) / 4294967296) * n)
}

const kHosts = ['web1', 'web2', 'web3', 'db1', 'db2', 'fw1', 'lb1', 'mail1']
const kApps: [string, string[]][] = [
  [
    'nginx',
    [
      'GET /api/v1/items/%d HTTP/1.1 200 %d',
      'upstream timed out (110: Connection timed out) while reading response header, request %d',
    ],
  ],
  [
    'sshd',
    [
      'Accepted publickey for deploy from 10.0.%d.%d port 5%d ssh2',
      'Failed password for invalid user admin from 203.0.113.%d port %d ssh2',
    ],
  ],
  [
    'postgres',
    ['connection received: host=10.0.%d.%d port=%d', 'FATAL:  remaining connection slots are reserved (%d)'],
  ],
  [
    'kernel',
    [
      '[UFW BLOCK] IN=eth0 SRC=198.51.100.%d DST=10.0.0.%d PROTO=TCP DPT=%d',
      'eth0: link up, %d Mbps full duplex',
    ],
  ],
  ['cron', ['(root) CMD (run-parts /etc/cron.hourly %d)']],
  [
    'postfix/smtpd',
    [
      'connect from unknown[192.0.2.%d]',
      'NOQUEUE: reject: RCPT from unknown[192.0.2.%d]: 554 5.7.1 Relay access denied %d',
    ],
  ],
]
function severityOf(text: string): number {
  if (/FATAL|Failed/.test(text)) return 3
  if (/timed out|reject|BLOCK/.test(text)) return 4
  return rnd(20) === 0 ? 5 : rnd(10) === 0 ? 7 : 6
}

function fill(): number {
  const db = new Database(journal)
  db.pragma('journal_mode = WAL')
  db.exec(kSchema)
  db.exec(kFullTextSchema)
  const senders = new SenderTally(db)
  const volume = new VolumeTally(db)
  const now = Date.now()
  const start = now - 3_600_000
  db.prepare('UPDATE volume_state SET since = ? WHERE id = 1').run(start)
  const insert = db.prepare(
    `INSERT INTO messages (received_at, ts, facility, severity, host, app, procid, msg, peer, transport)
     VALUES (?, ?, 3, ?, ?, ?, ?, ?, ?, ?)`,
  )
  const n = 6000
  db.transaction(() => {
    for (let i = 0; i < n; i++) {
      // more towards the end of the hour, and a burst of errors 20 minutes ago
      const at = start + Math.floor(Math.sqrt(i / n) * 3_600_000)
      const host = kHosts[rnd(kHosts.length)]!
      const [app, texts] = kApps[rnd(kApps.length)]!
      let text = texts[rnd(texts.length)]!
      while (text.includes('%d')) text = text.replace('%d', String(rnd(250)))
      const burst = Math.abs(at - (now - 1_200_000)) < 120_000 && rnd(3) === 0
      const sev = burst ? 2 : severityOf(text)
      const msg = burst ? 'disk /dev/sda1: I/O error, dev sda, sector 2048' : text
      const peer = `10.0.${kHosts.indexOf(host)}.${10 + kHosts.indexOf(host)}:514`
      insert.run(
        at,
        at - 40,
        sev,
        host,
        burst ? 'kernel' : app,
        String(1000 + rnd(9000)),
        msg,
        peer,
        rnd(5) === 0 ? 'udp' : 'tcp',
      )
      senders.add(host, peer, at, sev)
      volume.add(at, sev)
    }
    senders.flush()
    volume.flush()
  })()
  const indexer = new FullTextIndexer(db)
  while (indexer.step());
  db.close()
  return n
}

function send(port: number, lines: string[]): Promise<void> {
  return new Promise((resolve, reject) => {
    const s = createConnection({ host: '127.0.0.1', port }, () => s.end(lines.join('')))
    s.on('error', reject)
    s.on('close', () => resolve())
  })
}

fill()
const httpPort = await freePort()
writeFileSync(
  join(dir, 'config.json'),
  JSON.stringify({
    listeners: [{ transport: 'tcp', host: '127.0.0.1', port: 0 }],
    metrics: { host: '127.0.0.1', port: httpPort },
    journal: { path: journal },
    spool: { dir: join(dir, 'spool') },
  }),
)
const server = spawn(process.execPath, [kMain, 'serve', '--config', 'config.json'], {
  cwd: dir,
  stdio: ['ignore', 'ignore', 'pipe'],
})
let err = ''
const tcpPort = await new Promise<number>((resolve) => {
  server.stderr!.on('data', (d: Buffer) => {
    err += d
    const m = /listening transport=tcp host=\S+ port=(\d+)/.exec(err)
    if (m && / console url=/.test(err)) resolve(Number(m[1]))
  })
})
await send(tcpPort, [
  '<11>1 - web2 nginx 4242 - [req@32473 id="7f3a" route="/api/v1/items" upstream="10.0.0.21:8080"] upstream timed out (110: Connection timed out) while reading response header\n',
  '<12>1 - fw1 kernel - - - [UFW BLOCK] IN=eth0 SRC=198.51.100.77 DST=10.0.0.5 PROTO=TCP DPT=22\n',
  '<13>1 - evil app - - - <img src=x onerror="alert(1)"> shown as text, never run\n',
])
try {
  await shoot(`http://127.0.0.1:${httpPort}`)
} finally {
  server.kill('SIGTERM')
  await new Promise((r) => server.on('exit', r))
  rmSync(dir, { recursive: true, force: true })
}

/** The five views, each a screenshot in --out. */
async function shoot(base: string): Promise<void> {
  const profile = mkdtempSync(join(tmpdir(), 'spillway-chromium-'))
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: '/usr/bin/chromium',
    headless: true,
    viewport: { width: 1280, height: 760 },
    timezoneId: 'Europe/Berlin',
    args: [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
    ],
  })
  try {
    const page = await context.newPage()
    const shot = async (name: string) => {
      await page.waitForTimeout(300) // let the canvas and layout settle
      await page.screenshot({ path: join(values.out, `console-${name}.png`) })
      process.stdout.write(`${join(values.out, `console-${name}.png`)}\n`)
    }
    await page.goto(`${base}/?since=1h`)
    await page.getByText('shown as text, never run').waitFor()
    await shot('messages')
    await page
      .locator('#rows td.text', {
        hasText: 'upstream timed out (110: Connection timed out) while reading response header',
      })
      .first()
      .click()
    await page.locator('#detail:not([hidden])').waitFor()
    await shot('detail')
    await page.goto(`${base}/?view=senders`)
    await page
      .locator('#senders tbody tr')
      .nth(kHosts.length - 1)
      .waitFor()
    await shot('senders')
    await page.goto(`${base}/?view=health`)
    await page.getByText('Healthy').waitFor()
    await page.waitForTimeout(2500) // a second sample: the rates
    await shot('health')
    await page.goto(
      `${base}/?view=sql&sql=${encodeURIComponent('SELECT host, app, count(*) AS messages, sum(level <= 3) AS errors\nFROM log WHERE received_at > (unixepoch() - 3600) * 1000\nGROUP BY host, app ORDER BY errors DESC LIMIT 12')}`,
    )
    await page.locator('#sql-result tbody tr').first().waitFor()
    await shot('sql')
  } finally {
    await context.close()
    rmSync(profile, { recursive: true, force: true })
  }
}
