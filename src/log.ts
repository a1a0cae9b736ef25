// The server's own events: one line each on stderr, `spillway <iso-time> <event> key=value ...`.
// Never a line per message: callers log episodes (listening, spill started, replay finished), not traffic.
export type LogValue = string | number | boolean | null | undefined

function fmt(v: LogValue): string {
  if (v === null || v === undefined) return '-'
  const s = String(v)
  return /[\s"=]/.test(s) || s === '' ? JSON.stringify(s) : s
}

export function logEvent(event: string, fields: Record<string, LogValue> = {}): void {
  let line = `spillway ${new Date().toISOString()} ${event}`
  for (const k in fields) line += ` ${k}=${fmt(fields[k])}`
  process.stderr.write(`${line}\n`)
}
