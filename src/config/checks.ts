// Checks across keys, which no one key's type or bounds can express (and so neither can the JSON
// Schema): what would make the server fail at start or do something the config does not say. They run
// after every key has passed its own check (src/config/schema.ts), in validate().

import type { Config } from './load.js'

interface Bind {
  key: string
  proto: 'tcp' | 'udp'
  host: string
  port: number
  what: string
}

/** Two binds collide when one address could be both: the same, or either is a wildcard covering the other. */
function overlap(a: string, b: string): boolean {
  if (a === b || a === '::' || b === '::') return true // "::" is dual-stack: every IPv4 address too
  const v4 = (h: string) => !h.includes(':')
  return (a === '0.0.0.0' && v4(b)) || (b === '0.0.0.0' && v4(a))
}

function binds(cfg: Config): Bind[] {
  const out: Bind[] = []
  cfg.listeners.forEach((l, i) => {
    const transport: string = l.transport
    if (transport === 'unix' || transport === 'unix-stream') return // a path, not a port
    out.push({
      key: `listeners[${i}]`,
      proto: transport === 'udp' ? 'udp' : 'tcp',
      host: l.host,
      port: l.port,
      what: `${transport} ${l.host}:${l.port}`,
    })
  })
  if (cfg.metrics.port > 0)
    out.push({
      key: 'metrics',
      proto: 'tcp',
      host: cfg.metrics.host,
      port: cfg.metrics.port,
      what: `HTTP ${cfg.metrics.host}:${cfg.metrics.port}`,
    })
  return out
}

export function crossChecks(cfg: Config): string[] {
  const errors: string[] = []
  const all = binds(cfg)
  all.forEach((a, i) => {
    for (const b of all.slice(0, i)) {
      if (a.port === 0 || a.port !== b.port || a.proto !== b.proto || !overlap(a.host, b.host)) continue
      errors.push(
        `${a.key} (${a.what}) and ${b.key} (${b.what}) both bind ${a.proto.toUpperCase()} port ${a.port}: ` +
          'the second would fail at start; give one another port',
      )
    }
  })
  cfg.listeners.forEach((l, i) => {
    const transport: string = l.transport
    const t = l.tls
    const tlsSet = t.cert !== '' || t.key !== '' || t.ca !== '' || t.clientAuth !== 'none'
    if ((transport === 'udp' || transport === 'tcp') && tlsSet)
      errors.push(
        `listeners[${i}].tls is set on a "${transport}" listener, which would not use it: ` +
          'TLS settings are for transport "tls"',
      )
  })
  const m = cfg.metrics
  if ((m.user === '') !== (m.password === ''))
    errors.push('metrics.user and metrics.password go together: set both, or neither')
  if (cfg.console.enabled && m.port > 0 && !loopback(m.host) && m.token === '' && m.password === '')
    errors.push(
      `metrics.host ${JSON.stringify(m.host)} is beyond loopback and the console (console.enabled) would let ` +
        'anyone who can reach it read the journal: set metrics.token, or metrics.user and metrics.password, ' +
        'or bind 127.0.0.1, or set console.enabled to false',
    )
  return errors
}

/** 127.0.0.0/8 and ::1: reachable from this machine only. */
export function loopback(host: string): boolean {
  return /^127\.\d+\.\d+\.\d+$/.test(host) || host === '::1' || /^::ffff:127\./i.test(host)
}
