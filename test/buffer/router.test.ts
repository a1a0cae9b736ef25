import test, { type ExecutionContext } from 'ava'
import { type Bounds, LaneState, Router } from '../../src/buffer/router.js'
import { Counters } from '../../src/metrics/counters.js'
import { connPrefix } from '../../src/spool/record.js'
import { SpoolWriter } from '../../src/spool/writer.js'
import { Batches } from '../helpers/batches.js'
import { tempDir } from '../helpers/server.js'

/** A connection as the router sees it, recording whether its socket would be read. */
class TestLane extends LaneState {
  readonly prefix = connPrefix('tcp', '127.0.0.1:9')
  reading = true
  pauseReading(): void {
    this.reading = false
  }
  resumeReading(): void {
    this.reading = true
  }
}

const kMiB = 1024 * 1024

function router(
  t: ExecutionContext,
  bounds: Partial<Bounds> = {},
): { r: Router; counters: Counters; batches: Batches } {
  const dir = tempDir(t)
  const counters = new Counters()
  const batches = new Batches()
  const all: Bounds = {
    threshold: kMiB,
    memoryBytes: 256 * kMiB,
    spoolMaxBytes: 0,
    whenFull: 'block',
    maxUnwritten: 0,
    ...bounds,
  }
  const spool = new SpoolWriter(dir, 1, 64 * kMiB)
  // Before the directory goes: a writer with a queued write would retry it every second, for ever.
  t.teardown(async () => {
    await spool.drain()
    spool.close()
  })
  return { r: new Router(all, spool, batches, counters), counters, batches }
}

/** One 64 KiB socket read of `lane`: its messages routed, then the read reported. */
function read(r: Router, lane: TestLane, msg: Buffer): void {
  r.setNow(Date.now())
  for (let at = 0; at + msg.length <= 64 * 1024; at += msg.length) r.route(lane, msg, 0, msg.length, 0)
  r.readDone(lane, 64 * 1024)
}

const msg = Buffer.from(`<13>router test ${'x'.repeat(200)}`)

test('past 512 KiB read in one event-loop turn, connections that read again wait; eight a turn read again', async (t) => {
  const { r, counters, batches } = router(t)
  const lanes = Array.from({ length: 30 }, () => new TestLane())
  for (const lane of lanes) read(r, lane, msg)
  // The ninth read takes the turn past 512 KiB: it and every later one pause their connection.
  t.deepEqual(
    lanes.map((l) => l.reading),
    lanes.map((_, i) => i < 8),
  )
  t.is(counters.turnYields, 22)
  const nextTurn = () => new Promise((resolve) => setImmediate(resolve))
  await nextTurn()
  // The next turn resumes eight, in the order they paused, so no turn reads from all of them at once.
  t.deepEqual(
    lanes.map((l) => l.reading),
    lanes.map((_, i) => i < 16),
  )
  await nextTurn()
  await nextTurn()
  t.true(
    lanes.every((l) => l.reading),
    'every connection reads again within a few turns, with nothing else happening',
  )
  t.true(batches.posted.length > 0, 'what was read was kept')
  // A new turn starts with a fresh budget.
  read(r, lanes[0]!, msg)
  t.true(lanes[0]!.reading)
})

test('a connection paused because the spool is full is not resumed by the next turn', async (t) => {
  // Every record is spooled (threshold 0) into a spool whose quota the first record passes.
  const { r, counters } = router(t, { threshold: 0, spoolMaxBytes: 1 })
  const held = new TestLane()
  const other = new TestLane()
  for (let i = 0; i < 9; i++) read(r, i === 8 ? held : other, msg)
  t.false(held.reading)
  t.true(counters.pausedForSpool >= 1)
  await new Promise((resolve) => setImmediate(resolve))
  t.false(held.reading, 'still waiting for spool space, not for the turn')
  r.closeLane(held)
  r.closeLane(other)
})

/** Waits until `check` holds, giving the spool writer's I/O a chance to complete between looks. */
async function until(what: string, check: () => boolean): Promise<void> {
  const deadline = Date.now() + 10_000
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await new Promise((resolve) => setTimeout(resolve, 5))
  }
}

test('durable mode: a connection is not read again until what its read spooled is on disk', async (t) => {
  const dir = tempDir(t)
  const counters = new Counters()
  const spool = new SpoolWriter(dir, 1, 64 * kMiB)
  const bounds: Bounds = {
    threshold: 0,
    memoryBytes: 256 * kMiB,
    spoolMaxBytes: 0,
    whenFull: 'block',
    maxUnwritten: 0,
  }
  const r = new Router(bounds, spool, new Batches(), counters)
  const written: [number, number][] = []
  spool.onWritten = (seg, off) => {
    written.push([seg, off])
    r.spoolWritten(seg, off)
  }
  const lane = new TestLane()
  read(r, lane, msg)
  t.false(lane.reading, 'paused: its records are not on disk yet')
  t.is(spool.recordsWritten, 0, 'records queued for writing are not counted as spooled')
  await until('the lane to be read again', () => lane.reading)
  const perRead = Math.floor((64 * 1024) / msg.length)
  t.is(spool.recordsWritten, perRead, 'resumed only once all of its records were written')
  t.true(written.some(([seg, off]) => seg === lane.spoolSeg && off >= lane.spoolOff))
  r.closeLane(lane)
  await spool.drain()
  spool.close()
})

test('memory mode: a connection past its threshold waits for its memory records to commit, then spills', async (t) => {
  const dir = tempDir(t)
  const counters = new Counters()
  const spool = new SpoolWriter(dir, 1, 64 * kMiB)
  const batches = new Batches()
  const bounds: Bounds = {
    threshold: 100 * 1024,
    memoryBytes: 256 * kMiB,
    spoolMaxBytes: 0,
    whenFull: 'block',
    maxUnwritten: 0,
  }
  const r = new Router(bounds, spool, batches, counters)
  const lane = new TestLane()
  read(r, lane, msg) // 64 KiB: in memory
  t.true(lane.reading)
  read(r, lane, msg) // crosses 100 KiB: the rest of this read stays in memory, and reading stops
  t.false(lane.reading, 'waits for the journal to commit what it holds')
  t.false(lane.spilling)
  r.flush()
  t.is(spool.len, 0, 'nothing of it is spooled while older records are only in memory')
  const ids = batches.ids.splice(0)
  t.true(ids.length > 0)
  r.acked(ids.slice(0, -1))
  t.false(lane.reading, 'one batch of its records is still not committed')
  r.acked(ids.slice(-1))
  t.true(lane.spilling, 'committed: it spills now, behind everything it had in memory')
  await new Promise((resolve) => setImmediate(resolve))
  t.true(lane.reading)
  read(r, lane, msg)
  t.true(spool.len > 0, 'its next read goes to the spool')
  t.is(counters.spillsUnordered, 0)
  r.closeLane(lane)
  await spool.drain()
  spool.close()
})

test('memory mode: while the journal cannot commit, connections spill at once and say so', async (t) => {
  const { r, counters } = router(t, { threshold: 100 * 1024 })
  const waiting = new TestLane()
  read(r, waiting, msg)
  read(r, waiting, msg)
  t.false(waiting.reading)
  // Another process takes the journal's write lock: nobody is left waiting on it.
  r.setJournalStuck(true)
  t.true(waiting.spilling)
  await new Promise((resolve) => setImmediate(resolve))
  t.true(waiting.reading)
  const other = new TestLane()
  read(r, other, msg)
  read(r, other, msg)
  t.true(other.reading, 'a lock held elsewhere never makes a sender wait')
  t.true(other.spilling)
  t.is(counters.spillsUnordered, 2)
  r.closeLane(waiting)
  r.closeLane(other)
})
