// The messages view: the histogram over the selected range, the newest matching messages, live new ones
// (server-sent events, with pause), older pages, and one message's every field.

import { ApiError, get, type Histogram, kSeverities, type Row } from './api.js'
import { $, clear, el, row } from './dom.js'
import { fillForm, filterParams, isLive, params, renderChips, setFilters } from './filters.js'
import { drawHistogram } from './histogram.js'
import { localTime } from './time.js'

/** Most rows the page holds: live rows push the oldest out. */
const kMaxRows = 1000
const kPage = 200
const kBuckets = 60
const kHistogramRefreshMs = 10_000

let source: EventSource | null = null
let paused = false
let held: Row[] = []
let newest = 0
let oldest = Number.MAX_SAFE_INTEGER
let histogramTimer: number | null = null
/** Bumped on each load, so an answer for an earlier filter is dropped. */
let generation = 0

function status(text: string, error = false): void {
  const s = $('status')
  s.textContent = text
  s.className = error ? 'error' : ''
}

/** A value that adds itself as a filter when clicked (Graylog's one click from a value to a filter). */
function valueButton(key: 'host' | 'app', v: string | null, label = v): Node {
  if (v === null) return document.createTextNode('-')
  const b = el('button', label ?? v, 'value')
  b.type = 'button'
  b.title = `only ${key} ${v}`
  b.addEventListener('click', (e) => {
    e.stopPropagation()
    setFilters({ [key]: v })
  })
  return b
}

function rowEl(r: Row): HTMLTableRowElement {
  const app = r.app === null ? null : r.procid === null ? r.app : `${r.app}[${r.procid}]`
  const sev = r.severity === null ? '-' : kSeverities[r.severity]!
  const msg = r.msg_chars === undefined ? r.msg : `${r.msg}… (${r.msg_chars} characters)`
  const tr = row(
    [localTime(r.received_at), valueButton('host', r.host), valueButton('app', r.app, app), sev, msg],
    `msg sev-${r.severity ?? 8}`,
  )
  tr.dataset.id = String(r.id)
  tr.lastElementChild!.className = 'text'
  tr.addEventListener('click', () => {
    const p = params()
    p.set('id', String(r.id))
    history.replaceState(null, '', `?${p}`)
    void showDetail(r.id)
  })
  return tr
}

function body(): HTMLTableSectionElement {
  return $<HTMLTableElement>('rows').tBodies[0]!
}

function trim(): void {
  const tb = body()
  while (tb.rows.length > kMaxRows) tb.rows[tb.rows.length - 1]!.remove()
  const last = tb.rows[tb.rows.length - 1]
  oldest = last === undefined ? Number.MAX_SAFE_INTEGER : Number(last.dataset.id)
}

function prepend(rows: Row[]): void {
  // rows arrive oldest first; the table is newest first
  const tb = body()
  for (const r of rows) {
    tb.insertBefore(rowEl(r), tb.firstChild)
    newest = Math.max(newest, r.id)
  }
  trim()
}

function stopLive(): void {
  source?.close()
  source = null
}

function startLive(): void {
  stopLive()
  if (!isLive()) return
  const p = filterParams()
  p.set('after', String(newest))
  const es = new EventSource(`/api/live?${p}`)
  source = es
  es.addEventListener('rows', (e) => {
    const rows = JSON.parse((e as MessageEvent<string>).data) as Row[]
    if (paused) {
      held.push(...rows)
      if (held.length > kMaxRows) held = held.slice(-kMaxRows)
      status(`paused: ${held.length} new message(s) held`)
    } else prepend(rows)
  })
  es.addEventListener('problem', (e) => status(JSON.parse((e as MessageEvent<string>).data).error, true))
}

function liveButton(): void {
  const b = $<HTMLButtonElement>('live')
  b.disabled = !isLive()
  b.textContent = !isLive() ? 'Live (a range up to now only)' : paused ? 'Resume live' : 'Pause live'
}

async function loadHistogram(gen: number): Promise<void> {
  const p = filterParams()
  p.set('buckets', String(kBuckets))
  try {
    const h = await get<Histogram>('/api/histogram', p)
    if (gen !== generation) return
    drawHistogram(h, (from, to) =>
      setFilters({ since: new Date(from).toISOString(), until: new Date(to).toISOString() }),
    )
  } catch (err) {
    if (gen === generation) status(`histogram: ${(err as Error).message}`, true)
  }
}

async function loadRows(gen: number, before?: number): Promise<void> {
  const p = filterParams()
  p.set('limit', String(kPage))
  if (before !== undefined) p.set('before', String(before))
  const t0 = performance.now()
  try {
    const r = await get<{ rows: Row[]; more: boolean; newestId: number }>('/api/rows', p)
    if (gen !== generation) return
    // The live tail starts after the journal's newest row when these were read, matched or not.
    if (before === undefined) newest = Math.max(newest, r.newestId)
    const tb = body()
    for (const row of r.rows) {
      tb.append(rowEl(row))
      newest = Math.max(newest, row.id)
    }
    trim()
    $('older').hidden = !r.more || tb.rows.length >= kMaxRows
    status(
      `${tb.rows.length} message(s) shown, newest first (${Math.round(performance.now() - t0)} ms)${tb.rows.length === 0 ? ': none match' : ''}`,
    )
  } catch (err) {
    if (gen === generation)
      status(
        err instanceof ApiError && err.timeout
          ? `${err.message}: narrow the time range or the filter`
          : (err as Error).message,
        true,
      )
  }
}

/** (Re)loads the view for the URL's filter. */
export async function showMessages(): Promise<void> {
  const gen = ++generation
  stopLive()
  fillForm()
  renderChips()
  clear(body())
  newest = 0
  held = []
  paused = false
  liveButton()
  status('loading…')
  if (histogramTimer !== null) clearInterval(histogramTimer)
  histogramTimer = null
  await Promise.all([loadRows(gen), loadHistogram(gen)])
  if (gen !== generation) return
  startLive()
  if (isLive()) histogramTimer = window.setInterval(() => void loadHistogram(gen), kHistogramRefreshMs)
  const id = Number(params().get('id'))
  if (Number.isInteger(id) && id > 0) void showDetail(id)
}

export function hideMessages(): void {
  generation++
  stopLive()
  if (histogramTimer !== null) clearInterval(histogramTimer)
  histogramTimer = null
}

export function initMessages(): void {
  $('live').addEventListener('click', () => {
    paused = !paused
    if (!paused) {
      prepend(held)
      held = []
      status(`${body().rows.length} message(s) shown, newest first`)
    }
    liveButton()
  })
  $('older').addEventListener('click', () => void loadRows(generation, oldest))
  $('detail-close').addEventListener('click', () => {
    $('detail').hidden = true
    const p = params()
    p.delete('id')
    history.replaceState(null, '', `?${p}`)
  })
}

/** Pretty structured data; the raw text when it is not JSON. */
function sdText(sd: string): string {
  try {
    return JSON.stringify(JSON.parse(sd), null, 2)
  } catch {
    return sd
  }
}

async function showDetail(id: number): Promise<void> {
  let r: Row
  try {
    r = await get<Row>('/api/message', new URLSearchParams({ id: String(id) }))
  } catch (err) {
    status((err as Error).message, true)
    return
  }
  const tb = $<HTMLTableElement>('detail-fields').tBodies[0]!
  clear(tb)
  for (const [k, v] of Object.entries(r)) {
    let text: string
    if (v === null) text = 'NULL'
    else if ((k === 'received_at' || k === 'ts') && typeof v === 'number') text = `${localTime(v)} (${v})`
    else if (k === 'severity' && typeof v === 'number') text = `${kSeverities[v]} (${v})`
    else text = String(v)
    const value = el(
      k === 'sd' || k === 'msg' ? 'pre' : 'span',
      k === 'sd' && v !== null ? sdText(String(v)) : text,
    )
    tb.append(row([k, value]))
  }
  const around = new URLSearchParams({
    view: 'messages',
    since: new Date(r.received_at - 300_000).toISOString(),
    until: new Date(r.received_at + 300_000).toISOString(),
  })
  if (r.host !== null) around.set('host', r.host)
  $<HTMLAnchorElement>('detail-around').href = `?${around}`
  $('detail').hidden = false
}
