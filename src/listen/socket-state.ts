// What the kernel says about a socket that Node does not: who is on the other end of a unix stream
// socket, and whether a listening socket still listens. native/udp_receiver.c answers both (it is the
// module that already speaks to sockets directly).

import { loadNative } from '../native.js'

interface SocketQueries {
  /** The peer of a connected unix stream socket (SO_PEERCRED): [pid, uid, gid], or null. */
  peerCred(fd: number): [number, number, number] | null
  /** Whether a socket is still listening (SO_ACCEPTCONN); true when fd is -1. */
  accepting(fd: number): boolean
}

const native = loadNative<SocketQueries>('udp_receiver')

/** Whether the listening socket `fd` still accepts (it may be destroyed from outside, unnoticed). */
export function stillAccepting(fd: number | undefined): boolean {
  return native.accepting(fd ?? -1)
}

/** The credentials of a unix stream socket's peer as a peer string, or "local" when unknown. */
export function unixPeer(fd: number | undefined): string {
  const c = fd === undefined ? null : native.peerCred(fd)
  return c === null ? 'local' : `pid=${c[0]},uid=${c[1]},gid=${c[2]}`
}
