// The kernel's view of TCP sockets (Linux /proc/net/tcp and tcp6), for tests that must wait for a socket
// state rather than sleep: whether a peer has read what was sent, who listens on a port, which timer a
// socket has armed.

import { readdirSync, readFileSync, readlinkSync } from 'node:fs'

export interface TcpSocket {
  localPort: number
  remotePort: number
  /** Kernel state: 0x01 established, 0x0a listen. */
  state: number
  /** Bytes sent and not yet acknowledged by the peer. */
  txQueue: number
  /** Bytes received and not yet read by the process that owns the socket. */
  rxQueue: number
  /** 0 none, 1 retransmit, 2 keepalive (or another sk_timer), 3 TIME_WAIT, 4 zero-window probe. */
  timer: number
  /** Clock ticks (USER_HZ, 100 a second) until that timer fires. */
  timerTicks: number
  inode: number
}

export const kListen = 0x0a
export const kEstablished = 0x01

/** Every TCP socket of this network namespace, IPv4 and IPv6. */
export function tcpSockets(): TcpSocket[] {
  const out: TcpSocket[] = []
  for (const file of ['/proc/net/tcp', '/proc/net/tcp6']) {
    const lines = readFileSync(file, 'latin1').split('\n').slice(1)
    for (const line of lines) {
      const f = line.trim().split(/\s+/)
      if (f.length < 10) continue
      const port = (a: string) => Number.parseInt(a.slice(a.indexOf(':') + 1), 16)
      const [tx, rx] = f[4]!.split(':').map((h) => Number.parseInt(h, 16))
      const [timer, when] = f[5]!.split(':').map((h) => Number.parseInt(h, 16))
      out.push({
        localPort: port(f[1]!),
        remotePort: port(f[2]!),
        state: Number.parseInt(f[3]!, 16),
        txQueue: tx!,
        rxQueue: rx!,
        timer: timer!,
        timerTicks: when!,
        inode: Number(f[9]),
      })
    }
  }
  return out
}

/**
 * Whether everything a client on `clientPort` sent to `serverPort` has been read by the server process:
 * the client's kernel holds nothing unacknowledged and the server's holds nothing unread.
 */
export function readByServer(serverPort: number, clientPort: number): boolean {
  const all = tcpSockets()
  const client = all.find((s) => s.localPort === clientPort && s.remotePort === serverPort)
  const server = all.find((s) => s.localPort === serverPort && s.remotePort === clientPort)
  return client !== undefined && server !== undefined && client.txQueue === 0 && server.rxQueue === 0
}

/** The server side of the connection from `clientPort` to `serverPort`, once the kernel has it. */
export function serverSide(serverPort: number, clientPort: number): TcpSocket | undefined {
  return tcpSockets().find(
    (s) => s.localPort === serverPort && s.remotePort === clientPort && s.state === kEstablished,
  )
}

/**
 * Who listens on TCP `port`: nobody, process `pid`, or another process. One snapshot of the socket
 * table, then `pid`'s descriptors: a socket is in its owner's descriptors before it listens, so a
 * listener that appears meanwhile cannot be mistaken for another process's.
 */
export function portListener(pid: number, port: number): 'none' | 'mine' | 'other' {
  const inodes = new Set(
    tcpSockets()
      .filter((s) => s.state === kListen && s.localPort === port)
      .map((s) => `socket:[${s.inode}]`),
  )
  if (inodes.size === 0) return 'none'
  let fds: string[] = []
  try {
    fds = readdirSync(`/proc/${pid}/fd`)
  } catch {
    // gone: whoever listens is another process
  }
  for (const fd of fds) {
    try {
      if (inodes.has(readlinkSync(`/proc/${pid}/fd/${fd}`))) return 'mine'
    } catch {}
  }
  return 'other'
}
