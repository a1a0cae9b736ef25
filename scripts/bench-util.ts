// Helpers shared by the benchmark scripts.

import { readFileSync } from 'node:fs'

/** A process's user+system CPU seconds, all threads (/proc/PID/stat, clock ticks of 1/100 s). */
export function cpuSeconds(pid: number): number {
  const f = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ')
  return (Number(f[11]) + Number(f[12])) / 100
}

/** A process's peak resident set size (VmHWM), in MB. */
export function peakRssMB(pid: number): number {
  const m = /VmHWM:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))
  return Math.round(Number(m?.[1] ?? 0) / 1024)
}

export function round(x: number): number {
  return Math.round(x * 1000) / 1000
}

export function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b)
  return s[Math.floor(s.length / 2)]!
}
