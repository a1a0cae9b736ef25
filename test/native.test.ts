import test from 'ava'
import { ErrorCodes } from '../src/errors.js'
import { loadNative } from '../src/native.js'

test('the native modules load from the build, and a missing one says how to build it', (t) => {
  t.is(typeof loadNative<{ seal: unknown }>('records').seal, 'function')
  t.is(typeof loadNative<{ open: unknown }>('udp_receiver').open, 'function')
  const err = t.throws(() => loadNative('no_such_module'), {
    message: /build\/Release\/no_such_module\.node .*npm rebuild/,
  })
  t.is((err as { code?: string }).code, ErrorCodes.native)
})
