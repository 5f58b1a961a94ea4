/**
 * The switch's VN policy (DESIGN §1, §3): which VNs exist and map to which VNI, which VSI
 * types may join each VN, the VID pool, and (typed placeholders for now) host keys and LAG
 * groups. The fleet edge sends it retained per switch; without one the agent runs on
 * `defaultPolicy` (open, for a lab) or on the last policy it received.
 *
 * `resolveEntry()` is the policy half of the resource decision (802.1Q 41.5.5 resource
 * manager): for one filter entry it names the VN the VSI joins, or the VDP error to answer.
 * Reason codes and why (802.1Q-2018 Table 41-3, see spec/vdp-spec.md §2.6):
 *
 * - GroupID upper octet non-zero: 5 "invalid VID, GroupID or MAC", hard. 802.1Qcy: "the VNI
 *   ID is carried in the lower 3 octets of the GroupID. The upper octet … should be all zeros".
 * - GroupID 0 or a VNI the policy does not know (and `openVnis` off): 5, hard. The value names
 *   no VN here; the station must not retry it unchanged.
 * - Unknown VSI type (listed by no VN, and `openVsiTypes` off): 4 "other failure", hard. It is
 *   not 2: "insufficient resources" tells the station the failure is transient (lldpad's bridge
 *   retries on it); a missing port profile is a configuration fault that retrying will not fix.
 *   It is not 3 either: the VSI manager (our policy) answered, it just does not know the type.
 *   The ratified standard has no "unknown VSI type" code (VDP 0.2's "unused VTID" is gone).
 * - VSI type known but not allowed on the requested VN: 4, hard, same reasoning (a policy
 *   violation, not a bad GroupID value).
 * - Formats 1/2 whose VSI type is allowed on several VNs and whose VID does not pick one: 4,
 *   hard (`vsi-type-ambiguous`).
 * - MAC zero, multicast or broadcast (formats 2/4): 5, hard (lldpad `is_valid_mac`).
 *
 * Pure core: no I/O, no clock.
 *
 * @module
 */
import type { SwitchPolicy } from '../../shared/api/policy.ts'
import { isValidUnicastMac } from '../../shared/ethernet/mac.ts'
import type { PortName } from '../../shared/ids.ts'
import { FilterFormat, VdpError } from '../../shared/vdp/constants.ts'
import type { FilterEntry, VsiTlv } from '../../shared/vdp/types.ts'
import { formatVidRanges, isUsableVid, parseVidRanges, VID_MAX, VID_MIN, VidPoolError } from './vid-pool.ts'

/** Largest VNI (24 bits). VNI 0 is not used (SONiC `vni_id_is_valid`: 1..16777215). */
export const VNI_MAX = 0xffffff

/** A VSI type (port profile) as carried in the VDP TLV. */
export interface VsiTypeRef {
  /** VSI Type ID, 24 bits. */
  typeId: number
  /** VSI Type Version, 8 bits; absent = any version. */
  version?: number
}

export interface VnPolicy {
  /** 24-bit VNI, 1..16777215; the GroupID of formats 3/4 carries it in its low 24 bits. */
  vni: number
  /** Display name. */
  name?: string
  tenant?: string
  /**
   * Fixed VID on this switch (and, by the fleet's choice, on every switch of a LAG group).
   * It need not be in the pool; inside the pool it is reserved for this VN.
   */
  vid?: number
  /** VSI types that may join; `'any'` admits every type. */
  vsiTypes: VsiTypeRef[] | 'any'
}

/** Placeholder: a host's authentication key reference (the key material never sits here). */
export interface HostKeyPolicy {
  keyId: string
  /** Station MACs or host names allowed to use the key; empty = any. */
  hosts: string[]
}

/** Placeholder: ports (and peer switches) that must share state and VIDs (NVO3 gap 2). */
export interface LagGroupPolicy {
  name: string
  ports: PortName[]
  peerSwitches: string[]
}

export interface Policy {
  /** Monotonic policy revision from the fleet; 0 = local default. */
  revision: number
  vns: VnPolicy[]
  /** VID pool of this switch (`100-199,300`); absent = the agent's `--vid-pool`. */
  vidPool?: string
  /** Formats 3/4: a VNI not listed in `vns` gets a VN on the fly (lab use). */
  openVnis: boolean
  /**
   * Formats 1/2: a VSI type listed by no VN gets its own local VLAN (one VID per type and
   * version, no VNI, no tunnel map), like classic 802.1Qbg port profiles. Off: error 4.
   */
  openVsiTypes: boolean
  hostKeys: HostKeyPolicy[]
  lagGroups: LagGroupPolicy[]
}

/** Open policy for a lab switch with no fleet: any VNI, any VSI type. */
export const defaultPolicy: Readonly<Policy> = Object.freeze({
  revision: 0,
  vns: [],
  openVnis: true,
  openVsiTypes: true,
  hostKeys: [],
  lagGroups: [],
})

export type PolicyErrorCode = 'bad-type' | 'bad-vni' | 'duplicate-vni' | 'bad-vid' | 'duplicate-vid' | 'bad-vsi-type' | 'bad-pool' | 'bad-lag-group'

export class PolicyError extends Error {
  override readonly name = 'PolicyError'
  constructor(
    readonly code: PolicyErrorCode,
    /** Where in the policy document, e.g. `vns[2].vid`. */
    readonly path: string,
    message: string,
  ) {
    super(message)
  }
}

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v)
const isUint = (v: unknown, max: number): v is number => Number.isInteger(v) && (v as number) >= 0 && (v as number) <= max

function fail(code: PolicyErrorCode, path: string, what: string): never {
  throw new PolicyError(code, path, `Cannot use policy: ${path} ${what}`)
}

function optString(o: Record<string, unknown>, key: string, path: string): string | undefined {
  const v = o[key]
  if (v === undefined) return undefined
  if (typeof v !== 'string') fail('bad-type', `${path}.${key}`, `is ${typeof v}, expected a string`)
  return v
}

function bool(o: Record<string, unknown>, key: string, dflt: boolean): boolean {
  const v = o[key]
  if (v === undefined) return dflt
  if (typeof v !== 'boolean') fail('bad-type', key, `is ${typeof v}, expected true or false`)
  return v
}

function stringArray(v: unknown, path: string): string[] {
  if (v === undefined) return []
  if (!Array.isArray(v) || v.some((s) => typeof s !== 'string' || s === '')) {
    fail('bad-type', path, 'is not a list of non-empty strings')
  }
  return v as string[]
}

/**
 * Checks a policy document (e.g. parsed JSON from the fleet or a config file) and returns it
 * typed, with defaults filled (`openVnis`/`openVsiTypes` default to false for a document:
 * a fleet policy is closed unless it says otherwise). Throws `PolicyError` with a `code` and
 * the `path` of the first offending field.
 * @example
 * ```ts
 * validatePolicy({ revision: 3, vns: [{ vni: 5000, vsiTypes: [{ typeId: 1, version: 1 }] }], vidPool: '100-199' })
 * ```
 */
export function validatePolicy(doc: unknown): Policy {
  if (!isObject(doc)) fail('bad-type', '(root)', 'is not an object')
  const revision = doc['revision'] ?? 0
  if (!isUint(revision, Number.MAX_SAFE_INTEGER)) fail('bad-type', 'revision', 'is not a non-negative integer')
  const vnsRaw = doc['vns'] ?? []
  if (!Array.isArray(vnsRaw)) fail('bad-type', 'vns', 'is not a list')
  const vns: VnPolicy[] = []
  const seenVni = new Map<number, number>()
  const seenVid = new Map<number, number>()
  vnsRaw.forEach((raw, i) => {
    const path = `vns[${i}]`
    if (!isObject(raw)) fail('bad-type', path, 'is not an object')
    const vni = raw['vni']
    if (!Number.isInteger(vni) || (vni as number) < 1 || (vni as number) > VNI_MAX) {
      fail('bad-vni', `${path}.vni`, `is ${JSON.stringify(vni)}, expected an integer 1..${VNI_MAX}`)
    }
    const prev = seenVni.get(vni as number)
    if (prev !== undefined) fail('duplicate-vni', `${path}.vni`, `repeats VNI ${vni} of vns[${prev}]`)
    seenVni.set(vni as number, i)
    const vn: VnPolicy = { vni: vni as number, vsiTypes: 'any' }
    const vid = raw['vid']
    if (vid !== undefined) {
      if (typeof vid !== 'number' || !isUsableVid(vid)) {
        fail('bad-vid', `${path}.vid`, `is ${JSON.stringify(vid)}, expected a VID ${VID_MIN}..${VID_MAX}`)
      }
      const other = seenVid.get(vid)
      if (other !== undefined) fail('duplicate-vid', `${path}.vid`, `repeats VID ${vid} of vns[${other}]`)
      seenVid.set(vid, i)
      vn.vid = vid
    }
    const name = optString(raw, 'name', path)
    if (name !== undefined) vn.name = name
    const tenant = optString(raw, 'tenant', path)
    if (tenant !== undefined) vn.tenant = tenant
    const types = raw['vsiTypes'] ?? 'any'
    if (types !== 'any') {
      if (!Array.isArray(types)) fail('bad-vsi-type', `${path}.vsiTypes`, 'is neither "any" nor a list')
      vn.vsiTypes = types.map((t, j) => {
        const tp = `${path}.vsiTypes[${j}]`
        if (!isObject(t) || !isUint(t['typeId'], 0xffffff)) fail('bad-vsi-type', tp, 'needs typeId 0..16777215')
        const ref: VsiTypeRef = { typeId: t['typeId'] as number }
        if (t['version'] !== undefined) {
          if (!isUint(t['version'], 0xff)) fail('bad-vsi-type', `${tp}.version`, 'is not 0..255')
          ref.version = t['version'] as number
        }
        return ref
      })
    }
    vns.push(vn)
  })
  const policy: Policy = {
    revision,
    vns,
    openVnis: bool(doc, 'openVnis', false),
    openVsiTypes: bool(doc, 'openVsiTypes', false),
    hostKeys: [],
    lagGroups: [],
  }
  const pool = doc['vidPool']
  if (pool !== undefined) {
    if (typeof pool !== 'string') fail('bad-pool', 'vidPool', 'is not a string such as "100-199,300"')
    try {
      parseVidRanges(pool)
    } catch (e) {
      if (e instanceof VidPoolError) fail('bad-pool', 'vidPool', `is invalid: ${e.message}`)
      throw e
    }
    policy.vidPool = pool
  }
  const keys = doc['hostKeys'] ?? []
  if (!Array.isArray(keys)) fail('bad-type', 'hostKeys', 'is not a list')
  policy.hostKeys = keys.map((k, i) => {
    if (!isObject(k) || typeof k['keyId'] !== 'string' || k['keyId'] === '') {
      fail('bad-type', `hostKeys[${i}].keyId`, 'is not a non-empty string')
    }
    return { keyId: k['keyId'] as string, hosts: stringArray(k['hosts'], `hostKeys[${i}].hosts`) }
  })
  const lags = doc['lagGroups'] ?? []
  if (!Array.isArray(lags)) fail('bad-type', 'lagGroups', 'is not a list')
  const lagNames = new Set<string>()
  policy.lagGroups = lags.map((g, i) => {
    const path = `lagGroups[${i}]`
    if (!isObject(g) || typeof g['name'] !== 'string' || g['name'] === '') fail('bad-lag-group', `${path}.name`, 'is not a non-empty string')
    if (lagNames.has(g['name'] as string)) fail('bad-lag-group', `${path}.name`, `repeats "${g['name']}"`)
    lagNames.add(g['name'] as string)
    const ports = stringArray(g['ports'], `${path}.ports`)
    if (ports.length === 0) fail('bad-lag-group', `${path}.ports`, 'is empty')
    return { name: g['name'] as string, ports: ports as PortName[], peerSwitches: stringArray(g['peerSwitches'], `${path}.peerSwitches`) }
  })
  return policy
}

/**
 * The fleet's policy (`shared/api/policy.ts`, schema v1) as the resource manager uses it, run
 * through `validatePolicy()` (duplicate VNIs or VIDs, overlapping pool ranges are refused
 * here even though the wire schema lets them through). A fleet policy is closed: unknown VNIs
 * and VSI types are refused. An empty `allowedVsiTypes` admits any type (wire rule 3). Host
 * keys keep only their ids here: the secrets stay with the authentication code.
 */
export function policyFromSwitchPolicy(sp: SwitchPolicy): Policy {
  return validatePolicy({
    revision: sp.revision,
    vns: sp.vns.map((vn) => ({
      vni: vn.vni,
      name: vn.name,
      tenant: vn.tenant,
      ...(vn.vid === undefined ? {} : { vid: vn.vid }),
      vsiTypes:
        vn.allowedVsiTypes.length === 0
          ? 'any'
          : vn.allowedVsiTypes.map((t) => (t.typeVersion === undefined ? { typeId: t.typeId } : { typeId: t.typeId, version: t.typeVersion })),
    })),
    ...(sp.vidPool.length === 0 ? {} : { vidPool: formatVidRanges(sp.vidPool) }),
    openVnis: false,
    openVsiTypes: false,
    hostKeys: sp.hosts.flatMap((h) => h.keys.map((k) => ({ keyId: String(k.keyId), hosts: [h.hostId, ...h.stationMacs] }))),
    lagGroups: sp.lagGroups.map((g) => ({ name: g.name, ports: g.ports, peerSwitches: g.switches })),
  })
}

/** Why the policy refused an entry; kebab-case, for logs and events. */
export type RefusalReason =
  | 'groupid-upper-octet'
  | 'groupid-zero'
  | 'unknown-vni'
  | 'unknown-vsi-type'
  | 'vn-not-allowed'
  | 'vsi-type-ambiguous'
  | 'bad-mac'
  | 'bad-vid'
  | 'vid-taken'
  | 'vid-mismatch'
  | 'pool-exhausted'

/** Where an entry's VSI goes: a VN (with its static VID, if any) or a per-type local VLAN. */
export type EntryTarget =
  | { kind: 'vn'; vni: number; staticVid?: number }
  | { kind: 'local'; typeId: number; typeVersion: number }

export interface Refusal {
  error: VdpError
  /** Not transient (status Hard bit). */
  hard: boolean
  reason: RefusalReason
}

export type EntryVerdict = { ok: true; target: EntryTarget } | ({ ok: false } & Refusal)

/** `policy` indexed for the per-request decisions. Build once per policy revision. */
export interface CompiledPolicy {
  readonly policy: Policy
  readonly vnByVni: ReadonlyMap<number, VnPolicy>
  /** VN owning a static VID. */
  readonly vniByStaticVid: ReadonlyMap<number, number>
}

export function compilePolicy(policy: Policy): CompiledPolicy {
  const vnByVni = new Map<number, VnPolicy>()
  const vniByStaticVid = new Map<number, number>()
  for (const vn of policy.vns) {
    vnByVni.set(vn.vni, vn)
    if (vn.vid !== undefined) vniByStaticVid.set(vn.vid, vn.vni)
  }
  return { policy, vnByVni, vniByStaticVid }
}

const typeMatches = (ref: VsiTypeRef, typeId: number, version: number): boolean =>
  ref.typeId === typeId && (ref.version === undefined || ref.version === version)

/** VN admits the type. */
export function vnAllowsType(vn: VnPolicy, typeId: number, version: number): boolean {
  return vn.vsiTypes === 'any' || vn.vsiTypes.some((r) => typeMatches(r, typeId, version))
}

/** The type is listed explicitly by some VN. */
function typeIsListed(cp: CompiledPolicy, typeId: number, version: number): boolean {
  return cp.policy.vns.some((vn) => vn.vsiTypes !== 'any' && vn.vsiTypes.some((r) => typeMatches(r, typeId, version)))
}

const refuse = (error: VdpError, reason: RefusalReason, hard = true): EntryVerdict => ({ ok: false, error, hard, reason })

const vnTarget = (vn: VnPolicy): EntryTarget =>
  vn.vid === undefined ? { kind: 'vn', vni: vn.vni } : { kind: 'vn', vni: vn.vni, staticVid: vn.vid }

/**
 * Policy decision for one filter entry of a request: which VN (or local per-type VLAN) the
 * VSI joins. VID availability is the pool's business (resource manager); an explicit VID is
 * used here only to pick among several VNs a VSI type may join (formats 1/2).
 */
export function resolveEntry(cp: CompiledPolicy, tlv: VsiTlv, entry: FilterEntry): EntryVerdict {
  const { typeId, typeVersion } = tlv
  if (entry.mac !== undefined && !isValidUnicastMac(entry.mac)) return refuse(VdpError.InvalidVidGroupIdOrMac, 'bad-mac')
  if (entry.vid !== 0 && !isUsableVid(entry.vid)) return refuse(VdpError.InvalidVidGroupIdOrMac, 'bad-vid')
  if (tlv.filterFormat === FilterFormat.GroupVid || tlv.filterFormat === FilterFormat.GroupMacVid) {
    const groupId = entry.groupId ?? 0
    // 802.1Qcy: VNI in the low 24 bits, upper octet all zeros.
    if (groupId >>> 24 !== 0) return refuse(VdpError.InvalidVidGroupIdOrMac, 'groupid-upper-octet')
    if (groupId === 0) return refuse(VdpError.InvalidVidGroupIdOrMac, 'groupid-zero')
    const vn = cp.vnByVni.get(groupId)
    if (vn === undefined) {
      if (!cp.policy.openVnis) return refuse(VdpError.InvalidVidGroupIdOrMac, 'unknown-vni')
      if (!cp.policy.openVsiTypes && !typeIsListed(cp, typeId, typeVersion)) {
        return refuse(VdpError.OtherFailure, 'unknown-vsi-type')
      }
      return { ok: true, target: { kind: 'vn', vni: groupId } }
    }
    if (vnAllowsType(vn, typeId, typeVersion)) return { ok: true, target: vnTarget(vn) }
    if (typeIsListed(cp, typeId, typeVersion) || cp.policy.openVsiTypes) return refuse(VdpError.OtherFailure, 'vn-not-allowed')
    return refuse(VdpError.OtherFailure, 'unknown-vsi-type')
  }
  // Formats 1/2: the VSI type names the VN (the VSI type is the port profile).
  const listed = cp.policy.vns.filter((vn) => vn.vsiTypes !== 'any' && vnAllowsType(vn, typeId, typeVersion))
  if (listed.length === 1) return { ok: true, target: vnTarget(listed[0]!) }
  if (listed.length > 1) {
    if (entry.vid !== 0) {
      const byVid = listed.find((vn) => vn.vid === entry.vid)
      if (byVid) return { ok: true, target: vnTarget(byVid) }
    }
    return refuse(VdpError.OtherFailure, 'vsi-type-ambiguous')
  }
  if (entry.vid !== 0) {
    // A static VN VID names its VN directly, if that VN admits any type.
    const vni = cp.vniByStaticVid.get(entry.vid)
    const vn = vni === undefined ? undefined : cp.vnByVni.get(vni)
    if (vn !== undefined && vn.vsiTypes === 'any') return { ok: true, target: vnTarget(vn) }
  }
  if (cp.policy.openVsiTypes) return { ok: true, target: { kind: 'local', typeId, typeVersion } }
  return refuse(VdpError.OtherFailure, 'unknown-vsi-type')
}
