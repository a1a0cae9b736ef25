#!/usr/bin/env node
// argv -> config -> server. Everything the user types is checked here, and errors name what to fix.

import { readFileSync } from 'node:fs'
import { loadConfig, resolvePaths } from '../config/load.js'
import { Consumer } from '../consume/consumer.js'
import { ErrorCodes, SpillwayError } from '../errors.js'
import { logEvent } from '../log.js'
import { Server } from '../server.js'
import { helpText, kShortUsage } from './help.js'
import { sendersCommand } from './senders.js'
import { spoolCat, spoolLs, spoolVerify } from './spool.js'
import { statsCommand } from './stats.js'
import { tailCommand } from './tail.js'

function version(): string {
  const pkg = JSON.parse(readFileSync(new URL('../../../package.json', import.meta.url), 'utf8')) as {
    version: string
  }
  return pkg.version
}

function usageError(message: string): never {
  process.stderr.write(`spillway: ${message}\nRun "spillway --help" for usage.\n`)
  process.exit(2)
}

interface Args {
  command: string
  /** Words after the command (spool's subcommand and segment names). */
  rest: string[]
  config?: string
}

function parseArgs(argv: string[]): Args {
  const args: Args = { command: '', rest: [] }
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!
    if (a === '-h' || a === '--help') args.command = 'help'
    else if (a === '-v' || a === '--version') args.command = 'version'
    else if (a === '--config' || a.startsWith('--config=')) {
      const v = a === '--config' ? argv[++i] : a.slice('--config='.length)
      if (v === undefined || v === '') usageError('--config needs a file name')
      args.config = v
    } else if (a.startsWith('-')) usageError(`unknown option ${a}`)
    else if (args.command === '') args.command = a
    else if (args.command === 'spool' || args.command === 'check-config') args.rest.push(a)
    else if (args.command !== 'help' && args.command !== 'version') usageError(`unexpected argument ${a}`)
  }
  return args
}

/** SIGINT or SIGTERM: a graceful stop, then exit; a second signal only says it is under way. */
function stopOnSignals(stop: () => Promise<void>): void {
  let signals = 0
  const onSignal = (sig: string) => {
    if (signals++ > 0) {
      logEvent('stopping', { signal: sig, note: 'already stopping; waiting for the journal to commit' })
      return
    }
    logEvent('stopping', { signal: sig })
    stop().then(
      () => process.exit(process.exitCode ?? 0),
      (err) => {
        logEvent('fatal', { message: (err as Error).message })
        process.exit(1)
      },
    )
  }
  process.on('SIGINT', () => onSignal('SIGINT'))
  process.on('SIGTERM', () => onSignal('SIGTERM'))
}

async function serve(configFile: string | undefined): Promise<void> {
  const config = resolvePaths(loadConfig(configFile))
  const server = new Server(config)
  stopOnSignals(() => server.stop())
  process.on('SIGHUP', () => server.reloadTls())
  await server.start()
}

async function consume(configFile: string | undefined): Promise<void> {
  const config = resolvePaths(loadConfig(configFile))
  if (config.consume.nats.servers.length === 0)
    throw new SpillwayError(
      ErrorCodes.config,
      `${configFile ?? 'built-in defaults'}: consume.nats.servers is empty: name the NATS servers to read from`,
    )
  const consumer = new Consumer(config)
  stopOnSignals(() => consumer.stop())
  await consumer.run()
}

async function main(): Promise<void> {
  const argv = process.argv.slice(2)
  // --help anywhere, on any subcommand, prints the whole help (it covers every subcommand).
  if (argv.includes('-h') || argv.includes('--help')) {
    process.stdout.write(helpText())
    return
  }
  // tail, senders and stats have options of their own; each parses its whole argument list (--config included) itself.
  let i = 0
  while (argv[i] === '--config' || argv[i]?.startsWith('--config=')) i += argv[i] === '--config' ? 2 : 1
  if (argv[i] === 'tail') return tailCommand([...argv.slice(0, i), ...argv.slice(i + 1)])
  if (argv[i] === 'senders') return sendersCommand([...argv.slice(0, i), ...argv.slice(i + 1)])
  if (argv[i] === 'stats') return statsCommand([...argv.slice(0, i), ...argv.slice(i + 1)])
  const args = parseArgs(argv)
  switch (args.command) {
    case '':
      // No command: a short usage on stderr and exit 2, as for any other bad usage.
      process.stderr.write(kShortUsage)
      process.exitCode = 2
      return
    case 'help':
      process.stdout.write(helpText())
      return
    case 'version':
      process.stdout.write(`${version()}\n`)
      return
    case 'serve':
      return serve(args.config)
    case 'consume':
      return consume(args.config)
    case 'check-config': {
      const [file, extra] = args.rest
      if (file === undefined || extra !== undefined) usageError('check-config needs one config file')
      // Errors throw a SpillwayError naming each key: exit 2, as for serve.
      const config = resolvePaths(loadConfig(file))
      process.stdout.write(`${JSON.stringify(config, null, 2)}\n`)
      process.stderr.write(`spillway: ${file} is valid; above, the effective config with every default\n`)
      return
    }
    case 'spool': {
      const dir = resolvePaths(loadConfig(args.config)).spool.dir
      const out = (s: string) => process.stdout.write(s)
      const [sub, ...names] = args.rest
      if (sub === 'ls' && names.length === 0) process.exitCode = spoolLs(dir, out)
      else if (sub === 'cat') process.exitCode = spoolCat(dir, names, out)
      else if (sub === 'verify' && names.length === 0) process.exitCode = spoolVerify(dir, out)
      else usageError('spool needs one of: ls, cat [SEGMENT...], verify')
      return
    }
    default:
      usageError(`unknown command ${args.command}`)
  }
}

main().catch((err: unknown) => {
  if (err instanceof SpillwayError) {
    process.stderr.write(`spillway: ${err.message}\n`)
    process.exit(err.code === 'SPW_ERR_CONFIG' || err.code === 'SPW_ERR_USAGE' ? 2 : 1)
  }
  process.stderr.write(`spillway: ${(err as Error).stack ?? String(err)}\n`)
  process.exit(1)
})
