// Messages between the socket thread (journal/client.ts) and the journal worker (journal/worker.ts).
// Memory batches travel as one transferred ArrayBuffer of spool records each: nothing is cloned.

/**
 * The socket thread's staging buffer for memory batches. Full ones are transferred to the worker and
 * come back with the ack that commits them, so the two threads pass the same few buffers to and fro
 * instead of allocating (and fragmenting malloc's heap with) one buffer of a new size per batch.
 */
export const kBatchBytes = 256 * 1024

export interface WorkerOptions {
  journalPath: string
  /** null: no spool to replay (spillway consume). */
  spoolDir: string | null
  /** spool.directIo: large replay reads bypass the page cache (spool/reader.ts). */
  spoolDirectIo: boolean
  /** journal.enabled: false keeps the cursor moving over the spool without storing messages. */
  store: boolean
  /** Forwarding on: segments from this one on are not yet forwarded and must not be deleted. */
  keepFromSeg: number | null
  /** spillway consume: the stream and durable whose sequence is committed with the rows. */
  consume: { stream: string; durable: string } | null
  batchRows: number
  synchronous: 'full' | 'normal'
  fullText: boolean
  walMaxBytes: number
  /** journal.burstBytesPerSecond: spool growth above which replay waits (journal/burst.ts). */
  burstBytesPerSecond: number
  timezone: string
  retention: { maxAgeSeconds: number; maxRows: number; maxBytes: number }
}

export type ToWorker =
  | { t: 'batch'; id: number; buf: ArrayBuffer; len: number }
  /** The spool writer's progress: segment `seg` holds complete records up to `off`. */
  | { t: 'spooled'; seg: number; off: number }
  /** The forwarder published every segment below `seg`: those may go once journaled. */
  | { t: 'forwarded'; seg: number }
  /**
   * spillway consume: one message of the stream. With an instance, buf holds the edge's spool records
   * [start, end) of segment seg; without one (a message some other publisher sent), buf is one record.
   */
  | {
      t: 'remote'
      /** Messages of an earlier read of the stream (before a 'stalled') are dropped. */
      epoch: number
      seq: number
      edge: string | null
      instance: string
      seg: number
      start: number
      end: number
      /** The end of the edge's previous message, or -1 (no header, or not from an edge). */
      prevSeg: number
      prevOff: number
      buf: ArrayBuffer
      len: number
    }
  | { t: 'stats'; at: number; values: Record<string, number> }
  | { t: 'stop' }

export type FromWorker =
  /** streamSeq: the consume cursor (0 when not consuming or nothing consumed yet). */
  | { t: 'ready'; cursorSeg: number; cursorOff: number; rows: number; streamSeq: number }
  /** Batches committed (their memory may be released), and the spool cursor after the commit. */
  | {
      t: 'progress'
      acked: number[]
      /** The transferred kBatchBytes buffers of the acked batches, back for the socket thread to reuse. */
      returned: ArrayBuffer[]
      cursorSeg: number
      cursorOff: number
      journaled: number
      corrupt: number
      parseErrors: number
      /** Receive time of the last record journaled: how far behind the journal is, when it is. */
      lastReceivedAt: number
      /** The SQLite error that is holding the journal up (SQLITE_BUSY, SQLITE_FULL, ...), or null. */
      failing: string | null
      /** spillway consume: every stream message up to this sequence is committed (acknowledge them). */
      streamSeq: number
      /** spillway consume: records skipped as already journaled, and gaps in an edge's positions. */
      remoteDuplicates: number
      remoteGaps: number
    }
  /**
   * spillway consume: the message with stream sequence `seq` does not follow its edge's last committed
   * one (a delivery was lost in transit, as when the consumer's leader moves). What follows the commit is
   * dropped, remotes of epochs before `epoch` too; read the stream again after `streamSeq`.
   */
  | { t: 'stalled'; seq: number; streamSeq: number; epoch: number }
  | { t: 'stopped'; journaled: number }
  | { t: 'fatal'; message: string }

// The journal worker and its replay decoder thread (journal/replay-decoder.ts).

export interface DecoderOptions {
  timezone: string
  /** The most records one chunk holds (the decoder cuts chunks at journal.batchRows records). */
  batchRows: number
  spoolDir: string
  /** spool.directIo: the decoder's reads bypass the page cache (spool/reader.ts). */
  directIo: boolean
}

/**
 * Read the chunk of spool records that starts at (seg, off): whole records only, at most batchRows of
 * them, none at or past `limit` (Infinity: a sealed segment, to its end).
 */
export interface ToDecoder {
  id: number
  seg: number
  off: number
  limit: number
  /** A committed chunk's row buffers, back for the decoder to fill again; null for none. */
  rows: { text: ArrayBuffer; nums: ArrayBuffer } | null
}

export interface FromDecoder {
  id: number
  /** The chunk's length in the segment; 0: not one whole record there (the worker replays inline). */
  len: number
  /** The rows, as journal/packed-rows.ts lays them out: text bytes [0, textLen), and the numbers. */
  text: ArrayBuffer
  textLen: number
  ascii: boolean
  nums: ArrayBuffer
  count: number
  /** Records that failed their check: offset in the chunk, their bytes with the LF, and why. */
  corrupt: { off: number; bytes: Uint8Array; reason: string }[]
  parseErrors: number
  invalidUtf8: number
  withNul: number
}
