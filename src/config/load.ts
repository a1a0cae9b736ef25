import { readFileSync } from 'node:fs'
import { resolve } from 'node:path'
import { ErrorCodes, SpillwayError } from '../errors.js'
import { crossChecks } from './checks.js'
import { locateJsonError } from './json-error.js'
import { configSchema, type Field } from './schema.js'

export interface TlsConfig {
  cert: string
  key: string
  ca: string
  clientAuth: 'none' | 'request' | 'require'
}

export interface ListenerConfig {
  transport: 'tcp' | 'udp' | 'tls' | 'relp' | 'unix' | 'unix-stream'
  host: string
  port: number
  path: string
  mode: string
  tls: TlsConfig
  allow: string[]
}

export interface Config {
  listeners: ListenerConfig[]
  limits: {
    maxMessageBytes: number
    memoryBytes: number
    maxConnections: number
    maxConnectionsPerSource: number
    frameTimeoutSeconds: number
    idleTimeoutSeconds: number
    keepAliveSeconds: number
  }
  metrics: { host: string; port: number; token: string; user: string; password: string }
  console: { enabled: boolean; timeLimitMs: number; maxRows: number }
  parse: { timezone: string }
  udp: { recvBufferBytes: number }
  spool: {
    dir: string
    thresholdBytes: number
    maxBytes: number
    whenFull: 'block' | 'drop'
    maxUnwrittenBytes: number
    directIo: boolean
    fsync: string
    segmentBytes: number
  }
  journal: {
    enabled: boolean
    path: string
    batchRows: number
    synchronous: 'full' | 'normal'
    walMaxBytes: number
    burstBytesPerSecond: number
    maxAgeSeconds: number
    maxRows: number
    maxBytes: number
    fullText: boolean
  }
  forward: { nats: ForwardNatsConfig }
  consume: { nats: ConsumeNatsConfig }
}

export interface NatsConnectionConfig {
  servers: string[]
  stream: string
  user: string
  password: string
  token: string
  credsFile: string
  tls: { ca: string; cert: string; key: string }
}

export interface ForwardNatsConfig extends NatsConnectionConfig {
  subject: string
  edge: string
  createStream: boolean
  replicas: number
  duplicateWindowSeconds: number
  batchBytes: number
}

export interface ConsumeNatsConfig extends NatsConnectionConfig {
  durable: string
  filterSubject: string
  ackWaitSeconds: number
}

/** Whether the listener speaks TLS: "tls", and "relp" with a certificate. */
export function usesTls(l: ListenerConfig): boolean {
  return l.transport === 'tls' || (l.transport === 'relp' && l.tls.cert !== '')
}

/** The built-in defaults, as a plain object (what `spillway serve` runs with and no config file). */
export function defaults(): Config {
  return fill(configSchema, {}, '', []) as unknown as Config
}

/**
 * Validates a parsed config against the schema and fills in defaults. Every problem is reported, each
 * with the key's full path, so one run tells the user everything to fix.
 */
export function validate(raw: unknown, source: string): Config {
  const errors: string[] = []
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) {
    throw new SpillwayError(ErrorCodes.config, `${source}: the config must be a JSON object`)
  }
  // "$schema" points an editor at config.schema.json; it is not configuration.
  const { $schema: _schema, ...rest } = raw as Record<string, unknown>
  const cfg = fill(configSchema, rest, '', errors) as unknown as Config
  cfg.listeners?.forEach((l, i) => {
    if ((l.transport === 'unix' || l.transport === 'unix-stream') && !l.path)
      errors.push(
        `listeners[${i}].path is required for transport "${l.transport}" (the socket file, e.g. "/dev/log")`,
      )
    const tls = l.tls ?? { cert: '', key: '', ca: '', clientAuth: 'none' }
    // RELP is plain TCP unless one of its TLS files is set.
    const relpTls = l.transport === 'relp' && (tls.cert !== '' || tls.key !== '' || tls.ca !== '')
    if (l.transport !== 'tls' && !relpTls) return
    const what = relpTls ? 'RELP over TLS' : 'transport "tls"'
    if (!tls.cert) errors.push(`listeners[${i}].tls.cert is required for ${what}`)
    if (!tls.key) errors.push(`listeners[${i}].tls.key is required for ${what}`)
    if (l.tls?.clientAuth === 'require' && !l.tls.ca) {
      errors.push(
        `listeners[${i}].tls.ca is required for clientAuth "require" (the CA client certificates chain to)`,
      )
    }
  })
  const fwd = cfg.forward?.nats
  if (fwd?.servers?.length > 0 && 2 * cfg.limits?.maxMessageBytes + 128 > fwd.batchBytes) {
    errors.push(
      `forward.nats.batchBytes (${fwd.batchBytes}) must hold the largest spool record, ` +
        `2 × limits.maxMessageBytes + 128 = ${2 * cfg.limits.maxMessageBytes + 128}: raise it or lower limits.maxMessageBytes`,
    )
  }
  if (cfg.journal?.enabled === false && cfg.forward?.nats?.servers?.length === 0) {
    errors.push('journal.enabled is false and forward.nats.servers is empty: messages would be kept nowhere')
  }
  // Checks across keys need every key well-typed first.
  if (errors.length === 0) errors.push(...crossChecks(cfg))
  if (errors.length > 0) {
    throw new SpillwayError(ErrorCodes.config, errors.map((e) => `${source}: ${e}`).join('\n'))
  }
  return cfg
}

export function loadConfig(file: string | undefined): Config {
  if (file === undefined) return defaults()
  let text: string
  try {
    text = readFileSync(file, 'utf8')
  } catch (err) {
    throw new SpillwayError(ErrorCodes.config, `${file}: cannot read config: ${(err as Error).message}`, {
      cause: err,
    })
  }
  // A UTF-8 byte order mark, as some Windows editors write, is not part of the JSON.
  if (text.charCodeAt(0) === 0xfeff) text = text.slice(1)
  let raw: unknown
  try {
    raw = JSON.parse(text)
  } catch (err) {
    const at = locateJsonError(text)
    const where = at === null ? '' : `:${at.line}:${at.column}`
    throw new SpillwayError(
      ErrorCodes.config,
      `${file}${where}: not valid JSON: ${at?.message ?? (err as Error).message}`,
      { cause: err },
    )
  }
  return validate(raw, file)
}

/** Absolute paths for the files the server touches, resolved against the working directory. */
export function resolvePaths(cfg: Config, cwd = process.cwd()): Config {
  const file = (f: string) => (f === '' ? f : resolve(cwd, f))
  return {
    ...cfg,
    listeners: cfg.listeners.map((l) => ({
      ...l,
      tls: { ...l.tls, cert: file(l.tls.cert), key: file(l.tls.key), ca: file(l.tls.ca) },
    })),
    spool: { ...cfg.spool, dir: resolve(cwd, cfg.spool.dir) },
    journal: { ...cfg.journal, path: resolve(cwd, cfg.journal.path) },
    forward: { nats: natsPaths(cfg.forward.nats, file) },
    consume: { nats: natsPaths(cfg.consume.nats, file) },
  }
}

function natsPaths<T extends NatsConnectionConfig>(n: T, file: (f: string) => string): T {
  return {
    ...n,
    credsFile: file(n.credsFile),
    tls: { ca: file(n.tls.ca), cert: file(n.tls.cert), key: file(n.tls.key) },
  }
}

function describe(v: unknown): string {
  if (Array.isArray(v)) return 'an array'
  if (v === null) return 'null'
  return typeof v === 'string' ? JSON.stringify(v) : `${typeof v} ${JSON.stringify(v)}`
}

function fill(
  fields: Record<string, Field>,
  raw: Record<string, unknown>,
  path: string,
  errors: string[],
): Record<string, unknown> {
  const out: Record<string, unknown> = {}
  for (const key of Object.keys(raw)) {
    if (!(key in fields)) {
      errors.push(`${path}${key}: unknown key (known here: ${Object.keys(fields).join(', ')})`)
    }
  }
  for (const [key, field] of Object.entries(fields)) {
    out[key] = value(field, raw[key], `${path}${key}`, errors)
  }
  return out
}

function value(field: Field, v: unknown, path: string, errors: string[]): unknown {
  switch (field.kind) {
    case 'object': {
      if (v === undefined) return fill(field.fields, {}, `${path}.`, errors)
      if (typeof v !== 'object' || v === null || Array.isArray(v)) {
        errors.push(`${path} must be an object, got ${describe(v)}`)
        return fill(field.fields, {}, `${path}.`, [])
      }
      return fill(field.fields, v as Record<string, unknown>, `${path}.`, errors)
    }
    case 'array': {
      if (v === undefined)
        return field.default.map((d) => fill(field.item, d as Record<string, unknown>, '', []))
      if (!Array.isArray(v)) {
        errors.push(`${path} must be an array, got ${describe(v)}`)
        return []
      }
      return v.map((item, i) => {
        if (typeof item !== 'object' || item === null || Array.isArray(item)) {
          errors.push(`${path}[${i}] must be an object, got ${describe(item)}`)
          return {}
        }
        return fill(field.item, item as Record<string, unknown>, `${path}[${i}].`, errors)
      })
    }
    case 'string':
      if (v === undefined) return field.default
      if (typeof v !== 'string' || (v === '' && field.allowEmpty !== true)) {
        errors.push(`${path} must be a non-empty string, got ${describe(v)}`)
      } else {
        const problem = field.check?.(v) ?? null
        if (problem !== null) errors.push(`${path} ${problem}`)
      }
      return v
    case 'integer':
      if (v === undefined) return field.default
      if (typeof v !== 'number' || !Number.isInteger(v) || v < field.min || v > field.max) {
        errors.push(`${path} must be an integer from ${field.min} to ${field.max}, got ${describe(v)}`)
      }
      return v
    case 'strings':
      if (v === undefined) return [...field.default]
      if (!Array.isArray(v) || v.some((x) => typeof x !== 'string')) {
        errors.push(`${path} must be an array of strings, got ${describe(v)}`)
        return []
      }
      v.forEach((x: string, i: number) => {
        const problem = field.check?.(x) ?? null
        if (problem !== null) errors.push(`${path}[${i}] ${problem}`)
      })
      return v
    case 'boolean':
      if (v === undefined) return field.default
      if (typeof v !== 'boolean') errors.push(`${path} must be true or false, got ${describe(v)}`)
      return v
    case 'enum':
      if (v === undefined) return field.default
      if (typeof v !== 'string' || !field.values.includes(v)) {
        errors.push(
          `${path} must be one of ${field.values.map((x) => JSON.stringify(x)).join(', ')}, got ${describe(v)}`,
        )
      }
      return v
  }
}
