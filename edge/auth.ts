/**
 * Bearer-token middleware with `read` and `admin` scopes (admin implies read). Tokens come
 * from deps; comparison hashes both sides with SHA-256 and compares the digests in constant
 * time, so neither the content nor the length of a configured token leaks through timing.
 * The token may also come as `?token=` for the read-only web page and EventSource clients.
 *
 * @module
 */
import type { MiddlewareHandler } from 'hono'
import type { TokenConfig, TokenScope } from './deps.ts'
import { ApiError } from './errors.ts'

const digest = async (text: string): Promise<Uint8Array> =>
  new Uint8Array(await crypto.subtle.digest('SHA-256', new TextEncoder().encode(text)))

function equalConstantTime(a: Uint8Array, b: Uint8Array): boolean {
  let diff = a.length ^ b.length
  for (let i = 0; i < a.length && i < b.length; i++) diff |= a[i]! ^ b[i]!
  return diff === 0
}

export interface TokenChecker {
  /** The matching token's config, or undefined. Checks every configured token. */
  check(presented: string): Promise<TokenConfig | undefined>
}

export function createTokenChecker(tokens: readonly TokenConfig[]): TokenChecker {
  for (const t of tokens) {
    if (t.token.length < 16) throw new Error(`Cannot use token "${t.name}": it is shorter than 16 characters`)
  }
  const hashed = Promise.all(tokens.map(async (t) => ({ config: t, hash: await digest(t.token) })))
  return {
    async check(presented) {
      const h = await digest(presented)
      let found: TokenConfig | undefined
      for (const t of await hashed) if (equalConstantTime(h, t.hash) && !found) found = t.config
      return found
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
      const m = /^Bearer\s+(\S+)\s*$/i.exec(header)
      if (!m) throw new ApiError(401, 'unauthorized', 'Cannot authenticate: Authorization is not "Bearer <token>"')
      presented = m[1]
    } else {
      presented = c.req.query('token')
    }
    if (!presented) throw new ApiError(401, 'unauthorized', 'Cannot authenticate: no bearer token')
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
