// The journal's files as the filesystem has them: what stops the worker from opening them, said so an
// operator can fix it. Runs in the journal worker, at start only.

import { accessSync, constants, existsSync, statSync, unlinkSync } from 'node:fs'
import { basename, dirname } from 'node:path'

/** SQLite's -wal and -shm files beside the journal. */
export function sidecars(journalPath: string): string[] {
  return [`${journalPath}-wal`, `${journalPath}-shm`]
}

/**
 * After a failed open: deletes the -wal and -shm files this open created. SQLite gives them the mode
 * of the database file, so a read-only journal leaves read-only ones behind, which keep the next start
 * failing after the journal's own mode is fixed. Only files absent before the open and holding no
 * commits (an empty -wal) go; anything that was there is left alone.
 */
export function removeCreated(journalPath: string, existedBefore: readonly boolean[]): void {
  const [wal, shm] = sidecars(journalPath) as [string, string]
  const walEmpty = !existsSync(wal) || statSync(wal).size === 0
  if (!walEmpty) return
  if (!existedBefore[0]) unlinkQuietly(wal)
  if (!existedBefore[1]) unlinkQuietly(shm)
}

function unlinkQuietly(path: string): void {
  try {
    unlinkSync(path)
  } catch {}
}

/**
 * The message for an error opening the journal: SQLite's code and text, and, when it is about
 * permissions, which file or directory this process cannot write and what to do.
 */
export function openError(journalPath: string, err: unknown): string {
  const code = (err as { code?: string }).code
  const text = (err as Error).message ?? String(err)
  let out = `journal ${journalPath}: ${code === undefined ? '' : `${code}: `}${text}`
  if (code !== undefined && /^SQLITE_(READONLY|CANTOPEN|PERM|AUTH)/.test(code)) {
    const why = notWritable(journalPath)
    out +=
      why === null
        ? '; every file is writable by this process: is the filesystem mounted read-only?'
        : `; ${why}: make the journal, its -wal and -shm files and its directory writable by the user ` +
          'the server runs as (chmod u+w, or chown), then start again'
  }
  return out
}

/** The first of the journal's files (or its directory) that this process cannot write, described. */
function notWritable(journalPath: string): string | null {
  const uid = process.getuid?.() ?? -1
  const dir = dirname(journalPath)
  for (const path of [journalPath, ...sidecars(journalPath), dir]) {
    if (!existsSync(path)) continue
    try {
      accessSync(path, constants.W_OK)
    } catch {
      const st = statSync(path)
      const name = path === dir ? `its directory ${dir}` : basename(path)
      const mode = (st.mode & 0o777).toString(8).padStart(4, '0')
      return `${name} is not writable by this process (mode ${mode}, owner uid ${st.uid}; this process runs as uid ${uid})`
    }
  }
  return null
}
