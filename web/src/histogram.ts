// Message counts over the selected range, stacked by severity (Loki's log volume, Graylog's histogram),
// drawn with uPlot on a canvas. A drag across it narrows the range to what was selected.

import { type Histogram, kSeverities } from './api.js'
import { $, clear, el } from './dom.js'
import uPlot from './uPlot.esm.js'

// Severity colours, most severe first; the last is for rows without a severity (parse errors).
export const kColors = [
  '#7a0019',
  '#a3001e',
  '#c8102e',
  '#e4572e',
  '#f0a202',
  '#3e7cb1',
  '#8aa1b1',
  '#c5ced6',
  '#9b59b6',
]
const kNames = [...kSeverities, 'none']

let plot: uPlot | null = null

/**
 * Draws (or redraws) the histogram. `onZoom` gets the selected range in unix ms. Bars are stacked by
 * drawing running sums, the largest first, each over the one before.
 */
export function drawHistogram(h: Histogram, onZoom: (fromMs: number, toMs: number) => void): void {
  const buckets = h.counts[0]?.length ?? 0
  const xs = Array.from({ length: buckets }, (_, i) => (h.fromMs + i * h.stepMs) / 1000)
  const present = h.counts.map((c) => c.some((n) => n > 0))
  // Running sums from the most severe down, so the most severe sit at the bottom of each bar.
  const sums: number[][] = []
  const running = new Array<number>(buckets).fill(0)
  for (let s = 0; s < h.counts.length; s++) {
    for (let i = 0; i < buckets; i++) running[i]! += h.counts[s]![i]!
    sums.push([...running])
  }
  const order = [...sums.keys()].filter((s) => present[s]).reverse() // the total first
  const data: uPlot.AlignedData = [xs, ...order.map((s) => sums[s]!)]
  const series: uPlot.Series[] = [
    {},
    ...order.map((s) => ({
      label: kNames[s]!,
      fill: kColors[s]!,
      stroke: kColors[s]!,
      width: 0,
      paths: uPlot.paths.bars!({ size: [0.9, 100], align: 1 }),
      points: { show: false },
    })),
  ]
  const box = $('histogram-plot')
  if (plot !== null) plot.destroy()
  clear(box)
  const width = Math.max(300, box.clientWidth || document.body.clientWidth - 40)
  plot = new uPlot(
    {
      width,
      height: 140,
      legend: { show: false },
      cursor: { drag: { x: true, y: false, setScale: false }, points: { show: false } },
      scales: {
        // The whole selected range, each bar drawn from its bucket's start to its end.
        x: { time: true, range: () => [h.fromMs / 1000, (h.fromMs + buckets * h.stepMs) / 1000] },
        y: { range: (_u, _min, max) => [0, Math.max(1, max)] },
      },
      axes: [{}, { size: 50 }],
      series,
      hooks: {
        setSelect: [
          (u) => {
            if (u.select.width < 3) return
            const from = u.posToVal(u.select.left, 'x') * 1000
            const to = u.posToVal(u.select.left + u.select.width, 'x') * 1000
            u.setSelect({ left: 0, top: 0, width: 0, height: 0 }, false)
            onZoom(Math.floor(from), Math.ceil(to))
          },
        ],
        setCursor: [
          (u) => {
            const i = u.cursor.idx
            showCounts(h, i === null || i === undefined ? null : i)
          },
        ],
      },
    },
    data,
    box,
  )
  showCounts(h, null)
}

/** The legend: each severity's colour and count, over the whole range or under the cursor. */
function showCounts(h: Histogram, i: number | null): void {
  const legend = $('histogram-legend')
  clear(legend)
  let total = 0
  h.counts.forEach((c, s) => {
    const n = i === null ? c.reduce((a, b) => a + b, 0) : (c[i] ?? 0)
    total += n
    if (n === 0) return
    const item = el('span', `${kNames[s]} ${n}`, 'legend-item')
    const swatch = el('span', undefined, `swatch sev-bg-${s}`)
    item.prepend(swatch)
    legend.append(item)
  })
  const what =
    i === null
      ? `${total} messages`
      : `${total} messages from ${new Date(h.fromMs + i * h.stepMs).toLocaleString()} (${Math.round(h.stepMs / 1000)} s)`
  legend.prepend(el('span', what, 'legend-total'))
}
