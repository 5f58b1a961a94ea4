/**
 * `/api/v1/hosts`: hypervisors and the keys they authenticate with. Keys are write-only:
 * accepted as base64, sealed before they reach the store, never returned or logged.
 */
import { Hono } from 'hono'
import { idField, macField, managerIdField, timeMsField } from '../../shared/api/fields.ts'
import { array, integer, optional, record } from '../../shared/api/schema.ts'
import { requireScope } from '../auth.ts'
import { ApiError, notFound } from '../errors.ts'
import { hostKeyContext, pushPolicies } from '../policy.ts'
import { hostView, type HostRecord } from '../store/fleet-store.ts'
import { base64Bytes, intText, jsonBody, params } from '../validate.ts'
import type { AppEnv, RouteDeps } from './context.ts'

export const hostBodySchema = record({ managerId: optional(managerIdField), stationMacs: array(macField, 16) })
export const hostKeyBodySchema = record({
  keyId: integer(0, 0xffff),
  /** The secret, base64, 16..64 bytes. */
  key: base64Bytes(16, 64),
  notAfter: optional(timeMsField),
})
const hostParam = record({ hostId: idField })
const keyParam = record({ hostId: idField, keyId: intText(0, 0xffff) })

export function hostsRoutes(deps: RouteDeps) {
  const app = new Hono<AppEnv>()
  const read = requireScope(deps.tokenChecker, 'read')
  const admin = requireScope(deps.tokenChecker, 'admin')
  const { store } = deps
  const raw = (hostId: string): HostRecord | undefined => store.hostSecrets().find((h) => h.hostId === hostId)

  app.get('/', read, (c) => c.json({ hosts: store.listHosts() }))
  app.get('/:hostId', read, params(hostParam), (c) => {
    const h = store.getHost(c.req.valid('param').hostId)
    if (!h) throw notFound(`host "${c.req.valid('param').hostId}"`)
    return c.json(h)
  })
  app.put('/:hostId', admin, params(hostParam), jsonBody(hostBodySchema), async (c) => {
    const { hostId } = c.req.valid('param')
    const body = c.req.valid('json')
    const prior = raw(hostId)
    const host: HostRecord = {
      hostId,
      ...(body.managerId !== undefined ? { managerId: body.managerId } : {}),
      stationMacs: body.stationMacs,
      keys: prior?.keys ?? [],
      updatedAt: deps.clock.nowMs(),
    }
    store.putHost(host)
    deps.logger.info('host saved', { hostId })
    await pushPolicies(deps)
    return c.json(hostView(host), prior ? 200 : 201)
  })
  app.delete('/:hostId', admin, params(hostParam), async (c) => {
    const { hostId } = c.req.valid('param')
    if (!store.deleteHost(hostId)) throw notFound(`host "${hostId}"`)
    await pushPolicies(deps)
    return c.body(null, 204)
  })
  app.post('/:hostId/keys', admin, params(hostParam), jsonBody(hostKeyBodySchema), async (c) => {
    const { hostId } = c.req.valid('param')
    const body = c.req.valid('json')
    const host = raw(hostId)
    if (!host) throw notFound(`host "${hostId}"`)
    if (host.keys.some((k) => k.keyId === body.keyId)) {
      throw new ApiError(409, 'conflict', `Cannot add key ${body.keyId} to host "${hostId}": the id is in use; delete it first`)
    }
    const now = deps.clock.nowMs()
    const sealed = await deps.secrets.seal(body.key, hostKeyContext(hostId, body.keyId))
    body.key.fill(0)
    host.keys.push({ keyId: body.keyId, sealed, createdAt: now, ...(body.notAfter !== undefined ? { notAfter: body.notAfter } : {}) })
    host.updatedAt = now
    store.putHost(host)
    deps.logger.info('host key added', { hostId, keyId: body.keyId })
    await pushPolicies(deps)
    return c.json(hostView(host), 201)
  })
  app.delete('/:hostId/keys/:keyId', admin, params(keyParam), async (c) => {
    const { hostId, keyId } = c.req.valid('param')
    const host = raw(hostId)
    if (!host || !host.keys.some((k) => k.keyId === keyId)) throw notFound(`key ${keyId} of host "${hostId}"`)
    host.keys = host.keys.filter((k) => k.keyId !== keyId)
    host.updatedAt = deps.clock.nowMs()
    store.putHost(host)
    deps.logger.info('host key deleted', { hostId, keyId })
    await pushPolicies(deps)
    return c.body(null, 204)
  })
  return app
}
