/**
 * The fleet store: `FleetStore` is what the edge app and the MQTT ingest use;
 * `BaseFleetStore` holds the logic both implementations share (event batches through the
 * pure reducers, derived indexes, typed admin collections) on top of a few storage
 * primitives that `MemoryFleetStore` and `SqliteFleetStore` provide.
 *
 * Rules:
 * 1. `applyEvents` is atomic: one transaction per batch; when it returns, every event of the
 *    batch is committed (SQLite: durable) or, when it throws, none is.
 * 2. Dedup on `(switchId, bootId, seq)` across batches and within one.
 * 3. Host keys are stored sealed (see `edge/secrets.ts`); no read method of the store returns
 *    them except `hostSecrets`, used only to build a switch's policy.
 *
 * @module
 */
import type { Command, CommandReply } from '../../shared/api/commands.ts'
import { isVsiEvent, type EventKind, type FleetEvent } from '../../shared/api/events.ts'
import type { LagGroup, PolicyVidRange, VsiTypeRef } from '../../shared/api/policy.ts'
import type { SwitchStatus } from '../../shared/api/topics.ts'
import type { Mac } from '../../shared/ethernet/mac.ts'
import type { ManagerId, PortName, SwitchId, VsiIdHex } from '../../shared/ids.ts'
import type { MigrationRecord, SwitchRecord, SwitchView, VsiRecord, VsiView } from './model.ts'
import {
  applySwitchEvent,
  applyVsiEvent,
  cleanupDueAt,
  defaultReducerLimits,
  emptySwitchRecord,
  refreshVsi,
  sweepVsi,
  switchView,
  vsiView,
  type BootOf,
  type ReducerLimits,
} from './reducers.ts'

export interface IngestOptions {
  /** Edge clock (ms since the epoch): receive time and cleanup deadlines. */
  nowMs: number
  /** How long a migration's source may keep the VSI after the destination associated. */
  migrationGraceMs: number
  /** Cleanup commands issued now carry `expiresAt = issuedAt + commandTtlMs`. */
  commandTtlMs?: number
}

export interface IngestResult {
  /** Events applied (new to the store). */
  applied: number
  /** Events already applied before (same switchId, bootId, seq). */
  duplicates: number
  /** Applied, but older than what their place already holds: audit log only. */
  stale: number
  /** Migrations that started in this batch. */
  migrations: MigrationRecord[]
  /** Cleanup commands now due (also recorded in the command log); publish them. */
  commands: Command[]
  /** Switches that announced a new boot (`agent-started`) in this batch: push their policy. */
  bootedSwitches: SwitchId[]
}

export interface VsiQuery {
  mac?: Mac
  ip?: string
  vni?: number
  switchId?: SwitchId
  port?: PortName
  state?: VsiView['state']
  /** Page size. */
  limit: number
  /** Cursor: the last vsiId of the previous page. */
  after?: VsiIdHex
}

export interface StoredEvent {
  /** Position in the audit log, increasing. */
  cursor: number
  receivedAt: number
  event: FleetEvent
}

export interface EventQuery {
  /** Events after this cursor (exclusive); 0 or absent = from the start. */
  after?: number
  limit: number
  switchId?: SwitchId
  vsiId?: VsiIdHex
  kind?: EventKind
}

export interface VirtualNetwork {
  name: string
  vni: number
  tenant: string
  /** Empty = any VSI type. */
  allowedVsiTypes: VsiTypeRef[]
  /** Pinned VID on every switch, when set. */
  vid?: number
  description?: string
  createdAt: number
  updatedAt: number
}

export interface VsiType {
  typeId: number
  typeVersion: number
  name: string
  description?: string
}

/** A host key as stored: the secret is sealed; `HostKeyInfo` is what reads return. */
export interface SealedHostKey {
  keyId: number
  /** Sealed secret (AES-GCM, base64url), see edge/secrets.ts. */
  sealed: string
  notAfter?: number
  createdAt: number
}

export interface HostKeyInfo {
  keyId: number
  notAfter?: number
  createdAt: number
}

export interface HostRecord {
  hostId: string
  managerId?: ManagerId
  stationMacs: Mac[]
  keys: SealedHostKey[]
  updatedAt: number
}

/** A host as the read API shows it: keys without secrets. */
export interface HostView {
  hostId: string
  managerId?: ManagerId
  stationMacs: Mac[]
  keys: HostKeyInfo[]
  updatedAt: number
}

export interface SwitchConfig {
  switchId: SwitchId
  vidPool: PolicyVidRange[]
  lagGroups: LagGroup[]
  unknownHosts: 'allow' | 'deny'
  updatedAt: number
}

/** A bearer token issued through the API: only its SHA-256 is stored. */
export interface ApiTokenRecord {
  /** Public id: the first 16 hex digits of the hash. */
  id: string
  name: string
  scope: 'read' | 'admin'
  /** SHA-256 of the token, hex. */
  hash: string
  createdAt: number
}

export type ApiTokenView = Omit<ApiTokenRecord, 'hash'>

/**
 * Where a command is (docs/api.md, "Command states"):
 * - `pending`: recorded, no switch has acknowledged it yet;
 * - `delivered`: the switch's MQTT client acknowledged the PUBLISH (embedded broker only: an
 *   external broker does not tell the edge), no reply yet;
 * - `answered`: the switch replied (`reply`);
 * - `expired`: no reply before its deadline, or the switch answered `expired`.
 * Pending and delivered commands are "open": the edge publishes them again at its start and
 * when their switch comes online, until they are answered or expire.
 */
export const COMMAND_STATES = ['pending', 'delivered', 'answered', 'expired'] as const
export type CommandState = (typeof COMMAND_STATES)[number]

export const OPEN_COMMAND_STATES: readonly CommandState[] = ['pending', 'delivered']

export interface CommandRecord {
  command: Command
  /** Who asked: 'operator' (API) or 'migration-cleanup'. */
  origin: string
  state: CommandState
  /** When `state` last changed (edge clock, ms). */
  stateAt: number
  /** Publications after the first one (edge start, switch online). */
  resends: number
  reply?: CommandReply
}

/** What `recordCommand` takes: a new command starts `pending`. */
export type NewCommandRecord = Pick<CommandRecord, 'command' | 'origin'>

export interface CommandQuery {
  limit: number
  state?: CommandState
  switchId?: SwitchId
}

export interface MigrationEntry {
  vsiId: VsiIdHex
  migration: MigrationRecord
}

export interface FleetStore {
  /** Rule 1 and 2. Cleanup commands due at `nowMs` are issued in the same transaction. */
  applyEvents(events: readonly FleetEvent[], options: IngestOptions): IngestResult
  /** Issues cleanup commands due at `nowMs` (no events needed). */
  sweep(options: IngestOptions): Command[]
  setSwitchStatus(status: SwitchStatus, nowMs: number): void

  getVsi(vsiId: VsiIdHex): VsiView | undefined
  findVsis(query: VsiQuery): VsiView[]
  recentMigrations(limit: number): MigrationEntry[]
  listEvents(query: EventQuery): StoredEvent[]
  getSwitch(switchId: SwitchId): SwitchView | undefined
  listSwitches(): SwitchView[]
  counts(): { vsis: number; switches: number; events: number }

  listVns(): VirtualNetwork[]
  getVn(name: string): VirtualNetwork | undefined
  putVn(vn: VirtualNetwork): void
  deleteVn(name: string): boolean

  listVsiTypes(): VsiType[]
  putVsiType(t: VsiType): void
  deleteVsiType(typeId: number, typeVersion: number): boolean

  listHosts(): HostView[]
  getHost(hostId: string): HostView | undefined
  putHost(host: HostRecord): void
  deleteHost(hostId: string): boolean
  /** Sealed keys, for the policy push only. */
  hostSecrets(): HostRecord[]

  getSwitchConfig(switchId: SwitchId): SwitchConfig | undefined
  putSwitchConfig(config: SwitchConfig): void
  listSwitchConfigs(): SwitchConfig[]
  listTokens(): ApiTokenView[]
  putToken(token: ApiTokenRecord): void
  tokenByHash(hash: string): ApiTokenRecord | undefined
  deleteToken(id: string): boolean
  /** Increments and returns the policy revision (stored). */
  nextPolicyRevision(): number

  /** Records a new command as `pending` (an existing id is left as it is). */
  recordCommand(record: NewCommandRecord): void
  /** Records the switch's reply: `answered` (`expired` for an `expired` reply). */
  recordReply(reply: CommandReply, nowMs?: number): boolean
  /** The switch's client acknowledged the command's PUBLISH: `pending` -> `delivered`. */
  markCommandDelivered(commandId: string, switchId: SwitchId, nowMs: number): boolean
  /** Counts one more publication of an open command. */
  markCommandResent(commandId: string): void
  /**
   * Open commands whose deadline (`command.expiresAt`, else `issuedAt + defaultTtlMs`) is at
   * or before `nowMs` become `expired`; returns them.
   */
  expireCommands(nowMs: number, defaultTtlMs: number): CommandRecord[]
  /** Open commands (pending, delivered), oldest first; of one switch when given. */
  openCommands(switchId?: SwitchId, limit?: number): CommandRecord[]
  getCommand(commandId: string): CommandRecord | undefined
  /** Newest first. */
  listCommands(query: CommandQuery): CommandRecord[]

  close(): void
}

/** Index data derived from a VSI record, kept by the stores for lookups. */
export interface VsiIndex {
  state: VsiView['state']
  vni?: number
  /** MACs and IPs of the holding places, or of the last place when gone. */
  macs: string[]
  ips: string[]
  /** `[switchId, port]` of every holding place. */
  places: [string, string][]
  /** Next cleanup deadline (ms). */
  dueAt?: number
}

export type Collection = 'vn' | 'vsi-type' | 'host' | 'switch-config' | 'token'

export abstract class BaseFleetStore implements FleetStore {
  constructor(protected readonly limits: ReducerLimits = defaultReducerLimits) {}

  // ---- storage primitives ----
  protected abstract transaction<T>(fn: () => T): T
  /** Adds the event to the audit log; false when `(switchId, bootId, seq)` is already there. */
  protected abstract appendEvent(e: FleetEvent, receivedAt: number): boolean
  protected abstract loadVsi(vsiId: VsiIdHex): VsiRecord | undefined
  protected abstract saveVsi(record: VsiRecord, index: VsiIndex): void
  protected abstract loadSwitch(switchId: SwitchId): SwitchRecord | undefined
  protected abstract saveSwitch(record: SwitchRecord): void
  protected abstract allSwitches(): SwitchRecord[]
  /** VSIs with a holding place on the switch. */
  protected abstract vsiIdsOnSwitch(switchId: SwitchId): VsiIdHex[]
  protected abstract dueVsiIds(nowMs: number, limit: number): VsiIdHex[]
  /** Records matching the query, ordered by VSIID, at most `query.limit`. */
  protected abstract findVsiRecords(query: VsiQuery): VsiRecord[]
  protected abstract getDoc<T>(collection: Collection, id: string): T | undefined
  protected abstract putDoc(collection: Collection, id: string, doc: unknown): void
  protected abstract deleteDoc(collection: Collection, id: string): boolean
  protected abstract listDocs<T>(collection: Collection): T[]
  protected abstract incrementMeta(key: string): number
  abstract recentMigrations(limit: number): MigrationEntry[]
  abstract listEvents(query: EventQuery): StoredEvent[]
  abstract counts(): { vsis: number; switches: number; events: number }
  /** Inserts or replaces a command record. */
  protected abstract saveCommand(record: CommandRecord): void
  protected abstract loadCommand(commandId: string): CommandRecord | undefined
  abstract openCommands(switchId?: SwitchId, limit?: number): CommandRecord[]
  abstract listCommands(query: CommandQuery): CommandRecord[]
  abstract close(): void

  /** Sweep at most this many VSIs per call so one call stays short. */
  protected sweepBatchMax = 1000

  /** Switch records read or written during one operation; written back at its end. */
  private switchCache = new Map<string, SwitchRecord | undefined>()
  private dirtySwitches = new Set<string>()
  private cachedSwitch(id: SwitchId): SwitchRecord | undefined {
    if (!this.switchCache.has(id)) this.switchCache.set(id, this.loadSwitch(id))
    return this.switchCache.get(id)
  }
  protected readonly bootOf: BootOf = (id) => this.cachedSwitch(id)?.boot

  /** Runs `fn` with a fresh switch cache and writes the switches it changed. */
  private withSwitches<T>(fn: () => T): T {
    this.switchCache.clear()
    this.dirtySwitches.clear()
    try {
      const out = fn()
      for (const id of this.dirtySwitches) this.saveSwitch(this.switchCache.get(id)!)
      return out
    } finally {
      this.switchCache.clear()
      this.dirtySwitches.clear()
    }
  }

  protected indexOf(record: VsiRecord, graceMs: number): VsiIndex {
    const view = vsiView(record, this.bootOf)
    const shown = view.holding.length ? view.holding : view.current ? [view.current] : []
    const macs = new Set<string>()
    const ips = new Set<string>()
    for (const p of shown) {
      for (const m of p.macs) macs.add(m)
      for (const ip of p.ipv4) ips.add(ip)
      for (const ip of p.ipv6) ips.add(ip)
    }
    const dueAt = cleanupDueAt(record, graceMs)
    return {
      state: view.state,
      ...(view.current?.vni !== undefined ? { vni: view.current.vni } : {}),
      macs: [...macs],
      ips: [...ips],
      places: view.holding.map((p) => [p.switchId, p.port] as [string, string]),
      ...(dueAt !== undefined ? { dueAt } : {}),
    }
  }

  applyEvents(events: readonly FleetEvent[], options: IngestOptions): IngestResult {
    return this.transaction(() =>
      this.withSwitches(() => {
        const result: IngestResult = { applied: 0, duplicates: 0, stale: 0, migrations: [], commands: [], bootedSwitches: [] }
        for (const e of events) {
          if (!this.appendEvent(e, options.nowMs)) {
            result.duplicates++
            continue
          }
          result.applied++
          const sw = applySwitchEvent(this.cachedSwitch(e.switchId), e)
          this.switchCache.set(e.switchId, sw.record)
          this.dirtySwitches.add(e.switchId)
          if (sw.bootChanged) {
            if (!result.bootedSwitches.includes(e.switchId)) result.bootedSwitches.push(e.switchId)
            for (const id of this.vsiIdsOnSwitch(e.switchId)) {
              const rec = this.loadVsi(id)
              if (!rec) continue
              const next = refreshVsi(rec, this.bootOf, e.time)
              this.saveVsi(next, this.indexOf(next, options.migrationGraceMs))
            }
          }
          if (isVsiEvent(e)) {
            const r = applyVsiEvent(this.loadVsi(e.vsiId), e, this.bootOf, this.limits)
            if (!r.changed) {
              result.stale++
              continue
            }
            this.saveVsi(r.record, this.indexOf(r.record, options.migrationGraceMs))
            result.migrations.push(...r.started)
          }
        }
        result.commands = this.sweepInTransaction(options)
        return result
      }),
    )
  }

  sweep(options: IngestOptions): Command[] {
    return this.transaction(() => this.withSwitches(() => this.sweepInTransaction(options)))
  }

  private sweepInTransaction(options: IngestOptions): Command[] {
    const commands: Command[] = []
    for (const id of this.dueVsiIds(options.nowMs, this.sweepBatchMax)) {
      const rec = this.loadVsi(id)
      if (!rec) continue
      const r = sweepVsi(rec, this.bootOf, options.nowMs, options.migrationGraceMs)
      this.saveVsi(r.record, this.indexOf(r.record, options.migrationGraceMs))
      for (const c of r.commands) {
        const command = options.commandTtlMs === undefined ? c : { ...c, expiresAt: c.issuedAt + options.commandTtlMs }
        this.recordCommand({ command, origin: 'migration-cleanup' })
        commands.push(command)
      }
    }
    return commands
  }

  setSwitchStatus(status: SwitchStatus, nowMs: number): void {
    this.transaction(() => {
      const r = this.loadSwitch(status.switchId) ?? emptySwitchRecord(status.switchId)
      this.saveSwitch({ ...r, status: status.state, statusTime: status.time ?? nowMs })
    })
  }

  getVsi(vsiId: VsiIdHex): VsiView | undefined {
    return this.withSwitches(() => {
      const rec = this.loadVsi(vsiId)
      return rec ? vsiView(rec, this.bootOf) : undefined
    })
  }

  findVsis(query: VsiQuery): VsiView[] {
    return this.withSwitches(() => {
      return this.findVsiRecords(query).map((rec) => vsiView(rec, this.bootOf))
    })
  }

  getSwitch(switchId: SwitchId): SwitchView | undefined {
    const r = this.loadSwitch(switchId)
    return r ? switchView(r) : undefined
  }

  listSwitches(): SwitchView[] {
    return this.allSwitches()
      .map(switchView)
      .sort((a, b) => (a.switchId < b.switchId ? -1 : 1))
  }

  listVns(): VirtualNetwork[] {
    return this.listDocs<VirtualNetwork>('vn').sort((a, b) => a.vni - b.vni)
  }
  getVn(name: string): VirtualNetwork | undefined {
    return this.getDoc('vn', name)
  }
  putVn(vn: VirtualNetwork): void {
    this.putDoc('vn', vn.name, vn)
  }
  deleteVn(name: string): boolean {
    return this.deleteDoc('vn', name)
  }

  listVsiTypes(): VsiType[] {
    return this.listDocs<VsiType>('vsi-type').sort((a, b) => a.typeId - b.typeId || a.typeVersion - b.typeVersion)
  }
  putVsiType(t: VsiType): void {
    this.putDoc('vsi-type', `${t.typeId}/${t.typeVersion}`, t)
  }
  deleteVsiType(typeId: number, typeVersion: number): boolean {
    return this.deleteDoc('vsi-type', `${typeId}/${typeVersion}`)
  }

  listHosts(): HostView[] {
    return this.listDocs<HostRecord>('host')
      .map(hostView)
      .sort((a, b) => (a.hostId < b.hostId ? -1 : 1))
  }
  getHost(hostId: string): HostView | undefined {
    const h = this.getDoc<HostRecord>('host', hostId)
    return h ? hostView(h) : undefined
  }
  putHost(host: HostRecord): void {
    this.putDoc('host', host.hostId, host)
  }
  deleteHost(hostId: string): boolean {
    return this.deleteDoc('host', hostId)
  }
  hostSecrets(): HostRecord[] {
    return this.listDocs<HostRecord>('host').sort((a, b) => (a.hostId < b.hostId ? -1 : 1))
  }

  getSwitchConfig(switchId: SwitchId): SwitchConfig | undefined {
    return this.getDoc('switch-config', switchId)
  }
  putSwitchConfig(config: SwitchConfig): void {
    this.putDoc('switch-config', config.switchId, config)
  }
  listSwitchConfigs(): SwitchConfig[] {
    return this.listDocs<SwitchConfig>('switch-config')
  }
  listTokens(): ApiTokenView[] {
    return this.listDocs<ApiTokenRecord>('token')
      .map(({ hash: _hash, ...view }) => view)
      .sort((a, b) => a.createdAt - b.createdAt || (a.id < b.id ? -1 : 1))
  }
  putToken(token: ApiTokenRecord): void {
    this.putDoc('token', token.hash, token)
  }
  tokenByHash(hash: string): ApiTokenRecord | undefined {
    return this.getDoc('token', hash)
  }
  deleteToken(id: string): boolean {
    const t = this.listDocs<ApiTokenRecord>('token').find((x) => x.id === id)
    return t !== undefined && this.deleteDoc('token', t.hash)
  }
  nextPolicyRevision(): number {
    return this.incrementMeta('policy-revision')
  }

  recordCommand(record: NewCommandRecord): void {
    this.transaction(() => {
      if (this.loadCommand(record.command.commandId) !== undefined) return
      this.saveCommand({ ...record, state: 'pending', stateAt: record.command.issuedAt, resends: 0 })
    })
  }

  recordReply(reply: CommandReply, nowMs: number = reply.time): boolean {
    return this.transaction(() => {
      const r = this.loadCommand(reply.commandId)
      if (!r || r.command.switchId !== reply.switchId) return false
      const state = reply.status === 'expired' ? 'expired' : 'answered'
      // A repeated reply (re-delivery) keeps the first one's time.
      if (r.reply !== undefined && r.state === state) return true
      this.saveCommand({ ...r, reply, state, stateAt: nowMs })
      return true
    })
  }

  markCommandDelivered(commandId: string, switchId: SwitchId, nowMs: number): boolean {
    return this.transaction(() => {
      const r = this.loadCommand(commandId)
      if (!r || r.command.switchId !== switchId || r.state !== 'pending') return false
      this.saveCommand({ ...r, state: 'delivered', stateAt: nowMs })
      return true
    })
  }

  markCommandResent(commandId: string): void {
    this.transaction(() => {
      const r = this.loadCommand(commandId)
      if (r) this.saveCommand({ ...r, resends: r.resends + 1 })
    })
  }

  expireCommands(nowMs: number, defaultTtlMs: number): CommandRecord[] {
    return this.transaction(() => {
      const expired: CommandRecord[] = []
      for (const r of this.openCommands()) {
        const deadline = r.command.expiresAt ?? r.command.issuedAt + defaultTtlMs
        if (deadline > nowMs) continue
        const next: CommandRecord = { ...r, state: 'expired', stateAt: nowMs }
        this.saveCommand(next)
        expired.push(next)
      }
      return expired
    })
  }

  getCommand(commandId: string): CommandRecord | undefined {
    return this.loadCommand(commandId)
  }
}

/** Drops the sealed secrets: what every read of a host returns. */
export function hostView(h: HostRecord): HostView {
  return {
    hostId: h.hostId,
    ...(h.managerId !== undefined ? { managerId: h.managerId } : {}),
    stationMacs: h.stationMacs,
    keys: h.keys.map((k) => ({ keyId: k.keyId, createdAt: k.createdAt, ...(k.notAfter !== undefined ? { notAfter: k.notAfter } : {}) })),
    updatedAt: h.updatedAt,
  }
}
