// The forwarder's durable position in the spool, and the spool's identity.
//
// One line, `INSTANCE SEGMENT OFFSET`, padded to a fixed size and rewritten in place after every
// acknowledged publish (a pwrite of 64 bytes: it survives a crash of the process at once, and is
// fsynced every second for power loss). Every record before (SEGMENT, OFFSET) is in the log.
// INSTANCE is random, made when a spool directory first forwards: positions restart with a new spool
// directory, and the central journal keeps one cursor per instance, so they are never confused.

import { randomBytes } from 'node:crypto'
import { closeSync, fsyncSync, openSync, readFileSync, writeSync } from 'node:fs'
import { join } from 'node:path'
import { ErrorCodes, SpillwayError } from '../errors.js'

const kName = 'forward.state'
const kSize = 64
const kLine = /^([0-9a-f]{16}) (\d+) (\d+) *\n$/

export interface ForwardPosition {
  instance: string
  seg: number
  off: number
}

export function statePath(spoolDir: string): string {
  return join(spoolDir, kName)
}

/** The saved position, or null when this spool directory has never forwarded. */
export function readForwardState(spoolDir: string): ForwardPosition | null {
  const path = statePath(spoolDir)
  let text: string
  try {
    text = readFileSync(path, 'latin1')
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null
    throw err
  }
  const m = kLine.exec(text)
  if (m === null) {
    throw new SpillwayError(
      ErrorCodes.spoolDir,
      `forward: ${path} is not a forward position (${JSON.stringify(text.slice(0, 80))}); ` +
        'restore it from a backup, or delete it to forward every segment still in the spool again',
    )
  }
  return { instance: m[1]!, seg: Number(m[2]), off: Number(m[3]) }
}

export class ForwardStateFile {
  readonly instance: string
  /** The saved position when opened. */
  readonly seg: number
  readonly off: number
  private readonly fd: number
  private readonly line = Buffer.alloc(kSize)
  private dirty = false

  /** Opens the state of spoolDir, creating it at (firstSeg, 0) under a new instance if there is none. */
  constructor(spoolDir: string, firstSeg: number) {
    const saved = readForwardState(spoolDir)
    this.instance = saved?.instance ?? randomBytes(8).toString('hex')
    this.seg = saved?.seg ?? firstSeg
    this.off = saved?.off ?? 0
    this.fd = openSync(statePath(spoolDir), saved === null ? 'w' : 'r+')
    if (saved === null) {
      this.write(firstSeg, 0)
      this.sync()
    }
  }

  write(seg: number, off: number): void {
    this.line.fill(0x20)
    this.line.write(`${this.instance} ${seg} ${off}`, 0, 'latin1')
    this.line[kSize - 1] = 0x0a
    writeSync(this.fd, this.line, 0, kSize, 0)
    this.dirty = true
  }

  sync(): void {
    if (!this.dirty) return
    fsyncSync(this.fd)
    this.dirty = false
  }

  close(): void {
    this.sync()
    closeSync(this.fd)
  }
}
