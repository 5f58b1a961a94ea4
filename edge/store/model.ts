/**
 * Fleet state records as the reducers produce them and the stores keep them. Records are
 * plain JSON-serialisable data (the SQLite store keeps them as JSON text); views are what
 * the API returns, derived from records by `reducers.ts`.
 *
 * @module
 */
import type { MigrationIndicator, VsiEventKind } from '../../shared/api/events.ts'
import type { Ipv4, Ipv6 } from '../../shared/api/ip.ts'
import type { Mac } from '../../shared/ethernet/mac.ts'
import type { ManagerId, PortName, SwitchId, VsiIdHex } from '../../shared/ids.ts'
import type { VsiIdFormat } from '../../shared/vdp/constants.ts'

/** Position of an event in its switch's history: compare with `compareSwitchOrder`. */
export interface SwitchOrder {
  bootTime: number
  bootId: string
  seq: number
}

/** What a place says about the VSI, from the kind of the last event there. */
export type PlaceState = 'associated' | 'pre-associated' | 'de-associated' | 'rejected' | 'timeout'

/** Where a VSI is or was: one station on one port of one switch. */
export interface PlaceKey {
  switchId: SwitchId
  port: PortName
  stationMac: Mac
}

/** The VSI at one place: the newest event (by switch order) reported there. */
export interface VsiPlace extends PlaceKey, SwitchOrder {
  state: PlaceState
  lastKind: VsiEventKind
  /** Event time of the newest event here (ms). */
  time: number
  /** Event time at which this place last started holding the VSI (ms). */
  since: number
  managerId: ManagerId
  typeId: number
  typeVersion: number
  vsiIdFormat: VsiIdFormat
  vni?: number
  groupId?: number
  vid: number
  macs: Mac[]
  ipv4: Ipv4[]
  ipv6: Ipv6[]
  migration: MigrationIndicator
  migrationId?: string
  reason: string
}

export type MigrationState = 'in-progress' | 'completed' | 'aborted'

export interface MigrationRecord {
  /** From the station's migration id when given, otherwise `<vsiId>-<ordinal>`. */
  migrationId: string
  /** 1, 2, ... per VSI. */
  ordinal: number
  from: PlaceKey
  to: PlaceKey
  /** The destination started holding the VSI (ms, event time). */
  startedAt: number
  /** The destination associated (ms); the cleanup grace runs from here. */
  associatedAt?: number
  /** The source let go (completed) or the destination did (aborted). */
  endedAt?: number
  state: MigrationState
  /** Both ends overlapped: the source still held the VSI when the destination took it. */
  overlapped: boolean
  /** A migration indicator or id from either end said this was a migration. */
  indicated: boolean
  /** Set once the edge has told the source switch to let go. */
  cleanupCommandId?: string
}

export interface VsiRecord {
  vsiId: VsiIdHex
  /** Every place the VSI has been seen, oldest first by `since`; bounded. */
  places: VsiPlace[]
  /** Moves between places, oldest first; bounded. */
  migrations: MigrationRecord[]
  /** Number of migrations ever recorded (ordinal source, survives the bound). */
  migrationCount: number
}

/** Latest boot of a switch, from `agent-started`. */
export interface SwitchBoot {
  bootId: string
  bootTime: number
  agentVersion: string
  role: 'bridge' | 'station'
  ports: PortName[]
}

export interface PeerRecord extends SwitchOrder {
  port: PortName
  stationMac: Mac
  up: boolean
  time: number
  extensions: string[]
  reason: string
}

export interface VlanRecord extends SwitchOrder {
  vid: number
  vni?: number
  allocated: boolean
  time: number
}

export interface SwitchRecord {
  switchId: SwitchId
  boot?: SwitchBoot
  /** From the retained status topic. */
  status: 'online' | 'offline' | 'unknown'
  statusTime?: number
  /** Newest event time seen from this switch (ms). */
  lastEventTime: number
  eventCount: number
  /** Keyed `port|stationMac`. */
  peers: Record<string, PeerRecord>
  /** Keyed by VID. */
  vlans: Record<string, VlanRecord>
}

/** Where a VSI is now, derived from its record and the boots of its switches. */
export interface VsiView {
  vsiId: VsiIdHex
  /** 'gone' when no place holds it any more. */
  state: 'associated' | 'pre-associated' | 'gone'
  /** The place that wins: associated over pre-associated, then the newest; when gone, the last place. */
  current?: VsiPlace
  /** Every place holding the VSI now (two during a migration). */
  holding: VsiPlace[]
  history: VsiPlace[]
  migrations: MigrationRecord[]
}

export interface SwitchView {
  switchId: SwitchId
  status: SwitchRecord['status']
  statusTime?: number
  boot?: SwitchBoot
  lastEventTime: number
  eventCount: number
  /** Peers of the current boot. */
  peers: PeerRecord[]
  /** VLANs allocated in the current boot. */
  vlans: VlanRecord[]
}
