// Other projects' parser test vectors through our parser: each must give exactly the columns recorded
// for it, and where those differ from what the source project asserts, a documented rule must say why
// and no message may get its facility, severity, timestamp or structured data wrong.

import { readFileSync } from 'node:fs'
import test from 'ava'
import { ParsedMessage, parseSyslog } from '../../src/journal/parse.js'
import { setZone } from '../../src/journal/zone.js'
import { differences, inputText, sources, type Verdict, vectors, verdict } from './vectors.js'

// Zone-less times are read in UTC here, so that the expected instants do not depend on the machine's TZ.
setZone('UTC')

const kReadme = readFileSync(new URL('../../../README.md', import.meta.url), 'utf8')

test('the vectors come from at least two other projects, each with its repository, path and commit', (t) => {
  const repos = new Set(Object.values(sources.origins).map((o) => o.repository))
  t.true(repos.size >= 2)
  for (const [id, o] of Object.entries(sources.origins)) {
    t.regex(o.commit, /^[0-9a-f]{40}$/, id)
    t.true(
      vectors.some((v) => v.origin === id),
      id,
    )
  }
  for (const v of vectors) t.true(v.origin in sources.origins, v.ref)
})

for (const origin of Object.keys(sources.origins)) {
  test(`${origin}: every vector parses to the recorded columns`, (t) => {
    const at = Date.parse(sources.origins[origin]!.receivedAt)
    const parsed = new ParsedMessage()
    const wrong: string[] = []
    let n = 0
    for (const v of vectors) {
      if (v.origin !== origin) continue
      n++
      parseSyslog(inputText(v), at, parsed)
      const got = { ...parsed, ts: parsed.ts === null ? null : new Date(parsed.ts).toISOString() }
      try {
        t.deepEqual(got, v.expect)
      } catch {
        wrong.push(`${v.ref}: ${JSON.stringify(got)}`)
      }
    }
    t.true(n > 0)
    t.deepEqual(wrong, [])
  })
}

test('no vector fails; every difference from the source names a documented rule, and only then', (t) => {
  const failed: string[] = []
  const stale: string[] = []
  for (const v of vectors) {
    const verdictOf = verdict(v)
    if (verdictOf === 'fail') failed.push(`${v.origin} ${v.ref}: ${differences(v).join(', ')} (${v.rule})`)
    if (verdictOf === 'pass' && v.rule !== undefined) stale.push(`${v.origin} ${v.ref}: ${v.rule}`)
  }
  t.deepEqual(failed, [])
  t.deepEqual(stale, [], 'a rule on a vector that agrees with its source')
})

test('README states every rule and the counts per origin that the vectors give', (t) => {
  const section = kReadme.slice(kReadme.indexOf('### Where peers differ'))
  for (const rule of Object.keys(sources.rules)) t.true(section.includes(`\`${rule}\``), rule)
  const counts: Record<string, Record<Verdict, number>> = {}
  for (const v of vectors) {
    counts[v.origin] ??= { pass: 0, judgement: 0, fail: 0 }
    counts[v.origin]![verdict(v)]++
  }
  for (const [origin, c] of Object.entries(counts)) {
    const row = `| \`${origin}\` | ${c.pass + c.judgement + c.fail} | ${c.pass} | ${c.judgement} | ${c.fail} |`
    t.true(section.includes(row), `README lacks the row ${row}`)
  }
  t.log(counts)
})
