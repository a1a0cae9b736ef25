import { statSync } from 'node:fs'
import test from 'ava'
import Database from 'better-sqlite3'
import { sendTcp, startServer, waitFor, waitForRows } from '../helpers/server.js'

function walBytes(journalPath: string): number {
  try {
    return statSync(`${journalPath}-wal`).size
  } catch {
    return 0
  }
}

test('a reader pinning an old snapshot cannot make the WAL grow without bound once it lets go', async (t) => {
  const limit = 1024 * 1024
  const srv = await startServer(t, { config: { journal: { walMaxBytes: limit, fullText: false } } })
  await sendTcp(srv.tcpPort, ['<13>first\n'])
  await waitForRows(srv.journalPath, 1)
  // An operator's session that opened a read transaction and walked away.
  const reader = new Database(srv.journalPath, { readonly: true })
  reader.exec('BEGIN')
  reader.prepare('SELECT count(*) FROM messages').get()
  let text = ''
  for (let i = 0; i < 30_000; i++) text += `<13>1 - wal app - - - pinned ${i} ${'w'.repeat(80)}\n`
  await sendTcp(srv.tcpPort, [text])
  await waitForRows(srv.journalPath, 30_001)
  await waitFor('wal-checkpoint-blocked', () =>
    /wal-checkpoint-blocked walBytes=\d+/.test(srv.stderr()) ? true : undefined,
  )
  t.true(walBytes(srv.journalPath) > limit)
  reader.exec('COMMIT')
  reader.close()
  await waitFor('wal-checkpoint-done', () => (/wal-checkpoint-done/.test(srv.stderr()) ? true : undefined))
  t.true(walBytes(srv.journalPath) < limit, `WAL still ${walBytes(srv.journalPath)} B`)
})
