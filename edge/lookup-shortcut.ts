/**
 * A Node shortcut in front of the Hono app for the edge's hottest request, a VSI lookup by
 * one MAC or one IP: `GET /api/v1/vsis?mac=…` or `?ip=…` with a configured bearer token.
 * Measured on this project's 1,000,000-VSI benchmark, @hono/node-server's Request/Response
 * adaptation plus Hono's middleware chain cost about as much CPU per lookup as the rest
 * (HTTP parsing, SQLite, socket I/O) together; this path skips them.
 *
 * Rules:
 * 1. The app stays the reference: the shortcut answers only the plain success case, with the
 *    same query schema, token comparison, `findVsiPage` and JSON body as the route. Anything
 *    else goes to the app untouched (the function returns false before writing): HEAD, any
 *    other or repeated parameter, percent-encoded or `+` text (the app decodes it), a token
 *    in `?token=` or that is not one of the configured ones (the app also looks up issued
 *    tokens), a value the schema refuses, a store error (the app logs it and answers 500).
 * 2. Requests it answers are counted in `metrics.httpRequests` like the app's middleware does.
 *
 * Node only; behind another runtime the app answers these requests itself.
 *
 * @module
 */
import type { IncomingMessage, ServerResponse } from 'node:http'
import { BEARER_HEADER, findConfiguredToken, TOKEN_LENGTH_MAX } from './auth.ts'
import type { TokenConfig } from './deps.ts'
import { bump, type EdgeMetrics } from './metrics.ts'
import { findVsiPage, vsiQuerySchema } from './routes/vsis.ts'
import type { FleetStore } from './store/fleet-store.ts'

const PREFIX = '/api/v1/vsis?'

/** Returns true when it answered the request, false when the app must (nothing written). */
export type LookupShortcut = (req: IncomingMessage, res: ServerResponse) => boolean

export function createLookupShortcut(deps: { store: FleetStore; tokens: readonly TokenConfig[]; metrics: EdgeMetrics }): LookupShortcut {
  return (req, res) => {
    const url = req.url
    if (req.method !== 'GET' || url === undefined || !url.startsWith(PREFIX)) return false
    const eq = url.indexOf('=', PREFIX.length)
    if (eq < 0) return false
    const key = url.slice(PREFIX.length, eq)
    if (key !== 'mac' && key !== 'ip') return false
    const value = url.slice(eq + 1)
    if (value === '' || /[&#%+]/.test(value)) return false
    const header = req.headers.authorization
    if (header === undefined) return false
    const presented = BEARER_HEADER.exec(header)?.[1]
    if (presented === undefined || presented.length > TOKEN_LENGTH_MAX) return false
    // Every scope may read; an unknown token may still be an issued one: the app decides.
    if (!findConfiguredToken(deps.tokens, presented)) return false
    let body: string
    try {
      body = JSON.stringify(findVsiPage(deps.store, vsiQuerySchema.parse({ [key]: value })))
    } catch {
      return false
    }
    res.writeHead(200, { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(body) })
    res.end(body)
    bump(deps.metrics.httpRequests, 200)
    return true
  }
}
