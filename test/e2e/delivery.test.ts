import test from 'ava'
import { oneRun } from '../../scripts/crash-harness.js'

// The README's loss bounds, checked the way a sender reconciles: numbered messages over four TCP
// connections, kill -9 the moment the server says it has read them all, restart, count. A hole is a
// message lost while a later one of the same connection survived.

const kConns = 4
/** The shortest line the harness sends (seq 0): the most messages one 64 KiB socket read can hold. */
const kShortestLine = '<13>1 - crash app - - - c=0 seq=0 '.length + 60 + 1

test('memory mode: a kill -9 loses only each connection’s newest messages, never older ones', async (t) => {
  const r = await oneRun('memory', 1, { messages: 60_000, conns: kConns, pauseMs: 0 })
  t.log(JSON.stringify(r))
  t.is(r.holes, 0)
  t.is(r.duplicates, 0)
  t.is(r.lost, r.tailLost)
})

test('durable mode: a kill -9 loses at most what each connection sent in its last read, nothing older', async (t) => {
  const r = await oneRun('durable', 1, { messages: 60_000, conns: kConns, pauseMs: 0 })
  t.log(JSON.stringify(r))
  t.is(r.holes, 0)
  t.is(r.duplicates, 0)
  // A connection is not read again until its last read is on disk: at most one 64 KiB read each.
  t.true(r.lost <= kConns * Math.ceil(65536 / kShortestLine), `lost ${r.lost}`)
  t.true(r.spooledAtKill + r.lost <= r.sent, 'spooled_total counts what was on disk at the kill, no more')
})
