// The configuration, described once: types, bounds, defaults and the sentence the README shows for each
// key. The loader validates against it, `--help` prints it, and a test keeps config.example.json and the
// README table equal to it.

export type Field =
  | {
      kind: 'string'
      default: string
      doc: string
      check?: (v: string) => string | null
      allowEmpty?: boolean
    }
  | { kind: 'integer'; default: number; min: number; max: number; doc: string }
  | { kind: 'enum'; default: string; values: readonly string[]; doc: string }
  | { kind: 'boolean'; default: boolean; doc: string }
  | { kind: 'strings'; default: readonly string[]; doc: string; check?: (v: string) => string | null }
  | { kind: 'object'; fields: Record<string, Field>; doc: string }
  | { kind: 'array'; item: Record<string, Field>; default: readonly Record<string, unknown>[]; doc: string }

import { isIP } from 'node:net'
import { checkZone } from '../journal/zone.js'
import { parseFsync } from '../spool/fsync.js'

const KiB = 1024
const MiB = 1024 * KiB

export const kDefaultPort = 5140
/** The HTTP listener's port (console, /metrics): the next one up. */
export const kDefaultHttpPort = 5141

export const configSchema: Record<string, Field> = {
  listeners: {
    kind: 'array',
    doc: 'Sockets to receive syslog on. Each TCP listener detects LF and octet-counted framing per message.',
    default: [
      { transport: 'tcp', host: '127.0.0.1', port: kDefaultPort },
      { transport: 'udp', host: '127.0.0.1', port: kDefaultPort },
    ],
    item: {
      transport: {
        kind: 'enum',
        values: ['tcp', 'udp', 'tls', 'relp', 'unix', 'unix-stream'],
        default: 'tcp',
        doc:
          '"tcp", "udp", "tls" (RFC 5425: TCP with TLS; octet-counted and LF framing both read), "relp" ' +
          "(rsyslog's RELP: each message acknowledged once it is on disk; with TLS when tls.cert is set), " +
          '"unix" (a local datagram socket at path, as /dev/log) or "unix-stream" (a local stream socket).',
      },
      host: {
        kind: 'string',
        default: '127.0.0.1',
        doc: 'Address to bind; "0.0.0.0" or "::" for all.',
        check: ipProblem,
      },
      port: { kind: 'integer', min: 0, max: 65535, default: kDefaultPort, doc: 'Port; 0 picks a free one.' },
      path: {
        kind: 'string',
        default: '',
        allowEmpty: true,
        doc:
          'For "unix" and "unix-stream": the socket file. A socket left by an earlier run is replaced; a ' +
          'live one (another daemon) or a file that is not a socket is refused.',
      },
      mode: {
        kind: 'string',
        default: '0666',
        doc: 'For "unix" and "unix-stream": the socket file\'s permissions, octal ("0666": every local user may log).',
        check: (v) =>
          /^0?[0-7]{3}$/.test(v)
            ? null
            : `must be an octal file mode such as "0666" or "0660", got ${JSON.stringify(v)}`,
      },
      tls: {
        kind: 'object',
        doc: 'For transport "tls", and "relp" over TLS. Files are read at start and again on SIGHUP.',
        fields: {
          cert: {
            kind: 'string',
            default: '',
            allowEmpty: true,
            doc: 'PEM certificate chain of the server (required for "tls").',
          },
          key: {
            kind: 'string',
            default: '',
            allowEmpty: true,
            doc: 'PEM private key of the server (required for "tls").',
          },
          ca: {
            kind: 'string',
            default: '',
            allowEmpty: true,
            doc: 'PEM CA bundle that client certificates must chain to.',
          },
          clientAuth: {
            kind: 'enum',
            values: ['none', 'request', 'require'],
            default: 'none',
            doc:
              '"none": no client certificate; "request": asked for, recorded when valid; "require": a ' +
              'client without a certificate from ca is refused at the handshake (counted, logged).',
          },
        },
      },
      allow: {
        kind: 'strings',
        default: [],
        doc:
          'Source addresses allowed to send, as CIDR ranges ("10.0.0.0/8", "2001:db8::/32") or single ' +
          'addresses; empty = everyone. Others are closed at accept (TCP) or dropped (UDP), and counted.',
        check: cidrProblem,
      },
    },
  },
  limits: {
    kind: 'object',
    doc: 'Bounds on what a sender can make the server hold.',
    fields: {
      maxMessageBytes: {
        kind: 'integer',
        min: 64,
        max: 16 * MiB,
        default: 64 * KiB,
        doc:
          'Longest message kept. A longer one is cut to this size, journaled once with its original length ' +
          'in orig_len, and counted; the rest of its frame is skipped, never turned into a message of its own.',
      },
      memoryBytes: {
        kind: 'integer',
        min: 1 * MiB,
        max: 64 * 1024 * MiB,
        // 32 MiB is ~150 k records, about half a second of journal work: what more the memory lanes
        // hold only waits, and costs the socket thread page faults to fill (25 k of them at 100
        // connections x 1 MiB, measured), where the spool's pooled buffers cost none.
        default: 32 * MiB,
        doc:
          "All connections together: bytes held in memory, not yet journaled, before any connection's " +
          'messages go to the spool, so many connections cannot add up their thresholds past this.',
      },
      maxConnections: {
        kind: 'integer',
        min: 1,
        max: 1_000_000,
        default: 10_000,
        doc:
          'Open TCP connections at once, over all listeners; one more is closed at accept and counted. ' +
          'Capped at what the open-file limit leaves once the server has its own files open (logged at ' +
          'start: open-file-limit).',
      },
      maxConnectionsPerSource: {
        kind: 'integer',
        min: 1,
        max: 1_000_000,
        // A sender keeps one connection per destination (rsyslog, syslog-ng), a relay a few; 100 is ten
        // times what a busy relay tier opens, and it takes 100 addresses to fill maxConnections' 10,000,
        // not 10. A NAT gateway or a Docker host whose containers log by TCP may need more.
        default: 100,
        doc:
          'Open TCP connections at once from one source address. Keep it well below maxConnections: ' +
          'maxConnections / maxConnectionsPerSource addresses can take every connection.',
      },
      frameTimeoutSeconds: {
        kind: 'integer',
        min: 0,
        max: 86_400,
        // Senders write each message whole: its bytes arrive within round trips of each other, even
        // split over segments. Only a sender trickling bytes (to hold a connection, or its memory for
        // an unfinished frame) takes seconds. Time the server does not read (spool full, disk behind)
        // does not count.
        default: 60,
        doc:
          'A message whose first byte has arrived must be complete within this many seconds, or its ' +
          'connection is closed (the unfinished message is kept, as at EOF, and counted); 0 = no limit. ' +
          'Time the server is not reading the connection does not count.',
      },
      idleTimeoutSeconds: {
        kind: 'integer',
        min: 0,
        max: 7 * 86_400,
        default: 3600,
        doc: 'A TCP connection that sends nothing for this long is closed (what it sent is kept); 0 = never.',
      },
      keepAliveSeconds: {
        kind: 'integer',
        min: 0,
        max: 86_400,
        default: 60,
        doc: 'TCP keepalive probes after this much silence, so half-open connections are found; 0 = off.',
      },
    },
  },
  metrics: {
    kind: 'object',
    doc:
      'The HTTP listener: the web console at / (console.enabled), /metrics (Prometheus), /healthz and ' +
      '/status (spillway stats). GET and HEAD only.',
    fields: {
      host: {
        kind: 'string',
        default: '127.0.0.1',
        doc: 'Address to bind the HTTP listener. Beyond loopback, the console needs token or user and password.',
        check: ipProblem,
      },
      port: {
        kind: 'integer',
        min: 0,
        max: 65535,
        default: kDefaultHttpPort,
        doc: 'Port of the HTTP listener; 0 = no HTTP listener (no console, no /metrics).',
      },
      token: {
        kind: 'string',
        default: '',
        allowEmpty: true,
        doc:
          'Every request must carry it: "Authorization: Bearer TOKEN" (Prometheus, curl), or as the password ' +
          'of HTTP basic auth with any user name (a browser asks); "" = none.',
      },
      user: {
        kind: 'string',
        default: '',
        allowEmpty: true,
        doc: 'With password: every request must carry them as HTTP basic auth (a browser asks); "" = none.',
      },
      password: { kind: 'string', default: '', allowEmpty: true, doc: 'Password of user.' },
    },
  },
  console: {
    kind: 'object',
    doc:
      'The web console at / on the HTTP listener: live tail, search, histogram, senders, health, read-only ' +
      'SQL. It reads the journal in a separate process and never writes it.',
    fields: {
      enabled: {
        kind: 'boolean',
        default: true,
        doc: 'Serve the console (when the HTTP listener is on); false: /metrics, /healthz and /status only.',
      },
      timeLimitMs: {
        kind: 'integer',
        min: 100,
        max: 600_000,
        default: 3000,
        doc:
          'Longest a console query (a search, a histogram, an SQL statement) may run; past it, the query ' +
          'process is killed and the page says so.',
      },
      maxRows: {
        kind: 'integer',
        min: 1,
        max: 100_000,
        default: 1000,
        doc: 'Most rows an SQL statement of the console returns (the rest is cut, and the page says so).',
      },
    },
  },
  parse: {
    kind: 'object',
    doc: 'How message headers are read.',
    fields: {
      timezone: {
        kind: 'string',
        default: 'local',
        doc:
          'Zone for timestamps that carry none (RFC 3164 and its dialects): "local" (the server\'s TZ), ' +
          '"UTC", or an IANA name such as "Europe/Berlin".',
        check: (v) => {
          try {
            checkZone(v)
            return null
          } catch {
            return `must be "local", "UTC" or an IANA time zone name, got ${JSON.stringify(v)}`
          }
        },
      },
    },
  },
  udp: {
    kind: 'object',
    doc: 'Settings for every UDP listener.',
    fields: {
      recvBufferBytes: {
        kind: 'integer',
        min: 0,
        max: 1024 * MiB,
        default: 4 * MiB,
        doc:
          'Kernel receive buffer (SO_RCVBUF) asked for; 0 keeps the system default. Datagrams that arrive ' +
          'while it is full are lost in the kernel. The effective size is logged at start, with a warning ' +
          'when net.core.rmem_max capped it.',
      },
    },
  },
  spool: {
    kind: 'object',
    doc: 'Append-only spool files that absorb bursts the journal cannot take at once.',
    fields: {
      dir: {
        kind: 'string',
        default: 'spool',
        doc: 'Directory of spool segments (relative to the working directory).',
      },
      thresholdBytes: {
        kind: 'integer',
        min: 0,
        max: 1024 * MiB,
        default: 1 * MiB,
        doc:
          'Per connection: bytes held in memory, not yet journaled, before its messages go to the spool. ' +
          '0 = durable mode: every message is written to the spool before it is journaled, and a TCP ' +
          'connection is not read again until what it sent is on disk.',
      },
      fsync: {
        kind: 'string',
        default: 'off',
        doc:
          'What survives a power loss: "off" (the OS writes the spool out in its own time), "batch" ' +
          '(fdatasync after every spool write, before anything counts as written), or an interval such ' +
          'as "200ms" or "1s" (the segment being written is synced that often).',
        check: (v) =>
          parseFsync(v) === null ? 'must be "off", "batch" or an interval like "200ms" or "1s"' : null,
      },
      maxBytes: {
        kind: 'integer',
        min: 0,
        max: Number.MAX_SAFE_INTEGER,
        default: 8 * 1024 * MiB,
        doc:
          'Spool quota: bytes spooled and not yet journaled (a backlog from an earlier run included); ' +
          '0 = no quota. When it is reached, spool.whenFull applies.',
      },
      whenFull: {
        kind: 'enum',
        values: ['block', 'drop'],
        default: 'block',
        doc:
          '"block": stop reading the TCP connections whose messages would be spooled, so their senders ' +
          'wait (TCP pushes back); read again below 90 % of the quota. "drop": discard those messages. ' +
          'UDP cannot be pushed back: its messages are dropped either way. Both are counted and logged.',
      },
      maxUnwrittenBytes: {
        kind: 'integer',
        min: 0,
        max: 64 * 1024 * MiB,
        default: 16 * MiB,
        doc:
          'Spooled bytes held in memory while the disk catches up (a slow disk, or a burst faster than ' +
          'writes). Past it, the TCP connections being spooled are not read until the writer is below half ' +
          'of it, so their senders wait as TCP makes them; nothing is dropped. UDP is not paused. 0 = no bound.',
      },
      directIo: {
        kind: 'boolean',
        default: true,
        doc:
          'Large spool writes and replay reads bypass the page cache (O_DIRECT, Linux): a fraction of the ' +
          "CPU per byte, and a burst does not fill the page cache, but a burst is written at the disk's " +
          'own speed. false: through the page cache, which takes a burst into RAM ahead of a slow disk (a ' +
          'spinning disk, a network filesystem). A filesystem that refuses O_DIRECT falls back by itself.',
      },
      segmentBytes: {
        kind: 'integer',
        min: 64 * KiB,
        max: 4096 * MiB,
        default: 64 * MiB,
        doc: 'A segment file is closed and a new one started once it reaches this size.',
      },
    },
  },
  journal: {
    kind: 'object',
    doc: 'The SQLite journal (WAL mode), written by one worker thread.',
    fields: {
      enabled: {
        kind: 'boolean',
        default: true,
        doc:
          'Journal messages locally. false (only with forward.nats.servers set): the journal keeps its ' +
          'cursor and stats table but no messages; the edge only forwards.',
      },
      path: {
        kind: 'string',
        default: 'journal.db',
        doc: 'Journal database file (relative to the working directory).',
      },
      batchRows: {
        kind: 'integer',
        min: 1,
        max: 1_000_000,
        default: 10_000,
        doc: 'Most rows inserted in one transaction.',
      },
      synchronous: {
        kind: 'enum',
        values: ['full', 'normal'],
        default: 'full',
        doc:
          'SQLite synchronous mode. "full" makes every commit (and so every deleted spool segment) survive ' +
          'power loss; "normal" survives a crash of the process but not of the machine.',
      },
      walMaxBytes: {
        kind: 'integer',
        min: 1024 * 1024,
        max: Number.MAX_SAFE_INTEGER,
        default: 64 * MiB,
        doc:
          'Past this size of the -wal file the journal asks for a truncating checkpoint every 2 s; a reader ' +
          'holding an old snapshot can block it (logged once: wal-checkpoint-blocked).',
      },
      burstBytesPerSecond: {
        kind: 'integer',
        min: 1024 * 1024,
        max: Number.MAX_SAFE_INTEGER,
        default: 64 * MiB,
        doc:
          'While the spool grows faster than this, replay waits for the burst to end and leaves the CPU to ' +
          'the sockets; about what the journal replays per second (64 MiB/s on the VMs of docs/BENCHMARKS.md).',
      },
      maxAgeSeconds: {
        kind: 'integer',
        min: 0,
        max: 100 * 365 * 86_400,
        default: 0,
        doc: 'Retention: rows received longer ago are deleted, oldest first, in idle time; 0 = keep forever.',
      },
      maxRows: {
        kind: 'integer',
        min: 0,
        max: Number.MAX_SAFE_INTEGER,
        default: 0,
        doc: 'Retention: the oldest rows beyond this many are deleted in idle time; 0 = no limit.',
      },
      maxBytes: {
        kind: 'integer',
        min: 0,
        max: Number.MAX_SAFE_INTEGER,
        default: 0,
        doc:
          "Retention: while the journal's used pages pass this size the oldest rows are deleted in idle " +
          'time (the file does not shrink; freed pages are reused); 0 = no limit.',
      },
      fullText: {
        kind: 'boolean',
        default: true,
        doc:
          'Keep an FTS5 trigram index over msg (table messages_fts) so text searches need not scan, built ' +
          'behind the journal in idle time so it never slows ingestion; its lag is in the stats table ' +
          '(fts_lag_rows, fts_lag_seconds).',
      },
    },
  },
  forward: {
    kind: 'object',
    doc: 'Forwarding to NATS JetStream: every message, from the spool, in order; off unless servers is set.',
    fields: {
      nats: {
        kind: 'object',
        doc: 'The JetStream log this edge publishes to (docs/SCALE.md).',
        fields: {
          ...natsConnection('publish to'),
          subject: {
            kind: 'string',
            default: 'syslog.{edge}',
            doc:
              'Subject of every message; {edge} becomes forward.nats.edge. Keep {edge} in it: an edge finds ' +
              'where it stopped from the last message on its own subject.',
            check: (v) =>
              /[\s*>]/.test(v) ? `must be a plain subject (no spaces, * or >), got "${v}"` : null,
          },
          edge: {
            kind: 'string',
            default: '',
            allowEmpty: true,
            doc: 'This edge\'s name, unique among edges, stored in the central journal\'s edge column; "" = the host name.',
            check: (v) =>
              /^[A-Za-z0-9_-]*$/.test(v) ? null : `must be letters, digits, "-" or "_", got "${v}"`,
          },
          createStream: {
            kind: 'boolean',
            default: true,
            doc: 'Create the stream (subjects: subject with {edge} as *) when it does not exist.',
          },
          replicas: {
            kind: 'integer',
            min: 1,
            max: 5,
            default: 1,
            doc: 'Replicas of a stream this edge creates (3 on a three-node cluster).',
          },
          duplicateWindowSeconds: {
            kind: 'integer',
            min: 1,
            max: 7 * 86_400,
            default: 600,
            doc:
              'De-duplication window of a stream this edge creates: a publish retried after a lost ack (a log ' +
              'node restart) is stored once within it.',
          },
          batchBytes: {
            kind: 'integer',
            min: 4 * KiB,
            max: 1 * MiB - 4 * KiB,
            default: 256 * KiB,
            doc:
              "Most spool bytes (whole records) in one published message; must fit the server's max_payload " +
              '(1 MiB by default).',
          },
        },
      },
    },
  },
  consume: {
    kind: 'object',
    doc: 'spillway consume: journal a JetStream stream that edges forward to, into journal.path.',
    fields: {
      nats: {
        kind: 'object',
        doc: 'The JetStream log to read.',
        fields: {
          ...natsConnection('read from'),
          durable: {
            kind: 'string',
            default: 'spillway-journal',
            doc: 'Durable consumer name; one central journal per name.',
          },
          filterSubject: {
            kind: 'string',
            default: '',
            allowEmpty: true,
            doc: 'Only subjects matching this ("syslog.web.*": wildcards match whole tokens); "" = the whole stream.',
          },
          ackWaitSeconds: {
            kind: 'integer',
            min: 1,
            max: 86_400,
            default: 120,
            doc: 'How long the log waits for an acknowledgement (sent after each commit) before redelivering.',
          },
        },
      },
    },
  },
}

/** Connection settings shared by forward.nats and consume.nats. */
function natsConnection(what: string): Record<string, Field> {
  return {
    servers: {
      kind: 'strings',
      default: [],
      doc: `NATS servers to ${what}, "host:port" or "nats://host:port" (any of a cluster); [] = off.`,
    },
    stream: { kind: 'string', default: 'SYSLOG', doc: 'JetStream stream name.' },
    user: { kind: 'string', default: '', allowEmpty: true, doc: 'User name, with password.' },
    password: { kind: 'string', default: '', allowEmpty: true, doc: 'Password of user.' },
    token: { kind: 'string', default: '', allowEmpty: true, doc: 'Authentication token.' },
    credsFile: {
      kind: 'string',
      default: '',
      allowEmpty: true,
      doc: 'NATS credentials file (JWT and NKey seed), as nsc writes it.',
    },
    tls: {
      kind: 'object',
      doc: 'TLS to the NATS servers; on when ca or cert is set.',
      fields: {
        ca: { kind: 'string', default: '', allowEmpty: true, doc: 'PEM CA bundle the servers chain to.' },
        cert: { kind: 'string', default: '', allowEmpty: true, doc: 'PEM client certificate.' },
        key: { kind: 'string', default: '', allowEmpty: true, doc: 'PEM private key of cert.' },
      },
    },
  }
}

/** Why a string is not an address to bind (a host name would be looked up, or fail, only at start). */
export function ipProblem(v: string): string | null {
  return isIP(v) === 0
    ? `must be an IP address to bind ("127.0.0.1", "0.0.0.0" or "::" for all), got ${JSON.stringify(v)}`
    : null
}

/** Why a string is not an address or CIDR range, or null. */
export function cidrProblem(v: string): string | null {
  const [addr = '', bits, extra] = v.split('/')
  const family = isIP(addr)
  const max = family === 4 ? 32 : 128
  if (family === 0 || extra !== undefined) return `must be an address or CIDR range, got ${JSON.stringify(v)}`
  if (bits !== undefined && !(/^\d{1,3}$/.test(bits) && Number(bits) <= max)) {
    return `has a prefix length outside 0-${max}: ${JSON.stringify(v)}`
  }
  return null
}
