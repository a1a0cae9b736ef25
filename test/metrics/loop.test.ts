// metrics/loop.ts: each late tick is split into the thread's own delay and its wait for a CPU. The
// arithmetic runs on a simulated clock and CPU-wait counter (exact figures, any machine); on the real
// thread only relations that hold however busy the machine is are checked.
import test from 'ava'
import { kResolutionMs, type LoopDelay, LoopMonitor } from '../../src/metrics/loop.js'

const kMs = 1e6 // ns

/** Equal within the histogram's precision (three significant digits). */
function near(t: import('ava').ExecutionContext, actual: number, expected: number, what: string): void {
  t.true(
    Math.abs(actual - expected) <= Math.max(0.002, expected * 0.001),
    `${what}: ${actual}, not ${expected}`,
  )
}

/**
 * Drives a monitor through `ticks`: each is [ms since the tick before, CPU wait in that time in ms].
 * `known` false: a platform that does not tell the CPU wait.
 */
function simulate(ticks: [number, number][], known = true): LoopDelay {
  const m = new LoopMonitor()
  let now = 1000
  let wait = 5 * kMs
  m.begin(now, known ? wait : -1)
  for (const [dt, waited] of ticks) {
    now += dt
    wait += waited * kMs
    m.sample(now, known ? wait : 0)
  }
  return m.read()
}

const onTime: [number, number][] = Array.from({ length: 200 }, () => [kResolutionMs, 0])

test('a tick late by a long turn of its own: all of the lateness is its own delay', (t) => {
  const d = simulate([...onTime, [kResolutionMs + 80, 0], ...onTime])
  near(t, d.maxMs, 80, 'max')
  near(t, d.ownMaxMs, 80, 'own max')
  t.is(d.cpuWaitMs, 0)
})

test('a tick late only because the thread waited for a CPU: none of it is its own', (t) => {
  const d = simulate([...onTime, [kResolutionMs + 300, 300], ...onTime])
  near(t, d.maxMs, 300, 'max')
  near(t, d.ownMaxMs, 0, 'own max')
  near(t, d.cpuWaitMs, 300, 'cpu wait')
})

test('a tick late partly from a CPU wait: the rest is its own', (t) => {
  const d = simulate([...onTime, [kResolutionMs + 300, 120]])
  near(t, d.maxMs, 300, 'max')
  near(t, d.ownMaxMs, 180, 'own max')
})

test('a CPU wait longer than the lateness (a wait inside an on-time interval) leaves no own delay, not a negative one', (t) => {
  const d = simulate([[kResolutionMs + 2, 4]])
  near(t, d.maxMs, 2, 'max')
  near(t, d.ownMaxMs, 0, 'own max')
})

test('p99 over many ticks, and the own p99 apart from it', (t) => {
  // 2 % of ticks late by 50 ms, each half CPU wait: both p99s are those ticks.
  const ticks: [number, number][] = []
  for (let i = 0; i < 1000; i++) ticks.push(i % 50 === 0 ? [kResolutionMs + 50, 25] : [kResolutionMs, 0])
  const d = simulate(ticks)
  near(t, d.p99Ms, 50, 'p99')
  near(t, d.ownP99Ms, 25, 'own p99')
  // 0.5 % late: p99 is an on-time tick.
  const rare = simulate(ticks.map(([dt, w], i) => (i % 200 === 0 ? [dt, w] : [kResolutionMs, 0])))
  near(t, rare.p99Ms, 0, 'p99 of rare stalls')
})

test('where the CPU wait is unknown, the own delay is the delay and the wait reads -1', (t) => {
  const d = simulate([...onTime, [kResolutionMs + 40, 40]], false)
  near(t, d.maxMs, 40, 'max')
  near(t, d.ownMaxMs, 40, 'own max')
  t.is(d.cpuWaitMs, -1)
})

/** Runs `stall` on this thread under a monitor; returns its reading and how long the stall took. */
async function measure(stall: () => void): Promise<{ d: LoopDelay; stallMs: number }> {
  const m = new LoopMonitor()
  m.start()
  await new Promise((r) => setTimeout(r, 2 * kResolutionMs))
  const from = performance.now()
  stall()
  const stallMs = performance.now() - from
  // The stall is recorded by the first tick after it: a timer set now fires after that one.
  await new Promise((r) => setTimeout(r, 2 * kResolutionMs))
  const d = m.read()
  m.stop()
  return { d, stallMs }
}

// The monitor's tick is due kResolutionMs after the one before; a stall holds it until the stall ends,
// so the delay recorded is at least the stall less one resolution. Of that, what is not the thread's
// CPU wait is its own: own max + CPU wait >= the same. These hold however loaded the machine is.
for (const [what, stall] of [
  [
    'a turn that runs long',
    () => {
      const end = performance.now() + 80
      while (performance.now() < end) {}
    },
  ],
  [
    'a thread blocked on a lock (not runnable)',
    () => {
      Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 80)
    },
  ],
] as const) {
  test.serial(
    `on this thread, ${what}: recorded as delay, and as its own delay but for CPU waits`,
    async (t) => {
      const { d, stallMs } = await measure(stall)
      const floor = stallMs - kResolutionMs - 0.1 // 0.1 ms: the histogram's precision at this size
      t.true(d.maxMs >= floor, `max ${d.maxMs} ms for a ${stallMs} ms stall`)
      t.true(d.ownMaxMs <= d.maxMs, `own max ${d.ownMaxMs} > max ${d.maxMs}`)
      if (d.cpuWaitMs === -1) t.true(d.ownMaxMs >= floor, `own max ${d.ownMaxMs} ms (CPU wait unknown here)`)
      else t.true(d.ownMaxMs + d.cpuWaitMs >= floor, `own max ${d.ownMaxMs} + CPU wait ${d.cpuWaitMs} ms`)
    },
  )
}
