import { spawnSync } from 'node:child_process'
import { copyFileSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import test from 'ava'
import { tempDir } from '../helpers/server.js'

const root = new URL('../../../', import.meta.url).pathname

test('npm install of the lock file is quiet on this Node: no dependency claims a newer engine', (t) => {
  const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { engines: { node: string } }
  t.is(pkg.engines.node, '>=20.19')
  // A dry run resolves the lock file and checks every package's engines as a real install does; it
  // needs no network and no cache.
  const dir = tempDir(t)
  copyFileSync(join(root, 'package.json'), join(dir, 'package.json'))
  copyFileSync(join(root, 'package-lock.json'), join(dir, 'package-lock.json'))
  const r = spawnSync(
    'npm',
    [
      'install',
      '--dry-run',
      '--offline',
      '--ignore-scripts',
      '--no-audit',
      '--no-fund',
      '--cache',
      join(dir, 'cache'),
    ],
    { cwd: dir, encoding: 'utf8', timeout: 60_000 },
  )
  t.is(r.status, 0, r.stderr)
  t.notRegex(r.stdout + r.stderr, /EBADENGINE|npm warn/i)
})
