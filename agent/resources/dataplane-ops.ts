/**
 * What the data plane must hold, and the operations that move it from one state to the next.
 * The resource manager (core) computes them; the data-plane drivers (shell) apply them. Only
 * transitions appear: a VLAN is added when its first port joins and deleted when its last port
 * leaves; a member when its first associated VSI arrives and deleted with its last.
 *
 * Pure core: no I/O.
 *
 * @module
 */
import type { PortName } from '../../shared/ids.ts'

export type DataplaneOp =
  /** Create VLAN `vid` (and, with `vni`, its VLAN-to-VNI tunnel map). */
  | { op: 'vlan-add'; vid: number; vni?: number }
  /** Remove VLAN `vid` (and its tunnel map to `vni`). Members are removed before. */
  | { op: 'vlan-del'; vid: number; vni?: number }
  /** Make `port` a tagged member of `vid`. The VLAN exists before. */
  | { op: 'member-add'; vid: number; port: PortName }
  | { op: 'member-del'; vid: number; port: PortName }

export interface DataplaneVlan {
  vid: number
  vni?: number
}

export interface DataplaneMember {
  vid: number
  port: PortName
}

/** The whole desired (or applied) data-plane content, sorted by VID then port. */
export interface DataplaneState {
  vlans: DataplaneVlan[]
  members: DataplaneMember[]
}

export const emptyDataplaneState = (): DataplaneState => ({ vlans: [], members: [] })

const vlanKey = (v: DataplaneVlan): string => `${v.vid}/${v.vni ?? '-'}`
const memberKey = (m: DataplaneMember): string => `${m.vid}|${m.port}`

/**
 * Ops that turn `from` into `to`, in an order every driver can apply one by one: members
 * leave, then VLANs go, then VLANs come, then members join. A VLAN whose VNI changed is
 * deleted and re-added (SONiC cannot re-point a tunnel map in place).
 * @example
 * ```ts
 * diffDataplane(emptyDataplaneState(), { vlans: [{ vid: 100, vni: 5000 }], members: [{ vid: 100, port }] })
 * // [{ op: 'vlan-add', vid: 100, vni: 5000 }, { op: 'member-add', vid: 100, port }]
 * ```
 */
export function diffDataplane(from: DataplaneState, to: DataplaneState): DataplaneOp[] {
  const fromVlans = new Map(from.vlans.map((v) => [vlanKey(v), v]))
  const toVlans = new Map(to.vlans.map((v) => [vlanKey(v), v]))
  const fromMembers = new Map(from.members.map((m) => [memberKey(m), m]))
  const toMembers = new Map(to.members.map((m) => [memberKey(m), m]))
  // A VLAN re-created (VNI change) loses its members in some drivers: re-add them.
  const recreated = new Set<number>()
  const ops: DataplaneOp[] = []
  const vlanDels: DataplaneOp[] = []
  const vlanAdds: DataplaneOp[] = []
  for (const [k, v] of fromVlans) {
    if (toVlans.has(k)) continue
    vlanDels.push(v.vni === undefined ? { op: 'vlan-del', vid: v.vid } : { op: 'vlan-del', vid: v.vid, vni: v.vni })
    if (to.vlans.some((t) => t.vid === v.vid)) recreated.add(v.vid)
  }
  for (const [k, v] of toVlans) {
    if (fromVlans.has(k)) continue
    vlanAdds.push(v.vni === undefined ? { op: 'vlan-add', vid: v.vid } : { op: 'vlan-add', vid: v.vid, vni: v.vni })
  }
  for (const [k, m] of fromMembers) {
    if (!toMembers.has(k) || recreated.has(m.vid)) ops.push({ op: 'member-del', vid: m.vid, port: m.port })
  }
  ops.push(...vlanDels, ...vlanAdds)
  for (const [k, m] of toMembers) {
    if (!fromMembers.has(k) || recreated.has(m.vid)) ops.push({ op: 'member-add', vid: m.vid, port: m.port })
  }
  return ops
}

/** `state` after `ops` (for drivers and tests that track what was applied). */
export function applyDataplaneOps(state: DataplaneState, ops: readonly DataplaneOp[]): DataplaneState {
  const vlans = new Map(state.vlans.map((v) => [v.vid, v]))
  const members = new Map(state.members.map((m) => [memberKey(m), m]))
  for (const op of ops) {
    switch (op.op) {
      case 'vlan-add':
        vlans.set(op.vid, op.vni === undefined ? { vid: op.vid } : { vid: op.vid, vni: op.vni })
        break
      case 'vlan-del':
        vlans.delete(op.vid)
        break
      case 'member-add':
        members.set(memberKey(op), { vid: op.vid, port: op.port })
        break
      case 'member-del':
        members.delete(memberKey(op))
        break
    }
  }
  return sortDataplaneState({ vlans: [...vlans.values()], members: [...members.values()] })
}

export function sortDataplaneState(s: DataplaneState): DataplaneState {
  return {
    vlans: [...s.vlans].sort((a, b) => a.vid - b.vid),
    members: [...s.members].sort((a, b) => a.vid - b.vid || (a.port < b.port ? -1 : a.port > b.port ? 1 : 0)),
  }
}
