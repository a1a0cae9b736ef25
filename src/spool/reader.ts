// Reads spool segments for replay. Runs in the journal worker thread (synchronous reads are fine there:
// that thread exists to wait on disk), in bounded chunks, so a backlog of any size is never loaded whole.

import { closeSync, mkdirSync, openSync, readSync, unlinkSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { listSegments, segmentName, segmentPath } from './segment.js'

export const kChunkBytes = 4 * 1024 * 1024

export class SpoolReader {
  readonly dir: string
  buf: Buffer = Buffer.allocUnsafe(kChunkBytes)
  private fd = -1
  private fdSeg = -1

  constructor(dir: string) {
    this.dir = dir
  }

  /**
   * Reads segment `seg` from `off`, at most up to `limit` (Infinity: to the end of the file). Returns the
   * number of bytes now in `buf[0..n)`, 0 at the end, or -1 if the segment file does not exist.
   * Grows the buffer if a single record does not fit, so a record is always readable whole.
   */
  read(seg: number, off: number, limit: number, atLeast = 0): number {
    if (atLeast > this.buf.length) this.buf = Buffer.allocUnsafe(atLeast * 2)
    return this.readInto(this.buf, seg, off, limit)
  }

  /** As read, into `target` (which does not grow): the replay's read-ahead fills buffers of its own. */
  readInto(target: Buffer, seg: number, off: number, limit: number): number {
    if (this.fdSeg !== seg) {
      this.closeFile()
      try {
        this.fd = openSync(segmentPath(this.dir, seg), 'r')
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === 'ENOENT') return -1
        throw err
      }
      this.fdSeg = seg
    }
    const want = Math.min(target.length, limit - off)
    let got = 0
    while (got < want) {
      const n = readSync(this.fd, target, got, want - got, off + got)
      if (n === 0) break
      got += n
    }
    return got
  }

  /** The first segment after `seg` present on disk, or `fallback` if none. */
  nextSegment(seg: number, fallback: number): number {
    for (const s of listSegments(this.dir)) if (s > seg) return s
    return fallback
  }

  /** Deletes a segment the journal has committed past. */
  remove(seg: number): void {
    if (this.fdSeg === seg) this.closeFile()
    try {
      unlinkSync(segmentPath(this.dir, seg))
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err
    }
  }

  /** Deletes every segment numbered below `seg` (journaled before a crash, not yet deleted). */
  removeBefore(seg: number): number {
    let n = 0
    for (const s of listSegments(this.dir)) {
      if (s >= seg) break
      this.remove(s)
      n++
    }
    return n
  }

  /**
   * Moves bytes that are not a valid record out of the replay path into `<dir>/corrupt/`, named after
   * the segment and offset they came from, so they can be inspected and nothing is silently thrown away.
   */
  quarantine(seg: number, off: number, bytes: Buffer): string {
    const dir = join(this.dir, 'corrupt')
    mkdirSync(dir, { recursive: true })
    const path = join(dir, `${segmentName(seg)}.${off}.bad`)
    writeFileSync(path, bytes)
    return path
  }

  close(): void {
    this.closeFile()
  }

  private closeFile(): void {
    if (this.fd >= 0) closeSync(this.fd)
    this.fd = -1
    this.fdSeg = -1
  }
}
