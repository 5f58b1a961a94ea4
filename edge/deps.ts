/**
 * What the edge app is built from (`createApp(deps)`): no module-level state, so the same
 * code runs on Node with embedded defaults and behind any runtime that speaks Web
 * `Request`/`Response`.
 *
 * @module
 */
import type { Command } from '../shared/api/commands.ts'
import type { SwitchPolicy } from '../shared/api/policy.ts'
import type { EdgeMetrics } from './metrics.ts'
import type { SecretBox } from './secrets.ts'
import type { FleetStore } from './store/fleet-store.ts'

export interface Clock {
  /** Wall clock, ms since the epoch. */
  nowMs(): number
}

export const systemClock: Clock = { nowMs: () => Date.now() }

/** Structured logger. Never pass secrets (host keys, tokens, policies) as fields. */
export interface Logger {
  debug(message: string, fields?: Record<string, unknown>): void
  info(message: string, fields?: Record<string, unknown>): void
  warn(message: string, fields?: Record<string, unknown>): void
  error(message: string, fields?: Record<string, unknown>): void
}

export const silentLogger: Logger = { debug() {}, info() {}, warn() {}, error() {} }

/** Sends to switches; the MQTT side maps these to topics (see `topicPublisher`). */
export interface Publisher {
  /** Retained on `<prefix>/switch/<id>/policy`. */
  policy(policy: SwitchPolicy): Promise<void>
  /** `<prefix>/switch/<id>/commands`, QoS 1. */
  command(command: Command): Promise<void>
}

export type TokenScope = 'read' | 'admin'

export interface TokenConfig {
  /** Name shown in logs instead of the token. */
  name: string
  /** The bearer token itself, at least 16 characters. */
  token: string
  /** 'admin' implies 'read'. */
  scope: TokenScope
}

export interface EdgeDeps {
  store: FleetStore
  clock: Clock
  logger: Logger
  publish: Publisher
  tokens: readonly TokenConfig[]
  /** Seals host keys at rest. */
  secrets: SecretBox
  /** Shared with the MQTT ingest so /metrics counts both paths; created when absent. */
  metrics?: EdgeMetrics
  /** Default 30 000 ms. */
  migrationGraceMs?: number
  /** Commands issued through the API expire this long after issue; default an hour. */
  commandTtlMs?: number
}

export const DEFAULT_MIGRATION_GRACE_MS = 30_000
