// The programs the end-to-end tests drive, and where each comes from. A test that needs one calls
// need() first: a missing program then fails the test with what to install, not with a bare ENOENT.
// CI (.ci/run) installs all of them; none is optional.

import { accessSync, constants, existsSync } from 'node:fs'
import { delimiter, join } from 'node:path'

export const kSyslogNgPrefix = process.env.SYSLOG_NG_PREFIX ?? '/opt/sng/usr'

/** How to get each program on Debian. */
const kInstall: Record<string, string> = {
  rsyslogd: 'apt-get install rsyslog (../shared/peers/install.sh)',
  logger: 'apt-get install bsdutils',
  nc: 'apt-get install netcat-openbsd (../shared/peers/install.sh)',
  sqlite3: 'apt-get install sqlite3 (../shared/peers/install.sh)',
  nginx: 'apt-get install nginx-light',
  'nats-server': 'apt-get install nats-server',
  openssl: 'apt-get install openssl',
  mount: 'apt-get install mount',
  bash: 'apt-get install bash',
  ss: 'apt-get install iproute2',
}

const found = new Map<string, string>()

/** The path of `program` on PATH; throws naming the Debian package when it is not installed. */
export function need(program: string): string {
  const known = found.get(program)
  if (known !== undefined) return known
  for (const dir of (process.env.PATH ?? '').split(delimiter)) {
    const path = join(dir, program)
    try {
      accessSync(path, constants.X_OK)
      found.set(program, path)
      return path
    } catch {}
  }
  const how = kInstall[program] ?? 'its Debian package'
  throw new Error(`${program} is not installed (not on PATH): ${how}; .ci/run installs every peer`)
}

/** syslog-ng, unpacked under kSyslogNgPrefix (it conflicts with rsyslog as a package). */
export function needSyslogNg(): string {
  const bin = join(kSyslogNgPrefix, 'sbin', 'syslog-ng')
  if (!existsSync(bin))
    throw new Error(
      `${bin} not found: ../shared/peers/install.sh unpacks syslog-ng-core there (or set SYSLOG_NG_PREFIX)`,
    )
  return bin
}

/** rsyslog's TLS driver (lmnsd_gtls), which rsyslog-gnutls installs next to rsyslogd's modules. */
export function needRsyslogTls(): void {
  need('rsyslogd')
  const dirs = ['/usr/lib/x86_64-linux-gnu/rsyslog', '/usr/lib/aarch64-linux-gnu/rsyslog', '/usr/lib/rsyslog']
  if (!dirs.some((d) => existsSync(join(d, 'lmnsd_gtls.so'))))
    throw new Error(`rsyslog's TLS driver lmnsd_gtls.so is not installed: apt-get install rsyslog-gnutls`)
}
