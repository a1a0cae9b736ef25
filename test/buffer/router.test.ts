import test from 'ava'
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
  dir: string,
  bounds: Partial<Bounds> = {},
): { r: Router; counters: Counters; batches: Batches } {
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
  return { r: new Router(all, new SpoolWriter(dir, 1, 64 * kMiB), batches, counters), counters, batches }
}

/** One 64 KiB socket read of `lane`: its messages routed, then the read reported. */
function read(r: Router, lane: TestLane, msg: Buffer): void {
  r.setNow(Date.now())
  for (let at = 0; at + msg.length <= 64 * 1024; at += msg.length) r.route(lane, msg, 0, msg.length, 0)
  r.readDone(lane, 64 * 1024)
}

const msg = Buffer.from(`<13>router test ${'x'.repeat(200)}`)

test('past 512 KiB read in one event-loop turn, connections that read again wait; eight a turn read again', async (t) => {
  const { r, counters, batches } = router(tempDir(t))
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
  const { r, counters } = router(tempDir(t), { threshold: 0, spoolMaxBytes: 1 })
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
