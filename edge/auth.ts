/**
 * Bearer-token middleware with `read` and `admin` scopes (admin implies read). Tokens come
 * from deps; the comparison takes a time that depends only on the presented token, so neither
 * the content nor the length of a configured token leaks through timing.
 * The token may also come as `?token=` for the read-only web page and EventSource clients.
 * Tokens issued through `/api/v1/tokens` are stored as SHA-256 hashes and found by hash.
 *
 * @module
 */
import type { MiddlewareHandler } from 'hono'
import type { TokenConfig, TokenScope } from './deps.ts'
import { ApiError } from './errors.ts'
import type { FleetStore } from './store/fleet-store.ts'

/** SHA-256 of a token, lowercase hex: how tokens issued through the API are stored. */
export async function tokenHash(token: string): Promise<string> {
  const digest = new Uint8Array(await crypto.subtle.digest('SHA-256', new TextEncoder().encode(token)))
  return Array.from(digest, (b) => b.toString(16).padStart(2, '0')).join('')
}

/**
 * Compares a presented token with a configured one. The running time depends only on the
 * length of the presented token, never on the content or length of the configured one.
 */
function equalConstantTime(presented: string, expected: string): boolean {
  let diff = presented.length ^ expected.length
  for (let i = 0; i < presented.length; i++) diff |= presented.charCodeAt(i) ^ expected.charCodeAt(i % expected.length)
  return diff === 0
}

export interface TokenChecker {
  /**
   * The matching token, or undefined: the configured tokens first (each compared, no early
   * exit), then the tokens issued through the API, looked up by the presented token's hash.
   */
  check(presented: string): Promise<{ name: string; scope: TokenScope } | undefined>
}

/** The configured token matching `presented`: each one compared, no early exit. */
export function findConfiguredToken(tokens: readonly TokenConfig[], presented: string): TokenConfig | undefined {
  let found: TokenConfig | undefined
  for (const t of tokens) if (equalConstantTime(presented, t.token) && !found) found = t
  return found
}

/** `Authorization: Bearer <token>`: the token is group 1. */
export const BEARER_HEADER = /^Bearer\s+(\S+)\s*$/i
/** Longer presented tokens are refused before any comparison. */
export const TOKEN_LENGTH_MAX = 512

export function createTokenChecker(tokens: readonly TokenConfig[], store?: FleetStore): TokenChecker {
  for (const t of tokens) {
    if (t.token.length < 16) throw new Error(`Cannot use token "${t.name}": it is shorter than 16 characters`)
  }
  return {
    async check(presented) {
      const found = findConfiguredToken(tokens, presented)
      if (found || !store) return found
      const issued = store.tokenByHash(await tokenHash(presented))
      return issued && { name: issued.name, scope: issued.scope }
    },
  }
}

export type AuthVariables = { tokenName: string; tokenScope: TokenScope }

/** Requires a token of `scope` (401 without a valid token, 403 with a read token on admin routes). */
export function requireScope(checker: TokenChecker, scope: TokenScope): MiddlewareHandler<{ Variables: AuthVariables }> {
  return async (c, next) => {
    const header = c.req.header('Authorization')
    let presented: string | undefined
    if (header !== undefined) {
      const m = BEARER_HEADER.exec(header)
      if (!m) throw new ApiError(401, 'unauthorized', 'Cannot authenticate: Authorization is not "Bearer <token>"')
      presented = m[1]
    } else {
      presented = c.req.query('token')
    }
    if (!presented) throw new ApiError(401, 'unauthorized', 'Cannot authenticate: no bearer token')
    if (presented.length > TOKEN_LENGTH_MAX) throw new ApiError(401, 'unauthorized', 'Cannot authenticate: token too long')
    const t = await checker.check(presented)
    if (!t) throw new ApiError(401, 'unauthorized', 'Cannot authenticate: unknown token')
    if (scope === 'admin' && t.scope !== 'admin') {
      throw new ApiError(403, 'forbidden', `Cannot allow token "${t.name}": this needs the admin scope`)
    }
    c.set('tokenName', t.name)
    c.set('tokenScope', t.scope)
    await next()
  }
}
