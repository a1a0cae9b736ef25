import { readFileSync } from 'node:fs'
import test from 'ava'
import fc from 'fast-check'
import { locateJsonError } from '../../src/config/json-error.js'
import { configJsonSchema } from '../../src/config/json-schema.js'
import { defaults, validate } from '../../src/config/load.js'
import { configSchema, type Field } from '../../src/config/schema.js'

const root = new URL('../../../', import.meta.url)
const kNoTls = { cert: '', key: '', ca: '', clientAuth: 'none' }
const kNoPath = { path: '', mode: '0666' }

function keyPaths(fields: Record<string, Field>, prefix = ''): string[] {
  return Object.entries(fields).flatMap(([k, f]) => {
    const path = `${prefix}${k}`
    if (f.kind === 'object') return keyPaths(f.fields, `${path}.`)
    if (f.kind === 'array') return [path, ...Object.keys(f.item).map((i) => `${path}[].${i}`)]
    return [path]
  })
}

test('config.example.json is exactly the built-in defaults', (t) => {
  const example = JSON.parse(readFileSync(new URL('config.example.json', root), 'utf8'))
  t.deepEqual(example, defaults())
  t.deepEqual(validate(example, 'config.example.json'), defaults())
})

test('the README documents every config key', (t) => {
  const readme = readFileSync(new URL('README.md', root), 'utf8')
  for (const path of keyPaths(configSchema)) t.true(readme.includes(`\`${path}\``), `README lacks ${path}`)
})

test('defaults: TCP and UDP on 127.0.0.1:5140, ./spool, ./journal.db', (t) => {
  const d = defaults()
  t.deepEqual(d.listeners, [
    { transport: 'tcp', host: '127.0.0.1', port: 5140, ...kNoPath, tls: kNoTls, allow: [] },
    { transport: 'udp', host: '127.0.0.1', port: 5140, ...kNoPath, tls: kNoTls, allow: [] },
  ])
  t.is(d.spool.dir, 'spool')
  t.is(d.journal.path, 'journal.db')
})

test('a partial config keeps the defaults of the keys it leaves out', (t) => {
  const c = validate({ spool: { thresholdBytes: 0 }, listeners: [{ transport: 'udp', port: 514 }] }, 'c.json')
  t.is(c.spool.thresholdBytes, 0)
  t.is(c.spool.dir, 'spool')
  t.deepEqual(c.listeners, [
    { transport: 'udp', host: '127.0.0.1', port: 514, ...kNoPath, tls: kNoTls, allow: [] },
  ])
})

test('unknown keys and wrong types are rejected, every one named by its path', (t) => {
  const err = t.throws(() =>
    validate(
      {
        spool: { thresholdBytz: 1, segmentBytes: '64M' },
        journal: 'journal.db',
        listeners: [{ transport: 'tls2', port: 70000 }, 5],
        extra: true,
      },
      'bad.json',
    ),
  )
  const lines = err!.message.split('\n')
  t.deepEqual(lines, [
    'bad.json: extra: unknown key (known here: listeners, limits, metrics, console, parse, udp, spool, journal, forward, consume)',
    'bad.json: listeners[0].transport must be one of "tcp", "udp", "tls", "relp", "unix", "unix-stream", got "tls2"',
    'bad.json: listeners[0].port must be an integer from 0 to 65535, got number 70000',
    'bad.json: listeners[1] must be an object, got number 5',
    'bad.json: spool.thresholdBytz: unknown key (known here: dir, thresholdBytes, fsync, maxBytes, whenFull, maxUnwrittenBytes, directIo, segmentBytes)',
    'bad.json: spool.segmentBytes must be an integer from 65536 to 4294967296, got "64M"',
    'bad.json: journal must be an object, got "journal.db"',
  ])
  t.is((err as { code?: string }).code, 'SPW_ERR_CONFIG')
})

test('a config that is not an object is rejected', (t) => {
  t.throws(() => validate([], 'a.json'), { message: 'a.json: the config must be a JSON object' })
  t.throws(() => validate(null, 'a.json'), { message: 'a.json: the config must be a JSON object' })
})

test('parse.timezone must be a zone this runtime knows', (t) => {
  t.is(validate({ parse: { timezone: 'Europe/Berlin' } }, 'c.json').parse.timezone, 'Europe/Berlin')
  t.throws(() => validate({ parse: { timezone: 'Mars/Base' } }, 'c.json'), {
    message: 'c.json: parse.timezone must be "local", "UTC" or an IANA time zone name, got "Mars/Base"',
  })
})

test('listeners[].allow takes addresses and CIDR ranges, and names a bad one', (t) => {
  const ok = validate(
    { listeners: [{ transport: 'tcp', allow: ['10.0.0.0/8', '192.0.2.1', '2001:db8::/32'] }] },
    'c.json',
  )
  t.deepEqual(ok.listeners[0]!.allow, ['10.0.0.0/8', '192.0.2.1', '2001:db8::/32'])
  const err = t.throws(() =>
    validate({ listeners: [{ transport: 'tcp', allow: ['10.0.0.0/33', 'example.com', 7] }] }, 'c.json'),
  )
  t.is(err!.message, 'c.json: listeners[0].allow must be an array of strings, got an array')
  const err2 = t.throws(() =>
    validate({ listeners: [{ transport: 'tcp', allow: ['10.0.0.0/33', 'example.com'] }] }, 'c.json'),
  )
  t.deepEqual(err2!.message.split('\n'), [
    'c.json: listeners[0].allow[0] has a prefix length outside 0-32: "10.0.0.0/33"',
    'c.json: listeners[0].allow[1] must be an address or CIDR range, got "example.com"',
  ])
})

test('config.schema.json is the JSON Schema of the config as the code defines it', (t) => {
  const file = JSON.parse(readFileSync(new URL('config.schema.json', root), 'utf8'))
  t.deepEqual(file, configJsonSchema())
  // every key the loader knows is in the schema, with its default
  const props = file.properties
  t.is(props.spool.properties.thresholdBytes.default, defaults().spool.thresholdBytes)
  t.deepEqual(props.listeners.items.properties.transport.enum, [
    'tcp',
    'udp',
    'tls',
    'relp',
    'unix',
    'unix-stream',
  ])
  t.false(file.additionalProperties)
})

test('a config may name its schema with "$schema"', (t) => {
  t.deepEqual(validate({ $schema: './config.schema.json' }, 'c.json'), defaults())
})

test('a "tls" listener needs a certificate and key, and a CA to require client certificates', (t) => {
  const err = t.throws(() =>
    validate({ listeners: [{ transport: 'tls', tls: { clientAuth: 'require' } }] }, 'c.json'),
  )
  t.deepEqual(err!.message.split('\n'), [
    'c.json: listeners[0].tls.cert is required for transport "tls"',
    'c.json: listeners[0].tls.key is required for transport "tls"',
    'c.json: listeners[0].tls.ca is required for clientAuth "require" (the CA client certificates chain to)',
  ])
  const ok = validate(
    { listeners: [{ transport: 'tls', port: 6514, tls: { cert: 'c.pem', key: 'k.pem' } }] },
    'c.json',
  )
  t.is(ok.listeners[0]!.tls.clientAuth, 'none')
})

test('forwarding: the batch must hold the largest record, and a journal off needs somewhere to send to', (t) => {
  const ok = validate({ forward: { nats: { servers: ['127.0.0.1:4222'], edge: 'web-1' } } }, 'c.json')
  t.is(ok.forward.nats.subject, 'syslog.{edge}')
  t.is(ok.forward.nats.batchBytes, 262_144)
  t.throws(
    () =>
      validate(
        { limits: { maxMessageBytes: 200_000 }, forward: { nats: { servers: ['127.0.0.1:4222'] } } },
        'c.json',
      ),
    {
      message:
        'c.json: forward.nats.batchBytes (262144) must hold the largest spool record, 2 × limits.maxMessageBytes + 128 = 400128: raise it or lower limits.maxMessageBytes',
    },
  )
  t.throws(() => validate({ journal: { enabled: false } }, 'c.json'), {
    message:
      'c.json: journal.enabled is false and forward.nats.servers is empty: messages would be kept nowhere',
  })
  const err = t.throws(() =>
    validate({ forward: { nats: { subject: 'syslog.>', edge: 'web 1' } } }, 'c.json'),
  )
  t.deepEqual(err!.message.split('\n'), [
    'c.json: forward.nats.subject must be a plain subject (no spaces, * or >), got "syslog.>"',
    'c.json: forward.nats.edge must be letters, digits, "-" or "_", got "web 1"',
  ])
})

test('a "relp" listener is plain TCP without TLS files, and with one of them needs a certificate and key', (t) => {
  const plain = validate({ listeners: [{ transport: 'relp', port: 2514 }] }, 'c.json')
  t.is(plain.listeners[0]!.transport, 'relp')
  const err = t.throws(() =>
    validate({ listeners: [{ transport: 'relp', port: 2514, tls: { ca: 'ca.pem' } }] }, 'c.json'),
  )
  t.deepEqual(err!.message.split('\n'), [
    'c.json: listeners[0].tls.cert is required for RELP over TLS',
    'c.json: listeners[0].tls.key is required for RELP over TLS',
  ])
})

test('a unix listener needs its path, and a mode that is an octal file mode', (t) => {
  const err = t.throws(() =>
    validate(
      { listeners: [{ transport: 'unix' }, { transport: 'unix-stream', path: 's', mode: 'rw-rw-rw-' }] },
      'c.json',
    ),
  )
  t.deepEqual(err!.message.split('\n'), [
    'c.json: listeners[1].mode must be an octal file mode such as "0666" or "0660", got "rw-rw-rw-"',
    'c.json: listeners[0].path is required for transport "unix" (the socket file, e.g. "/dev/log")',
  ])
  t.is(
    validate({ listeners: [{ transport: 'unix', path: '/dev/log' }] }, 'c.json').listeners[0]!.mode,
    '0666',
  )
})

test('check-config refuses what cannot start: two listeners on one port, a host that is not an IP, TLS settings on UDP', (t) => {
  const tls = { cert: 'c.pem', key: 'k.pem' }
  const err = t.throws(() =>
    validate(
      {
        listeners: [
          { transport: 'tcp', host: '127.0.0.1', port: 5140 },
          { transport: 'udp', host: '127.0.0.1', port: 5140 }, // another protocol: fine
          { transport: 'tls', host: '0.0.0.0', port: 5140, tls }, // covers 127.0.0.1
          { transport: 'udp', host: '::', port: 5514, tls },
          { transport: 'tcp', host: '::1', port: 0 }, // port 0: a free port each, fine
          { transport: 'tcp', host: '::1', port: 0 },
        ],
        metrics: { port: 5140 },
      },
      'c.json',
    ),
  )
  t.deepEqual(err!.message.split('\n'), [
    'c.json: listeners[2] (tls 0.0.0.0:5140) and listeners[0] (tcp 127.0.0.1:5140) both bind TCP port 5140: the second would fail at start; give one another port',
    'c.json: metrics (HTTP 127.0.0.1:5140) and listeners[0] (tcp 127.0.0.1:5140) both bind TCP port 5140: the second would fail at start; give one another port',
    'c.json: metrics (HTTP 127.0.0.1:5140) and listeners[2] (tls 0.0.0.0:5140) both bind TCP port 5140: the second would fail at start; give one another port',
    'c.json: listeners[3].tls is set on a "udp" listener, which would not use it: TLS settings are for transport "tls"',
  ])
  t.throws(() => validate({ listeners: [{ host: 'not-an-ip' }], metrics: { host: 'localhost' } }, 'c.json'), {
    message: [
      'c.json: listeners[0].host must be an IP address to bind ("127.0.0.1", "0.0.0.0" or "::" for all), got "not-an-ip"',
      'c.json: metrics.host must be an IP address to bind ("127.0.0.1", "0.0.0.0" or "::" for all), got "localhost"',
    ].join('\n'),
  })
  // Different addresses of one family do not collide.
  t.notThrows(() =>
    validate(
      {
        listeners: [
          { transport: 'tcp', host: '127.0.0.1', port: 5140 },
          { transport: 'tcp', host: '127.0.0.2', port: 5140 },
          { transport: 'tcp', host: '::1', port: 5140 },
        ],
      },
      'c.json',
    ),
  )
})

test('a JSON syntax error is located by line and column, whatever JSON.parse says', (t) => {
  t.deepEqual(locateJsonError('{\n  "a": 1,\n  "b": }'), {
    line: 3,
    column: 8,
    message: 'expected a value (an object, array, string, number, true, false or null), got "}"',
  })
  t.deepEqual(locateJsonError('{ "spool": '), {
    line: 1,
    column: 12,
    message:
      'expected a value (an object, array, string, number, true, false or null), got the end of the file',
  })
  t.deepEqual(locateJsonError('{"a": 1,}'), {
    line: 1,
    column: 9,
    message: 'expected a property name in double quotes, got "}"',
  })
  t.is(locateJsonError('{"a": [1, 2.5e3, "x\\u00e9", true, null]}'), null)
  // The scanner agrees with JSON.parse on every text: valid JSON, and JSON with one character changed.
  fc.assert(
    fc.property(
      fc.json(),
      fc.nat(),
      fc.constantFrom('}', ']', ',', ':', '"', '\n', 'x', '0', '-', '.', ' '),
      (s, at, c) => {
        const text =
          at % 3 === 0 ? s : s.slice(0, at % (s.length + 1)) + c + s.slice((at % (s.length + 1)) + 1)
        let valid = true
        try {
          JSON.parse(text)
        } catch {
          valid = false
        }
        return (locateJsonError(text) === null) === valid
      },
    ),
    { numRuns: 2000 },
  )
})

test('the console beyond loopback needs credentials; user and password go together', (t) => {
  t.is(defaults().metrics.port, 5141)
  t.is(defaults().console.enabled, true)
  t.throws(() => validate({ metrics: { host: '0.0.0.0' } }, 'c.json'), {
    message:
      'c.json: metrics.host "0.0.0.0" is beyond loopback and the console (console.enabled) would let anyone who can reach it read the journal: set metrics.token, or metrics.user and metrics.password, or bind 127.0.0.1, or set console.enabled to false',
  })
  t.throws(() => validate({ metrics: { host: '::', user: 'ops' } }, 'c.json'), {
    message: /metrics\.user and metrics\.password go together/,
  })
  for (const ok of [
    { metrics: { host: '0.0.0.0', token: 's3cret' } },
    { metrics: { host: '::', user: 'ops', password: 'pw' } },
    { metrics: { host: '0.0.0.0' }, console: { enabled: false } },
    { metrics: { host: '0.0.0.0', port: 0 } },
    { metrics: { host: '127.0.0.2' } },
    { metrics: { host: '::1' } },
  ])
    t.notThrows(() => validate(ok, 'c.json'), JSON.stringify(ok))
})

test('by default ten source addresses cannot take every connection, and a message has a deadline', (t) => {
  const d = defaults().limits
  t.true(d.maxConnectionsPerSource * 10 <= d.maxConnections / 10, `${d.maxConnectionsPerSource} x 10`)
  t.true(d.frameTimeoutSeconds > 0 && d.frameTimeoutSeconds < d.idleTimeoutSeconds)
})
