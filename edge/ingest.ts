/**
 * Event ingestion, the one entry point for both paths: the MQTT subscriber
 * (`edge/mqtt/**`) and `POST /api/v1/ingest/events`. Decoding errors are counted by code and
 * rethrown; applied batches update the counters and their cleanup commands are returned for
 * the caller to publish.
 *
 * @example
 * ```ts
 * // in an MQTT message handler
 * const { applied, duplicates, commands } = ingestEventBytes(store, payload, clock, { metrics })
 * for (const c of commands) await publish.command(c)
 * ```
 *
 * @module
 */
import type { Command } from '../shared/api/commands.ts'
import { decodeCommandReply } from '../shared/api/commands.ts'
import { ApiDecodeError } from '../shared/api/cbor.ts'
import { decodeEventBatch, type FleetEvent } from '../shared/api/events.ts'
import { decodeSwitchStatus, type SwitchStatus } from '../shared/api/topics.ts'
import type { SwitchId } from '../shared/ids.ts'
import { DEFAULT_MIGRATION_GRACE_MS, type Clock } from './deps.ts'
import { bump, type EdgeMetrics } from './metrics.ts'
import type { FleetStore, IngestResult } from './store/fleet-store.ts'

export interface IngestContext {
  metrics?: EdgeMetrics
  migrationGraceMs?: number
  /** Cleanup commands carry `expiresAt = issuedAt + commandTtlMs` (edge/command-dispatcher.ts). */
  commandTtlMs?: number
}

/** Applies validated events atomically; returns counts and the cleanup commands now due. */
export function ingestEvents(
  store: FleetStore,
  events: readonly FleetEvent[],
  clock: Clock,
  ctx: IngestContext = {},
): IngestResult {
  const result = store.applyEvents(events, {
    nowMs: clock.nowMs(),
    migrationGraceMs: ctx.migrationGraceMs ?? DEFAULT_MIGRATION_GRACE_MS,
    ...(ctx.commandTtlMs !== undefined ? { commandTtlMs: ctx.commandTtlMs } : {}),
  })
  const m = ctx.metrics
  if (m) {
    m.eventsApplied += result.applied
    m.eventsDuplicate += result.duplicates
    m.eventsStale += result.stale
    m.migrationsStarted += result.migrations.length
    for (const c of result.commands) bump(m.commandsIssued, `${c.kind}|migration-cleanup`)
  }
  return result
}

/** Counts a rejected payload by its `ApiDecodeError` code. */
export function countRejected(metrics: EdgeMetrics | undefined, err: unknown): void {
  if (metrics) bump(metrics.eventsRejected, err instanceof ApiDecodeError ? err.code : 'internal')
}

/**
 * Decodes one CBOR payload (an event or an array of events) and ingests it. Throws
 * `ApiDecodeError` (counted) when the payload is bad: nothing of it is applied. When
 * `expectedSwitchId` is given (the topic's switch), events of another switch are refused
 * (a switch may speak only for itself).
 */
export function ingestEventBytes(
  store: FleetStore,
  bytes: Uint8Array,
  clock: Clock,
  ctx: IngestContext & { expectedSwitchId?: SwitchId } = {},
): IngestResult {
  let events: FleetEvent[]
  try {
    events = decodeEventBatch(bytes)
    const foreign = ctx.expectedSwitchId !== undefined ? events.findIndex((e) => e.switchId !== ctx.expectedSwitchId) : -1
    if (foreign >= 0) {
      throw new ApiDecodeError('schema', `Cannot accept event ${foreign}: switchId is not the topic's switch`, `[${foreign}].switchId`)
    }
  } catch (err) {
    countRejected(ctx.metrics, err)
    throw err
  }
  return ingestEvents(store, events, clock, ctx)
}

/** Applies a retained status message; throws `ApiDecodeError` (counted). */
export function ingestStatusBytes(store: FleetStore, bytes: Uint8Array, clock: Clock, ctx: IngestContext = {}): SwitchStatus {
  let status: SwitchStatus
  try {
    status = decodeSwitchStatus(bytes)
  } catch (err) {
    countRejected(ctx.metrics, err)
    throw err
  }
  store.setSwitchStatus(status, clock.nowMs())
  return status
}

/** Records a command reply; false when no such command was sent to that switch. */
export function ingestReplyBytes(store: FleetStore, bytes: Uint8Array, ctx: IngestContext = {}): boolean {
  try {
    return store.recordReply(decodeCommandReply(bytes))
  } catch (err) {
    countRejected(ctx.metrics, err)
    throw err
  }
}

/** Issues cleanup commands due now without new events; call it from a timer (e.g. every 5 s). */
export function sweepMigrations(store: FleetStore, clock: Clock, ctx: IngestContext = {}): Command[] {
  const commands = store.sweep({
    nowMs: clock.nowMs(),
    migrationGraceMs: ctx.migrationGraceMs ?? DEFAULT_MIGRATION_GRACE_MS,
    ...(ctx.commandTtlMs !== undefined ? { commandTtlMs: ctx.commandTtlMs } : {}),
  })
  if (ctx.metrics) for (const c of commands) bump(ctx.metrics.commandsIssued, `${c.kind}|migration-cleanup`)
  return commands
}
