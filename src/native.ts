// Spillway's C modules (native/*.c: the UDP receive thread, record checksums and copies), built by
// node-gyp into build/Release when `npm install` runs. Without them nothing can start, so a missing or
// stale build says what to run instead of only "Cannot find module".

import { createRequire } from 'node:module'
import { ErrorCodes, SpillwayError } from './errors.js'

const require = createRequire(import.meta.url)

export function loadNative<T>(name: string): T {
  const path = `build/Release/${name}.node`
  try {
    return require(`../../${path}`) as T
  } catch (err) {
    throw new SpillwayError(
      ErrorCodes.native,
      `cannot load the native module ${path} (${(err as Error).message.split('\n')[0]}): it is built by ` +
        '`npm install`; run `npm rebuild` in the Spillway directory (it needs python3, make and g++)',
      { cause: err },
    )
  }
}
