/** Builds an edge app over a given store with a fake clock, a capturing logger and publisher. */
import type { Command } from '../../../shared/api/commands.ts'
import type { SwitchPolicy } from '../../../shared/api/policy.ts'
import { createApp } from '../../../edge/app.ts'
import type { Logger } from '../../../edge/deps.ts'
import { createEdgeMetrics } from '../../../edge/metrics.ts'
import { createSecretBox } from '../../../edge/secrets.ts'
import type { FleetStore } from '../../../edge/store/fleet-store.ts'
import { T0 } from './events.ts'

export const READ_TOKEN = 'read-token-0123456789'
export const ADMIN_TOKEN = 'admin-token-0123456789'

export interface TestEdge {
  app: ReturnType<typeof createApp>
  store: FleetStore
  clock: { now: number; nowMs(): number }
  logs: { level: string; message: string; fields?: Record<string, unknown> }[]
  policies: SwitchPolicy[]
  commands: Command[]
  metrics: ReturnType<typeof createEdgeMetrics>
}

export function testEdge(store: FleetStore, options: { migrationGraceMs?: number } = {}): TestEdge {
  const clock = { now: T0 + 1000, nowMs: () => clock.now }
  const logs: TestEdge['logs'] = []
  const log = (level: string) => (message: string, fields?: Record<string, unknown>) =>
    logs.push({ level, message, ...(fields ? { fields } : {}) })
  const logger: Logger = { debug: log('debug'), info: log('info'), warn: log('warn'), error: log('error') }
  const policies: SwitchPolicy[] = []
  const commands: Command[] = []
  const metrics = createEdgeMetrics()
  const app = createApp({
    store,
    clock,
    logger,
    metrics,
    publish: {
      policy: async (p) => void policies.push(p),
      command: async (c) => void commands.push(c),
    },
    tokens: [
      { name: 'viewer', token: READ_TOKEN, scope: 'read' },
      { name: 'ops', token: ADMIN_TOKEN, scope: 'admin' },
    ],
    secrets: createSecretBox(new Uint8Array(32).fill(9)),
    ...(options.migrationGraceMs !== undefined ? { migrationGraceMs: options.migrationGraceMs } : {}),
  })
  return { app, store, clock, logs, policies, commands, metrics }
}

export const auth = (token: string) => ({ Authorization: `Bearer ${token}` })
export const admin = auth(ADMIN_TOKEN)
export const read = auth(READ_TOKEN)
export const json = (body: unknown, token = ADMIN_TOKEN) => ({
  headers: { ...auth(token), 'Content-Type': 'application/json' },
  body: JSON.stringify(body),
})
export const cbor = (bytes: Uint8Array, token = ADMIN_TOKEN) => ({
  method: 'POST',
  headers: { ...auth(token), 'Content-Type': 'application/cbor' },
  body: new Uint8Array(bytes).buffer as ArrayBuffer,
})
