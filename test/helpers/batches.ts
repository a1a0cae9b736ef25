import type { BatchSink } from '../../src/buffer/router.js'

/** Where a Router's memory batches go in tests: copies of what was posted (the worker is out of scope). */
export class Batches implements BatchSink {
  readonly posted: Buffer[] = []
  /** The ids of the batches posted, in order: what a test acknowledges as the worker would. */
  readonly ids: number[] = []
  batchBuffer(): Buffer {
    return Buffer.allocUnsafe(256 * 1024)
  }
  postBatch(id: number, buf: Buffer, len: number): Buffer {
    this.ids.push(id)
    this.posted.push(Buffer.from(buf.subarray(0, len)))
    return buf
  }
}
