// config.schema.json (what editors check) and the loader (what check-config and serve check) come from
// one description, src/config/schema.ts. This keeps them in agreement, with Ajv as the judge of the
// JSON Schema: whatever the schema refuses, the loader refuses, naming the same key; whatever the loader
// accepts, the schema accepts. (The loader refuses more: what one key's type cannot say, such as an
// address that is not an IP, or two listeners on one port.)

import { readFileSync } from 'node:fs'
import { Ajv2020 } from 'ajv/dist/2020.js'
import test from 'ava'
import fc from 'fast-check'
import { validate } from '../../src/config/load.js'
import { configSchema, type Field } from '../../src/config/schema.js'

const schema = JSON.parse(readFileSync(new URL('../../../config.schema.json', import.meta.url), 'utf8'))
const ajv = new Ajv2020({ allErrors: true, strict: false })
const check = ajv.compile(schema)

/** Values of every sort for a field: its default, edge values, and wrong types. */
function values(f: Field): fc.Arbitrary<unknown> {
  const wrong = fc.constantFrom<unknown>(null, true, 7, -1.5, 'x', '', [], {}, ['a'])
  switch (f.kind) {
    case 'object':
      return fc.oneof({ weight: 5, arbitrary: object(f.fields) }, { weight: 1, arbitrary: wrong })
    case 'array':
      return fc.oneof(
        {
          weight: 4,
          arbitrary: fc.array(
            fc.oneof({ weight: 5, arbitrary: object(f.item) }, { weight: 1, arbitrary: wrong }),
            { maxLength: 3 },
          ),
        },
        { weight: 1, arbitrary: wrong },
      )
    case 'integer':
      return fc.oneof(
        fc.constantFrom(f.default, f.min, f.max, f.min - 1, f.max + 1, 0),
        fc.integer({ min: f.min, max: Math.min(f.max, 2 ** 31) }),
        wrong,
      )
    case 'string':
      return fc.oneof(fc.constantFrom(f.default, '', '127.0.0.1', 'UTC', '10.0.0.0/8'), wrong)
    case 'enum':
      return fc.oneof(fc.constantFrom(...f.values), wrong)
    case 'boolean':
      return fc.oneof(fc.boolean(), wrong)
    case 'strings':
      return fc.oneof(
        fc.array(fc.constantFrom('10.0.0.0/8', '127.0.0.1:4222', 'x', ''), { maxLength: 2 }),
        fc.constant([1]),
        wrong,
      )
  }
}

function object(fields: Record<string, Field>): fc.Arbitrary<Record<string, unknown>> {
  const keys = Object.fromEntries(Object.entries(fields).map(([k, f]) => [k, values(f)]))
  return fc
    .tuple(
      fc.record(keys, { requiredKeys: [] }),
      fc.option(fc.constantFrom('bogus', 'Port'), { nil: undefined }),
    )
    .map(([o, extra]) => (extra === undefined ? o : { ...o, [extra]: 1 }))
}

/**
 * "/spool/thresholdBytes" -> "spool.thresholdBytes", "/listeners/0/port" -> "listeners[0].port", and the
 * paths of its ancestors: the loader may name the array whose element is wrong ("listeners[0].allow must
 * be an array of strings").
 */
function keyPaths(instancePath: string, extra?: string): string[] {
  const parts = instancePath.split('/').slice(1)
  if (extra !== undefined) parts.push(extra)
  const out: string[] = []
  let p = ''
  for (const k of parts) {
    p = /^\d+$/.test(k) ? `${p}[${k}]` : p === '' ? k : `${p}.${k}`
    out.push(p)
  }
  return out
}

test('config.schema.json and the loader agree: what the schema refuses the loader refuses, by the same key', (t) => {
  fc.assert(
    fc.property(object(configSchema), (config) => {
      const schemaOk = check(config) as boolean
      let loaderError: string | null = null
      try {
        validate(config, 'c.json')
      } catch (err) {
        loaderError = (err as Error).message
      }
      if (loaderError === null) return schemaOk // the loader accepts: so must the schema
      if (schemaOk) return true // the loader's own checks (addresses, ports...) go further
      for (const e of check.errors ?? []) {
        const extra = e.keyword === 'additionalProperties' ? String(e.params.additionalProperty) : undefined
        const paths = keyPaths(e.instancePath, extra)
        if (paths.length > 0 && !paths.some((p) => loaderError.includes(`c.json: ${p}`))) {
          t.log(JSON.stringify(config), e, loaderError)
          return false
        }
      }
      return true
    }),
    { numRuns: 1000 },
  )
  t.pass()
})
