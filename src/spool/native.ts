// The native half of record encoding (native/records.c: why each function is there, and how).
//
// Every record's checksum is computed on the socket thread and checked on the journal thread, a few
// hundred bytes at a time. In JavaScript (slicing by 8) that cost ~165 ns a 190-byte record; zlib.crc32
// costs more, in the subarray it needs per call. These functions take a buffer and offsets: no views.

import { loadNative } from '../native.js'

interface NativeRecords {
  seal(buf: Buffer, from: number, to: number): number
  copyRanges(src: Buffer, dst: Buffer, ranges: Int32Array, n: number): void
  crc32(buf: Buffer, start: number, end: number): number
  alignOffset(buf: Buffer, align: number): number
}

const native = loadNative<NativeRecords>('records')

/** CRC-32 of b[start, end), as zlib.crc32 computes it. */
export function crc32Range(b: Buffer, start: number, end: number): number {
  return native.crc32(b, start, end)
}

/**
 * Writes the checksum of every record in buf[from, to), which must hold whole records (each ending in
 * LF) encoded by RecordEncoder.encodeUnsealed, their messages copied. One call for a whole buffer of
 * records. Sealing a sealed record again writes the same checksum. Returns the number of records.
 */
export function sealRecords(buf: Buffer, from: number, to: number): number {
  return native.seal(buf, from, to)
}

/** For each of the first n (dstOff, srcStart, srcEnd) triples: src[srcStart, srcEnd) to dst[dstOff]. */
export function copyRanges(src: Buffer, dst: Buffer, ranges: Int32Array, n: number): void {
  native.copyRanges(src, dst, ranges, n)
}

/**
 * Alignment for O_DIRECT: buffer addresses, file offsets and lengths in multiples of it. 4 KiB covers
 * every logical block size Linux filesystems use (ext4 here asks for 512).
 */
export const kDirectAlign = 4096

/** A new buffer of `size` bytes whose first byte lies at a multiple of kDirectAlign in memory. */
export function alignedBuffer(size: number): Buffer {
  const raw = Buffer.allocUnsafeSlow(size + kDirectAlign)
  const k = native.alignOffset(raw, kDirectAlign)
  return raw.subarray(k, k + size)
}
