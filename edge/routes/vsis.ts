/**
 * `/api/v1/vsis`: where each VM interface is. Find by MAC, IP, VN (VNI), switch, port or
 * state, paged by VSIID; one VSI by VSIID (hex or UUID) with its history of places and
 * migrations. `/api/v1/migrations`: the most recent moves fleet-wide.
 */
import { Hono } from 'hono'
import { macField, portField, switchIdField, vsiIdField } from '../../shared/api/fields.ts'
import { parseIp } from '../../shared/api/ip.ts'
import { literal, optional, record, textAs, type Infer } from '../../shared/api/schema.ts'
import type { VsiIdHex } from '../../shared/ids.ts'
import { requireScope } from '../auth.ts'
import { ApiError, notFound } from '../errors.ts'
import type { FleetStore } from '../store/fleet-store.ts'
import type { VsiView } from '../store/model.ts'
import { intText, params, query } from '../validate.ts'
import type { AppEnv, RouteDeps } from './context.ts'

export const vsiQuerySchema = record({
  mac: optional(macField),
  ip: optional(textAs(45, parseIp)),
  vni: optional(intText(0, 0xffffff)),
  switch: optional(switchIdField),
  port: optional(portField),
  state: optional(literal('associated', 'pre-associated', 'gone')),
  limit: optional(intText(1, 1000)),
  after: optional(vsiIdField),
})
const idParam = record({ vsiId: vsiIdField })

/** What `GET /api/v1/vsis` answers for a validated query (also used by `lookup-shortcut.ts`). */
export function findVsiPage(store: FleetStore, q: Infer<typeof vsiQuerySchema>): { vsis: VsiView[]; next: VsiIdHex | null } {
  if (q.port !== undefined && q.switch === undefined) {
    throw new ApiError(400, 'validation', 'Invalid query: port needs switch', 'port')
  }
  const limit = q.limit ?? 100
  const vsis = store.findVsis({
    limit,
    ...(q.mac !== undefined ? { mac: q.mac } : {}),
    ...(q.ip !== undefined ? { ip: q.ip } : {}),
    ...(q.vni !== undefined ? { vni: q.vni } : {}),
    ...(q.switch !== undefined ? { switchId: q.switch } : {}),
    ...(q.port !== undefined ? { port: q.port } : {}),
    ...(q.state !== undefined ? { state: q.state } : {}),
    ...(q.after !== undefined ? { after: q.after } : {}),
  })
  return { vsis, next: vsis.length === limit ? vsis[vsis.length - 1]!.vsiId : null }
}

export function vsisRoutes(deps: RouteDeps) {
  const app = new Hono<AppEnv>()
  const read = requireScope(deps.tokenChecker, 'read')
  app.get('/', read, query(vsiQuerySchema), (c) => c.json(findVsiPage(deps.store, c.req.valid('query'))))
  app.get('/:vsiId', read, params(idParam), (c) => {
    const { vsiId } = c.req.valid('param')
    const v = deps.store.getVsi(vsiId)
    if (!v) throw notFound(`VSI ${vsiId}`)
    return c.json(v)
  })
  return app
}

export function migrationsRoutes(deps: RouteDeps) {
  const app = new Hono<AppEnv>()
  app.get('/', requireScope(deps.tokenChecker, 'read'), query(record({ limit: optional(intText(1, 1000)) })), (c) =>
    c.json({ migrations: deps.store.recentMigrations(c.req.valid('query').limit ?? 50) }),
  )
  return app
}
