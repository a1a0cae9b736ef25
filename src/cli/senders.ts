// `spillway senders [--quiet 15m] [--json]`: who sends, and who went silent.

import { parseArgs } from 'node:util'
import { loadConfig, resolvePaths } from '../config/load.js'
import { ErrorCodes, SpillwayError } from '../errors.js'
import { listSenders } from '../journal/senders.js'
import { kSeverities, sinceMs } from '../journal/tail.js'

export function sendersCommand(argv: string[]): void {
  let values: { config?: string | undefined; quiet?: string | undefined; json: boolean }
  try {
    values = parseArgs({
      args: argv,
      options: {
        config: { type: 'string' },
        quiet: { type: 'string' },
        json: { type: 'boolean', default: false },
      },
      strict: true,
    }).values as typeof values
  } catch (err) {
    throw new SpillwayError(ErrorCodes.usage, `senders: ${(err as Error).message}`)
  }
  const now = Date.now()
  let quietMs = 0
  if (values.quiet !== undefined) {
    const since = /^\d+[smhd]$/.test(values.quiet) ? sinceMs(values.quiet, now) : null
    if (since === null)
      throw new SpillwayError(
        ErrorCodes.usage,
        `senders: --quiet must be like 90s, 15m, 2h, 1d, got ${JSON.stringify(values.quiet)}`,
      )
    quietMs = now - since
  }
  const rows = listSenders(resolvePaths(loadConfig(values.config)).journal.path, quietMs, now)
  if (values.json) {
    for (const r of rows) process.stdout.write(`${JSON.stringify(r)}\n`)
    return
  }
  process.stdout.write(
    `${'sender'.padEnd(24)} ${'peer'.padEnd(22)} ${'last seen'.padEnd(24)} ${'silent'.padStart(8)} ${'messages'.padStart(10)}  worst this hour\n`,
  )
  for (const r of rows) {
    const silent = Math.round((now - r.last_seen) / 1000)
    process.stdout.write(
      `${r.sender.padEnd(24)} ${r.peer.padEnd(22)} ${new Date(r.last_seen).toISOString().padEnd(24)} ${`${silent}s`.padStart(8)} ${String(r.messages).padStart(10)}  ${kSeverities[r.worst_severity_hour] ?? '-'}\n`,
    )
  }
}
