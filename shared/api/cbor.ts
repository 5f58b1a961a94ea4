/**
 * The CBOR codec of every `shared/api` payload (events, status, policy, commands, replies):
 * cbor-x with plain maps on the wire (`useRecords: false`, no cbor-x record extension) and
 * byte strings untagged, so any CBOR library can consume them. Decoding is bounded by a size
 * limit checked before parsing, and every failure is an `ApiDecodeError` with a code.
 *
 * @module
 */
import { Encoder } from 'cbor-x'
import { describeValue, SchemaError, type Schema } from './schema.ts'

export type ApiDecodeErrorCode = 'malformed-cbor' | 'unsupported-version' | 'schema' | 'too-large'

/** A payload from a peer failed to decode; `code` tells why, `path` names the field for `schema`. */
export class ApiDecodeError extends Error {
  override readonly name = 'ApiDecodeError'
  constructor(
    readonly code: ApiDecodeErrorCode,
    message: string,
    readonly path = '',
  ) {
    super(message)
  }
}

const encoder = new Encoder({
  useRecords: false,
  mapsAsObjects: true,
  tagUint8Array: false,
  variableMapSize: true,
  pack: false,
})

/** Encodes a validated payload. Fields set to `undefined` must not be present. */
export function encodeCbor(value: unknown): Uint8Array {
  const out = encoder.encode(value)
  return new Uint8Array(out.buffer, out.byteOffset, out.byteLength)
}

/** Decodes without validation; throws `ApiDecodeError` ('too-large', 'malformed-cbor'). */
export function decodeCbor(bytes: Uint8Array, bytesMax: number): unknown {
  if (bytes.byteLength > bytesMax) {
    throw new ApiDecodeError('too-large', `Cannot decode payload: ${bytes.byteLength} bytes exceed ${bytesMax}`)
  }
  if (bytes.byteLength === 0) throw new ApiDecodeError('malformed-cbor', 'Cannot decode payload: it is empty')
  try {
    return encoder.decode(bytes)
  } catch (err) {
    throw new ApiDecodeError(
      'malformed-cbor',
      `Cannot decode payload: ${err instanceof Error ? err.message : 'invalid CBOR'}`,
    )
  }
}

/**
 * Checks the schema version field `v`, then the schema.
 * @example
 * ```ts
 * const event = decodeVersioned(bytes, EVENT_BYTES_MAX, 1, eventSchema)
 * ```
 */
export function validateVersioned<T>(value: unknown, version: number, schema: Schema<T>): T {
  if (typeof value !== 'object' || value === null || Array.isArray(value) || value instanceof Uint8Array) {
    throw new ApiDecodeError('schema', 'Cannot accept payload: expected a map')
  }
  const v = (value as Record<string, unknown>).v
  if (v !== version) {
    throw new ApiDecodeError('unsupported-version', `Cannot accept payload: schema version ${describeValue(v)} is not ${version}`, 'v')
  }
  try {
    return schema.parse(value)
  } catch (err) {
    if (err instanceof SchemaError) throw new ApiDecodeError('schema', err.message, err.path)
    throw err
  }
}

export function decodeVersioned<T>(bytes: Uint8Array, bytesMax: number, version: number, schema: Schema<T>): T {
  return validateVersioned(decodeCbor(bytes, bytesMax), version, schema)
}
