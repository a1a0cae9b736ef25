// spool.fsync, parsed: what the spool writer syncs to stable storage, and when (see spool/writer.ts).

/** spool.fsync: 0 = off, -1 = after every write, N > 0 = every N ms. */
export type FsyncPolicy = number
export const kFsyncBatch = -1

/** "off" | "batch" | "250ms" | "2s" -> FsyncPolicy; null when it is none of those. */
export function parseFsync(v: string): FsyncPolicy | null {
  if (v === 'off') return 0
  if (v === 'batch') return kFsyncBatch
  const m = /^([1-9][0-9]*)(ms|s)$/.exec(v)
  if (m === null) return null
  const ms = Number(m[1]) * (m[2] === 's' ? 1000 : 1)
  return ms <= 3_600_000 ? ms : null
}
