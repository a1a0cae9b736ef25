import { spawn } from 'node:child_process'
import { readdirSync, readFileSync, writeFileSync } from 'node:fs'
import { createConnection } from 'node:net'
import { join } from 'node:path'
import test from 'ava'
import { tempDir, waitFor } from '../helpers/server.js'

const root = new URL('../../../', import.meta.url).pathname

/** Processes whose command line names `needle` (what an orphaned server would be). */
function processesWith(needle: string): number[] {
  const out: number[] = []
  for (const pid of readdirSync('/proc').filter((p) => /^\d+$/.test(p))) {
    try {
      if (readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes(needle)) out.push(Number(pid))
    } catch {
      // gone meanwhile
    }
  }
  return out
}

function refuses(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = createConnection({ host: '127.0.0.1', port })
    s.on('connect', () => {
      s.destroy()
      resolve(false)
    })
    s.on('error', () => resolve(true))
  })
}

test('npm start, as the README runs it, stops cleanly when its npm process is sent SIGTERM', async (t) => {
  const dir = tempDir(t)
  const config = join(dir, 'npm-start.json')
  writeFileSync(
    config,
    JSON.stringify({
      listeners: [{ transport: 'tcp', host: '127.0.0.1', port: 0 }],
      metrics: { port: 0 },
      spool: { dir: join(dir, 'spool') },
      journal: { path: join(dir, 'journal.db') },
    }),
  )
  // --ignore-scripts skips prestart (the build: the suite runs the built files already).
  const npm = spawn('npm', ['start', '--ignore-scripts', '--', '--config', config], { cwd: root })
  t.teardown(() => {
    for (const pid of processesWith(config)) process.kill(pid, 'SIGKILL')
  })
  let err = ''
  npm.stderr.on('data', (d: Buffer) => {
    err += d
  })
  const exited = new Promise<number | null>((resolve) => npm.on('exit', (code) => resolve(code)))
  const port = await waitFor(
    'the server listening',
    () => {
      const m = /listening transport=tcp host=\S+ port=(\d+)/.exec(err)
      return m ? Number(m[1]) : undefined
    },
    30_000,
  )
  npm.kill('SIGTERM')
  t.is(await exited, 0)
  t.regex(err, /stopping signal=SIGTERM/)
  t.regex(err, /stopped received=0/)
  await waitFor('the port closed', async () => ((await refuses(port)) ? true : undefined))
  t.deepEqual(processesWith(config), [])
})
