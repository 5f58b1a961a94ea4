/**
 * Fleet state as pure reducers: `(record, event) -> record`. No I/O, no clock: time comes in
 * as arguments. Both stores load the records an event touches, call these functions and
 * write the results back in one transaction, so memory and SQLite behave the same.
 *
 * Rules:
 * 1. Idempotence is the store's job: it drops an event whose `(switchId, bootId, seq)` it has
 *    already applied. The reducers are idempotent anyway: an event not newer than what a
 *    place holds changes nothing.
 * 2. Order tolerance: a VSI's state at one place (switch, port, station) is the newest event
 *    there by switch order `(bootTime, bootId, seq)`: a last-writer-wins register, so a late
 *    older event never undoes a newer one. A place holds the VSI while its state is
 *    associated or pre-associated and its boot is not older than the switch's latest
 *    `agent-started` (a restarted agent re-announces what it still holds).
 * 3. Where a VSI is now (`vsiView`) is derived from its places: associated wins over
 *    pre-associated, then the newest event time, then the place key. It depends only on the
 *    set of events applied, not on their order.
 * 4. Migrations are reconstructed as events arrive (best effort under reordering): a VSI
 *    that starts being held at a new place while another place still holds it is one move;
 *    a move without overlap is recorded when a migration indicator or id says so. The move
 *    completes when the source lets go and aborts when the destination does. When the
 *    source still holds the VSI `migrationGraceMs` after the destination associated,
 *    `sweepVsi` issues one `disconnect-vsi` command to the source switch.
 *
 * @module
 */
import type { Command } from '../../shared/api/commands.ts'
import { compareSwitchOrder, type FleetEvent, type VsiEvent } from '../../shared/api/events.ts'
import type { SwitchId } from '../../shared/ids.ts'
import type {
  MigrationRecord,
  PlaceKey,
  PlaceState,
  SwitchBoot,
  SwitchRecord,
  SwitchView,
  VsiPlace,
  VsiRecord,
  VsiView,
} from './model.ts'

export interface ReducerLimits {
  /** Places kept per VSI; the oldest places that no longer hold the VSI go first. */
  placesMax: number
  /** Migrations kept per VSI; the oldest go first. */
  migrationsMax: number
}

export const defaultReducerLimits: Required<ReducerLimits> = { placesMax: 32, migrationsMax: 32 }

/** Latest boot per switch; undefined when the switch never reported `agent-started`. */
export type BootOf = (switchId: SwitchId) => SwitchBoot | undefined

const STATE_BY_KIND: Record<VsiEvent['kind'], PlaceState> = {
  'vsi-associated': 'associated',
  'vsi-pre-associated': 'pre-associated',
  'vsi-deactivated': 'pre-associated',
  'vsi-de-associated': 'de-associated',
  'vsi-rejected': 'rejected',
  'vsi-timeout': 'timeout',
}

const compareBoot = (a: { bootTime: number; bootId: string }, b: { bootTime: number; bootId: string }): number =>
  a.bootTime !== b.bootTime ? a.bootTime - b.bootTime : a.bootId < b.bootId ? -1 : a.bootId > b.bootId ? 1 : 0

export const samePlace = (a: PlaceKey, b: PlaceKey): boolean =>
  a.switchId === b.switchId && a.port === b.port && a.stationMac === b.stationMac

export const placeKeyOf = (p: PlaceKey): PlaceKey => ({ switchId: p.switchId, port: p.port, stationMac: p.stationMac })

const placeKeyText = (p: PlaceKey): string => `${p.switchId}\u0000${p.port}\u0000${p.stationMac}`

/** Whether `place` holds its VSI now (rule 2). */
export function isHolding(place: VsiPlace, bootOf: BootOf): boolean {
  if (place.state !== 'associated' && place.state !== 'pre-associated') return false
  const boot = bootOf(place.switchId)
  return boot === undefined || compareBoot(place, boot) >= 0
}

/** Rule 3: associated over pre-associated, then newest, then the place key. Negative: `a` wins. */
function comparePreference(a: VsiPlace, b: VsiPlace): number {
  const rank = (p: VsiPlace) => (p.state === 'associated' ? 0 : 1)
  if (rank(a) !== rank(b)) return rank(a) - rank(b)
  if (a.time !== b.time) return b.time - a.time
  const ka = placeKeyText(a)
  const kb = placeKeyText(b)
  return ka < kb ? -1 : ka > kb ? 1 : 0
}

/** The newest place by event time, for a VSI no place holds. */
function latestPlace(places: readonly VsiPlace[]): VsiPlace | undefined {
  let best: VsiPlace | undefined
  for (const p of places) {
    if (!best || p.time > best.time || (p.time === best.time && placeKeyText(p) < placeKeyText(best))) best = p
  }
  return best
}

/**
 * Where the VSI is now.
 * @example
 * ```ts
 * vsiView(record, (id) => switches.get(id)?.boot).current?.port
 * ```
 */
export function vsiView(record: VsiRecord, bootOf: BootOf): VsiView {
  const holding = record.places.filter((p) => isHolding(p, bootOf)).sort(comparePreference)
  const current = holding[0] ?? latestPlace(record.places)
  const state = holding[0]?.state === 'associated' ? 'associated' : holding[0] ? 'pre-associated' : 'gone'
  return {
    vsiId: record.vsiId,
    state,
    ...(current ? { current } : {}),
    holding,
    history: record.places,
    migrations: record.migrations,
  }
}

function placeFromEvent(e: VsiEvent, since: number): VsiPlace {
  return {
    switchId: e.switchId,
    port: e.port,
    stationMac: e.stationMac,
    bootTime: e.bootTime,
    bootId: e.bootId,
    seq: e.seq,
    state: STATE_BY_KIND[e.kind],
    lastKind: e.kind,
    time: e.time,
    since,
    managerId: e.managerId,
    typeId: e.typeId,
    typeVersion: e.typeVersion,
    vsiIdFormat: e.vsiIdFormat,
    ...(e.vni !== undefined ? { vni: e.vni } : {}),
    ...(e.groupId !== undefined ? { groupId: e.groupId } : {}),
    vid: e.vid,
    macs: e.macs,
    ipv4: e.ipv4 ?? [],
    ipv6: e.ipv6 ?? [],
    migration: e.migration,
    ...(e.migrationId !== undefined ? { migrationId: e.migrationId } : {}),
    reason: e.reason,
  }
}

export const emptyVsiRecord = (e: VsiEvent): VsiRecord => ({ vsiId: e.vsiId, places: [], migrations: [], migrationCount: 0 })

const keepsPriorState = (e: VsiEvent): boolean => e.kind === 'vsi-rejected' && e.keep

export interface VsiApplyResult {
  record: VsiRecord
  /** False when the event was older than what its place holds (stale) or changed nothing. */
  changed: boolean
  /** Migrations that started with this event. */
  started: MigrationRecord[]
}

/**
 * Applies one VSI event to the VSI's record (rules 2 and 4). Does not mutate its input.
 */
export function applyVsiEvent(
  prior: VsiRecord | undefined,
  e: VsiEvent,
  bootOf: BootOf,
  limits: ReducerLimits = defaultReducerLimits,
): VsiApplyResult {
  const record: VsiRecord = prior
    ? { ...prior, places: [...prior.places], migrations: prior.migrations.map((m) => ({ ...m })) }
    : emptyVsiRecord(e)
  const index = record.places.findIndex((p) => samePlace(p, e))
  const old = index >= 0 ? record.places[index] : undefined
  if (old && compareSwitchOrder(e, old) <= 0) return { record: prior ?? record, changed: false, started: [] }

  // A rejection with Keep changes no state (802.1Q 41.2.4): only the audit log records it. Not
  // letting it advance the register keeps the result independent of arrival order.
  if (keepsPriorState(e)) return { record: prior ?? record, changed: false, started: [] }
  const heldBefore = old !== undefined && isHolding(old, bootOf)
  const others = record.places.filter((p) => !samePlace(p, e) && isHolding(p, bootOf))
  const next = placeFromEvent(e, heldBefore && old ? old.since : e.time)
  if (index >= 0) record.places[index] = next
  else record.places.push(next)

  const started: MigrationRecord[] = []
  const holdsNow = isHolding(next, bootOf)
  if (holdsNow && !heldBefore) started.push(...startMigrations(record, next, others))
  if (holdsNow && next.state === 'associated') {
    for (const m of record.migrations) {
      if (m.state === 'in-progress' && m.associatedAt === undefined && samePlace(m.to, next)) m.associatedAt = e.time
    }
  }
  settleMigrations(record, bootOf, e.time)
  trim(record, bootOf, limits)
  return { record, changed: true, started }
}

function startMigrations(record: VsiRecord, dest: VsiPlace, sources: VsiPlace[]): MigrationRecord[] {
  const started: MigrationRecord[] = []
  let candidates = sources
  if (candidates.length === 0 && (dest.migration === 'to' || dest.migrationId !== undefined)) {
    // No overlap, but the station says this is a migration: link it to the last place left.
    const previous = latestPlace(record.places.filter((p) => !samePlace(p, dest)))
    candidates = previous && previous.time <= dest.time ? [previous] : []
  }
  for (const other of candidates) {
    // Events of different switches arrive in any order: the older place is the source.
    const [from, to] = other.time <= dest.time ? [other, dest] : [dest, other]
    const overlapped = sources.includes(other)
    if (record.migrations.some((m) => m.state === 'in-progress' && samePlace(m.from, from) && samePlace(m.to, to))) continue
    const ordinal = record.migrationCount + 1
    record.migrationCount = ordinal
    const fromId = from.migration === 'from' ? from.migrationId : undefined
    const m: MigrationRecord = {
      migrationId: to.migrationId ?? fromId ?? `${record.vsiId}-${ordinal}`,
      ordinal,
      from: placeKeyOf(from),
      to: placeKeyOf(to),
      startedAt: to.since,
      state: overlapped ? 'in-progress' : 'completed',
      overlapped,
      indicated: to.migration === 'to' || to.migrationId !== undefined || from.migration === 'from',
      ...(to.state === 'associated' ? { associatedAt: to === dest ? dest.time : to.since } : {}),
      ...(overlapped ? {} : { endedAt: dest.time }),
    }
    record.migrations.push(m)
    started.push(m)
  }
  return started
}

/** Completes migrations whose source let go and aborts those whose destination did. */
function settleMigrations(record: VsiRecord, bootOf: BootOf, time: number): void {
  const holds = (k: PlaceKey): boolean => {
    const p = record.places.find((x) => samePlace(x, k))
    return p !== undefined && isHolding(p, bootOf)
  }
  for (const m of record.migrations) {
    if (m.state !== 'in-progress') continue
    if (!holds(m.to)) {
      m.state = 'aborted'
      m.endedAt = time
    } else if (!holds(m.from)) {
      m.state = 'completed'
      m.endedAt = time
    }
  }
}

function trim(record: VsiRecord, bootOf: BootOf, limits: ReducerLimits): void {
  while (record.places.length > limits.placesMax) {
    const dropIndex = record.places.findIndex((p) => !isHolding(p, bootOf))
    record.places.splice(dropIndex >= 0 ? dropIndex : 0, 1)
  }
  if (record.migrations.length > limits.migrationsMax) record.migrations.splice(0, record.migrations.length - limits.migrationsMax)
}

/**
 * Re-evaluates a VSI after a boot change of one of its switches (its places of older boots
 * stopped holding): settles migrations. Returns the record unchanged when nothing moved.
 */
export function refreshVsi(record: VsiRecord, bootOf: BootOf, time: number): VsiRecord {
  const copy: VsiRecord = { ...record, migrations: record.migrations.map((m) => ({ ...m })) }
  settleMigrations(copy, bootOf, time)
  return copy
}

/** When the next cleanup command for this VSI is due (ms), or undefined when none will be. */
export function cleanupDueAt(record: VsiRecord, graceMs: number): number | undefined {
  let due: number | undefined
  for (const m of record.migrations) {
    if (m.state !== 'in-progress' || m.associatedAt === undefined || m.cleanupCommandId !== undefined) continue
    const at = m.associatedAt + graceMs
    if (due === undefined || at < due) due = at
  }
  return due
}

/**
 * Issues the cleanup commands that are due at `nowMs` (rule 4): one `disconnect-vsi` per
 * migration whose source still holds the VSI `graceMs` after the destination associated.
 */
export function sweepVsi(
  record: VsiRecord,
  bootOf: BootOf,
  nowMs: number,
  graceMs: number,
): { record: VsiRecord; commands: Command[] } {
  const commands: Command[] = []
  const copy: VsiRecord = { ...record, migrations: record.migrations.map((m) => ({ ...m })) }
  settleMigrations(copy, bootOf, nowMs)
  for (const m of copy.migrations) {
    if (m.state !== 'in-progress' || m.associatedAt === undefined || m.cleanupCommandId !== undefined) continue
    if (nowMs < m.associatedAt + graceMs) continue
    const commandId = `cleanup-${record.vsiId}-${m.ordinal}`
    m.cleanupCommandId = commandId
    commands.push({
      v: 1,
      kind: 'disconnect-vsi',
      commandId,
      switchId: m.from.switchId,
      issuedAt: nowMs,
      reason: `migration ${m.migrationId} to ${m.to.switchId}/${m.to.port}: source still holds the VSI after ${graceMs} ms`,
      vsiId: record.vsiId,
      port: m.from.port,
      mode: 'de-associate',
    })
  }
  return { record: copy, commands }
}

// ---- switches ----

export const emptySwitchRecord = (switchId: SwitchId): SwitchRecord => ({
  switchId,
  status: 'unknown',
  lastEventTime: 0,
  eventCount: 0,
  peers: {},
  vlans: {},
})

export interface SwitchApplyResult {
  record: SwitchRecord
  /** The event announced a boot newer than the known one: places of older boots stop holding. */
  bootChanged: boolean
}

/**
 * Applies any event to its switch's record: counters always; boots, peers and VLANs as
 * last-writer-wins registers by switch order.
 */
export function applySwitchEvent(prior: SwitchRecord | undefined, e: FleetEvent): SwitchApplyResult {
  const r: SwitchRecord = prior
    ? { ...prior, peers: { ...prior.peers }, vlans: { ...prior.vlans } }
    : emptySwitchRecord(e.switchId)
  r.lastEventTime = Math.max(r.lastEventTime, e.time)
  r.eventCount += 1
  let bootChanged = false
  const newer = (old: { bootTime: number; bootId: string; seq: number } | undefined) =>
    old === undefined || compareSwitchOrder(e, old) > 0
  switch (e.kind) {
    case 'agent-started':
      if (!r.boot || compareBoot(e, r.boot) > 0) {
        r.boot = { bootId: e.bootId, bootTime: e.bootTime, agentVersion: e.agentVersion, role: e.role, ports: e.ports }
        bootChanged = true
      }
      break
    case 'peer-up':
    case 'peer-down': {
      const key = `${e.port}|${e.stationMac}`
      if (newer(r.peers[key])) {
        r.peers[key] = {
          port: e.port,
          stationMac: e.stationMac,
          up: e.kind === 'peer-up',
          bootTime: e.bootTime,
          bootId: e.bootId,
          seq: e.seq,
          time: e.time,
          extensions: e.kind === 'peer-up' ? (e.extensions ?? []) : (r.peers[key]?.extensions ?? []),
          reason: e.reason,
        }
      }
      break
    }
    case 'vlan-allocated':
    case 'vlan-released': {
      const key = String(e.vid)
      if (newer(r.vlans[key])) {
        r.vlans[key] = {
          vid: e.vid,
          ...(e.vni !== undefined ? { vni: e.vni } : {}),
          allocated: e.kind === 'vlan-allocated',
          bootTime: e.bootTime,
          bootId: e.bootId,
          seq: e.seq,
          time: e.time,
        }
      }
      break
    }
    default:
      break
  }
  return { record: r, bootChanged }
}

/** The switch as the API shows it: peers up and VLANs allocated in the current boot. */
export function switchView(r: SwitchRecord): SwitchView {
  const current = (x: { bootTime: number; bootId: string }) => !r.boot || compareBoot(x, r.boot) >= 0
  return {
    switchId: r.switchId,
    status: r.status,
    ...(r.statusTime !== undefined ? { statusTime: r.statusTime } : {}),
    ...(r.boot ? { boot: r.boot } : {}),
    lastEventTime: r.lastEventTime,
    eventCount: r.eventCount,
    peers: Object.values(r.peers)
      .filter((p) => p.up && current(p))
      .sort((a, b) => (a.port < b.port ? -1 : a.port > b.port ? 1 : a.stationMac < b.stationMac ? -1 : 1)),
    vlans: Object.values(r.vlans)
      .filter((v) => v.allocated && current(v))
      .sort((a, b) => a.vid - b.vid),
  }
}
