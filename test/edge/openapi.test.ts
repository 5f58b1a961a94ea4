import { describe, expect, it } from 'vitest'
import { MemoryFleetStore } from '../../edge/store/memory-fleet-store.ts'
import { openApiDocument } from '../../edge/openapi.ts'
import { read, testEdge } from './support/app.ts'

const METHODS = ['get', 'post', 'put', 'delete', 'patch']

describe('OpenAPI document', () => {
  const t = testEdge(new MemoryFleetStore())
  const routes = new Set(
    t.app.routes
      .filter((r) => METHODS.includes(r.method.toLowerCase()))
      .map((r) => `${r.method.toLowerCase()} ${r.path.replace(/:([A-Za-z]+)/g, '{$1}')}`),
  )
  const documented = new Set(
    Object.entries(openApiDocument.paths).flatMap(([path, item]) =>
      Object.keys(item)
        .filter((k) => METHODS.includes(k))
        .map((m) => `${m} ${path}`),
    ),
  )

  it('documents every route of the app', () => {
    expect([...routes].filter((r) => !documented.has(r))).toEqual([])
  })

  it('documents no route the app does not have', () => {
    expect([...documented].filter((r) => !routes.has(r))).toEqual([])
  })

  it('is served at /api/v1/openapi.json as OpenAPI 3.1 with path parameters declared', async () => {
    const doc = await (await t.app.request('/api/v1/openapi.json', { headers: read })).json()
    expect(doc.openapi).toBe('3.1.0')
    for (const [path, item] of Object.entries(doc.paths as Record<string, Record<string, { parameters?: { name: string; in: string }[] }>>)) {
      const names = [...path.matchAll(/\{([A-Za-z]+)\}/g)].map((m) => m[1])
      const declared = ((item as { parameters?: { name: string; in: string }[] }).parameters ?? []).filter((p) => p.in === 'path').map((p) => p.name)
      expect(declared.sort(), path).toEqual(names.sort())
    }
  })
})
