/**
 * `/api/v1/tokens`: bearer tokens issued and revoked at run time, next to the ones configured
 * in deps. The token is returned once, at creation; the store keeps only its SHA-256.
 */
import { Hono } from 'hono'
import { nameField } from '../../shared/api/fields.ts'
import { literal, record, text } from '../../shared/api/schema.ts'
import { requireScope, tokenHash } from '../auth.ts'
import { notFound } from '../errors.ts'
import { jsonBody, params } from '../validate.ts'
import type { AppEnv, RouteDeps } from './context.ts'

export const createTokenBodySchema = record({ name: nameField, scope: literal('read', 'admin') })

export function tokensRoutes(deps: RouteDeps) {
  const app = new Hono<AppEnv>()
  const admin = requireScope(deps.tokenChecker, 'admin')
  app.get('/', admin, (c) => c.json({ tokens: deps.store.listTokens() }))
  app.post('/', admin, jsonBody(createTokenBodySchema), async (c) => {
    const body = c.req.valid('json')
    const raw = crypto.getRandomValues(new Uint8Array(32))
    const token = 'vdp_' + btoa(String.fromCharCode(...raw)).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '')
    const hash = await tokenHash(token)
    const record = { id: hash.slice(0, 16), name: body.name, scope: body.scope, hash, createdAt: deps.clock.nowMs() }
    deps.store.putToken(record)
    deps.logger.info('token issued', { id: record.id, name: record.name, scope: record.scope, by: c.get('tokenName') })
    return c.json({ id: record.id, name: record.name, scope: record.scope, createdAt: record.createdAt, token }, 201)
  })
  app.delete('/:id', admin, params(record({ id: text({ min: 16, max: 16, pattern: /^[0-9a-f]{16}$/ }) })), (c) => {
    const { id } = c.req.valid('param')
    if (!deps.store.deleteToken(id)) throw notFound(`token ${id}`)
    deps.logger.info('token revoked', { id, by: c.get('tokenName') })
    return c.body(null, 204)
  })
  return app
}
