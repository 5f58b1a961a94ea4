/**
 * HTTP errors of the edge API, in one place: domain errors become `HTTPException`s with a
 * stable `code`, and `toErrorResponse` (the app's single `onError`) renders every error as
 * `{ "error": { "code", "message", "path"? } }`. Unexpected errors are logged through the
 * deps logger and answered 500 without detail.
 *
 * @module
 */
import type { Context } from 'hono'
import { HTTPException } from 'hono/http-exception'
import type { ContentfulStatusCode } from 'hono/utils/http-status'
import { ApiDecodeError } from '../shared/api/cbor.ts'
import { SchemaError } from '../shared/api/schema.ts'
import type { Logger } from './deps.ts'

export type ApiErrorCode =
  | 'unauthorized'
  | 'forbidden'
  | 'not-found'
  | 'conflict'
  | 'validation'
  | 'malformed-json'
  | 'unsupported-media-type'
  | 'payload-too-large'
  | 'malformed-cbor'
  | 'unsupported-version'
  | 'schema'
  | 'too-large'
  | 'unavailable'
  | 'internal'

/** An HTTPException with a stable code the client can switch on. */
export class ApiError extends HTTPException {
  constructor(
    status: ContentfulStatusCode,
    readonly code: ApiErrorCode,
    message: string,
    readonly path?: string,
  ) {
    super(status, { message })
  }
}

export const notFound = (what: string): ApiError => new ApiError(404, 'not-found', `Cannot find ${what}`)

const DECODE_STATUS: Record<ApiDecodeError['code'], ContentfulStatusCode> = {
  'malformed-cbor': 400,
  'unsupported-version': 422,
  schema: 422,
  'too-large': 413,
}

/** Maps any thrown value to an ApiError. */
export function toApiError(err: unknown): ApiError | undefined {
  if (err instanceof ApiError) return err
  if (err instanceof ApiDecodeError) return new ApiError(DECODE_STATUS[err.code], err.code, err.message, err.path || undefined)
  if (err instanceof SchemaError) return new ApiError(400, 'validation', err.message, err.path || undefined)
  if (err instanceof HTTPException) {
    const status = err.status as ContentfulStatusCode
    const code: ApiErrorCode =
      status === 401 ? 'unauthorized'
      : status === 403 ? 'forbidden'
      : status === 404 ? 'not-found'
      : status === 413 ? 'payload-too-large'
      : /JSON/i.test(err.message) ? 'malformed-json'
      : 'validation'
    return new ApiError(status, code, err.message || 'Request failed')
  }
  return undefined
}

export function toErrorResponse(err: unknown, c: Context, logger: Logger): Response {
  const api = toApiError(err)
  if (!api) {
    logger.error('request failed', {
      method: c.req.method,
      path: c.req.path,
      error: err instanceof Error ? `${err.name}: ${err.message}` : String(err),
    })
    return c.json({ error: { code: 'internal', message: 'Internal error' } }, 500)
  }
  const headers: Record<string, string> = {}
  if (api.status === 401) headers['WWW-Authenticate'] = 'Bearer realm="vdp-edge"'
  return c.json(
    { error: { code: api.code, message: api.message, ...(api.path !== undefined ? { path: api.path } : {}) } },
    api.status as ContentfulStatusCode,
    headers,
  )
}
