import { crc32 } from 'node:zlib'
import test from 'ava'
import fc from 'fast-check'
import { crc32Range } from '../../src/spool/native.js'

test('crc32Range equals zlib.crc32 on every range: short ones (table) and long ones (folded)', (t) => {
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
  // Every length around the 16-byte folding steps, at unaligned offsets.
  const big = Buffer.from(Array.from({ length: 600 }, (_, i) => (i * 131 + 7) & 0xff))
  for (let len = 0; len < 300; len++) {
    for (const at of [0, 1, 7, 13]) t.is(crc32Range(big, at, at + len), crc32(big.subarray(at, at + len)))
  }
})
