import test from 'ava'
import { BurstGate } from '../../src/journal/burst.js'

const MiB = 1024 * 1024
const gate = () => new BurstGate(64 * MiB, 250, 100)

/** Spools `bytesPerSec` in 10 ms writes from `from` for `ms`, asking the gate after each; its answers. */
function spool(g: BurstGate, from: number, ms: number, bytesPerSec: number): boolean[] {
  const out: boolean[] = []
  for (let t = from; t < from + ms; t += 10) {
    g.spooled(bytesPerSec / 100, t)
    out.push(g.waits(t))
  }
  return out
}

test('a steady load below the rate never holds replay back', (t) => {
  const g = gate()
  t.false(spool(g, 0, 5000, 40 * MiB).includes(true))
  t.is(g.yields, 0)
})

test('a burst above the rate holds replay from its second window on, until it stops', (t) => {
  const g = gate()
  const answers = spool(g, 1000, 2000, 200 * MiB)
  // The first window starts the measurement; the burst shows at the end of the second at the latest.
  t.false(answers[0]!)
  t.true(answers.indexOf(true) <= 50, String(answers.indexOf(true)))
  t.false(answers.slice(answers.indexOf(true)).includes(false))
  t.is(g.yields, 1)
  // Quiet: at once after quietMs, whatever the last window said.
  t.true(g.waits(3050))
  t.false(g.waits(3100))
  t.true(Math.abs(g.waitedMs(3100) - (3100 - (1000 + 10 * answers.indexOf(true)))) <= 10)
})

test('a burst that slows below the rate lets replay run at the next window', (t) => {
  const g = gate()
  spool(g, 0, 1000, 200 * MiB)
  t.is(g.yields, 1)
  const slower = spool(g, 1000, 1000, 20 * MiB)
  t.true(slower.indexOf(false) <= 26, String(slower.indexOf(false)))
  t.false(slower.slice(slower.indexOf(false)).includes(true))
})

test('one large write after a long quiet is not a burst; two bursts are counted apart', (t) => {
  const g = gate()
  g.spooled(256 * MiB, 60_000) // a 256 MiB write, after a minute of nothing
  t.false(g.waits(60_000))
  t.false(g.waits(60_050))
  t.is(g.yields, 0)
  spool(g, 70_000, 1000, 200 * MiB)
  t.false(g.waits(71_200))
  spool(g, 80_000, 1000, 200 * MiB)
  t.false(g.waits(81_200))
  t.is(g.yields, 2)
  t.true(g.waitedMs(81_200) > 1000)
})
