/**
 * Request validation with the `shared/api` schema combinators, as hono validator middleware:
 * the same schemas guard MQTT payloads and HTTP bodies. Failures are `ApiError`s
 * (400 'validation' with the field path, 415, 413, 400 'malformed-json').
 *
 * @module
 */
import { validator } from 'hono/validator'
import { SchemaError, type Schema } from '../shared/api/schema.ts'
import { ApiError } from './errors.ts'

export const JSON_BODY_BYTES_MAX = 256 * 1024

const check = <T>(schema: Schema<T>, value: unknown, where: string): T => {
  try {
    return schema.parse(value)
  } catch (err) {
    if (err instanceof SchemaError) {
      throw new ApiError(400, 'validation', `${where}: ${err.message}`, err.path || undefined)
    }
    throw err
  }
}

/** Validates a JSON request body. */
export const jsonBody = <T>(schema: Schema<T>) =>
  validator('json', (value, c) => {
    const type = (c.req.header('Content-Type') ?? '').split(';')[0]!.trim().toLowerCase()
    if (!/^application\/([\w.-]+\+)?json$/.test(type)) {
      throw new ApiError(415, 'unsupported-media-type', `Cannot read body: Content-Type "${type}" is not application/json`)
    }
    return check(schema, value, 'Invalid body')
  })

/** Validates the query string (single values only). */
export const query = <T>(schema: Schema<T>) => validator('query', (value) => check(schema, value, 'Invalid query'))

/** Validates path parameters. */
export const params = <T>(schema: Schema<T>) => validator('param', (value) => check(schema, value, 'Invalid path'))

/** A decimal integer in a query or path string. */
export const intText = (min: number, max: number): Schema<number> => ({
  parse(v, path = '') {
    if (typeof v !== 'string' || !/^-?\d{1,16}$/.test(v)) throw new SchemaError(path, 'expected a decimal integer')
    const n = Number(v)
    if (n < min || n > max) throw new SchemaError(path, `${n} is outside ${min}..${max}`)
    return n
  },
})

/** Base64 (standard or url alphabet) to bytes of a bounded length. */
export const base64Bytes = (min: number, max: number): Schema<Uint8Array> => ({
  parse(v, path = '') {
    if (typeof v !== 'string' || !/^[A-Za-z0-9+/_-]+={0,2}$/.test(v)) throw new SchemaError(path, 'expected base64 text')
    const s = atob(v.replace(/-/g, '+').replace(/_/g, '/'))
    if (s.length < min || s.length > max) throw new SchemaError(path, `${s.length} bytes is outside ${min}..${max}`)
    const out = new Uint8Array(s.length)
    for (let i = 0; i < s.length; i++) out[i] = s.charCodeAt(i)
    return out
  },
})
