/**
 * `/api/v1/events`: the audit log, paged by cursor; `/api/v1/ingest/events`: CBOR ingestion
 * (one event or an array) for a broker rule engine or any HTTP producer. Ingest needs the
 * admin scope.
 */
import { Hono } from 'hono'
import { bodyLimit } from 'hono/body-limit'
import { EVENT_BYTES_MAX, EVENT_KINDS } from '../../shared/api/events.ts'
import { switchIdField, vsiIdField } from '../../shared/api/fields.ts'
import { literal, optional, record } from '../../shared/api/schema.ts'
import { requireScope } from '../auth.ts'
import { ApiError } from '../errors.ts'
import { DEFAULT_COMMAND_TTL_MS } from '../command-dispatcher.ts'
import { countRejected, ingestEventBytes } from '../ingest.ts'
import { bump } from '../metrics.ts'
import { pushPolicies } from '../policy.ts'
import { intText, query } from '../validate.ts'
import type { AppEnv, RouteDeps } from './context.ts'

export const eventQuerySchema = record({
  after: optional(intText(0, Number.MAX_SAFE_INTEGER)),
  limit: optional(intText(1, 1000)),
  switch: optional(switchIdField),
  vsi: optional(vsiIdField),
  kind: optional(literal(...EVENT_KINDS)),
})

/** The ingest body may hold a batch; each event is bounded by EVENT_BYTES_MAX. */
export const INGEST_BODY_BYTES_MAX = EVENT_BYTES_MAX * 64

export function eventsRoutes(deps: RouteDeps) {
  const app = new Hono<AppEnv>()
  app.get('/', requireScope(deps.tokenChecker, 'read'), query(eventQuerySchema), (c) => {
    const q = c.req.valid('query')
    const limit = q.limit ?? 100
    const events = deps.store.listEvents({
      limit,
      ...(q.after !== undefined ? { after: q.after } : {}),
      ...(q.switch !== undefined ? { switchId: q.switch } : {}),
      ...(q.vsi !== undefined ? { vsiId: q.vsi } : {}),
      ...(q.kind !== undefined ? { kind: q.kind } : {}),
    })
    const next = events.length === limit ? events[events.length - 1]!.cursor : null
    return c.json({ events, next })
  })
  return app
}

export function ingestRoutes(deps: RouteDeps) {
  const app = new Hono<AppEnv>()
  app.post(
    '/events',
    requireScope(deps.tokenChecker, 'admin'),
    bodyLimit({
      maxSize: INGEST_BODY_BYTES_MAX,
      onError: () => {
        bump(deps.metrics.eventsRejected, 'too-large')
        throw new ApiError(413, 'too-large', `Cannot accept body: more than ${INGEST_BODY_BYTES_MAX} bytes`)
      },
    }),
    async (c) => {
      const type = (c.req.header('Content-Type') ?? '').split(';')[0]!.trim().toLowerCase()
      if (type !== 'application/cbor') {
        countRejected(deps.metrics, new ApiError(415, 'unsupported-media-type', ''))
        throw new ApiError(415, 'unsupported-media-type', `Cannot read body: Content-Type "${type}" is not application/cbor`)
      }
      const bytes = new Uint8Array(await c.req.arrayBuffer())
      const result = ingestEventBytes(deps.store, bytes, deps.clock, {
        metrics: deps.metrics,
        migrationGraceMs: deps.migrationGraceMs,
        commandTtlMs: deps.commandTtlMs ?? DEFAULT_COMMAND_TTL_MS,
      })
      if (result.bootedSwitches.length) await pushPolicies(deps, result.bootedSwitches)
      for (const command of result.commands) {
        await deps.publish.command(command).catch((err: unknown) =>
          deps.logger.warn('command publish failed', {
            commandId: command.commandId,
            error: err instanceof Error ? err.message : String(err),
          }),
        )
      }
      return c.json({
        applied: result.applied,
        duplicates: result.duplicates,
        stale: result.stale,
        migrations: result.migrations.map((m) => m.migrationId),
        commands: result.commands.map((m) => m.commandId),
      })
    },
  )
  return app
}
