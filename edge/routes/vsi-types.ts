/** `/api/v1/vsi-types`: the VSI types the fleet knows (Type ID, version, name). */
import { Hono } from 'hono'
import { nameField } from '../../shared/api/fields.ts'
import { optional, record, text } from '../../shared/api/schema.ts'
import { requireScope } from '../auth.ts'
import { notFound } from '../errors.ts'
import { intText, jsonBody, params } from '../validate.ts'
import type { AppEnv, RouteDeps } from './context.ts'

export const vsiTypeBodySchema = record({ name: nameField, description: optional(text({ max: 200 })) })
const keyParam = record({ typeId: intText(0, 0xffffff), typeVersion: intText(0, 0xff) })

export function vsiTypesRoutes(deps: RouteDeps) {
  const app = new Hono<AppEnv>()
  const { store } = deps
  app.get('/', requireScope(deps.tokenChecker, 'read'), (c) => c.json({ vsiTypes: store.listVsiTypes() }))
  app.put('/:typeId/:typeVersion', requireScope(deps.tokenChecker, 'admin'), params(keyParam), jsonBody(vsiTypeBodySchema), (c) => {
    const { typeId, typeVersion } = c.req.valid('param')
    const body = c.req.valid('json')
    const t = { typeId, typeVersion, name: body.name, ...(body.description !== undefined ? { description: body.description } : {}) }
    store.putVsiType(t)
    return c.json(t)
  })
  app.delete('/:typeId/:typeVersion', requireScope(deps.tokenChecker, 'admin'), params(keyParam), (c) => {
    const { typeId, typeVersion } = c.req.valid('param')
    if (!store.deleteVsiType(typeId, typeVersion)) throw notFound(`VSI type ${typeId}/${typeVersion}`)
    return c.body(null, 204)
  })
  return app
}
