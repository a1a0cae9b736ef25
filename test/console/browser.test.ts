// The console in a real browser: Debian's Chromium, headless, driven by playwright-core.

import anyTest, { type TestFn } from 'ava'
import type { BrowserContext, Page } from 'playwright-core'
import { launchBrowser, openPage, startConsole } from '../helpers/console.js'
import { rowCount, sendTcp, sendUdp, waitForRows } from '../helpers/server.js'

const test = anyTest as TestFn<{ context: BrowserContext; close(): Promise<void> }>

test.before(async (t) => {
  t.context = await launchBrowser()
})
test.after.always(async (t) => {
  await t.context.close()
})

const kHostile = '<img src=x onerror="window.__pwned=1"><script>window.__pwned=2</script> & "quotes"'

const kLines = [
  '<11>1 - web1 nginx 12 - - upstream timeout on /api',
  '<14>1 - web1 nginx 12 - - GET / 200',
  '<12>1 - db1 postgres 7 - [origin@1 ip="10.0.0.5"] connection refused by peer',
  '<14>1 - db1 cron - - - job done',
  '<10>1 - web2 kernel - - - Out of memory: Killed process',
  '<999>not a header at all',
  `<11>1 - evil app - - - ${kHostile}`,
]

/** The message texts the table shows, top (newest) first. */
function shown(page: Page): Promise<string[]> {
  return page.$$eval('#rows tbody td.text', (tds) => tds.map((td) => td.textContent ?? ''))
}

/** Waits until the table shows exactly these messages, in any order. */
async function waitShown(page: Page, want: string[]): Promise<void> {
  try {
    await page.waitForFunction(
      (w) => {
        const got = [...document.querySelectorAll('#rows tbody td.text')].map((td) => td.textContent ?? '')
        return JSON.stringify(got.sort()) === JSON.stringify([...w].sort())
      },
      want,
      { timeout: 20_000 },
    )
  } catch (err) {
    throw new Error(`the table shows ${JSON.stringify(await shown(page))}, not ${JSON.stringify(want)}`, {
      cause: err,
    })
  }
}

/** The MSG of an RFC 5424 line (after timestamp, host, app, procid, msgid and structured data). */
const msgOf = (line: string) =>
  line.startsWith('<999>') ? line : line.replace(/^<\d+>1 (\S+ ){5}(\[[^\]]*\] |- )/, '')

test('the page loads with no console errors, shows hostile text as text, and new messages live', async (t) => {
  const srv = await startConsole(t)
  await sendTcp(srv.tcpPort, [`${kLines.join('\n')}\n`])
  await waitForRows(srv.journalPath, kLines.length)
  const { page, errors } = await openPage(t.context.context)
  await page.goto(srv.url)
  await waitShown(page, kLines.map(msgOf))
  // The message's markup is text: no element was made from it, and nothing in it ran.
  t.is(await page.locator('#rows img, #rows script').count(), 0)
  t.true((await shown(page)).includes(kHostile))
  t.is(await page.evaluate(() => (window as unknown as { __pwned?: number }).__pwned), undefined)
  await page.locator('#rows td.text', { hasText: '<img src=x' }).click()
  await page.locator('#detail:not([hidden])').waitFor()
  t.is(await page.locator('#detail img, #detail script').count(), 0)
  t.regex((await page.locator('#detail-fields').textContent()) ?? '', /<img src=x onerror=/)
  t.is(await page.evaluate(() => (window as unknown as { __pwned?: number }).__pwned), undefined)
  await page.locator('#detail-close').click()
  // The histogram drew, and counts what the table shows.
  t.is(await page.locator('#histogram-plot canvas').count(), 1)
  t.regex((await page.locator('#histogram-legend').textContent()) ?? '', /^7 messages/)
  // A message sent after the page loaded appears without a reload.
  await sendTcp(srv.tcpPort, ['<13>1 - web9 live - - - arrived while watching\n'])
  await page.getByText('arrived while watching').waitFor({ timeout: 20_000 })
  t.is((await shown(page))[0], 'arrived while watching')
  // Paused, a new message waits; resumed, it shows.
  await page.locator('#live').click()
  await sendTcp(srv.tcpPort, ['<13>1 - web9 live - - - held while paused\n'])
  await page.getByText(/paused: 1 new message\(s\) held/).waitFor({ timeout: 20_000 })
  t.false((await shown(page)).includes('held while paused'))
  await page.locator('#live').click()
  t.is((await shown(page))[0], 'held while paused')
  t.deepEqual(errors, [])
})

test('each filter narrows the rows, the URL reproduces the view, a drag on the histogram narrows the time', async (t) => {
  const srv = await startConsole(t)
  await sendTcp(srv.tcpPort, [`${kLines.join('\n')}\n`])
  await sendUdp(srv.udpPort, ['<14>1 - web3 udpapp - - - came over udp'])
  await waitForRows(srv.journalPath, kLines.length + 1)
  const all = [...kLines.map(msgOf), 'came over udp']
  const { page, errors } = await openPage(t.context.context)
  await page.goto(srv.url)
  await waitShown(page, all)
  // The form: a text field applies on Enter, a select at once; each shows as a chip and goes in the URL.
  await page.locator('input[name=host]').fill('web1')
  await page.locator('input[name=host]').press('Enter')
  await waitShown(page, ['upstream timeout on /api', 'GET / 200'])
  t.regex(page.url(), /[?&]host=web1\b/)
  await page.locator('select[name=severity]').selectOption('err')
  await waitShown(page, ['upstream timeout on /api'])
  await page.locator('#chips .chip-x').first().click() // remove host
  await waitShown(page, ['upstream timeout on /api', 'Out of memory: Killed process', kHostile])
  await page.locator('#chips .chip-x').first().click() // remove severity
  await waitShown(page, all)
  await page.locator('input[name=app]').fill('postgres')
  await page.locator('input[name=app]').press('Enter')
  await waitShown(page, ['connection refused by peer'])
  await page.locator('#chips .chip-x').first().click()
  await page.locator('input[name=grep]').fill('REFUSED BY')
  await page.locator('input[name=grep]').press('Enter')
  await waitShown(page, ['connection refused by peer'])
  await page.locator('#chips .chip-x').first().click()
  await page.locator('select[name=transport]').selectOption('udp')
  await waitShown(page, ['came over udp'])
  await page.locator('#chips .chip-x').first().click()
  await page.locator('input[name=parse_errors]').check()
  await waitShown(page, ['<999>not a header at all'])
  // A link reproduces what was seen.
  const second = await openPage(t.context.context)
  await second.page.goto(page.url())
  await waitShown(second.page, ['<999>not a header at all'])
  await second.page.goto(`${srv.url}/?peer=192.0.2.99`)
  await waitShown(second.page, [])
  await second.page.goto(`${srv.url}/?peer=127.0.0.1`)
  await waitShown(second.page, all)
  // A value in a row is one click from a filter.
  await second.page.locator('#rows button.value', { hasText: 'db1' }).first().click()
  await waitShown(second.page, ['connection refused by peer', 'job done'])
  // Every message is in the last minutes of the hour shown: a drag across the older half selects none.
  await page.goto(srv.url)
  await waitShown(page, all)
  const box = (await page.locator('#histogram-plot .u-over').boundingBox())!
  await page.mouse.move(box.x + 5, box.y + box.height / 2)
  await page.mouse.down()
  await page.mouse.move(box.x + box.width * 0.4, box.y + box.height / 2, { steps: 5 })
  await page.mouse.up()
  await page.waitForURL(/until=/)
  await waitShown(page, [])
  t.is(await page.locator('select[name=range]').inputValue(), 'custom')
  t.deepEqual([...errors, ...second.errors], [])
})

test('the SQL box runs a read, and refuses a write and an ATTACH', async (t) => {
  const srv = await startConsole(t)
  await sendTcp(srv.tcpPort, [`${kLines.join('\n')}\n`])
  await waitForRows(srv.journalPath, kLines.length)
  const { page, errors } = await openPage(t.context.context)
  await page.goto(`${srv.url}/?view=sql`)
  const run = async (sql: string) => {
    await page.locator('textarea[name=sql]').fill(sql)
    await page.locator('#sql-form button[type=submit]').click()
  }
  await run('SELECT host, count(*) AS n FROM messages GROUP BY host ORDER BY host')
  await page.locator('#sql-result tbody tr').first().waitFor()
  t.regex(page.url(), /view=sql&sql=SELECT/)
  t.deepEqual(await page.$$eval('#sql-result tbody tr', (trs) => trs.map((tr) => tr.textContent)), [
    'NULL1',
    'db12',
    'evil1',
    'web11'.replace('web11', 'web12'),
    'web21',
  ])
  t.regex((await page.locator('#sql-csv').getAttribute('href')) ?? '', /format=csv/)
  await run('DELETE FROM messages')
  await page.getByText(/^Refused: DELETE is refused/).waitFor()
  await run(`ATTACH '${srv.dir}/other.db' AS other`)
  await page.getByText(/^Refused: ATTACH is refused/).waitFor()
  await run("SELECT load_extension('/tmp/x.so')")
  await page.getByText(/^Refused: load_extension is refused/).waitFor()
  t.is(rowCount(srv.journalPath), kLines.length)
  // A refused statement is a 400 answer, which the browser logs as a failed load; nothing else may be.
  t.deepEqual(
    errors.filter((e) => !/Failed to load resource: the server responded with a status of 400/.test(e)),
    [],
  )
})

test('the senders and health views show who sends and how the server is', async (t) => {
  const srv = await startConsole(t)
  await sendTcp(srv.tcpPort, [`${kLines.join('\n')}\n`])
  await waitForRows(srv.journalPath, kLines.length)
  const { page, errors } = await openPage(t.context.context)
  await page.goto(`${srv.url}/?view=senders`)
  await page.locator('#senders tbody tr').nth(3).waitFor()
  const senders = await page.$$eval('#senders tbody tr td:first-child', (tds) =>
    tds.map((td) => td.textContent),
  )
  t.deepEqual([...senders].sort(), ['127.0.0.1', 'db1', 'evil', 'web1', 'web2'])
  t.regex((await page.locator('#view-senders .note').textContent()) ?? '', /Any device can claim any name/)
  await page.locator('#tabs a[data-view=health]').click()
  await page.getByText('Healthy').waitFor()
  await page.locator('.figure-name', { hasText: 'full-text lag' }).waitFor()
  t.regex((await page.locator('#figures').textContent()) ?? '', /7 journaled/)
  t.deepEqual(errors, [])
})
