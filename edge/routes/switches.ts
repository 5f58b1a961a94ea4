/** `/api/v1/switches`: status, peers (ports), VLAN use, per-switch config and policy. */
import { Hono } from 'hono'
import { switchIdField } from '../../shared/api/fields.ts'
import { redactPolicy, lagGroupSchema, vidRangeSchema } from '../../shared/api/policy.ts'
import { array, literal, optional, record, refine } from '../../shared/api/schema.ts'
import { requireScope } from '../auth.ts'
import { notFound } from '../errors.ts'
import { buildSwitchPolicy, pushPolicies } from '../policy.ts'
import { jsonBody, params } from '../validate.ts'
import type { AppEnv, RouteDeps } from './context.ts'

/** Ranges must not overlap: the agent refuses a pool that does (agent/resources/vid-pool.ts). */
const vidPoolSchema = refine(array(vidRangeSchema, 256), (ranges) => {
  const sorted = [...ranges].sort((a, b) => a.first - b.first)
  for (let i = 1; i < sorted.length; i++) {
    if (sorted[i]!.first <= sorted[i - 1]!.last) return `ranges ${sorted[i - 1]!.first}-${sorted[i - 1]!.last} and ${sorted[i]!.first}-${sorted[i]!.last} overlap`
  }
  return undefined
})

export const switchConfigBodySchema = record({
  vidPool: vidPoolSchema,
  lagGroups: optional(array(lagGroupSchema, 64)),
  unknownHosts: optional(literal('allow', 'deny')),
})
const idParam = record({ switchId: switchIdField })

export function switchesRoutes(deps: RouteDeps) {
  const app = new Hono<AppEnv>()
  const read = requireScope(deps.tokenChecker, 'read')
  const admin = requireScope(deps.tokenChecker, 'admin')
  const { store } = deps

  app.get('/', read, (c) => c.json({ switches: store.listSwitches() }))
  app.get('/:switchId', read, params(idParam), (c) => {
    const { switchId } = c.req.valid('param')
    const view = store.getSwitch(switchId)
    const config = store.getSwitchConfig(switchId)
    if (!view && !config) throw notFound(`switch "${switchId}"`)
    return c.json({ ...(view ?? { switchId, status: 'unknown' }), config: config ?? null })
  })
  app.put('/:switchId/config', admin, params(idParam), jsonBody(switchConfigBodySchema), async (c) => {
    const { switchId } = c.req.valid('param')
    const body = c.req.valid('json')
    const config = {
      switchId,
      vidPool: body.vidPool,
      lagGroups: body.lagGroups ?? [],
      unknownHosts: body.unknownHosts ?? ('allow' as const),
      updatedAt: deps.clock.nowMs(),
    }
    store.putSwitchConfig(config)
    await pushPolicies(deps, [switchId])
    return c.json(config)
  })
  /** The policy the switch gets, with key bytes redacted. */
  app.get('/:switchId/policy', read, params(idParam), async (c) => {
    const { switchId } = c.req.valid('param')
    if (!store.getSwitch(switchId) && !store.getSwitchConfig(switchId)) throw notFound(`switch "${switchId}"`)
    const policy = await buildSwitchPolicy(store, deps.secrets, switchId, 0, deps.clock.nowMs())
    return c.json(redactPolicy(policy))
  })
  app.post('/:switchId/policy/push', admin, params(idParam), async (c) => {
    const { switchId } = c.req.valid('param')
    if (!store.getSwitch(switchId) && !store.getSwitchConfig(switchId)) throw notFound(`switch "${switchId}"`)
    const revision = await pushPolicies(deps, [switchId])
    return c.json({ switchId, revision }, 202)
  })
  return app
}
