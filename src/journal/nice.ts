// The journal's threads catch up in the time ingestion leaves. On Linux a thread's nice value is its
// own (setpriority on the calling thread), so this lowers only the calling thread: in a burst the
// kernel runs the socket thread first. Best effort elsewhere.

import { setPriority } from 'node:os'

/**
 * The journal worker's and the replay decoder's nice value: one value for both, for the worker waits on
 * the decoder's chunks (at 19 the decoder starved behind other processes while the worker waited).
 */
const kJournalNice = 10

export function lowerThreadPriority(): void {
  try {
    setPriority(kJournalNice)
  } catch {
    // not permitted or not supported: the thread runs at the process's priority
  }
}
