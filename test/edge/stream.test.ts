import type { AddressInfo } from 'node:net'
import { serve } from '@hono/node-server'
import { describe, expect, it } from 'vitest'
import { STREAM_POLL_MS } from '../../edge/routes/stream.ts'
import { MemoryFleetStore } from '../../edge/store/memory-fleet-store.ts'
import { READ_TOKEN, testEdge } from './support/app.ts'

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

describe('GET /api/v1/stream over @hono/node-server', () => {
  it('stops reading the store once the client has gone away', async () => {
    const store = new MemoryFleetStore()
    let reads = 0
    const listEvents = store.listEvents.bind(store)
    store.listEvents = (q) => {
      reads++
      return listEvents(q)
    }
    const server = serve({ fetch: testEdge(store).app.fetch, hostname: '127.0.0.1', port: 0 })
    try {
      await new Promise((r) => server.once('listening', r))
      const { port } = server.address() as AddressInfo
      const ac = new AbortController()
      const res = await fetch(`http://127.0.0.1:${port}/api/v1/stream?token=${READ_TOKEN}`, { signal: ac.signal })
      expect(new TextDecoder().decode((await res.body!.getReader().read()).value)).toContain('event: ready')
      await sleep(STREAM_POLL_MS * 3)
      expect(reads).toBeGreaterThan(1)
      ac.abort()
      await sleep(STREAM_POLL_MS * 2)
      const settled = reads
      await sleep(STREAM_POLL_MS * 4)
      expect(reads).toBe(settled)
    } finally {
      server.close()
    }
  })
})
