// Read-only SQL on the journal, Datasette's idea: a query box with the server's row and time limits,
// results as a table and as JSON or CSV downloads. The query lives in the URL (?view=sql&sql=...).

import { ApiError, get, type SqlResult } from './api.js'
import { $, clear, el, row } from './dom.js'
import { navigate, params } from './filters.js'

function cellText(v: unknown): string {
  if (v === null) return 'NULL'
  if (typeof v === 'object') return `(blob, base64) ${(v as { $base64?: string }).$base64 ?? ''}`
  return String(v)
}

function textarea(): HTMLTextAreaElement {
  return $<HTMLFormElement>('sql-form').elements.namedItem('sql') as HTMLTextAreaElement
}

async function run(sql: string): Promise<void> {
  const error = $('sql-error')
  const table = $<HTMLTableElement>('sql-result')
  clear(table.tHead!)
  clear(table.tBodies[0]!)
  error.hidden = true
  $('sql-status').textContent = 'running…'
  const q = new URLSearchParams({ sql })
  $<HTMLAnchorElement>('sql-json').href = `/api/sql?${q}&format=json&download=1`
  $<HTMLAnchorElement>('sql-csv').href = `/api/sql?${q}&format=csv&download=1`
  try {
    const r = await get<SqlResult>('/api/sql', q)
    table.tHead!.append(row(r.columns.map((c) => el('strong', c))))
    for (const values of r.rows) table.tBodies[0]!.append(row(values.map(cellText)))
    $('sql-limits').textContent = `at most ${r.limits.maxRows} rows, ${r.limits.timeLimitMs} ms`
    $('sql-status').textContent =
      `${r.rows.length} row(s) in ${r.ms} ms${r.truncated ? `: cut at the limit, there are more` : ''}`
  } catch (err) {
    $('sql-status').textContent = ''
    error.hidden = false
    error.textContent =
      err instanceof ApiError && err.refused
        ? `Refused: ${err.message}`
        : err instanceof Error
          ? err.message
          : String(err)
  }
}

export function showSql(): void {
  const sql = params().get('sql')
  if (sql !== null) {
    textarea().value = sql
    void run(sql)
  }
}

export function initSql(): void {
  $('sql-form').addEventListener('submit', (e) => {
    e.preventDefault()
    navigate(new URLSearchParams({ view: 'sql', sql: textarea().value }))
  })
}
