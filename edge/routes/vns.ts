/** `/api/v1/vns`: virtual networks (name, VNI, tenant, allowed VSI types). Changes push policy. */
import { Hono } from 'hono'
import { nameField } from '../../shared/api/fields.ts'
import { vsiTypeRefSchema } from '../../shared/api/policy.ts'
import { array, integer, optional, record, text, type Infer } from '../../shared/api/schema.ts'
import { requireScope } from '../auth.ts'
import { ApiError, notFound } from '../errors.ts'
import { pushPolicies } from '../policy.ts'
import type { VirtualNetwork } from '../store/fleet-store.ts'
import { jsonBody, params } from '../validate.ts'
import type { AppEnv, RouteDeps } from './context.ts'

const vnFields = {
  /** VNI 0 is not a VN (SONiC accepts 1..16777215; the agent refuses 0). */
  vni: integer(1, 0xffffff),
  tenant: nameField,
  allowedVsiTypes: optional(array(vsiTypeRefSchema, 256)),
  vid: optional(integer(2, 4094)),
  description: optional(text({ max: 200 })),
}
export const createVnSchema = record({ name: nameField, ...vnFields })
export const updateVnSchema = record(vnFields)
const nameParam = record({ name: nameField })

export function vnsRoutes(deps: RouteDeps) {
  const app = new Hono<AppEnv>()
  const read = requireScope(deps.tokenChecker, 'read')
  const admin = requireScope(deps.tokenChecker, 'admin')
  const { store } = deps

  const save = async (name: string, body: Infer<typeof updateVnSchema>, isNew: boolean) => {
    const clash = store.listVns().find((v) => v.vni === body.vni && v.name !== name)
    if (clash) throw new ApiError(409, 'conflict', `Cannot use VNI ${body.vni}: VN "${clash.name}" has it`)
    const vidClash = body.vid === undefined ? undefined : store.listVns().find((v) => v.vid === body.vid && v.name !== name)
    if (vidClash) throw new ApiError(409, 'conflict', `Cannot pin VID ${body.vid}: VN "${vidClash.name}" has it`)
    const prior = store.getVn(name)
    if (isNew && prior) throw new ApiError(409, 'conflict', `Cannot create VN "${name}": it exists`)
    const now = deps.clock.nowMs()
    const vn: VirtualNetwork = {
      name,
      vni: body.vni,
      tenant: body.tenant,
      allowedVsiTypes: body.allowedVsiTypes ?? [],
      ...(body.vid !== undefined ? { vid: body.vid } : {}),
      ...(body.description !== undefined ? { description: body.description } : {}),
      createdAt: prior?.createdAt ?? now,
      updatedAt: now,
    }
    store.putVn(vn)
    deps.logger.info('vn saved', { name, vni: vn.vni })
    await pushPolicies(deps)
    return vn
  }

  app.get('/', read, (c) => c.json({ vns: store.listVns() }))
  app.post('/', admin, jsonBody(createVnSchema), async (c) => {
    const body = c.req.valid('json')
    return c.json(await save(body.name, body, true), 201)
  })
  app.get('/:name', read, params(nameParam), (c) => {
    const vn = store.getVn(c.req.valid('param').name)
    if (!vn) throw notFound(`VN "${c.req.valid('param').name}"`)
    return c.json(vn)
  })
  app.put('/:name', admin, params(nameParam), jsonBody(updateVnSchema), async (c) =>
    c.json(await save(c.req.valid('param').name, c.req.valid('json'), false)),
  )
  app.delete('/:name', admin, params(nameParam), async (c) => {
    const { name } = c.req.valid('param')
    if (!store.deleteVn(name)) throw notFound(`VN "${name}"`)
    deps.logger.info('vn deleted', { name })
    await pushPolicies(deps)
    return c.body(null, 204)
  })
  return app
}
