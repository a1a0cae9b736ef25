// Times as the browser's zone shows them, and that zone, named on the page.

function pad(n: number, w = 2): string {
  return String(n).padStart(w, '0')
}

export function localTime(ms: number): string {
  const d = new Date(ms)
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}.${pad(d.getMilliseconds(), 3)}`
}

/** "Europe/Berlin (UTC+01:00)" */
export function zoneName(): string {
  const zone = Intl.DateTimeFormat().resolvedOptions().timeZone
  const off = -new Date().getTimezoneOffset()
  const sign = off < 0 ? '-' : '+'
  return `${zone} (UTC${sign}${pad(Math.floor(Math.abs(off) / 60))}:${pad(Math.abs(off) % 60)})`
}

/** A value for <input type="datetime-local">, in the browser's zone. */
export function inputValue(ms: number): string {
  const d = new Date(ms)
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}T${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`
}

/** "3 s", "4 min", "2 h", "5 d" */
export function duration(ms: number): string {
  const s = Math.max(0, Math.round(ms / 1000))
  if (s < 120) return `${s} s`
  if (s < 7200) return `${Math.round(s / 60)} min`
  if (s < 172_800) return `${Math.round(s / 3600)} h`
  return `${Math.round(s / 86_400)} d`
}
