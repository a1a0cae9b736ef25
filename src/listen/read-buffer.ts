// Reading accepted TCP connections into one reused buffer instead of a fresh one per read.
//
// A net.Socket in the usual mode allocates a new ArrayBuffer for every read and pushes it through the
// Readable machinery ('data'). Under a burst that is one allocation per read and per connection, freed
// only by the next GC: the scavenges, event-loop stalls and malloc growth that the performance issue
// measured. Node's `onread` option instead reads into a caller's buffer and calls back synchronously,
// no allocation and no stream machinery; the socket thread can share one buffer among all connections,
// because the framer and the router copy whatever they keep before the callback returns.
//
// net.Server has no `onread` option for the sockets it accepts, so the listener accepts with
// `pauseOnConnect` (nothing is read yet) and moves the connection's handle into a Socket built with
// `onread`. That uses the socket's `_handle`, which Node has not changed in a decade; if it is ever
// missing, the connection is read the usual way (adopt returns null) and nothing else changes.

import { Socket } from 'node:net'

interface StreamHandle {
  useUserBuffer(buf: Uint8Array): void
}

/**
 * Moves an accepted, paused connection into a socket that reads into `buffer` and calls `onRead(n, buffer)`
 * for each read: buffer[0, n) is valid only during the call. Returns null (raw untouched) if it cannot.
 * Read raw's remote address first if it is wanted from raw: it is looked up on the handle, once.
 */
export function adoptWithReadBuffer(
  raw: Socket,
  buffer: Buffer,
  onRead: (n: number, buf: Buffer) => void,
): Socket | null {
  const holder = raw as unknown as { _handle: StreamHandle | null }
  const handle = holder._handle
  if (handle === null || typeof handle.useUserBuffer !== 'function') return null
  holder._handle = null
  // Without a handle, destroy() only releases the server's count of this connection.
  raw.destroy()
  return new Socket({
    handle,
    readable: true,
    writable: true,
    onread: { buffer, callback: onRead },
  } as ConstructorParameters<typeof Socket>[0])
}
