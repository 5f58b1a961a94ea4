/**
 * In-memory `FleetStore`: Maps with the same indexes as the SQLite store. For tests and for
 * a serverless runtime without storage. Transactions copy-on-write nothing: a batch that
 * throws half way is rolled back from an undo log.
 *
 * @module
 */
import { eventKey, isVsiEvent, type FleetEvent } from '../../shared/api/events.ts'
import type { SwitchId, VsiIdHex } from '../../shared/ids.ts'
import type { SwitchRecord, VsiRecord } from './model.ts'
import {
  BaseFleetStore,
  type Collection,
  OPEN_COMMAND_STATES,
  type CommandQuery,
  type CommandRecord,
  type EventQuery,
  type MigrationEntry,
  type StoredEvent,
  type VsiIndex,
  type VsiQuery,
} from './fleet-store.ts'

const add = <K, V>(m: Map<K, Set<V>>, k: K, v: V) => {
  let s = m.get(k)
  if (!s) m.set(k, (s = new Set()))
  s.add(v)
}
const remove = <K, V>(m: Map<K, Set<V>>, k: K, v: V) => {
  const s = m.get(k)
  if (s && s.delete(v) && s.size === 0) m.delete(k)
}

export class MemoryFleetStore extends BaseFleetStore {
  private events: StoredEvent[] = []
  private eventKeys = new Set<string>()
  private vsis = new Map<VsiIdHex, { record: VsiRecord; index: VsiIndex }>()
  private byMac = new Map<string, Set<VsiIdHex>>()
  private byIp = new Map<string, Set<VsiIdHex>>()
  private byVni = new Map<number, Set<VsiIdHex>>()
  private byPlace = new Map<string, Set<VsiIdHex>>()
  /** VSIs with a cleanup deadline (few: migrations in progress). */
  private withDeadline = new Set<VsiIdHex>()
  private switches = new Map<string, SwitchRecord>()
  private docs = new Map<string, unknown>()
  private meta = new Map<string, number>()
  private commands = new Map<string, CommandRecord>()
  private undo: (() => void)[] | undefined

  protected transaction<T>(fn: () => T): T {
    if (this.undo) return fn()
    this.undo = []
    try {
      const out = fn()
      this.undo = undefined
      return out
    } catch (err) {
      const log = this.undo ?? []
      this.undo = undefined
      for (let i = log.length - 1; i >= 0; i--) log[i]!()
      throw err
    }
  }

  private onUndo(fn: () => void): void {
    this.undo?.push(fn)
  }

  protected appendEvent(e: FleetEvent, receivedAt: number): boolean {
    const key = eventKey(e)
    if (this.eventKeys.has(key)) return false
    this.eventKeys.add(key)
    this.events.push({ cursor: this.events.length + 1, receivedAt, event: e })
    this.onUndo(() => {
      this.eventKeys.delete(key)
      this.events.pop()
    })
    return true
  }

  protected loadVsi(vsiId: VsiIdHex): VsiRecord | undefined {
    return this.vsis.get(vsiId)?.record
  }

  protected saveVsi(record: VsiRecord, index: VsiIndex): void {
    const prior = this.vsis.get(record.vsiId)
    this.setVsi(record.vsiId, { record, index }, prior)
    this.onUndo(() => this.setVsi(record.vsiId, prior, { record, index }))
  }

  private setVsi(id: VsiIdHex, next: { record: VsiRecord; index: VsiIndex } | undefined, prior: { record: VsiRecord; index: VsiIndex } | undefined): void {
    if (prior) this.unindex(id, prior.index)
    if (next) {
      this.vsis.set(id, next)
      this.reindex(id, next.index)
    } else {
      this.vsis.delete(id)
    }
  }

  private reindex(id: VsiIdHex, ix: VsiIndex): void {
    for (const m of ix.macs) add(this.byMac, m, id)
    for (const ip of ix.ips) add(this.byIp, ip, id)
    if (ix.vni !== undefined) add(this.byVni, ix.vni, id)
    if (ix.dueAt !== undefined) this.withDeadline.add(id)
    for (const [sw, port] of ix.places) {
      add(this.byPlace, sw, id)
      add(this.byPlace, `${sw}\u0000${port}`, id)
    }
  }

  private unindex(id: VsiIdHex, ix: VsiIndex): void {
    for (const m of ix.macs) remove(this.byMac, m, id)
    for (const ip of ix.ips) remove(this.byIp, ip, id)
    if (ix.vni !== undefined) remove(this.byVni, ix.vni, id)
    this.withDeadline.delete(id)
    for (const [sw, port] of ix.places) {
      remove(this.byPlace, sw, id)
      remove(this.byPlace, `${sw}\u0000${port}`, id)
    }
  }

  protected loadSwitch(switchId: SwitchId): SwitchRecord | undefined {
    return this.switches.get(switchId)
  }

  protected saveSwitch(record: SwitchRecord): void {
    const prior = this.switches.get(record.switchId)
    this.switches.set(record.switchId, record)
    this.onUndo(() => (prior ? this.switches.set(record.switchId, prior) : this.switches.delete(record.switchId)))
  }

  protected allSwitches(): SwitchRecord[] {
    return [...this.switches.values()]
  }

  protected vsiIdsOnSwitch(switchId: SwitchId): VsiIdHex[] {
    return [...(this.byPlace.get(switchId) ?? [])]
  }

  protected dueVsiIds(nowMs: number, limit: number): VsiIdHex[] {
    const out: VsiIdHex[] = []
    for (const id of this.withDeadline) {
      const dueAt = this.vsis.get(id)?.index.dueAt
      if (dueAt !== undefined && dueAt <= nowMs) out.push(id)
      if (out.length >= limit) break
    }
    return out
  }

  protected findVsiRecords(q: VsiQuery): VsiRecord[] {
    const sets: Set<VsiIdHex>[] = []
    if (q.mac !== undefined) sets.push(this.byMac.get(q.mac) ?? new Set())
    if (q.ip !== undefined) sets.push(this.byIp.get(q.ip) ?? new Set())
    if (q.vni !== undefined) sets.push(this.byVni.get(q.vni) ?? new Set())
    if (q.switchId !== undefined) {
      sets.push(this.byPlace.get(q.port !== undefined ? `${q.switchId}\u0000${q.port}` : q.switchId) ?? new Set())
    }
    const ids: Iterable<VsiIdHex> = sets.length ? [...sets.sort((a, b) => a.size - b.size)[0]!] : this.vsis.keys()
    const rest = sets.slice(1)
    const out: VsiIdHex[] = []
    for (const id of ids) {
      if (q.after !== undefined && id <= q.after) continue
      if (!rest.every((s) => s.has(id))) continue
      if (q.state !== undefined && this.vsis.get(id)?.index.state !== q.state) continue
      out.push(id)
    }
    return out
      .sort()
      .slice(0, q.limit)
      .map((id) => this.vsis.get(id)!.record)
  }

  recentMigrations(limit: number): MigrationEntry[] {
    const all: MigrationEntry[] = []
    for (const { record } of this.vsis.values()) for (const m of record.migrations) all.push({ vsiId: record.vsiId, migration: m })
    return all.sort((a, b) => b.migration.startedAt - a.migration.startedAt).slice(0, limit)
  }

  listEvents(q: EventQuery): StoredEvent[] {
    const out: StoredEvent[] = []
    for (let i = q.after ?? 0; i < this.events.length && out.length < q.limit; i++) {
      const s = this.events[i]!
      const e = s.event
      if (q.switchId !== undefined && e.switchId !== q.switchId) continue
      if (q.kind !== undefined && e.kind !== q.kind) continue
      if (q.vsiId !== undefined && !(isVsiEvent(e) && e.vsiId === q.vsiId)) continue
      out.push(s)
    }
    return out
  }

  counts(): { vsis: number; switches: number; events: number } {
    return { vsis: this.vsis.size, switches: this.switches.size, events: this.events.length }
  }

  protected getDoc<T>(collection: Collection, id: string): T | undefined {
    return structuredClone(this.docs.get(`${collection}\u0000${id}`)) as T | undefined
  }
  protected putDoc(collection: Collection, id: string, doc: unknown): void {
    this.docs.set(`${collection}\u0000${id}`, structuredClone(doc))
  }
  protected deleteDoc(collection: Collection, id: string): boolean {
    return this.docs.delete(`${collection}\u0000${id}`)
  }
  protected listDocs<T>(collection: Collection): T[] {
    const prefix = `${collection}\u0000`
    const out: T[] = []
    for (const [k, v] of this.docs) if (k.startsWith(prefix)) out.push(structuredClone(v) as T)
    return out
  }
  protected incrementMeta(key: string): number {
    const n = (this.meta.get(key) ?? 0) + 1
    this.meta.set(key, n)
    return n
  }

  protected saveCommand(record: CommandRecord): void {
    const id = record.command.commandId
    const prior = this.commands.get(id)
    this.commands.set(id, structuredClone(record))
    this.onUndo(() => (prior ? this.commands.set(id, prior) : this.commands.delete(id)))
  }
  protected loadCommand(commandId: string): CommandRecord | undefined {
    return structuredClone(this.commands.get(commandId))
  }
  openCommands(switchId?: SwitchId, limit = Number.MAX_SAFE_INTEGER): CommandRecord[] {
    return [...this.commands.values()]
      .filter((r) => OPEN_COMMAND_STATES.includes(r.state) && (switchId === undefined || r.command.switchId === switchId))
      .sort((a, b) => a.command.issuedAt - b.command.issuedAt)
      .slice(0, limit)
      .map((r) => structuredClone(r))
  }
  listCommands(q: CommandQuery): CommandRecord[] {
    return [...this.commands.values()]
      .filter((r) => (q.state === undefined || r.state === q.state) && (q.switchId === undefined || r.command.switchId === q.switchId))
      .sort((a, b) => b.command.issuedAt - a.command.issuedAt)
      .slice(0, q.limit)
      .map((r) => structuredClone(r))
  }

  close(): void {}
}
