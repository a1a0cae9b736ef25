// NATS connection settings from the config, shared by the forwarder (edge) and spillway consume.

import { readFileSync } from 'node:fs'
import {
  connect,
  credsAuthenticator,
  type NatsConnection,
  type NodeConnectionOptions,
} from '@nats-io/transport-node'
import type { NatsConnectionConfig } from '../config/load.js'
import { logEvent } from '../log.js'

export function natsOptions(c: NatsConnectionConfig, name: string): NodeConnectionOptions {
  const o: NodeConnectionOptions = {
    servers: c.servers,
    name,
    // Once connected, the log going away is an expected state: keep trying, forever, once a second.
    // The first connection is the caller's loop, so a refusal (credentials, TLS, nothing listening)
    // reaches it as an error it can name, instead of silent retries.
    waitOnFirstConnect: false,
    // A server that takes the TCP (and TLS) handshake and then says nothing (a TLS client certificate
    // it refuses, in TLS 1.3) is a failed attempt after this long, not a wait of the default 20 s.
    timeout: 5000,
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

/** Connects, retrying every `everyMs` until it works or `stop()` says to give up (then null); says once why not. */
export async function connectWithRetry(
  c: NatsConnectionConfig,
  name: string,
  keys: string,
  event: string,
  stop: () => boolean,
  everyMs = 2000,
): Promise<NatsConnection | null> {
  for (let attempt = 0; !stop(); attempt++) {
    try {
      return await connect(natsOptions(c, name))
    } catch (err) {
      if (attempt === 0)
        logEvent(event, { stage: 'connect', message: natsProblem(err, c, keys), retryMs: everyMs })
      await new Promise((r) => setTimeout(r, everyMs))
    }
  }
  return null
}

/** A NATS failure as one line a user can act on: which servers, what they said, which keys to check. */
export function natsProblem(err: unknown, c: NatsConnectionConfig, keys: string): string {
  const msg = (err as Error).message ?? String(err)
  const hint = /authori[sz]ation|authentication|permissions/i.test(msg)
    ? `check ${keys}.user/password, token or credsFile`
    : /tls|certificate|ssl/i.test(msg)
      ? `check ${keys}.tls`
      : /timeout/i.test(msg) && (c.tls.ca !== '' || c.tls.cert !== '')
        ? `check ${keys}.tls (a client certificate the servers refuse looks like a timeout) and ${keys}.servers`
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
