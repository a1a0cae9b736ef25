// The console's JSON API (src/console/http.ts): the same parameters as the page's own URL.

export interface Row {
  id: number
  received_at: number
  ts: number | null
  facility: number | null
  severity: number | null
  host: string | null
  app: string | null
  procid: string | null
  msgid: string | null
  sd: string | null
  msg: string
  /** Set when msg was cut for the list: the whole message's length. */
  msg_chars?: number
  peer: string
  transport: string
  orig_len: number | null
  parse_error: number
  edge: string | null
}

export interface Histogram {
  fromMs: number
  stepMs: number
  counts: number[][]
}

export interface Sender {
  sender: string
  peer: string
  first_seen: number
  last_seen: number
  messages: number
  worst_severity_hour: number
  recent: number
  addresses: string[]
}

export interface SqlResult {
  columns: string[]
  rows: unknown[][]
  truncated: boolean
  ms: number
  limits: { maxRows: number; timeLimitMs: number }
}

export const kSeverities = ['emerg', 'alert', 'crit', 'err', 'warning', 'notice', 'info', 'debug'] as const

export class ApiError extends Error {
  readonly refused: boolean
  readonly timeout: boolean
  constructor(message: string, refused: boolean, timeout: boolean) {
    super(message)
    this.refused = refused
    this.timeout = timeout
  }
}

export async function get<T>(path: string, params: URLSearchParams): Promise<T> {
  const res = await fetch(`${path}?${params}`, { headers: { accept: 'application/json' } })
  const body = (await res.json()) as T & { error?: string; refused?: boolean; timeout?: boolean }
  if (!res.ok)
    throw new ApiError(
      body.error ?? `${res.status} ${res.statusText}`,
      body.refused === true,
      body.timeout === true,
    )
  return body
}
