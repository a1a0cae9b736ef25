// `spillway tail [-f] [-n N] [--host H] [--app A] [--severity LEVEL] [--since 10m|ISO] [--grep TEXT] [--json]`

import { parseArgs } from 'node:util'
import { loadConfig, resolvePaths } from '../config/load.js'
import { ErrorCodes, SpillwayError } from '../errors.js'
import { severityLevel, sinceMs, Tail, type TailOptions } from '../journal/tail.js'

const kPollMs = 250

export async function tailCommand(argv: string[]): Promise<void> {
  let values: ReturnType<typeof parse>['values']
  try {
    values = parse(argv).values
  } catch (err) {
    throw new SpillwayError(ErrorCodes.usage, `tail: ${(err as Error).message}`)
  }
  const usage = (m: string) => new SpillwayError(ErrorCodes.usage, `tail: ${m}`)
  const lines = Number(values.lines)
  if (!Number.isInteger(lines) || lines < 0)
    throw usage(`-n needs a count, got ${JSON.stringify(values.lines)}`)
  const opts: TailOptions = {
    lines,
    follow: values.follow,
    json: values.json,
    color: process.stdout.isTTY === true,
  }
  if (values.host !== undefined) opts.host = values.host
  if (values.app !== undefined) opts.app = values.app
  if (values.grep !== undefined) opts.grep = values.grep
  if (values.severity !== undefined) {
    const level = severityLevel(values.severity)
    if (level === null)
      throw usage(
        `--severity must be emerg, alert, crit, err, warning, notice, info, debug or 0-7, got ${JSON.stringify(values.severity)}`,
      )
    opts.maxSeverity = level
  }
  if (values.since !== undefined) {
    const t = sinceMs(values.since)
    if (t === null)
      throw usage(`--since must be like 90s, 10m, 2h, 7d or an ISO time, got ${JSON.stringify(values.since)}`)
    opts.sinceMs = t
  }
  const journal = resolvePaths(loadConfig(values.config)).journal.path
  const tail = new Tail(journal, opts)
  const out = (s: string) => process.stdout.write(s)
  // Where following starts is read before the first rows are printed: a row journaled after what is
  // printed is then always followed (a reader that waits for the first lines can rely on it).
  const newest = opts.follow ? tail.newestId() : 0
  const first = tail.last()
  tail.print(first, out)
  if (!opts.follow) {
    tail.close()
    return
  }
  let lastId = Math.max(newest, first.at(-1)?.id ?? 0)
  const stop = () => {
    tail.close()
    process.exit(0)
  }
  process.on('SIGINT', stop)
  process.on('SIGTERM', stop)
  process.stdout.on('error', stop) // the reader went away (| head)
  for (;;) {
    await new Promise((r) => setTimeout(r, kPollMs))
    const newest = tail.newestId()
    const rows = tail.after(lastId)
    tail.print(rows, out)
    lastId = Math.max(newest, rows.at(-1)?.id ?? 0, lastId)
  }
}

function parse(argv: string[]) {
  return parseArgs({
    args: argv,
    options: {
      config: { type: 'string' },
      follow: { type: 'boolean', short: 'f', default: false },
      lines: { type: 'string', short: 'n', default: '10' },
      host: { type: 'string' },
      app: { type: 'string' },
      severity: { type: 'string' },
      since: { type: 'string' },
      grep: { type: 'string' },
      json: { type: 'boolean', default: false },
    },
    strict: true,
    allowPositionals: false,
  })
}
