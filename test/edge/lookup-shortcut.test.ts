/**
 * `createLookupShortcut` (edge/lookup-shortcut.ts) answers exactly what the app answers: the
 * same requests go to a server with the shortcut in front of the app and to one with the app
 * alone, over node:http, and status, content type and body must be equal; the shortcut must
 * have answered the plain lookups itself and left every other case to the app.
 */
import { createServer, request, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { getRequestListener } from '@hono/node-server'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createLookupShortcut } from '../../edge/lookup-shortcut.ts'
import { createEdgeMetrics } from '../../edge/metrics.ts'
import { SqliteFleetStore } from '../../edge/store/sqlite-fleet-store.ts'
import { ingestEvents } from '../../edge/ingest.ts'
import { ADMIN_TOKEN, READ_TOKEN, testEdge } from './support/app.ts'
import { agentStarted, ipOf, macOf, vsiEvent } from './support/events.ts'

const store = new SqliteFleetStore({ path: ':memory:' })
const reference = testEdge(store)
const withShortcut = testEdge(store)
const tokens = [
  { name: 'viewer', token: READ_TOKEN, scope: 'read' as const },
  { name: 'ops', token: ADMIN_TOKEN, scope: 'admin' as const },
]
const shortcut = createLookupShortcut({ store, tokens, metrics: withShortcut.metrics })
let shortcutAnswered = 0
const servers: Server[] = []
const ports: { plain: number; fast: number } = { plain: 0, fast: 0 }

const listen = (s: Server) =>
  new Promise<number>((ok) => {
    servers.push(s)
    s.listen(0, '127.0.0.1', () => ok((s.address() as AddressInfo).port))
  })

beforeAll(async () => {
  const events = [agentStarted({ seq: 0 })]
  for (let n = 1; n <= 5; n++) events.push(vsiEvent({ seq: n, vsi: n, ipv4: [ipOf(n)] }))
  events.push(vsiEvent({ seq: 6, vsi: 6, ipv4: [ipOf(1)] })) // a second VSI behind IP 1
  ingestEvents(store, events, reference.clock, { metrics: createEdgeMetrics(), migrationGraceMs: 30_000 })
  const plain = getRequestListener(reference.app.fetch)
  const app = getRequestListener(withShortcut.app.fetch)
  ports.plain = await listen(createServer((req, res) => void plain(req, res)))
  ports.fast = await listen(
    createServer((req, res) => {
      if (shortcut(req, res)) shortcutAnswered++
      else void app(req, res)
    }),
  )
})
afterAll(() => {
  for (const s of servers) s.close()
  store.close()
})

function call(port: number, method: string, path: string, headers: Record<string, string>) {
  return new Promise<{ status: number; type: string | undefined; body: string }>((ok, fail) => {
    const req = request({ host: '127.0.0.1', port, method, path, headers }, (res) => {
      let body = ''
      res.setEncoding('utf8')
      res.on('data', (c: string) => (body += c))
      res.on('end', () => ok({ status: res.statusCode ?? 0, type: res.headers['content-type'], body }))
    })
    req.on('error', fail)
    req.end()
  })
}

describe('createLookupShortcut', () => {
  it('createLookupShortcut() answers plain MAC and IP lookups as the app does, and leaves the rest to it', async () => {
    const created = await withShortcut.app.request('/api/v1/tokens', {
      method: 'POST',
      headers: { Authorization: `Bearer ${ADMIN_TOKEN}`, 'Content-Type': 'application/json' },
      body: JSON.stringify({ name: 'grafana', scope: 'read' }),
    })
    const issued = ((await created.json()) as { token: string }).token
    const bearer = (t: string) => ({ Authorization: `Bearer ${t}` })
    const cases: [method: string, path: string, headers: Record<string, string>, answeredByShortcut: boolean][] = [
      ['GET', `/api/v1/vsis?mac=${macOf(3)}`, bearer(READ_TOKEN), true],
      ['GET', `/api/v1/vsis?mac=${macOf(3)}`, bearer(ADMIN_TOKEN), true],
      ['GET', `/api/v1/vsis?mac=${macOf(3)}`, { Authorization: `bearer   ${READ_TOKEN}  ` }, true],
      ['GET', `/api/v1/vsis?ip=${ipOf(1)}`, bearer(READ_TOKEN), true],
      ['GET', '/api/v1/vsis?mac=02:00:00:00:99:99', bearer(READ_TOKEN), true],
      ['GET', '/api/v1/vsis?ip=fd00::1', bearer(READ_TOKEN), true],
      ['GET', '/api/v1/vsis?mac=02:00:00:00:00:0Z', bearer(READ_TOKEN), false],
      ['GET', '/api/v1/vsis?mac=', bearer(READ_TOKEN), false],
      ['GET', '/api/v1/vsis?ip=10.0.0.999', bearer(READ_TOKEN), false],
      ['GET', `/api/v1/vsis?mac=${macOf(3).replace(/:/g, '%3A')}`, bearer(READ_TOKEN), false],
      ['GET', `/api/v1/vsis?mac=${macOf(3)}&limit=1`, bearer(READ_TOKEN), false],
      ['GET', `/api/v1/vsis?ip=${ipOf(1)}&limit=1`, bearer(READ_TOKEN), false],
      ['GET', `/api/v1/vsis?mac=${macOf(3)}&mac=${macOf(4)}`, bearer(READ_TOKEN), false],
      ['GET', '/api/v1/vsis?port=Ethernet8', bearer(READ_TOKEN), false],
      ['GET', `/api/v1/vsis?mac=${macOf(3)}`, bearer(issued), false],
      ['GET', `/api/v1/vsis?mac=${macOf(3)}`, bearer('wrong-token-0123456789'), false],
      ['GET', `/api/v1/vsis?mac=${macOf(3)}`, { Authorization: `Basic ${READ_TOKEN}` }, false],
      ['GET', `/api/v1/vsis?mac=${macOf(3)}`, bearer('x'.repeat(513)), false],
      ['GET', `/api/v1/vsis?mac=${macOf(3)}`, {}, false],
      ['GET', `/api/v1/vsis?token=${READ_TOKEN}&mac=${macOf(3)}`, {}, false],
      ['HEAD', `/api/v1/vsis?mac=${macOf(3)}`, bearer(READ_TOKEN), false],
      ['GET', '/api/v1/vsis', bearer(READ_TOKEN), false],
    ]
    for (const [method, path, headers, answered] of cases) {
      const before = shortcutAnswered
      const fast = await call(ports.fast, method, path, headers)
      const plain = await call(ports.plain, method, path, headers)
      expect({ path, headers, ...fast }).toEqual({ path, headers, ...plain })
      expect({ path, headers, answered: shortcutAnswered > before }).toEqual({ path, headers, answered })
    }
    expect(JSON.parse((await call(ports.fast, 'GET', `/api/v1/vsis?ip=${ipOf(1)}`, bearer(READ_TOKEN))).body).vsis).toHaveLength(2)
    // Every answered request is counted once, by the shortcut or by the app's middleware.
    await call(ports.plain, 'GET', `/api/v1/vsis?ip=${ipOf(1)}`, bearer(READ_TOKEN))
    const counts = (m: Map<number, number>) => Object.fromEntries([...m].sort((a, b) => a[0] - b[0]))
    const { 201: _created, ...fastCounts } = counts(withShortcut.metrics.httpRequests)
    expect(fastCounts).toEqual(counts(reference.metrics.httpRequests))
  })
})
