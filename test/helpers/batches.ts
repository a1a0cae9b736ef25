import type { BatchSink } from '../../src/buffer/router.js'

/** Where a Router's memory batches go in tests: copies of what was posted (the worker is out of scope). */
export class Batches implements BatchSink {
  readonly posted: Buffer[] = []
  batchBuffer(): Buffer {
    return Buffer.allocUnsafe(256 * 1024)
  }
  postBatch(_id: number, buf: Buffer, len: number): Buffer {
    this.posted.push(Buffer.from(buf.subarray(0, len)))
    return buf
  }
}
