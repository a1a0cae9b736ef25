import { execFileSync, spawn } from 'node:child_process'
import { once } from 'node:events'
import { existsSync, readlinkSync } from 'node:fs'
import { availableParallelism } from 'node:os'
import test from 'ava'
import { type LoopDelay, LoopMonitor } from '../../src/metrics/loop.js'

const linux = existsSync('/proc/thread-self/schedstat')

/** Runs (not waits) until this process has used `ms` of CPU, however long that takes. */
function spinCpu(ms: number): void {
  const from = process.cpuUsage()
  for (;;) {
    const end = performance.now() + 2
    while (performance.now() < end) {}
    const u = process.cpuUsage(from)
    if (u.user + u.system >= ms * 1000) return
  }
}

/**
 * Runs `stall` on this thread with a monitor started just before, and reads the monitor once it has
 * ticked after the stall (the stall is only recorded then) and its max delay is at least `atLeastMs`.
 */
async function measure(stall: () => void, atLeastMs: number): Promise<LoopDelay> {
  const m = new LoopMonitor()
  m.start()
  await new Promise((r) => setTimeout(r, 30))
  stall()
  const deadline = Date.now() + 5000
  while (m.read().maxMs < atLeastMs && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10))
  const d = m.read()
  m.stop()
  return d
}

test.serial('a turn that runs long is delay of the thread’s own', async (t) => {
  const d = await measure(() => spinCpu(80), 60)
  // Running is not waiting for a CPU: all of the 80 ms stays in the own delay.
  t.true(d.ownMaxMs >= 70, `own max ${d.ownMaxMs}`)
  t.true(d.maxMs >= d.ownMaxMs)
  t.is(d.cpuWaitMs >= 0, linux)
})

test.serial('a thread blocked on a lock (not runnable) counts as its own delay', async (t) => {
  const d = await measure(() => Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 80), 60)
  t.true(d.ownMaxMs >= 60, `own max ${d.ownMaxMs}`)
})

// The kernel runs another busy process on the only CPU this thread may use: the thread is runnable
// but waits, and that wait is taken out of the own delay. Pins this thread (taskset -p acts on the one
// thread whose id it is given) and puts it back afterwards.
test.serial('waiting for a CPU held by another process is not own delay', async (t) => {
  if (!linux) {
    t.log('no /proc/thread-self/schedstat here: the CPU wait is unknown')
    t.is(new LoopMonitor().read().cpuWaitMs, -1)
    return
  }
  const all = `0-${availableParallelism() - 1}`
  const hog = spawn('taskset', [
    '-c',
    '0',
    process.execPath,
    '-e',
    'process.stdout.write("go\\n"); const end = Date.now() + 20000; while (Date.now() < end) {}',
  ])
  t.teardown(() => hog.kill('SIGKILL'))
  await once(hog.stdout, 'data')
  const tid = readlinkSync('/proc/thread-self').split('/').pop()!
  execFileSync('taskset', ['-p', '-c', '0', tid], { stdio: 'ignore' })
  t.teardown(() => execFileSync('taskset', ['-p', '-c', all, tid], { stdio: 'ignore' }))
  // 300 ms of CPU on a CPU shared with a spinning process: about as long again spent waiting for it.
  const d = await measure(() => spinCpu(300), 350)
  t.true(d.cpuWaitMs >= 100, `cpu wait ${d.cpuWaitMs} ms`)
  t.true(d.maxMs - d.ownMaxMs >= 100, `max ${d.maxMs} ms, own max ${d.ownMaxMs} ms`)
})
