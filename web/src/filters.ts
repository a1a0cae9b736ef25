// The page's state is its URL, as Datasette's is: a link reproduces the view. The filter parameters are
// the API's (and the CLI's words): host, app, severity, since, until, transport, peer, parse_errors, grep.

import { $, clear, el } from './dom.js'
import { inputValue } from './time.js'

export const kFilterKeys = [
  'host',
  'app',
  'severity',
  'since',
  'until',
  'transport',
  'peer',
  'parse_errors',
  'grep',
] as const
const kRanges = ['15m', '1h', '24h', '7d']
export const kDefaultSince = '1h'

export function params(): URLSearchParams {
  return new URLSearchParams(location.search)
}

/** The filter of the current URL, as API parameters (the last hour when it names no time). */
export function filterParams(from = params()): URLSearchParams {
  const out = new URLSearchParams()
  for (const k of kFilterKeys) {
    const v = from.get(k)
    if (v !== null && v !== '') out.set(k, v)
  }
  if (!out.has('since')) out.set('since', kDefaultSince)
  return out
}

/** Whether the range runs up to now (so new messages belong in it). */
export function isLive(p = params()): boolean {
  return !p.has('until') && kRanges.includes(p.get('since') ?? kDefaultSince)
}

/** Replaces the URL's parameters (a new history entry) and tells the page. */
export function navigate(p: URLSearchParams): void {
  for (const [k, v] of [...p]) if (v === '') p.delete(k)
  history.pushState(null, '', `?${p}`)
  window.dispatchEvent(new Event('statechange'))
}

/** Sets (or, with null, removes) filter keys on the current URL. */
export function setFilters(change: Record<string, string | null>): void {
  const p = params()
  for (const [k, v] of Object.entries(change)) {
    if (v === null) p.delete(k)
    else p.set(k, v)
  }
  p.delete('id')
  navigate(p)
}

function input(name: string): HTMLInputElement | HTMLSelectElement {
  const e = $<HTMLFormElement>('filters').elements.namedItem(name)
  if (!(e instanceof HTMLInputElement || e instanceof HTMLSelectElement)) throw new Error(`no filter ${name}`)
  return e
}

/** The form shows the URL's filter. */
export function fillForm(): void {
  const p = params()
  for (const k of ['host', 'app', 'severity', 'transport', 'peer', 'grep']) input(k).value = p.get(k) ?? ''
  ;(input('parse_errors') as HTMLInputElement).checked = p.get('parse_errors') === '1'
  const since = p.get('since') ?? kDefaultSince
  const custom = p.has('until') || !kRanges.includes(since)
  input('range').value = custom ? 'custom' : since
  $('custom-range').hidden = !custom
  if (custom) {
    const from = Date.parse(since)
    const to = Date.parse(p.get('until') ?? '')
    input('from').value = Number.isNaN(from) ? '' : inputValue(from)
    input('to').value = Number.isNaN(to) ? '' : inputValue(to)
  }
}

/** The form's filter into the URL. */
export function readForm(): void {
  const p = params()
  for (const k of ['host', 'app', 'severity', 'transport', 'peer', 'grep']) p.set(k, input(k).value.trim())
  p.set('parse_errors', (input('parse_errors') as HTMLInputElement).checked ? '1' : '')
  const range = input('range').value
  if (range === 'custom') {
    const from = Date.parse(input('from').value)
    const to = Date.parse(input('to').value)
    p.set('since', Number.isNaN(from) ? kDefaultSince : new Date(from).toISOString())
    p.set('until', Number.isNaN(to) ? '' : new Date(to).toISOString())
  } else {
    p.set('since', range)
    p.set('until', '')
  }
  p.delete('id')
  navigate(p)
}

const kLabels: Record<string, string> = {
  host: 'host',
  app: 'app',
  severity: 'severity ≤',
  transport: 'transport',
  peer: 'peer',
  parse_errors: 'parse errors',
  grep: 'contains',
  since: 'since',
  until: 'until',
}

/** The active filters as chips; a chip's ✕ removes its filter. */
export function renderChips(): void {
  const box = $('chips')
  clear(box)
  const p = params()
  for (const k of kFilterKeys) {
    const v = p.get(k)
    if (v === null || v === '' || (k === 'since' && v === kDefaultSince && !p.has('until'))) continue
    const chip = el('span', `${kLabels[k]} ${k === 'parse_errors' ? '' : v}`.trim(), 'chip')
    const x = el('button', '✕', 'chip-x')
    x.type = 'button'
    x.title = `remove the ${kLabels[k]} filter`
    x.addEventListener('click', () =>
      setFilters(k === 'since' ? { since: null, until: null } : { [k]: null }),
    )
    chip.append(x)
    box.append(chip)
  }
}
