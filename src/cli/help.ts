// The --help text: the single source the README's usage section is copied from (a test compares them).

import { configSchema, type Field } from '../config/schema.js'

export const kUsage = `Usage: spillway <command> [options]

Commands:
  serve [--config FILE]   Receive syslog on the configured listeners, spool bursts to disk, journal
                          every message into SQLite, and serve the web console. Without --config,
                          built-in defaults: TCP and UDP on 127.0.0.1:5140, spool in ./spool, journal
                          at ./journal.db, console at http://127.0.0.1:5141/.
  consume --config FILE   Read the JetStream stream that edges forward to (consume.nats) and journal
                          it into journal.path, with an edge column; exactly once, across crashes.
  tail [-f] [-n N] [--host H] [--app A] [--severity LEVEL] [--since 10m|ISO] [--grep TEXT] [--json]
                          The journal's newest N rows (default 10), filtered; -f follows new rows
                          as they are journaled. --severity err means err and worse; --grep TEXT
                          keeps messages containing TEXT (ASCII letters in either case).
                          Read-only: never slows the server.
  senders [--quiet 15m] [--json]
                          Who sends: each sender (its host, or its address), peer, last seen,
                          messages, worst severity this hour; --quiet lists those silent that long.
  stats [--watch]         What the running server is doing (from its metrics listener: connections,
                          rates, spool backlog, journal lag, drops and refusals by reason, memory);
                          exit 1 when it is unhealthy or not running.
  check-config FILE       Validate a config file: print the effective config (defaults filled in,
                          paths resolved) and exit 0, or every error with its key's path and exit 2.
  spool ls                List the spool's segments: bytes, records, first and last receive time.
  spool cat [SEGMENT...]  Print spooled records readably (all segments, or the ones named).
  spool verify            Check every record's checksum; exit 1 if any record is bad or torn.
  help                    Show this text.

Options:
  --config FILE           JSON config; every key is optional (see config.example.json). The spool
                          commands read spool.dir from it.
  -h, --help              Show this text.
  -v, --version           Print the version.

Stop with SIGINT or SIGTERM: connections are closed, every message read is written to the journal
or the spool, and the server exits 0. Exit codes: 0 stopped cleanly (spool verify: all good),
1 failed while running (spool verify: a bad record), 2 bad usage or config.`

/** What bare `spillway` prints (as git and journalctl do): the commands, and where the rest is. */
export const kShortUsage = `Usage: spillway <command> [options]

  serve [--config FILE]      receive syslog (127.0.0.1:5140), journal it, web console on :5141
  consume --config FILE      journal the JetStream stream edges forward to
  tail [-f] [--grep TEXT]    the journal's newest messages, filtered; -f follows
  senders [--quiet 15m]      who sends, and who went silent
  stats [--watch]            what the running server is doing
  check-config FILE          validate a config file, print the effective config
  spool ls|cat|verify        look into the spool

spillway --help shows every option and config key.
`

function line(path: string, f: Field): string[] {
  switch (f.kind) {
    case 'object':
      return Object.entries(f.fields).flatMap(([k, v]) => line(`${path}.${k}`, v))
    case 'array':
      return [
        `  ${path}  (default ${JSON.stringify(f.default)})`,
        ...Object.entries(f.item).map(([k, v]) => `    ${path}[].${k}  ${v.doc}`),
      ]
    default:
      return [`  ${path} = ${JSON.stringify(f.default)}  ${f.doc}`]
  }
}

export function helpText(): string {
  const keys = Object.entries(configSchema).flatMap(([k, f]) => line(k, f))
  return `${kUsage}\n\nConfig keys (defaults):\n${keys.join('\n')}\n`
}
