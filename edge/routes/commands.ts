/**
 * `/api/v1/commands`: NVE-initiated disconnects, recorded in the fleet store (`pending`),
 * published to the switch through deps and kept with their state and replies.
 * `disconnect-vsi` without `switchId` goes to every switch holding the VSI. A command the
 * broker does not take stays `pending` and is published again when its switch comes online
 * or the edge restarts (edge/command-dispatcher.ts): the answer is 202 all the same, and
 * issuing it again would make a second command.
 */
import { Hono } from 'hono'
import type { Command } from '../../shared/api/commands.ts'
import { idField, nameField, portField, reasonField, switchIdField, vniField, vsiIdField } from '../../shared/api/fields.ts'
import { literal, optional, record } from '../../shared/api/schema.ts'
import { requireScope } from '../auth.ts'
import { DEFAULT_COMMAND_TTL_MS } from '../command-dispatcher.ts'
import { ApiError, notFound } from '../errors.ts'
import { bump } from '../metrics.ts'
import { intText, jsonBody, params, query } from '../validate.ts'
import { COMMAND_STATES } from '../store/fleet-store.ts'
import type { AppEnv, RouteDeps } from './context.ts'

export const disconnectVsiBodySchema = record({
  vsiId: vsiIdField,
  switchId: optional(switchIdField),
  port: optional(portField),
  mode: optional(literal('de-associate', 'deactivate')),
  reason: optional(reasonField),
})
export const disconnectVnBodySchema = record({
  switchId: switchIdField,
  port: portField,
  vni: optional(vniField),
  vn: optional(nameField),
  reason: optional(reasonField),
})

export function commandsRoutes(deps: RouteDeps) {
  const app = new Hono<AppEnv>()
  const read = requireScope(deps.tokenChecker, 'read')
  const admin = requireScope(deps.tokenChecker, 'admin')
  const { store } = deps
  let counter = 0
  const newId = () => `op-${deps.clock.nowMs().toString(36)}-${(++counter).toString(36)}-${crypto.randomUUID().slice(0, 8)}`

  const send = async (commands: Command[], token: string) => {
    for (const command of commands) {
      store.recordCommand({ command, origin: 'operator' })
      bump(deps.metrics.commandsIssued, `${command.kind}|operator`)
      deps.logger.info('command issued', { commandId: command.commandId, kind: command.kind, switchId: command.switchId, token })
      try {
        await deps.publish.command(command)
      } catch (err) {
        deps.logger.warn('command publish failed: it stays pending and is sent when the switch comes online', {
          commandId: command.commandId,
          error: err instanceof Error ? err.message : String(err),
        })
      }
    }
  }
  const expiresAt = (now: number) => now + (deps.commandTtlMs ?? DEFAULT_COMMAND_TTL_MS)
  const withState = (commands: Command[]) =>
    commands.map((command) => {
      const r = store.getCommand(command.commandId)
      return { ...command, state: r?.state ?? 'pending' }
    })

  app.get(
    '/',
    read,
    query(record({ limit: optional(intText(1, 1000)), state: optional(literal(...COMMAND_STATES)), switch: optional(switchIdField) })),
    (c) => {
      const q = c.req.valid('query')
      return c.json({
        commands: store.listCommands({
          limit: q.limit ?? 100,
          ...(q.state !== undefined ? { state: q.state } : {}),
          ...(q.switch !== undefined ? { switchId: q.switch } : {}),
        }),
      })
    },
  )
  app.get('/:commandId', read, params(record({ commandId: idField })), (c) => {
    const r = store.getCommand(c.req.valid('param').commandId)
    if (!r) throw notFound(`command "${c.req.valid('param').commandId}"`)
    return c.json(r)
  })
  app.post('/disconnect-vsi', admin, jsonBody(disconnectVsiBodySchema), async (c) => {
    const b = c.req.valid('json')
    const now = deps.clock.nowMs()
    let targets: { switchId: NonNullable<typeof b.switchId>; port?: NonNullable<typeof b.port> }[]
    if (b.switchId !== undefined) {
      targets = [{ switchId: b.switchId, ...(b.port !== undefined ? { port: b.port } : {}) }]
    } else {
      if (b.port !== undefined) throw new ApiError(400, 'validation', 'Invalid body: port needs switchId', 'port')
      const v = store.getVsi(b.vsiId)
      if (!v || v.holding.length === 0) throw notFound(`a switch holding VSI ${b.vsiId}`)
      targets = v.holding.map((p) => ({ switchId: p.switchId, port: p.port }))
    }
    const commands: Command[] = targets.map((t) => ({
      v: 1,
      kind: 'disconnect-vsi',
      commandId: newId(),
      switchId: t.switchId,
      issuedAt: now,
      reason: b.reason ?? 'operator',
      expiresAt: expiresAt(now),
      vsiId: b.vsiId,
      ...(t.port !== undefined ? { port: t.port } : {}),
      mode: b.mode ?? 'de-associate',
    }))
    await send(commands, c.get('tokenName'))
    return c.json({ commands: withState(commands) }, 202)
  })
  app.post('/disconnect-vn', admin, jsonBody(disconnectVnBodySchema), async (c) => {
    const b = c.req.valid('json')
    let vni = b.vni
    if (b.vn !== undefined) {
      const vn = store.getVn(b.vn)
      if (!vn) throw notFound(`VN "${b.vn}"`)
      if (vni !== undefined && vni !== vn.vni) throw new ApiError(400, 'validation', `Invalid body: VN "${b.vn}" has VNI ${vn.vni}, not ${vni}`, 'vni')
      vni = vn.vni
    }
    if (vni === undefined) throw new ApiError(400, 'validation', 'Invalid body: give vni or vn', 'vni')
    const now = deps.clock.nowMs()
    const command: Command = {
      v: 1,
      kind: 'disconnect-vn',
      commandId: newId(),
      switchId: b.switchId,
      issuedAt: now,
      reason: b.reason ?? 'operator',
      expiresAt: expiresAt(now),
      vni,
      port: b.port,
    }
    await send([command], c.get('tokenName'))
    return c.json({ commands: withState([command]) }, 202)
  })
  return app
}
