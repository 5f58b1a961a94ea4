import type { AddressInfo } from 'node:net'
import { serve, type ServerType } from '@hono/node-server'
import { chromium, type Browser } from 'playwright-core'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { encodeEventBatch } from '../../shared/api/events.ts'
import { uuidFromVsiId } from '../../shared/ids.ts'
import { MemoryFleetStore } from '../../edge/store/memory-fleet-store.ts'
import { cbor, json, READ_TOKEN, testEdge } from './support/app.ts'
import { agentStarted, T0, vsiEvent, vsiIdOf } from './support/events.ts'

describe('fleet web page', () => {
  const t = testEdge(new MemoryFleetStore())
  let server: ServerType
  let base = ''
  let browser: Browser

  beforeAll(async () => {
    await new Promise<void>((resolve) => {
      server = serve({ fetch: t.app.fetch, hostname: '127.0.0.1', port: 0 }, (info: AddressInfo) => {
        base = `http://127.0.0.1:${info.port}`
        resolve()
      })
    })
    browser = await chromium.launch({
      executablePath: '/usr/bin/chromium',
      args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking'],
    })
  }, 60_000)

  afterAll(async () => {
    await browser?.close()
    await new Promise((resolve) => server?.close(resolve))
  })

  it('shows a VSI appear, then move, after events are ingested', async () => {
    await fetch(`${base}/api/v1/vns`, { method: 'POST', ...json({ name: 'blue', vni: 5000, tenant: 'acme' }) })
    const page = await browser.newPage()
    await page.goto(`${base}/?token=${READ_TOKEN}`)
    await page.locator('#vns tbody tr', { hasText: 'blue' }).waitFor({ timeout: 10_000 })
    expect(page.url()).toBe(`${base}/`)
    expect(await page.locator('#vsis tbody tr').count()).toBe(0)

    const r = await fetch(`${base}/api/v1/ingest/events`, cbor(encodeEventBatch([agentStarted({}), vsiEvent({ seq: 1, vsi: 7 })])))
    expect(r.status).toBe(200)
    const row = page.locator(`#vsis tbody tr[data-id="${vsiIdOf(7)}"]`)
    await row.waitFor({ timeout: 10_000 })
    const cells = await row.locator('td').allTextContents()
    expect(cells.slice(0, 6)).toEqual([uuidFromVsiId(vsiIdOf(7)), 'associated', 'tor1', 'Ethernet8', '5000', '100'])
    await page.locator('#switches tbody tr[data-id="tor1"]').waitFor({ timeout: 10_000 })

    await fetch(`${base}/api/v1/ingest/events`, cbor(encodeEventBatch([vsiEvent({ seq: 1, vsi: 7, sw: 'tor2', port: 'Ethernet4', time: T0 + 500 })])))
    await page.locator('#migrations tbody tr', { hasText: 'tor2 Ethernet4' }).waitFor({ timeout: 10_000 })
    expect(await row.locator('td').nth(2).textContent()).toBe('tor2')
    await page.close()
  }, 60_000)

  it('shows the API error when the token is wrong', async () => {
    const page = await browser.newPage()
    await page.goto(`${base}/?token=not-a-valid-token-at-all`)
    await page.locator('#error', { hasText: 'unknown token' }).waitFor({ timeout: 10_000 })
    await page.close()
  }, 30_000)
})
