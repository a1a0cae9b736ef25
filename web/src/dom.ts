// Building the page from data: text from the journal is attacker-controlled, so it only ever goes in as
// text (textContent), never as markup. Nothing here takes HTML.

export function $<T extends HTMLElement = HTMLElement>(id: string): T {
  const el = document.getElementById(id)
  if (el === null) throw new Error(`the page has no #${id}`)
  return el as T
}

/** An element with text content and, optionally, a class. */
export function el<K extends keyof HTMLElementTagNameMap>(
  tag: K,
  text?: string,
  className?: string,
): HTMLElementTagNameMap[K] {
  const e = document.createElement(tag)
  if (text !== undefined) e.textContent = text
  if (className !== undefined) e.className = className
  return e
}

export function clear(e: Element): void {
  while (e.firstChild !== null) e.firstChild.remove()
}

/** A table row of text cells. */
export function row(cells: (string | Node)[], className?: string): HTMLTableRowElement {
  const tr = el('tr', undefined, className)
  for (const c of cells) {
    const td = el('td')
    if (typeof c === 'string') td.textContent = c
    else td.append(c)
    tr.append(td)
  }
  return tr
}
