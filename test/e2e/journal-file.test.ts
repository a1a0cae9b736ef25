import { chmodSync, existsSync } from 'node:fs'
import test from 'ava'
import { query, sendTcp, startServer, tempDir, unprivileged, waitForRows } from '../helpers/server.js'

test("a read-only journal: SQLite's own error and what to do; no read-only -wal or -shm left behind to keep failing", async (t) => {
  const dir = tempDir(t)
  const first = await startServer(t, { dir })
  t.is(await first.stop(), 0)
  chmodSync(first.journalPath, 0o444)
  const err = await t.throwsAsync(startServer(t, { dir, wrap: unprivileged() }))
  t.regex(err!.message, /server exited with 1 before listening/)
  t.regex(
    err!.message,
    /spillway: journal \S+journal\.db: SQLITE_READONLY: attempt to write a readonly database/,
  )
  t.regex(err!.message, /journal\.db is not writable by this process \(mode 0444/)
  t.regex(err!.message, /chmod u\+w|chown/)
  t.false(existsSync(`${first.journalPath}-wal`), 'the failed start left journal.db-wal')
  t.false(existsSync(`${first.journalPath}-shm`), 'the failed start left journal.db-shm')
  // The operator fixes the mode: the next start works, with nothing else to clean up.
  chmodSync(first.journalPath, 0o644)
  const srv = await startServer(t, { dir, wrap: unprivileged() })
  await sendTcp(srv.tcpPort, ['<13>after the mode was fixed\n'])
  await waitForRows(srv.journalPath, 1)
  t.deepEqual(query(srv.journalPath, 'SELECT msg FROM messages'), [{ msg: 'after the mode was fixed' }])
  t.is(await srv.stop(), 0)
})
