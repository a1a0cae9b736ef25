import { readFileSync } from 'node:fs'
import test from 'ava'
import { ParsedMessage, parseSyslog } from '../../src/journal/parse.js'
import { corpus, kReceivedAt } from './corpus.js'

// One reused object, as in the worker, so that a field left over from the previous line would show.
const parsed = new ParsedMessage()

for (const [i, { dialect, line, expect }] of corpus.entries()) {
  test(`${dialect} #${i}: ${line.length > 80 ? `${line.slice(0, 80)}...` : line}`, (t) => {
    parseSyslog(line, kReceivedAt, parsed)
    t.deepEqual({ ...parsed }, expect)
  })
}

test("every example of the README's Dialects table is in the corpus, with its columns", (t) => {
  // The README is the list of dialects a user is promised: a row added there without a corpus entry,
  // or an example that no longer parses as the corpus says, fails here.
  const readme = readFileSync(new URL('../../../README.md', import.meta.url), 'utf8')
  const table = readme.slice(readme.indexOf('### Dialects'), readme.indexOf('### Where peers differ'))
  const lines = new Set(corpus.map((e) => e.line))
  let examples = 0
  for (const row of table.split('\n').filter((l) => l.startsWith('| ') && !l.startsWith('| dialect '))) {
    const cell = row.split(' | ')[1] ?? ''
    for (const m of cell.matchAll(/`([^`]+)`/g)) {
      examples++
      t.true(lines.has(m[1]!), `README example not in the corpus: ${m[1]}`)
    }
  }
  t.true(examples >= 20, `the README's Dialects table was not found (${examples} examples)`)
})
