// The config schema as JSON Schema (draft 2020-12), so editors complete and check a Spillway config.
// config.schema.json in the package is this, written out; a test keeps the two equal.

import { configSchema, type Field } from './schema.js'

type Json = Record<string, unknown>

function field(f: Field): Json {
  switch (f.kind) {
    case 'object':
      return object(f.fields, f.doc)
    case 'array':
      return { type: 'array', description: f.doc, items: object(f.item, undefined, true), default: f.default }
    case 'integer':
      return { type: 'integer', description: f.doc, minimum: f.min, maximum: f.max, default: f.default }
    case 'string':
      return {
        type: 'string',
        description: f.doc,
        minLength: f.allowEmpty === true ? 0 : 1,
        default: f.default,
      }
    case 'enum':
      return { enum: f.values, description: f.doc, default: f.default }
    case 'boolean':
      return { type: 'boolean', description: f.doc, default: f.default }
    case 'strings':
      return { type: 'array', description: f.doc, items: { type: 'string' }, default: f.default }
  }
}

function object(fields: Record<string, Field>, doc?: string, itemDefaults = false): Json {
  const properties: Json = {}
  for (const [k, f] of Object.entries(fields)) properties[k] = field(f)
  const o: Json = { type: 'object', additionalProperties: false, properties }
  if (doc !== undefined) o.description = doc
  if (itemDefaults) o.description = 'Keys left out take their defaults.'
  return o
}

export function configJsonSchema(): Json {
  const root = object(configSchema)
  // A config may name this schema ("$schema": "./config.schema.json") so an editor finds it.
  ;(root.properties as Json).$schema = { type: 'string', description: 'The JSON Schema this file follows.' }
  return {
    $schema: 'https://json-schema.org/draft/2020-12/schema',
    title: 'Spillway configuration',
    description: 'Every key is optional; what is left out takes its default (see config.example.json).',
    ...root,
  }
}
