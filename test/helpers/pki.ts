// Test certificates made with the openssl CLI: a CA, server certificates for 127.0.0.1 / localhost,
// a client certificate from that CA, and one from another CA.

import { execFileSync } from 'node:child_process'
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import type { ExecutionContext } from 'ava'
import { need } from './programs.js'
import { tempDir } from './server.js'

/** A CA, a server certificate for 127.0.0.1, a client certificate from it, and one from another CA. */
export function pki(t: ExecutionContext): string {
  const d = tempDir(t)
  const ssl = (...args: string[]) => execFileSync(need('openssl'), args, { cwd: d, stdio: 'ignore' })
  const key = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes']
  for (const ca of ['ca', 'other-ca'])
    ssl(
      'req',
      '-x509',
      ...key,
      '-keyout',
      `${ca}.key`,
      '-out',
      `${ca}.crt`,
      '-subj',
      `/CN=${ca}`,
      '-days',
      '2',
    )
  writeFileSync(join(d, 'san.ext'), 'subjectAltName=IP:127.0.0.1,DNS:localhost\n')
  const issue = (name: string, cn: string, ca: string, ext: string[] = []) => {
    ssl('req', ...key, '-keyout', `${name}.key`, '-out', `${name}.csr`, '-subj', `/CN=${cn}`)
    ssl(
      'x509',
      '-req',
      '-in',
      `${name}.csr`,
      '-CA',
      `${ca}.crt`,
      '-CAkey',
      `${ca}.key`,
      '-CAcreateserial',
      '-out',
      `${name}.crt`,
      '-days',
      '2',
      ...ext,
    )
  }
  issue('server', 'spillway-one', 'ca', ['-extfile', 'san.ext'])
  issue('server2', 'spillway-two', 'ca', ['-extfile', 'san.ext'])
  issue('client', 'client1', 'ca')
  issue('stranger', 'stranger', 'other-ca')
  return d
}

/** The port of the first TLS listener in a server's stderr. */
export function tlsPort(stderr: string): number | undefined {
  const m = /listening transport=tls host=\S+ port=(\d+)/.exec(stderr)
  return m ? Number(m[1]) : undefined
}
