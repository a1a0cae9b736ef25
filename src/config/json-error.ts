// Where a config file stops being JSON, as line and column: JSON.parse on Node 20 names a position for
// some errors and none for others ("Unexpected token '}', ... is not valid JSON"). This scanner runs only
// after JSON.parse has failed, walks the same grammar (RFC 8259) and stops at the first byte that does
// not fit, saying what was expected there.

export interface JsonSyntaxError {
  line: number
  column: number
  message: string
}

class Stop {
  readonly at: number
  readonly message: string
  constructor(at: number, message: string) {
    this.at = at
    this.message = message
  }
}

export function locateJsonError(text: string): JsonSyntaxError | null {
  let i = 0
  const got = (): string => (i >= text.length ? 'the end of the file' : JSON.stringify(text[i]))
  const fail = (expected: string): never => {
    throw new Stop(i, `expected ${expected}, got ${got()}`)
  }
  const ws = (): void => {
    while (i < text.length && ' \t\n\r'.includes(text[i]!)) i++
  }
  const literal = (word: string): void => {
    for (const c of word) {
      if (text[i] !== c) fail(`"${word}"`)
      i++
    }
  }
  const string = (): void => {
    i++ // the opening quote
    for (;;) {
      if (i >= text.length) fail("a closing '\"'")
      const c = text.charCodeAt(i)
      if (c === 0x22) {
        i++
        return
      }
      if (c < 0x20) throw new Stop(i, 'a control character (a line break?) inside a string: escape it')
      if (c === 0x5c) {
        i++
        const e = text[i]
        if (e === 'u') {
          for (let k = 1; k <= 4; k++)
            if (!/[0-9a-fA-F]/.test(text[i + k] ?? '')) {
              i += k
              fail('four hex digits after \\u')
            }
          i += 5
        } else if (e !== undefined && '"\\/bfnrt'.includes(e)) i++
        else fail('an escape (\\" \\\\ \\/ \\b \\f \\n \\r \\t \\uXXXX)')
      } else i++
    }
  }
  const number = (): void => {
    if (text[i] === '-') i++
    if (text[i] === '0') i++
    else if (/[1-9]/.test(text[i] ?? '')) while (/[0-9]/.test(text[i] ?? '')) i++
    else fail('a digit')
    if (text[i] === '.') {
      i++
      if (!/[0-9]/.test(text[i] ?? '')) fail('a digit after "."')
      while (/[0-9]/.test(text[i] ?? '')) i++
    }
    if (text[i] === 'e' || text[i] === 'E') {
      i++
      if (text[i] === '+' || text[i] === '-') i++
      if (!/[0-9]/.test(text[i] ?? '')) fail('a digit in the exponent')
      while (/[0-9]/.test(text[i] ?? '')) i++
    }
  }
  const value = (): void => {
    ws()
    const c = text[i]
    if (c === '{') {
      i++
      ws()
      if (text[i] === '}') {
        i++
        return
      }
      for (;;) {
        ws()
        if (text[i] !== '"') fail('a property name in double quotes')
        string()
        ws()
        if (text[i] !== ':') fail('":"')
        i++
        value()
        ws()
        if (text[i] === ',') i++
        else if (text[i] === '}') {
          i++
          return
        } else fail('"," or "}"')
      }
    } else if (c === '[') {
      i++
      ws()
      if (text[i] === ']') {
        i++
        return
      }
      for (;;) {
        value()
        ws()
        if (text[i] === ',') i++
        else if (text[i] === ']') {
          i++
          return
        } else fail('"," or "]"')
      }
    } else if (c === '"') string()
    else if (c === 't') literal('true')
    else if (c === 'f') literal('false')
    else if (c === 'n') literal('null')
    else if (c === '-' || /[0-9]/.test(c ?? '')) number()
    else fail('a value (an object, array, string, number, true, false or null)')
  }
  try {
    value()
    ws()
    if (i < text.length) fail('nothing after the end of the value')
    return null
  } catch (err) {
    if (!(err instanceof Stop)) throw err
    const before = text.slice(0, err.at)
    const line = before.split('\n').length
    return { line, column: err.at - before.lastIndexOf('\n'), message: err.message }
  }
}
