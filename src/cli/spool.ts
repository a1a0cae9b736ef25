// `spillway spool ls|cat|verify`: look into a spool backlog without reading the format spec. Reads the
// segment files only (never writes), so it is safe while the server runs.

import { closeSync, existsSync, openSync, readdirSync, readSync, statSync } from 'node:fs'
import { join } from 'node:path'
import { RecordReader } from '../spool/record.js'
import { listSegments, segmentName, segmentPath } from '../spool/segment.js'

const kChunk = 4 * 1024 * 1024

interface Visit {
  /** A complete, valid record: its offset in the segment, and the reader holding its fields. */
  record(off: number, r: RecordReader): void
  /** A line that is not a valid record, or a torn tail (no LF at the end). */
  bad(off: number, bytes: number, reason: string): void
}

/** Reads a segment in bounded chunks, record by record. */
function walk(path: string, visit: Visit): void {
  const fd = openSync(path, 'r')
  const r = new RecordReader()
  let buf = Buffer.allocUnsafe(kChunk)
  let pos = 0
  try {
    for (;;) {
      const n = readSync(fd, buf, 0, buf.length, pos)
      if (n === 0) return
      const chunk = buf.subarray(0, n)
      let p = 0
      for (;;) {
        const lf = chunk.indexOf(0x0a, p)
        if (lf === -1) break
        if (r.read(chunk, p, lf)) visit.record(pos + p, r)
        else visit.bad(pos + p, lf + 1 - p, r.error ?? 'corrupt')
        p = lf + 1
      }
      if (p === 0) {
        if (n < buf.length) {
          visit.bad(pos, n, 'torn record at end of segment')
          return
        }
        buf = Buffer.allocUnsafe(buf.length * 2) // one record longer than the buffer
        continue
      }
      pos += p
    }
  } finally {
    closeSync(fd)
  }
}

function iso(ms: number): string {
  return Number.isFinite(ms) && ms > 0 ? new Date(ms).toISOString() : '-'
}

export function spoolLs(dir: string, out: (s: string) => void): number {
  if (!existsSync(dir)) {
    out(`spool ${dir} does not exist: nothing spooled yet\n`)
    return 0
  }
  const segs = listSegments(dir)
  out(
    `${'segment'.padEnd(20)} ${'bytes'.padStart(12)} ${'records'.padStart(9)}  first received            last received\n`,
  )
  let bytes = 0
  let records = 0
  for (const seg of segs) {
    let n = 0
    let first = 0
    let last = 0
    walk(segmentPath(dir, seg), {
      record(_off, r) {
        n++
        if (first === 0) first = r.receivedAt
        last = r.receivedAt
      },
      bad() {},
    })
    const size = statSync(segmentPath(dir, seg)).size
    bytes += size
    records += n
    out(
      `${segmentName(seg).padEnd(20)} ${String(size).padStart(12)} ${String(n).padStart(9)}  ${iso(first).padEnd(25)} ${iso(last)}\n`,
    )
  }
  out(`${segs.length} segment(s), ${records} record(s), ${bytes} bytes\n`)
  const corrupt = join(dir, 'corrupt')
  if (existsSync(corrupt)) {
    const files = readdirSync(corrupt)
    const setAside = files.reduce((n, f) => n + statSync(join(corrupt, f)).size, 0)
    if (files.length > 0)
      out(`${files.length} file(s), ${setAside} bytes, set aside as corrupt in ${corrupt}\n`)
  }
  return 0
}

export function spoolCat(dir: string, names: string[], out: (s: string) => void): number {
  const segs =
    names.length > 0
      ? names.map((n) => resolveSegment(dir, n))
      : listSegments(dir).map((s) => segmentPath(dir, s))
  for (const path of segs) {
    walk(path, {
      record(_off, r) {
        const cut = r.origLen > 0 ? ` [cut from ${r.origLen} B]` : ''
        out(
          `${iso(r.receivedAt)} ${r.transport} ${r.peer}${cut} ${JSON.stringify(r.msgText()).slice(1, -1)}\n`,
        )
      },
      bad(off, bytes, reason) {
        out(`# ${path} offset ${off}: ${bytes} bytes that are not a record (${reason})\n`)
      },
    })
  }
  return 0
}

export function spoolVerify(dir: string, out: (s: string) => void): number {
  let problems = 0
  let records = 0
  for (const seg of existsSync(dir) ? listSegments(dir) : []) {
    const path = segmentPath(dir, seg)
    walk(path, {
      record() {
        records++
      },
      bad(off, bytes, reason) {
        problems++
        out(`${segmentName(seg)} offset ${off}: ${bytes} bytes, ${reason}\n`)
      },
    })
  }
  out(
    problems === 0
      ? `ok: ${records} record(s), every checksum matches\n`
      : `${problems} problem(s), ${records} good record(s)\n`,
  )
  return problems === 0 ? 0 : 1
}

function resolveSegment(dir: string, name: string): string {
  if (/^\d+$/.test(name)) return segmentPath(dir, Number(name))
  return name.includes('/') ? name : join(dir, name)
}
