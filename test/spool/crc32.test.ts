import { crc32 } from 'node:zlib'
import test from 'ava'
import fc from 'fast-check'
import { crc32Range } from '../../src/spool/crc32.js'

test('crc32Range equals zlib.crc32 on every range, short (JS) and long (native)', (t) => {
  fc.assert(
    fc.property(fc.uint8Array({ minLength: 0, maxLength: 2000 }), fc.nat(), fc.nat(), (bytes, a, b) => {
      const buf = Buffer.from(bytes)
      const start = buf.length === 0 ? 0 : a % (buf.length + 1)
      const end = start + (buf.length === 0 ? 0 : b % (buf.length - start + 1))
      return crc32Range(buf, start, end) === crc32(buf.subarray(start, end))
    }),
    { numRuns: 2000 },
  )
  // The check value of the CRC-32 catalogue, and the empty range.
  t.is(crc32Range(Buffer.from('123456789'), 0, 9), 0xcbf43926)
  t.is(crc32Range(Buffer.alloc(4), 2, 2), 0)
})
