/** What every route factory receives: the deps (metrics filled in) and the token checker. */
import type { Hono } from 'hono'
import type { AuthVariables, TokenChecker } from '../auth.ts'
import type { EdgeDeps } from '../deps.ts'
import type { EdgeMetrics } from '../metrics.ts'

export type AppEnv = { Variables: AuthVariables }
export type RouteDeps = EdgeDeps & { metrics: EdgeMetrics; migrationGraceMs: number; tokenChecker: TokenChecker }
export type Routes = Hono<AppEnv>
