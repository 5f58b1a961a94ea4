/**
 * The bridge's resource manager (802.1Q 41.5.5; `ResourceManager` in agent/port/resources.ts):
 * decides Pre-Associate / Pre-Associate-RR / Associate requests, assigns VIDs, counts who uses
 * which VLAN on which port, and tells the shell what the data plane must change.
 *
 * Local rules (DESIGN §3 "VID negotiation"):
 *
 * 1. One VID per VN per switch (SONiC's VLAN-to-VNI map is switch-wide): every VSI of a VN
 *    gets the same VID on every port. Formats 3/4 name the VN by GroupID (VNI in the low 24
 *    bits); formats 1/2 by the VSI type (the type is the port profile, see policy.ts). With
 *    `openVsiTypes`, a format 1/2 type bound to no VN gets a local VLAN of its own, one VID
 *    per (type id, version), with no VNI.
 * 2. A null VID (0) is filled with the VN's VID, allocated lowest-free from the pool on first
 *    use or taken from the VN's static `vid`. An explicit VID must be the VN's VID, or (for a VN
 *    without one yet) a free VID of the pool or a static VID of that VN: else error 5.
 * 3. Exhausted pool: error 2 "insufficient resources", not hard (transient: a VID frees up when
 *    another VN's last VSI leaves).
 * 4. A VN keeps its VID while any VSI holds it in any mode. Data-plane membership follows
 *    association only: a pre-associated VSI (e.g. the destination of a migration, 41.5.1)
 *    reserves the VID but does not add its port to the VLAN; Associate does. Refcounts per
 *    (VID, port) count associated VSIs; the port leaves the VLAN with the last one, and the
 *    VLAN (with its tunnel map) leaves the switch when no port is a member.
 * 5. A failed request for a VSI the bridge already holds answers Keep (state before the
 *    request stays, 41.2.6); for a new VSI it is refused.
 * 6. A VSI is identified by (port, VSIID) (spec/vdp-spec.md §3.7: "VSIID identifies the
 *    instance"). A request for a held VSI replaces its holding atomically: new references are
 *    taken before the old are dropped, so a keep-alive never frees and re-allocates a VID.
 * 7. Offers (port-core rule 6): a request for a new VSI whose entries all ask for the null VID
 *    is granted with its VN's VID as long as that VN holds one, the policy is the same and
 *    there is room. `offerState` tells the raw sockets that answer such requests ahead of the
 *    core: its epoch (index 0) moves whenever an owner lets go of its VID, the policy changes
 *    or a snapshot is imported; its headroom (index 1) is `vsiCountMax` minus the VSIs held.
 *
 * The manager does no I/O and emits nothing itself: the shell drains `pollDataplaneChanges()`
 * after each call and hands the ops to a `DataplaneDriver`. Restart: the shell persists
 * `exportSnapshot()` and feeds it to `importSnapshot()`, which restores the same VIDs; then it
 * calls `driver.reconcile(rm.dataplaneState())`.
 *
 * @module
 */
import type { Mac } from '../../shared/ethernet/mac.ts'
import type { ManagerId, PortName, VsiIdHex } from '../../shared/ids.ts'
import type { Us } from '../../shared/time.ts'
import { FilterFormat, VdpError, type VsiMode } from '../../shared/vdp/constants.ts'
import type { FilterEntry, VsiTlv } from '../../shared/vdp/types.ts'
import type {
  ResourceDecision,
  ResourceManager,
  ResourceRequest,
  VsiRelease,
} from '../port/resources.ts'
import { sameFilterEntries } from '../port/vsi.ts'
import {
  diffDataplane,
  sortDataplaneState,
  type DataplaneOp,
  type DataplaneState,
} from './dataplane-ops.ts'
import {
  compilePolicy,
  resolveEntry,
  type CompiledPolicy,
  type EntryTarget,
  type Policy,
  type Refusal,
  type RefusalReason,
} from './policy.ts'
import { isUsableVid, VidPool } from './vid-pool.ts'
import type { VsiIdFormat } from '../../shared/vdp/constants.ts'

/** A change of what the manager holds, as `ResourceManagerOptions.onHoldingChange` sees it. */
export type HoldingChange =
  | { readonly kind: 'hold'; readonly vsi: HeldVsi }
  | { readonly kind: 'drop'; readonly port: PortName; readonly vsiId: VsiIdHex }

export interface ResourceManagerOptions {
  /** Most VSIs held at once (all ports); beyond it requests get error 2. */
  vsiCountMax?: number
  /**
   * Called synchronously inside `request`/`release`/`dropUnconfirmed` when a VSI is newly held,
   * holds something else than before (mode, VIDs, station…), or is released: before the
   * caller answers the station. Not for keep-alives that change nothing, not during
   * `importSnapshot`. The shell journals these (write-ahead of the state file). `vsi` is the
   * manager's own object: do not modify it.
   */
  onHoldingChange?: (change: HoldingChange) => void
}

export const defaultResourceManagerOptions: Required<Omit<ResourceManagerOptions, 'onHoldingChange'>> = {
  vsiCountMax: 4096,
}

/** `ResourceDecision` plus why, for logs and events (`reason` absent on a grant). */
export type ResourceVerdict = ResourceDecision & { reason?: RefusalReason | 'vsi-limit' }

/** One VLAN in use, as `vdpctl show vlans` prints it. */
export interface VlanUse {
  vid: number
  /** VN mapped to this VLAN; absent for a local per-type VLAN. */
  vni?: number
  /** Local per-type VLAN (formats 1/2 with an unbound VSI type). */
  vsiType?: { typeId: number; typeVersion: number }
  /** VSIs holding the VID, any mode. */
  vsiCount: number
  /** Ports where the VLAN is programmed, with their associated VSI count. */
  ports: Array<{ port: PortName; vsiCount: number }>
}

/** A held VSI as stored in a snapshot (JSON-safe). */
export interface HeldVsi {
  port: PortName
  vsiId: VsiIdHex
  /** VSIID format (41.2.7); snapshots written before it existed mean UUID (5). */
  vsiIdFormat?: VsiIdFormat
  station: Mac
  managerId: ManagerId
  mode: VsiMode
  typeId: number
  typeVersion: number
  filterFormat: FilterFormat
  /** Entries as granted (VIDs filled). */
  entries: FilterEntry[]
}

/** The station request that `held` answers: what a restart replays for it. */
export function requestTlvOf(held: HeldVsi): VsiTlv {
  return {
    kind: 'vsi',
    mode: held.mode,
    status: { response: false, migratingFrom: false, migratingTo: false },
    typeId: held.typeId,
    typeVersion: held.typeVersion,
    vsiId: { format: held.vsiIdFormat ?? 5, id: held.vsiId },
    filterFormat: held.filterFormat,
    entries: held.entries,
  }
}

export interface ResourceSnapshot {
  version: 1
  policyRevision: number
  vsis: HeldVsi[]
}

export interface ImportReport {
  restored: number
  /** VSIs not restored, with why (policy changed, VID now taken…). */
  dropped: Array<{ port: PortName; vsiId: VsiIdHex; reason: string }>
}

export interface ResourceManagerCore extends ResourceManager {
  request(req: ResourceRequest, nowUs: Us): ResourceVerdict
  release(rel: VsiRelease, nowUs: Us): void
  /** Data-plane ops since the last call (transitions only); empty when nothing changed. */
  pollDataplaneChanges(): DataplaneOp[]
  /** What the data plane must hold now (for `DataplaneDriver.reconcile`). */
  dataplaneState(): DataplaneState
  /** VLANs in use, by VID. */
  vlanUse(): VlanUse[]
  /** How many VLANs are in use (`vlanUse().length` without building the list). */
  vlanCount(): number
  /**
   * Counts every change of the holdings (a grant that holds something new, release, import,
   * drop; not a keep-alive that holds the same): the shell saves the snapshot only when this
   * moved since its last save.
   */
  readonly changes: number
  /** VSIs held now. */
  heldVsis(): HeldVsi[]
  exportSnapshot(): ResourceSnapshot
  /**
   * What `exportSnapshot()` holds, without copying or sorting: the held VSIs in the order they
   * were first held (`importSnapshot` takes any order). The objects are the manager's own and
   * are never changed (a change replaces them), so the list stays a consistent snapshot while
   * the shell serialises it in slices; callers must not modify them.
   */
  snapshotView(): { version: 1; policyRevision: number; vsis: readonly HeldVsi[] }
  /**
   * Replaces all state with a snapshot. The data-plane change log is reset to the restored
   * state (no ops are queued): the shell reconciles the driver instead.
   */
  importSnapshot(snapshot: unknown): ImportReport
  /**
   * Releases the VSIs restored by `importSnapshot()` that no request has confirmed since
   * (their stations are gone: the port cores never knew them, so nothing else would release
   * them). Call once, after the longest keep-alive timeout has passed since start.
   */
  dropUnconfirmed(): HeldVsi[]
  /** New policy for later requests and keep-alives; held VSIs keep their VIDs. */
  setPolicy(policy: Policy): void
  /** [epoch, headroom] (`ResourceManager.offerState`; rule 7 above). */
  readonly offerState: Int32Array
}

interface OwnerState {
  target: EntryTarget
  vid: number
  /** (VSI, entry) references, any mode. */
  refs: number
}

interface Holding {
  vsi: HeldVsi
  /** Owner key per entry, same order as `vsi.entries`. */
  owners: string[]
  associated: boolean
  /** Restored from a snapshot and not yet confirmed by a request. */
  restored?: boolean
}

const ownerKeyOf = (t: EntryTarget): string => (t.kind === 'vn' ? `vn:${t.vni}` : `type:${t.typeId}/${t.typeVersion}`)
const vsiKeyOf = (port: PortName, vsiId: VsiIdHex): string => `${port}|${vsiId}`
const memberKeyOf = (vid: number, port: PortName): string => `${vid}|${port}`

/**
 * @example
 * ```ts
 * const rm = createResourceManager(policy, VidPool.parse('100-199'))
 * const d = rm.request(req, nowUs)          // granted: entries with VIDs filled
 * for (const op of rm.pollDataplaneChanges()) … // { op: 'vlan-add', vid: 100, vni: 5000 } …
 * ```
 */
export function createResourceManager(
  policy: Policy,
  pool: VidPool,
  options: ResourceManagerOptions = {},
): ResourceManagerCore {
  const opts = { ...defaultResourceManagerOptions, ...options }
  if (!Number.isInteger(opts.vsiCountMax) || opts.vsiCountMax < 1) {
    throw new RangeError(`Cannot create resource manager: vsiCountMax ${opts.vsiCountMax} is not a positive integer`)
  }
  let cp: CompiledPolicy = compilePolicy(policy)
  for (const vn of policy.vns) if (vn.vid !== undefined) pool.reserve(vn.vid)

  const owners = new Map<string, OwnerState>()
  const holdings = new Map<string, Holding>()
  /** (vid|port) -> associated VSIs. */
  const members = new Map<string, { vid: number; port: PortName; count: number }>()
  /** Ports per VID and VNI per VID, kept in step with `members` and `owners`. */
  const portsByVid = new Map<number, Set<PortName>>()
  const vniByVid = new Map<number, number>()
  /** What the last `pollDataplaneChanges()` handed out, per VID. */
  const published = new Map<number, { vni: number | undefined; ports: Set<PortName> }>()
  /**
   * VIDs whose VLAN (owner) or port membership came or went since the last poll: the next
   * poll diffs only those, so its cost follows the change, not the table (a full diff per
   * association is O(VLANs × ports) and made set-up of 10,000 VSIs quadratic).
   */
  const touched = new Set<number>()
  let changes = 0
  /** Rule 7: [epoch, headroom]. */
  const offerState = new Int32Array(2)
  offerState[0] = 1
  offerState[1] = opts.vsiCountMax
  const newEpoch = (): void => {
    offerState[0] = (offerState[0]! + 1) | 0
  }
  const onHoldingChange = options.onHoldingChange
  /** True inside `importSnapshot`: what it restores is not a change to journal. */
  let importing = false

  function memberAdded(vid: number, port: PortName): void {
    let ports = portsByVid.get(vid)
    if (!ports) portsByVid.set(vid, (ports = new Set()))
    ports.add(port)
    touched.add(vid)
  }

  function memberRemoved(vid: number, port: PortName): void {
    const ports = portsByVid.get(vid)
    ports?.delete(port)
    if (ports?.size === 0) portsByVid.delete(vid)
    touched.add(vid)
  }

  function ownerAdded(o: OwnerState): void {
    if (o.target.kind === 'vn') vniByVid.set(o.vid, o.target.vni)
    touched.add(o.vid)
  }

  function ownerRemoved(o: OwnerState): void {
    if (o.target.kind === 'vn' && vniByVid.get(o.vid) === o.target.vni) vniByVid.delete(o.vid)
    touched.add(o.vid)
    newEpoch()
  }

  /** The data-plane state restricted to `vids`, from the live maps or from `published`. */
  function stateOf(vids: readonly number[], from: 'live' | 'published'): DataplaneState {
    const state: DataplaneState = { vlans: [], members: [] }
    for (const vid of vids) {
      const entry = from === 'live' ? { vni: vniByVid.get(vid), ports: portsByVid.get(vid) } : published.get(vid)
      if (!entry?.ports || entry.ports.size === 0) continue
      state.vlans.push(entry.vni === undefined ? { vid } : { vid, vni: entry.vni })
      for (const port of entry.ports) state.members.push({ vid, port })
    }
    return sortDataplaneState(state)
  }

  function publishAll(): void {
    published.clear()
    for (const [vid, ports] of portsByVid) published.set(vid, { vni: vniByVid.get(vid), ports: new Set(ports) })
    touched.clear()
  }

  function addRefs(h: Holding, targets: readonly EntryTarget[]): void {
    h.owners.forEach((owner, i) => {
      const o = owners.get(owner)
      if (o) o.refs++
      else {
        const created = { target: targets[i]!, vid: h.vsi.entries[i]!.vid, refs: 1 }
        owners.set(owner, created)
        ownerAdded(created)
      }
    })
    if (!h.associated) return
    for (const vid of memberVids(h)) {
      const mk = memberKeyOf(vid, h.vsi.port)
      const m = members.get(mk)
      if (m) m.count++
      else {
        members.set(mk, { vid, port: h.vsi.port, count: 1 })
        memberAdded(vid, h.vsi.port)
      }
    }
  }

  function dropRefs(h: Holding): void {
    if (h.associated) {
      for (const vid of memberVids(h)) {
        const mk = memberKeyOf(vid, h.vsi.port)
        const m = members.get(mk)
        if (!m) continue
        m.count--
        if (m.count <= 0) {
          members.delete(mk)
          memberRemoved(vid, h.vsi.port)
        }
      }
    }
    for (const owner of h.owners) {
      const o = owners.get(owner)
      if (!o) continue
      o.refs--
      if (o.refs <= 0) {
        owners.delete(owner)
        ownerRemoved(o)
        pool.free(owner)
      }
    }
  }

  /** Distinct VIDs of a holding: a VSI with two entries in one VN is one member of its VLAN. */
  function memberVids(h: Holding): number[] {
    return [...new Set(h.vsi.entries.map((e) => e.vid))]
  }

  function drop(key: string): void {
    const h = holdings.get(key)
    if (!h) return
    holdings.delete(key)
    offerState[1] = opts.vsiCountMax - holdings.size
    dropRefs(h)
    changes++
    if (onHoldingChange !== undefined && !importing) onHoldingChange({ kind: 'drop', port: h.vsi.port, vsiId: h.vsi.vsiId })
  }

  type Planned = { ok: true; owners: string[]; targets: EntryTarget[]; entries: FilterEntry[]; bound: string[] } | ({ ok: false; bound: string[] } & Refusal)

  /** VIDs for every entry; binds new owners in the pool (`bound`, to undo on failure). */
  function plan(tlv: VsiTlv): Planned {
    const bound: string[] = []
    const ownerKeys: string[] = []
    const targets: EntryTarget[] = []
    const entries: FilterEntry[] = []
    const refuse = (error: VdpError, reason: RefusalReason, hard = true): Planned => ({ ok: false, error, hard, reason, bound })
    for (const entry of tlv.entries) {
      const verdict = resolveEntry(cp, tlv, entry)
      if (!verdict.ok) return { ok: false, error: verdict.error, hard: verdict.hard, reason: verdict.reason, bound }
      const target = verdict.target
      const owner = ownerKeyOf(target)
      let vid = pool.vidOf(owner)
      if (vid === undefined) {
        if (target.kind === 'vn' && target.staticVid !== undefined) {
          if (entry.vid !== 0 && entry.vid !== target.staticVid) return refuse(VdpError.InvalidVidGroupIdOrMac, 'vid-mismatch')
          if (!pool.take(owner, target.staticVid)) return refuse(VdpError.InvalidVidGroupIdOrMac, 'vid-taken')
          vid = target.staticVid
        } else if (entry.vid !== 0) {
          // The station proposes a VID for a VN that has none yet: only a free pool VID.
          if (!pool.contains(entry.vid)) return refuse(VdpError.InvalidVidGroupIdOrMac, 'bad-vid')
          if (cp.vniByStaticVid.has(entry.vid) || !pool.take(owner, entry.vid)) {
            return refuse(VdpError.InvalidVidGroupIdOrMac, 'vid-taken')
          }
          vid = entry.vid
        } else {
          vid = pool.allocate(owner)
          if (vid === undefined) return refuse(VdpError.InsufficientResources, 'pool-exhausted', false)
        }
        bound.push(owner)
      } else if (entry.vid !== 0 && entry.vid !== vid) {
        return refuse(VdpError.InvalidVidGroupIdOrMac, 'vid-mismatch')
      }
      ownerKeys.push(owner)
      targets.push(target)
      entries.push({ ...entry, vid })
    }
    return { ok: true, owners: ownerKeys, targets, entries, bound }
  }

  function undoBound(bound: string[]): void {
    for (const owner of bound) if (!owners.has(owner)) pool.free(owner)
  }

  function request(req: ResourceRequest, _nowUs: Us): ResourceVerdict {
    const key = vsiKeyOf(req.port, req.tlv.vsiId.id)
    const held = holdings.get(key)
    const existed = (held !== undefined && !held.restored) || req.current !== undefined
    const fail = (error: number, hard: boolean, reason: ResourceVerdict['reason']): ResourceVerdict => {
      if (existed) return { outcome: 'keep', error, reason: reason! }
      // A restored VSI the port core does not know: refusing it ends it here too.
      if (held?.restored) drop(key)
      return { outcome: 'refused', error, hard, reason: reason! }
    }
    if (!holdings.has(key) && holdings.size >= opts.vsiCountMax) {
      return fail(VdpError.InsufficientResources, false, 'vsi-limit')
    }
    const p = plan(req.tlv)
    if (!p.ok) {
      undoBound(p.bound)
      return fail(p.error, p.hard, p.reason)
    }
    const h: Holding = {
      vsi: {
        port: req.port,
        vsiId: req.tlv.vsiId.id,
        vsiIdFormat: req.tlv.vsiId.format,
        station: req.station,
        managerId: req.managerId,
        mode: req.tlv.mode,
        typeId: req.tlv.typeId,
        typeVersion: req.tlv.typeVersion,
        filterFormat: req.tlv.filterFormat,
        entries: p.entries,
      },
      owners: p.owners,
      associated: req.tlv.mode === 'associate',
    }
    // New references first, then drop the old holding: shared owners never reach zero.
    addRefs(h, p.targets)
    const old = holdings.get(key)
    if (old) dropRefs(old)
    holdings.set(key, h)
    offerState[1] = opts.vsiCountMax - holdings.size
    // A keep-alive that holds the same as before is not a change: neither the state file nor
    // the journal gets anything new (counting it made the next event of any kind rewrite the
    // whole file: ~1.6 times a second at 48 ports and 10,000 VSIs).
    if (old === undefined || !sameHolding(old.vsi, h.vsi)) {
      changes++
      if (onHoldingChange !== undefined && !importing) onHoldingChange({ kind: 'hold', vsi: h.vsi })
    }
    return { outcome: 'granted', entries: p.entries.map((e) => ({ ...e })) }
  }

  function release(rel: VsiRelease, _nowUs: Us): void {
    drop(vsiKeyOf(rel.port, rel.tlv.vsiId.id))
  }

  function dataplaneState(): DataplaneState {
    const vids = new Map<number, number | undefined>()
    const vniByVid = new Map<number, number>()
    for (const o of owners.values()) if (o.target.kind === 'vn') vniByVid.set(o.vid, o.target.vni)
    for (const m of members.values()) vids.set(m.vid, vniByVid.get(m.vid))
    return sortDataplaneState({
      vlans: [...vids].map(([vid, vni]) => (vni === undefined ? { vid } : { vid, vni })),
      members: [...members.values()].map((m) => ({ vid: m.vid, port: m.port })),
    })
  }

  function vlanUse(): VlanUse[] {
    // One pass over holdings and members (not one per VLAN: 500 VLANs × 10,000 VSIs took
    // the event loop for a second, and ECP ack timers with it).
    const vsisByVid = new Map<number, number>()
    for (const h of holdings.values()) {
      const entries = h.vsi.entries
      for (let i = 0; i < entries.length; i++) {
        const vid = entries[i]!.vid
        let seen = false
        for (let j = 0; j < i; j++) if (entries[j]!.vid === vid) seen = true
        if (!seen) vsisByVid.set(vid, (vsisByVid.get(vid) ?? 0) + 1)
      }
    }
    const portsOf = new Map<number, VlanUse['ports']>()
    for (const m of members.values()) {
      let ports = portsOf.get(m.vid)
      if (!ports) portsOf.set(m.vid, (ports = []))
      ports.push({ port: m.port, vsiCount: m.count })
    }
    const out: VlanUse[] = []
    for (const o of owners.values()) {
      const ports = (portsOf.get(o.vid) ?? []).map((x) => ({ ...x }))
      const use: VlanUse = { vid: o.vid, vsiCount: vsisByVid.get(o.vid) ?? 0, ports }
      if (o.target.kind === 'vn') use.vni = o.target.vni
      else use.vsiType = { typeId: o.target.typeId, typeVersion: o.target.typeVersion }
      ports.sort((a, b) => (a.port < b.port ? -1 : a.port > b.port ? 1 : 0))
      out.push(use)
    }
    return out.sort((a, b) => a.vid - b.vid)
  }

  function heldVsis(): HeldVsi[] {
    return [...holdings.values()].map((h) => structuredCloneVsi(h.vsi))
  }

  function importSnapshot(snapshot: unknown): ImportReport {
    const snap = checkSnapshot(snapshot)
    importing = true
    try {
      return importChecked(snap)
    } finally {
      importing = false
    }
  }

  function importChecked(snap: ResourceSnapshot): ImportReport {
    newEpoch()
    for (const key of [...holdings.keys()]) drop(key)
    const report: ImportReport = { restored: 0, dropped: [] }
    for (const vsi of snap.vsis) {
      const tlv = requestTlvOf(vsi)
      // Re-run the decision with the stored VIDs as explicit VIDs: same VN, same VID, or drop.
      const d = request({ port: vsi.port, station: vsi.station, managerId: vsi.managerId, tlv }, 0)
      if (d.outcome === 'granted') {
        report.restored++
        holdings.get(vsiKeyOf(vsi.port, vsi.vsiId))!.restored = true
      }
      else report.dropped.push({ port: vsi.port, vsiId: vsi.vsiId, reason: d.reason ?? `error ${d.error}` })
    }
    publishAll()
    return report
  }

  return {
    request,
    release,
    pollDataplaneChanges(): DataplaneOp[] {
      if (touched.size === 0) return []
      const vids = [...touched]
      touched.clear()
      const ops = diffDataplane(stateOf(vids, 'published'), stateOf(vids, 'live'))
      for (const vid of vids) {
        const ports = portsByVid.get(vid)
        if (ports && ports.size > 0) published.set(vid, { vni: vniByVid.get(vid), ports: new Set(ports) })
        else published.delete(vid)
      }
      return ops
    },
    dataplaneState,
    vlanUse,
    vlanCount: () => owners.size,
    get changes() {
      return changes
    },
    heldVsis,
    exportSnapshot(): ResourceSnapshot {
      // Keys built once: a comparator that concatenates would build ~2·n·log n strings.
      const vsis = heldVsis()
        .map((v) => [`${v.port}|${v.vsiId}`, v] as const)
        .sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0))
        .map(([, v]) => v)
      return { version: 1, policyRevision: cp.policy.revision, vsis }
    },
    snapshotView() {
      const vsis: HeldVsi[] = []
      for (const h of holdings.values()) vsis.push(h.vsi)
      return { version: 1 as const, policyRevision: cp.policy.revision, vsis }
    },
    importSnapshot,
    dropUnconfirmed(): HeldVsi[] {
      const dropped: HeldVsi[] = []
      for (const [key, h] of [...holdings]) {
        if (!h.restored) continue
        dropped.push(structuredCloneVsi(h.vsi))
        drop(key)
      }
      return dropped
    },
    offerState,
    setPolicy(next: Policy): void {
      newEpoch()
      cp = compilePolicy(next)
      for (const vn of next.vns) if (vn.vid !== undefined) pool.reserve(vn.vid)
    },
  }
}

/** Same VSI record (what the state file would hold for it). */
function sameHolding(a: HeldVsi, b: HeldVsi): boolean {
  return (
    a.mode === b.mode && a.station === b.station && a.managerId === b.managerId && a.typeId === b.typeId &&
    a.typeVersion === b.typeVersion && a.filterFormat === b.filterFormat && a.vsiIdFormat === b.vsiIdFormat &&
    sameFilterEntries(a.entries, b.entries)
  )
}

function structuredCloneVsi(v: HeldVsi): HeldVsi {
  return { ...v, entries: v.entries.map((e) => ({ ...e })) }
}

export class SnapshotError extends Error {
  override readonly name = 'SnapshotError'
  readonly code = 'bad-snapshot'
}

const MODES: readonly string[] = ['pre-associate', 'pre-associate-rr', 'associate']

/** Shape check of a persisted snapshot (it comes from disk: treat it as untrusted). */
function checkSnapshot(s: unknown): ResourceSnapshot {
  const bad = (what: string): never => {
    throw new SnapshotError(`Cannot import resource snapshot: ${what}`)
  }
  if (typeof s !== 'object' || s === null) bad('it is not an object')
  const o = s as Record<string, unknown>
  if (o['version'] !== 1) bad(`version ${JSON.stringify(o['version'])} is not 1`)
  if (!Array.isArray(o['vsis'])) bad('vsis is not a list')
  for (const [i, v] of (o['vsis'] as unknown[]).entries()) {
    const h = v as Partial<HeldVsi> | null
    if (
      typeof h !== 'object' || h === null ||
      typeof h.port !== 'string' || typeof h.vsiId !== 'string' || typeof h.station !== 'string' ||
      typeof h.managerId !== 'string' || typeof h.mode !== 'string' || !MODES.includes(h.mode) ||
      !Number.isInteger(h.typeId) || !Number.isInteger(h.typeVersion) ||
      ![1, 2, 3, 4].includes(h.filterFormat as number) ||
      (h.vsiIdFormat !== undefined && ![1, 2, 3, 4, 5].includes(h.vsiIdFormat)) || !Array.isArray(h.entries) || h.entries.length === 0 ||
      h.entries.some((e) => typeof e !== 'object' || e === null || !isUsableVid(e.vid))
    ) {
      bad(`vsis[${i}] is malformed`)
    }
  }
  return { version: 1, policyRevision: Number(o['policyRevision'] ?? 0), vsis: o['vsis'] as HeldVsi[] }
}
