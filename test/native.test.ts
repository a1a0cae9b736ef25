import { spawnSync } from 'node:child_process'
import test from 'ava'
import { ErrorCodes } from '../src/errors.js'
import { loadNative } from '../src/native.js'
import { copyRanges } from '../src/spool/native.js'

test('the native modules load from the build, and a missing one says how to build it', (t) => {
  t.is(typeof loadNative<{ seal: unknown }>('records').seal, 'function')
  t.is(typeof loadNative<{ open: unknown }>('udp_receiver').open, 'function')
  const err = t.throws(() => loadNative('no_such_module'), {
    message: /build\/Release\/no_such_module\.node .*npm rebuild/,
  })
  t.is((err as { code?: string }).code, ErrorCodes.native)
})

test('copyRanges checks every range before it copies anything', (t) => {
  const src = Buffer.from('abcdef')
  const dst = Buffer.alloc(8, '.')
  t.throws(() => copyRanges(src, dst, Int32Array.of(0, 0, 2, 4, 2, 9), 2), {
    instanceOf: RangeError,
    message: /outside its buffer/,
  })
  t.throws(() => copyRanges(src, dst, Int32Array.of(7, 0, 2), 1), { instanceOf: RangeError })
  t.throws(() => copyRanges(src, dst, Int32Array.of(0, 0, 2), 2), { instanceOf: RangeError })
  t.is(dst.toString(), '........', 'the valid first range was not copied either')
  copyRanges(src, dst, Int32Array.of(0, 0, 2, 4, 2, 6), 2)
  t.is(dst.toString(), 'ab..cdef')
})

test('nofile() reports the open-file limit, its soft limit raised to the hard one', (t) => {
  const r = spawnSync(
    'prlimit',
    [
      '--nofile=100:300',
      process.execPath,
      '-e',
      `import('${new URL('../src/native.js', import.meta.url).href}').then((m) => console.log(JSON.stringify(m.loadNative('limits').nofile())))`,
    ],
    { encoding: 'utf8' },
  )
  t.is(r.status, 0, r.stderr)
  t.deepEqual(JSON.parse(r.stdout), [300, 300])
  const [soft, hard] = loadNative<{ nofile(): [number, number] }>('limits').nofile()
  t.true(soft > 0 && (hard === -1 || soft === hard), `${soft} ${hard}`)
})
