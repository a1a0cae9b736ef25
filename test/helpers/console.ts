// A server with its HTTP listener (and so the web console) on a free port, and a headless Chromium for
// the console's page: Debian's chromium driven by playwright-core (no browser download).

import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { ExecutionContext } from 'ava'
import { type BrowserContext, chromium, type Page } from 'playwright-core'
import { freePort } from './peers.js'
import { type Running, startServer, waitFor } from './server.js'

export interface ConsoleServer extends Running {
  url: string
}

export async function startConsole(
  t: ExecutionContext,
  config: Record<string, unknown> = {},
  metrics: Record<string, unknown> = {},
): Promise<ConsoleServer> {
  const port = await freePort()
  const srv = await startServer(t, {
    config: { ...config, metrics: { host: '127.0.0.1', port, ...metrics } },
  })
  await waitFor('the console', () => (/ console url=/.test(srv.stderr()) ? true : undefined))
  return { ...srv, url: `http://127.0.0.1:${port}` }
}

export const kChromium = '/usr/bin/chromium'

/** A fresh browser profile each time; the caller closes it (context.close() ends Chromium). */
export async function launchBrowser(): Promise<{ context: BrowserContext; close(): Promise<void> }> {
  const profile = mkdtempSync(join(tmpdir(), 'spillway-chromium-'))
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: kChromium,
    headless: true,
    viewport: { width: 1280, height: 800 },
    args: [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
    ],
  })
  return {
    context,
    close: async () => {
      await context.close()
      rmSync(profile, { recursive: true, force: true })
    },
  }
}

/** A page that records every console error and uncaught exception, for a test to assert there were none. */
export async function openPage(context: BrowserContext): Promise<{ page: Page; errors: string[] }> {
  const page = await context.newPage()
  const errors: string[] = []
  page.on('console', (m) => {
    if (m.type() === 'error' || m.type() === 'warning') errors.push(`console ${m.type()}: ${m.text()}`)
  })
  page.on('pageerror', (e) => errors.push(`page error: ${e.message}`))
  return { page, errors }
}
