/**
 * The edge HTTP app: `createApp(deps)` builds a Hono app from its dependencies, with no
 * module-level state, so it runs on Node (`@hono/node-server`) and unchanged behind any
 * runtime that speaks Web `Request`/`Response`. Each resource is a sub-app under `/api/v1`;
 * errors go through `HTTPException` and the single `onError` of `errors.ts`.
 *
 * @module
 */
import { Hono } from 'hono'
import { createTokenChecker, requireScope } from './auth.ts'
import { DEFAULT_MIGRATION_GRACE_MS, type EdgeDeps } from './deps.ts'
import { toErrorResponse } from './errors.ts'
import { bump, createEdgeMetrics, renderMetrics } from './metrics.ts'
import { openApiDocument } from './openapi.ts'
import { commandsRoutes } from './routes/commands.ts'
import type { AppEnv, RouteDeps } from './routes/context.ts'
import { eventsRoutes, ingestRoutes } from './routes/events.ts'
import { hostsRoutes } from './routes/hosts.ts'
import { streamRoutes } from './routes/stream.ts'
import { tokensRoutes } from './routes/tokens.ts'
import { switchesRoutes } from './routes/switches.ts'
import { vnsRoutes } from './routes/vns.ts'
import { vsiTypesRoutes } from './routes/vsi-types.ts'
import { migrationsRoutes, vsisRoutes } from './routes/vsis.ts'
import { FLEET_PAGE_HTML } from './ui/page.ts'

export const API_PREFIX = '/api/v1'

/**
 * Builds the edge app.
 * @example
 * ```ts
 * import { serve } from '@hono/node-server'
 * const app = createApp({
 *   store: new SqliteFleetStore({ path: '/var/lib/vdp-edge/fleet.sqlite' }),
 *   clock: systemClock,
 *   logger: silentLogger,
 *   publish: topicPublisher(send, 'vdp'),
 *   tokens: [{ name: 'ops', token: process.env.VDP_ADMIN_TOKEN!, scope: 'admin' }],
 *   secrets: createSecretBox(keyEncryptionKey),
 * })
 * serve({ fetch: app.fetch, hostname: '127.0.0.1', port: 8080 })
 * ```
 */
export function createApp(deps: EdgeDeps): Hono<AppEnv> {
  const d: RouteDeps = {
    ...deps,
    metrics: deps.metrics ?? createEdgeMetrics(),
    migrationGraceMs: deps.migrationGraceMs ?? DEFAULT_MIGRATION_GRACE_MS,
    tokenChecker: createTokenChecker(deps.tokens, deps.store),
  }
  const app = new Hono<AppEnv>()

  app.use(async (c, next) => {
    await next()
    bump(d.metrics.httpRequests, c.res.status)
  })

  app.get('/', (c) => c.html(FLEET_PAGE_HTML))
  app.get('/healthz', (c) => {
    try {
      const counts = d.store.counts()
      return c.json({ status: 'ok', ...counts })
    } catch {
      return c.json({ status: 'unavailable' }, 503)
    }
  })
  app.get('/metrics', requireScope(d.tokenChecker, 'read'), (c) =>
    c.text(renderMetrics(d.metrics, d.store.counts()), 200, { 'Content-Type': 'text/plain; version=0.0.4; charset=utf-8' }),
  )

  const api = new Hono<AppEnv>()
  api.get('/openapi.json', (c) => c.json(openApiDocument))
  api.get('/fleet', requireScope(d.tokenChecker, 'read'), (c) =>
    c.json({
      time: d.clock.nowMs(),
      counts: d.store.counts(),
      vns: d.store.listVns(),
      switches: d.store.listSwitches(),
      vsis: d.store.findVsis({ limit: 500 }),
      migrations: d.store.recentMigrations(20),
    }),
  )
  api.route('/vns', vnsRoutes(d))
  api.route('/vsi-types', vsiTypesRoutes(d))
  api.route('/hosts', hostsRoutes(d))
  api.route('/switches', switchesRoutes(d))
  api.route('/vsis', vsisRoutes(d))
  api.route('/migrations', migrationsRoutes(d))
  api.route('/events', eventsRoutes(d))
  api.route('/commands', commandsRoutes(d))
  api.route('/ingest', ingestRoutes(d))
  api.route('/stream', streamRoutes(d))
  api.route('/tokens', tokensRoutes(d))
  app.route(API_PREFIX, api)

  app.notFound((c) => c.json({ error: { code: 'not-found', message: `Cannot find route ${c.req.method} ${c.req.path}` } }, 404))
  app.onError((err, c) => toErrorResponse(err, c, d.logger))
  return app
}
