// The journal's threads catch up in the time ingestion leaves. On Linux a thread's nice value is its
// own (setpriority on the calling thread), so this lowers only the calling thread: in a burst the
// kernel runs the socket thread first. Best effort elsewhere.

import { setPriority } from 'node:os'

export function lowerThreadPriority(nice: number): void {
  try {
    setPriority(nice)
  } catch {
    // not permitted or not supported: the thread runs at the process's priority
  }
}
