// The console page: four views (messages, senders, health, SQL), each driven by the URL.

import { $ } from './dom.js'
import { params, readForm } from './filters.js'
import { hideHealth, showHealth } from './health.js'
import { hideMessages, initMessages, showMessages } from './messages.js'
import { hideSenders, initSenders, showSenders } from './senders.js'
import { initSql, showSql } from './sql.js'
import { zoneName } from './time.js'

const kViews = ['messages', 'senders', 'health', 'sql'] as const
type View = (typeof kViews)[number]

function show(): void {
  const want = params().get('view')
  const view: View = (kViews as readonly string[]).includes(want ?? '') ? (want as View) : 'messages'
  for (const v of kViews) $(`view-${v}`).hidden = v !== view
  for (const a of document.querySelectorAll<HTMLAnchorElement>('#tabs a'))
    a.classList.toggle('active', a.dataset.view === view)
  $('detail').hidden = true
  hideMessages()
  hideSenders()
  hideHealth()
  if (view === 'messages') void showMessages()
  else if (view === 'senders') showSenders()
  else if (view === 'health') showHealth()
  else showSql()
}

$('zone').textContent = `times in ${zoneName()}`
initMessages()
initSenders()
initSql()
$('filters').addEventListener('submit', (e) => {
  e.preventDefault()
  readForm()
})
$('filters').addEventListener('change', (e) => {
  const t = e.target as HTMLElement
  if (t instanceof HTMLSelectElement && t.name === 'range') $('custom-range').hidden = t.value !== 'custom'
  // Selects and the checkbox apply at once; text fields when Enter is pressed (submit).
  if (t instanceof HTMLSelectElement && t.name === 'range' && t.value === 'custom') return
  if (t instanceof HTMLSelectElement || (t instanceof HTMLInputElement && t.type === 'checkbox')) readForm()
})
window.addEventListener('popstate', show)
window.addEventListener('statechange', show)
show()
