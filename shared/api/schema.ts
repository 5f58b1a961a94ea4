/**
 * A minimal schema combinator for the wire schemas of `shared/api` (events, policy, commands)
 * and the edge's HTTP bodies. A schema both validates an `unknown` (decoded CBOR or parsed
 * JSON) into a plain typed value and describes itself, so tests can compare the field names
 * of a record schema with the CDDL in `docs/events.cddl`.
 *
 * Rules: validation builds a fresh value and copies only the declared fields (unknown fields
 * of a record are ignored, never copied: forward compatible within a schema version, and no
 * `__proto__` from a peer reaches our objects). Optional fields that are absent stay absent
 * (`exactOptionalPropertyTypes`). Errors carry the path of the offending field.
 *
 * @module
 */

/** A value failed its schema; `path` names the field, e.g. `macs[2]`. */
export class SchemaError extends Error {
  override readonly name = 'SchemaError'
  constructor(
    readonly path: string,
    readonly reason: string,
  ) {
    super(`Cannot accept ${path || 'value'}: ${reason}`)
  }
}

export interface Schema<T> {
  /** Returns the validated value or throws `SchemaError`. */
  parse(input: unknown, path?: string): T
  /** For records: field name to whether it is required. */
  readonly fields?: Readonly<Record<string, boolean>>
}

export type Infer<S> = S extends Schema<infer T> ? T : never

const describe = (v: unknown): string =>
  v === null ? 'null' : Array.isArray(v) ? 'array' : v instanceof Uint8Array ? 'bytes' : typeof v

/**
 * A short text for a value from the wire, for error messages: primitives as themselves, the
 * rest by kind. Never throws (a decoded map may carry `toString`/`valueOf` keys that are not
 * functions, and `JSON.stringify` throws on a BigInt).
 */
export function describeValue(v: unknown): string {
  if (typeof v === 'string') return JSON.stringify(v.slice(0, 40))
  if (typeof v === 'number' || typeof v === 'boolean' || typeof v === 'bigint') return String(v)
  return describe(v)
}

const fail = (path: string, reason: string): never => {
  throw new SchemaError(path, reason)
}

export function integer(min: number, max: number): Schema<number> {
  return {
    parse(v, path = '') {
      if (typeof v !== 'number' || !Number.isInteger(v)) return fail(path, `expected an integer, got ${describe(v)}`)
      if (v < min || v > max) return fail(path, `${v} is outside ${min}..${max}`)
      return v
    },
  }
}

export function text(options: { min?: number; max: number; pattern?: RegExp }): Schema<string> {
  const min = options.min ?? 0
  return {
    parse(v, path = '') {
      if (typeof v !== 'string') return fail(path, `expected a string, got ${describe(v)}`)
      if (v.length < min || v.length > options.max) {
        return fail(path, `length ${v.length} is outside ${min}..${options.max}`)
      }
      if (options.pattern && !options.pattern.test(v)) return fail(path, `"${v.slice(0, 80)}" has the wrong format`)
      return v
    },
  }
}

/** A string normalised or checked by `convert`, which throws on bad input (e.g. `parseMac`). */
export function textAs<T extends string>(max: number, convert: (s: string) => T): Schema<T> {
  return {
    parse(v, path = '') {
      if (typeof v !== 'string') return fail(path, `expected a string, got ${describe(v)}`)
      if (v.length > max) return fail(path, `length ${v.length} exceeds ${max}`)
      try {
        return convert(v)
      } catch (err) {
        return fail(path, err instanceof Error ? err.message : 'invalid')
      }
    },
  }
}

export function bytes(min: number, max: number): Schema<Uint8Array> {
  return {
    parse(v, path = '') {
      if (!(v instanceof Uint8Array)) return fail(path, `expected bytes, got ${describe(v)}`)
      if (v.length < min || v.length > max) return fail(path, `length ${v.length} is outside ${min}..${max}`)
      return new Uint8Array(v)
    },
  }
}

export const boolean: Schema<boolean> = {
  parse(v, path = '') {
    if (typeof v !== 'boolean') return fail(path, `expected a boolean, got ${describe(v)}`)
    return v
  },
}

export function literal<const T extends string | number>(...values: T[]): Schema<T> {
  return {
    parse(v, path = '') {
      if (!values.includes(v as T)) return fail(path, `expected one of ${values.join(', ')}, got ${describeValue(v)}`)
      return v as T
    },
  }
}

export function array<T>(item: Schema<T>, maxItems: number, minItems = 0): Schema<T[]> {
  return {
    parse(v, path = '') {
      if (!Array.isArray(v)) return fail(path, `expected an array, got ${describe(v)}`)
      if (v.length < minItems || v.length > maxItems) {
        return fail(path, `${v.length} items is outside ${minItems}..${maxItems}`)
      }
      return v.map((x, i) => item.parse(x, `${path}[${i}]`))
    },
  }
}

/** Marks a record field optional. */
export interface Optional<T> {
  readonly optional: Schema<T>
}
export const optional = <T>(schema: Schema<T>): Optional<T> => ({ optional: schema })

type Shape = Record<string, Schema<unknown> | Optional<unknown>>
type RequiredKeys<S extends Shape> = { [K in keyof S]: S[K] extends Schema<unknown> ? K : never }[keyof S]
type OptionalKeys<S extends Shape> = Exclude<keyof S, RequiredKeys<S>>
export type RecordOf<S extends Shape> = {
  -readonly [K in RequiredKeys<S>]: S[K] extends Schema<infer T> ? T : never
} & {
  -readonly [K in OptionalKeys<S>]?: S[K] extends Optional<infer T> ? T : never
}

const isPlainObject = (v: unknown): v is Record<string, unknown> =>
  typeof v === 'object' && v !== null && !Array.isArray(v) && !(v instanceof Uint8Array) && !(v instanceof Map)

export function record<S extends Shape>(shape: S): Schema<RecordOf<S>> {
  const fields: Record<string, boolean> = {}
  for (const [k, s] of Object.entries(shape)) fields[k] = !('optional' in s)
  return {
    fields,
    parse(v, path = '') {
      if (!isPlainObject(v)) return fail(path, `expected a map, got ${describe(v)}`)
      const out: Record<string, unknown> = {}
      for (const [k, s] of Object.entries(shape)) {
        const fieldPath = path ? `${path}.${k}` : k
        const has = Object.prototype.hasOwnProperty.call(v, k) && v[k] !== undefined && v[k] !== null
        if ('optional' in s) {
          if (has) out[k] = s.optional.parse(v[k], fieldPath)
        } else {
          if (!has) return fail(fieldPath, 'is required')
          out[k] = s.parse(v[k], fieldPath)
        }
      }
      return out as RecordOf<S>
    },
  }
}

/**
 * A union of records told apart by a string tag field (`kind`). Each variant's field list is
 * reachable through `variants` for documentation tests.
 */
export function tagged<K extends string, V extends Record<string, Schema<object>>>(
  tag: K,
  variants: V,
): Schema<{ [N in keyof V]: Infer<V[N]> }[keyof V]> & { readonly variants: V } {
  return {
    variants,
    parse(v, path = '') {
      if (!isPlainObject(v)) return fail(path, `expected a map, got ${describe(v)}`)
      const t = v[tag]
      if (typeof t !== 'string' || !Object.prototype.hasOwnProperty.call(variants, t)) {
        return fail(path ? `${path}.${tag}` : tag, `unknown ${tag} ${describeValue(t)}`)
      }
      return variants[t]!.parse(v, path) as { [N in keyof V]: Infer<V[N]> }[keyof V]
    },
  }
}

/** Refines an already validated value; `check` returns an error reason or undefined. */
export function refine<T>(schema: Schema<T>, check: (value: T) => string | undefined): Schema<T> {
  const out: Schema<T> = {
    parse(v, path = '') {
      const value = schema.parse(v, path)
      const reason = check(value)
      if (reason !== undefined) fail(path, reason)
      return value
    },
  }
  return schema.fields ? { ...out, fields: schema.fields } : out
}
