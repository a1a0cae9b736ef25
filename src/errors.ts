// Every error Spillway raises on purpose carries a stable code, so tests and operators can match on it
// without parsing prose (as undici does in lib/core/errors.js).
export const ErrorCodes = {
  config: 'SPW_ERR_CONFIG',
  usage: 'SPW_ERR_USAGE',
  spoolDir: 'SPW_ERR_SPOOL_DIR',
  journal: 'SPW_ERR_JOURNAL',
  listen: 'SPW_ERR_LISTEN',
  native: 'SPW_ERR_NATIVE',
} as const

export type ErrorCode = (typeof ErrorCodes)[keyof typeof ErrorCodes]

export class SpillwayError extends Error {
  readonly code: ErrorCode
  constructor(code: ErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options)
    this.code = code
    this.name = 'SpillwayError'
  }
}
