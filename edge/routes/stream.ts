/**
 * `/api/v1/stream`: Server-Sent Events that tail the audit log, one `fleet-event` message per
 * applied event (`data` = `{ cursor, receivedAt, event }`, `id` = cursor). It reads the store,
 * not an in-process bus, so it sees events from every ingestion path (MQTT, HTTP, another
 * process on the same store). Resumes after `Last-Event-ID` or `?after=`; otherwise starts at
 * the newest event. A `: ping` comment every 15 s keeps proxies from closing it.
 */
import { Hono } from 'hono'
import { streamSSE } from 'hono/streaming'
import { optional, record } from '../../shared/api/schema.ts'
import { requireScope } from '../auth.ts'
import { intText, query } from '../validate.ts'
import type { AppEnv, RouteDeps } from './context.ts'

export const STREAM_POLL_MS = 250
const PING_MS = 15_000
const PAGE = 500

export function streamRoutes(deps: RouteDeps) {
  const app = new Hono<AppEnv>()
  app.get('/', requireScope(deps.tokenChecker, 'read'), query(record({ after: optional(intText(0, Number.MAX_SAFE_INTEGER)) })), (c) => {
    const lastId = c.req.header('Last-Event-ID')
    const start = /^\d{1,16}$/.test(lastId ?? '') ? Number(lastId) : (c.req.valid('query').after ?? deps.store.counts().events)
    return streamSSE(
      c,
      async (stream) => {
        let cursor = start
        let idleMs = 0
        await stream.writeSSE({ event: 'ready', data: JSON.stringify({ cursor }), retry: 2000 })
        while (!stream.aborted && !stream.closed) {
          const page = deps.store.listEvents({ after: cursor, limit: PAGE })
          for (const e of page) {
            await stream.writeSSE({ event: 'fleet-event', id: String(e.cursor), data: JSON.stringify(e) })
            cursor = e.cursor
          }
          if (page.length === PAGE) continue
          await stream.sleep(STREAM_POLL_MS)
          idleMs = page.length ? 0 : idleMs + STREAM_POLL_MS
          if (idleMs >= PING_MS) {
            await stream.write(': ping\n\n')
            idleMs = 0
          }
        }
      },
      async (err) => {
        deps.logger.warn('event stream failed', { error: err.message })
      },
    )
  })
  return app
}
