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

test('the corpus covers every dialect the parser knows', (t) => {
  const dialects = new Set(corpus.map((e) => e.dialect))
  for (const d of [
    'rfc5424',
    'esxi',
    'bsd',
    'bsd-tag',
    'rsyslog-rfc3339',
    'cisco',
    'kernel',
    'fortigate',
    'no-time-tag',
    'no-pri',
  ]) {
    t.true(dialects.has(d), d)
  }
})
