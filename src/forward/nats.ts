// NATS connection settings from the config, shared by the forwarder (edge) and spillway consume.

import { readFileSync } from 'node:fs'
import { credsAuthenticator, type NodeConnectionOptions } from '@nats-io/transport-node'
import type { NatsConnectionConfig } from '../config/load.js'

export function natsOptions(c: NatsConnectionConfig, name: string): NodeConnectionOptions {
  const o: NodeConnectionOptions = {
    servers: c.servers,
    name,
    // The log being away is an expected state, not an error: keep trying, forever, once a second.
    waitOnFirstConnect: true,
    maxReconnectAttempts: -1,
    reconnectTimeWait: 1000,
    pingInterval: 10_000,
  }
  if (c.user !== '') {
    o.user = c.user
    o.pass = c.password
  }
  if (c.token !== '') o.token = c.token
  if (c.credsFile !== '') o.authenticator = credsAuthenticator(readFileSync(c.credsFile))
  if (c.tls.ca !== '' || c.tls.cert !== '') {
    o.tls = {}
    if (c.tls.ca !== '') o.tls.caFile = c.tls.ca
    if (c.tls.cert !== '') o.tls.certFile = c.tls.cert
    if (c.tls.key !== '') o.tls.keyFile = c.tls.key
  }
  return o
}

/** A NATS failure as one line a user can act on: which servers, what they said, which keys to check. */
export function natsProblem(err: unknown, c: NatsConnectionConfig, keys: string): string {
  const msg = (err as Error).message ?? String(err)
  const hint = /authori[sz]ation|authentication|permissions/i.test(msg)
    ? `check ${keys}.user/password, token or credsFile`
    : /tls|certificate|ssl/i.test(msg)
      ? `check ${keys}.tls`
      : `check ${keys}.servers and that the servers run with JetStream (-js)`
  return `NATS ${c.servers.join(',')}: ${msg}; ${hint}`
}

/** The stream subjects an edge's subject template falls under: {edge} becomes a wildcard. */
export function streamSubject(template: string): string {
  return template.replaceAll('{edge}', '*')
}

// Headers of a forwarded message. The payload is the edge's spool records verbatim (docs/SCALE.md).
export const kHdrEdge = 'Spillway-Edge'
export const kHdrInstance = 'Spillway-Instance'
/** SEGMENT:START:END, byte positions of the payload in the edge's spool. */
export const kHdrPos = 'Spillway-Pos'
export const kHdrRecords = 'Spillway-Records'
/** SEGMENT:OFFSET, the end of the message this edge published before this one. */
export const kHdrPrev = 'Spillway-Prev'
