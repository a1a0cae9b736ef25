import { spawnSync } from 'node:child_process'
import { createSocket } from 'node:dgram'
import { readFileSync, writeFileSync } from 'node:fs'
import { createServer } from 'node:net'
import { join } from 'node:path'
import test from 'ava'
import { kShortUsage, kUsage } from '../../src/cli/help.js'
import { tempDir } from '../helpers/server.js'

const main = new URL('../../src/cli/main.js', import.meta.url).pathname
const readme = readFileSync(new URL('../../../README.md', import.meta.url), 'utf8')

function spillway(args: string[], cwd?: string): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [main, ...args], { cwd, encoding: 'utf8', timeout: 20_000 })
  return { status: r.status, stdout: r.stdout, stderr: r.stderr }
}

test('--help prints the usage the README shows, and every config key', (t) => {
  const r = spillway(['--help'])
  t.is(r.status, 0)
  t.true(r.stdout.startsWith(kUsage))
  t.true(readme.includes(kUsage), 'README.md must contain the --help usage text verbatim')
  for (const key of ['listeners', 'limits.maxMessageBytes', 'spool.thresholdBytes', 'journal.synchronous']) {
    t.true(r.stdout.includes(key), key)
  }
  t.is(spillway(['help']).stdout, r.stdout)
})

test('bare spillway prints a short usage pointing at --help, and exits 2', (t) => {
  const r = spillway([])
  t.is(r.status, 2)
  t.is(r.stdout, '')
  t.is(r.stderr, kShortUsage)
  const lines = r.stderr.trimEnd().split('\n')
  t.true(lines.length <= 15, `${lines.length} lines`)
  t.regex(lines.at(-1)!, /spillway --help/)
  // every command of the full usage is in the short one
  const commands = kUsage.slice(kUsage.indexOf('Commands:'), kUsage.indexOf('Options:'))
  for (const m of commands.matchAll(/^ {2}([a-z-]+) /gm))
    if (m[1] !== 'help') t.true(r.stderr.includes(`  ${m[1]} `), m[1])
})

test('bad usage exits 2 with a message saying what is wrong', (t) => {
  for (const [args, want] of [
    [['frobnicate'], /unknown command frobnicate/],
    [['serve', '--port', '1'], /unknown option --port/],
    [['serve', '--config'], /--config needs a file name/],
    [[], /Usage: spillway/],
  ] as const) {
    const r = spillway([...args])
    t.is(r.status, 2, args.join(' '))
    t.regex(r.stderr + r.stdout, want)
  }
})

test('a bad config file stops the start with exit 2, naming the file and key', (t) => {
  const dir = tempDir(t)
  const file = join(dir, 'c.json')
  writeFileSync(file, JSON.stringify({ spool: { thresholdBytes: -1 }, journl: {} }))
  const r = spillway(['serve', '--config', file], dir)
  t.is(r.status, 2)
  t.regex(r.stderr, /c\.json: journl: unknown key/)
  t.regex(r.stderr, /c\.json: spool\.thresholdBytes must be an integer from 0 to \d+, got number -1/)
  writeFileSync(file, '{ "spool": ')
  const j = spillway(['serve', '--config', file], dir)
  t.is(j.status, 2)
  t.regex(j.stderr, /c\.json:1:12: not valid JSON: expected a value .*, got the end of the file/)
  const m = spillway(['serve', '--config', join(dir, 'missing.json')], dir)
  t.is(m.status, 2)
  t.regex(m.stderr, /missing\.json: cannot read config/)
})

test('an unusable spool directory is a loud start-up error', (t) => {
  const dir = tempDir(t)
  writeFileSync(join(dir, 'not-a-dir'), '')
  const file = join(dir, 'c.json')
  writeFileSync(
    file,
    JSON.stringify({ listeners: [{ transport: 'tcp', port: 0 }], spool: { dir: 'not-a-dir/spool' } }),
  )
  const r = spillway(['serve', '--config', file], dir)
  t.is(r.status, 1)
  t.regex(r.stderr, /spool: directory .*not-a-dir\/spool is not usable: .*check spool\.dir/)
})

test('a port already in use is a start-up error naming the listener', async (t) => {
  const dir = tempDir(t)
  const blocker = createServer()
  await new Promise<void>((resolve) => blocker.listen(0, '127.0.0.1', resolve))
  t.teardown(() => blocker.close())
  const port = (blocker.address() as { port: number }).port
  const file = join(dir, 'c.json')
  writeFileSync(file, JSON.stringify({ listeners: [{ transport: 'tcp', host: '127.0.0.1', port }] }))
  const r = spillway(['serve', '--config', file], dir)
  t.is(r.status, 1)
  t.regex(r.stderr, new RegExp(`tcp 127\\.0\\.0\\.1:${port}: cannot listen: .*EADDRINUSE`))
})

test('a UDP port already in use is a start-up error naming the listener', async (t) => {
  const dir = tempDir(t)
  const blocker = createSocket('udp4')
  await new Promise<void>((resolve) => blocker.bind(0, '127.0.0.1', resolve))
  t.teardown(() => blocker.close())
  const port = blocker.address().port
  const file = join(dir, 'c.json')
  writeFileSync(file, JSON.stringify({ listeners: [{ transport: 'udp', host: '127.0.0.1', port }] }))
  const r = spillway(['serve', '--config', file], dir)
  t.is(r.status, 1)
  t.regex(r.stderr, new RegExp(`udp 127\\.0\\.0\\.1:${port}: cannot bind: bind EADDRINUSE`))
})

test('--version prints the package version', (t) => {
  const pkg = JSON.parse(readFileSync(new URL('../../../package.json', import.meta.url), 'utf8'))
  t.is(spillway(['--version']).stdout.trim(), pkg.version)
})

test('check-config prints the effective config, or every error with its key path', (t) => {
  const dir = tempDir(t)
  const good = join(dir, 'good.json')
  writeFileSync(good, JSON.stringify({ spool: { thresholdBytes: 0 } }))
  const ok = spillway(['check-config', good], dir)
  t.is(ok.status, 0)
  const eff = JSON.parse(ok.stdout)
  t.is(eff.spool.thresholdBytes, 0)
  t.is(eff.spool.dir, join(dir, 'spool'))
  t.is(eff.limits.maxMessageBytes, 65536)
  const bad = join(dir, 'bad.json')
  writeFileSync(bad, JSON.stringify({ spool: { whenFull: 'explode' }, journal: { maxRows: -1 } }))
  const r = spillway(['check-config', bad], dir)
  t.is(r.status, 2)
  t.regex(r.stderr, /bad\.json: spool\.whenFull must be one of "block", "drop", got "explode"/)
  t.regex(r.stderr, /bad\.json: journal\.maxRows must be an integer from 0 to \d+, got number -1/)
  t.is(spillway(['check-config'], dir).status, 2)
  // A syntax error names its line and column, as an editor wants them.
  writeFileSync(bad, '{\n  "spool": {\n    "thresholdBytes": 0,\n  }\n}\n')
  const syntax = spillway(['check-config', bad], dir)
  t.is(syntax.status, 2)
  t.regex(syntax.stderr, /bad\.json:4:3: not valid JSON: expected a property name in double quotes, got "}"/)
  // A UTF-8 byte order mark (Notepad writes one) is not an error.
  writeFileSync(good, `\ufeff${JSON.stringify({ spool: { thresholdBytes: 0 } })}`)
  const bom = spillway(['check-config', good], dir)
  t.is(bom.status, 0, bom.stderr)
  t.is(JSON.parse(bom.stdout).spool.thresholdBytes, 0)
})

test('--help works on every subcommand', (t) => {
  for (const cmd of ['serve', 'tail', 'senders', 'stats', 'check-config', 'spool']) {
    const r = spillway([cmd, '--help'])
    t.is(r.status, 0, cmd)
    t.true(r.stdout.startsWith(kUsage), cmd)
  }
})
