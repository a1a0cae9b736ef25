// Which SQL the console's query box runs: a read of this journal, one statement, nothing that writes a
// file or changes the connection. better-sqlite3's Statement.readonly is not enough on its own: ATTACH
// (which opens, even creates, another file), BEGIN (a snapshot held open stops WAL checkpoints) and
// PRAGMA cache_size=... all pass it. So the text is read first, token by token (comments, strings and
// quoted names skipped), and only then prepared; the statement must also be readonly and return rows.
// The connection is read-only besides (journal/readonly.ts, query_only), in a process of its own.

export class Refused extends Error {}

interface Token {
  /** Lower-cased for words and quoted names; the character for punctuation. */
  text: string
  kind: 'word' | 'name' | 'string' | 'number' | 'punct'
}

/** PRAGMAs that only read, with no argument. */
const kReadPragmas = new Set([
  'application_id',
  'auto_vacuum',
  'collation_list',
  'compile_options',
  'data_version',
  'database_list',
  'encoding',
  'foreign_key_check',
  'freelist_count',
  'function_list',
  'integrity_check',
  'module_list',
  'page_count',
  'page_size',
  'pragma_list',
  'quick_check',
  'schema_version',
  'table_list',
  'user_version',
])
/** PRAGMAs whose argument names what to read (a table, an index), not a value to set. */
const kReadPragmasWithArg = new Set([
  'foreign_key_list',
  'index_info',
  'index_list',
  'index_xinfo',
  'table_info',
  'table_list',
  'table_xinfo',
])
const kStarts = new Set(['select', 'with', 'values'])

function tokens(sql: string): Token[] {
  const out: Token[] = []
  let i = 0
  const n = sql.length
  const until = (close: string, from: number): number => {
    // A quote is escaped by doubling it.
    let j = from
    for (;;) {
      const k = sql.indexOf(close, j)
      if (k === -1) throw new Refused(`an unterminated ${close === "'" ? 'string' : 'quoted name'}`)
      if (sql[k + 1] === close && close !== ']') j = k + 2
      else return k
    }
  }
  while (i < n) {
    const c = sql[i]!
    if (/\s/.test(c)) i++
    else if (c === '-' && sql[i + 1] === '-') {
      const k = sql.indexOf('\n', i)
      i = k === -1 ? n : k + 1
    } else if (c === '/' && sql[i + 1] === '*') {
      const k = sql.indexOf('*/', i + 2)
      i = k === -1 ? n : k + 2
    } else if (c === "'" || ((c === 'x' || c === 'X') && sql[i + 1] === "'")) {
      const from = c === "'" ? i + 1 : i + 2
      const k = until("'", from)
      out.push({ kind: 'string', text: sql.slice(from, k) })
      i = k + 1
    } else if (c === '"' || c === '`' || c === '[') {
      const close = c === '[' ? ']' : c
      const k = until(close, i + 1)
      out.push({
        kind: 'name',
        text: sql
          .slice(i + 1, k)
          .replaceAll(close + close, close)
          .toLowerCase(),
      })
      i = k + 1
    } else if (/[A-Za-z_\u0080-\uffff]/.test(c)) {
      let k = i + 1
      while (k < n && /[A-Za-z0-9_$\u0080-\uffff]/.test(sql[k]!)) k++
      out.push({ kind: 'word', text: sql.slice(i, k).toLowerCase() })
      i = k
    } else if (/[0-9]/.test(c) || (c === '.' && /[0-9]/.test(sql[i + 1] ?? ''))) {
      let k = i + 1
      while (k < n && /[0-9a-zA-Z.]/.test(sql[k]!)) k++
      out.push({ kind: 'number', text: sql.slice(i, k) })
      i = k
    } else {
      out.push({ kind: 'punct', text: c })
      i++
    }
  }
  return out
}

/**
 * Throws Refused, saying why, unless `sql` is one statement of a kind the console runs. What passes is
 * then prepared, and must be readonly and return rows (checkPrepared).
 */
export function checkSql(sql: string): void {
  const all = tokens(sql)
  while (all.at(-1)?.text === ';') all.pop()
  if (all.length === 0) throw new Refused('nothing to run')
  if (all.some((t) => t.kind === 'punct' && t.text === ';'))
    throw new Refused('one statement at a time: remove what follows the first ";"')
  for (const t of all) {
    if ((t.kind === 'word' || t.kind === 'name') && (t.text === 'attach' || t.text === 'detach'))
      throw new Refused(
        `${t.text.toUpperCase()} is refused: the console reads this journal and no other file`,
      )
    if ((t.kind === 'word' || t.kind === 'name') && t.text === 'load_extension')
      throw new Refused('load_extension is refused: the console loads no code')
  }
  let s = all
  if (s[0]!.text === 'explain') {
    s = s.slice(s[1]?.text === 'query' && s[2]?.text === 'plan' ? 3 : 1)
    if (s.length === 0) throw new Refused('EXPLAIN of nothing')
  }
  const first = s[0]!
  if (first.kind === 'word' && kStarts.has(first.text)) return
  if (first.kind === 'word' && first.text === 'pragma') {
    checkPragma(s.slice(1))
    return
  }
  throw new Refused(
    `${first.text.toUpperCase()} is refused: the console runs SELECT, WITH, VALUES, EXPLAIN and read-only ` +
      'PRAGMAs; it never writes the journal or changes its connection',
  )
}

function checkPragma(s: Token[]): void {
  // PRAGMA [schema.]name [= value | (argument)]
  let rest = s
  if (rest[1]?.text === '.') rest = rest.slice(2)
  const name = rest[0]
  if (name === undefined || (name.kind !== 'word' && name.kind !== 'name'))
    throw new Refused('PRAGMA of what?')
  const after = rest.slice(1)
  if (after.some((t) => t.text === '='))
    throw new Refused(`PRAGMA ${name.text} = ... is refused: the console does not change settings`)
  if (after.length === 0 ? kReadPragmas.has(name.text) || kReadPragmasWithArg.has(name.text) : false) return
  if (after[0]?.text === '(' && kReadPragmasWithArg.has(name.text)) return
  throw new Refused(
    `PRAGMA ${name.text}${after.length > 0 ? '(...)' : ''} is refused: the console runs only the PRAGMAs that read ` +
      `(${[...kReadPragmas, ...kReadPragmasWithArg].sort().join(', ')})`,
  )
}

/** The second half: what better-sqlite3 says of the prepared statement. */
export function checkPrepared(stmt: { readonly: boolean; reader: boolean }): void {
  if (!stmt.readonly) throw new Refused('this statement would write: the console never writes the journal')
  if (!stmt.reader) throw new Refused('this statement returns no rows: the console runs queries only')
}
