/**
 * Policy pushed by the edge to each switch, schema version 1: retained CBOR on
 * `<prefix>/switch/<switchId>/policy`. The switch applies the newest `revision` it has seen
 * and keeps it on disk, so it decides locally from its last policy when the edge is away.
 *
 * Rules:
 * 1. `hosts[].keys[].key` is secret: it exists only in this payload (the switch verifies the
 *    station's keyed MAC with it). Never log a policy; `redactPolicy()` gives a printable copy.
 * 2. VID pools use the agent's range shape (`agent/resources/vid-pool.ts` `VidRange`:
 *    inclusive `first..last`, VIDs 2..4094).
 * 3. A VN with an empty `allowedVsiTypes` admits any VSI type.
 *
 * @module
 */
import { decodeVersioned, encodeCbor, validateVersioned } from './cbor.ts'
import {
  idField,
  macField,
  managerIdField,
  nameField,
  portField,
  switchIdField,
  timeMsField,
  typeIdField,
  typeVersionField,
  vniField,
} from './fields.ts'
import { array, bytes, integer, literal, optional, record, refine, type Infer } from './schema.ts'

export const POLICY_SCHEMA_VERSION = 1
export const POLICY_BYTES_MAX = 1024 * 1024

/** Allowed VSI type: a Type ID and optionally one version (absent = any version). */
export const vsiTypeRefSchema = record({ typeId: typeIdField, typeVersion: optional(typeVersionField) })
export type VsiTypeRef = Infer<typeof vsiTypeRefSchema>

export const vidRangeSchema = refine(
  record({ first: integer(2, 4094), last: integer(2, 4094) }),
  (r) => (r.first > r.last ? `first ${r.first} is after last ${r.last}` : undefined),
)
export type PolicyVidRange = Infer<typeof vidRangeSchema>

export const policyVnSchema = record({
  name: nameField,
  vni: vniField,
  tenant: nameField,
  allowedVsiTypes: array(vsiTypeRefSchema, 256),
  /** Pin this VN to one VID on every switch (otherwise the switch picks from its pool). */
  vid: optional(integer(2, 4094)),
})
export type PolicyVn = Infer<typeof policyVnSchema>

export const hostKeySchema = record({
  /** Key identifier carried in the authentication TLV, 0..65535; rotation adds a new id. */
  keyId: integer(0, 0xffff),
  /** The secret, 16..64 octets. */
  key: bytes(16, 64),
  /** Optional end of validity, ms since the epoch: lets old keys overlap new ones. */
  notAfter: optional(timeMsField),
})
export type HostKey = Infer<typeof hostKeySchema>

export const policyHostSchema = record({
  hostId: idField,
  /** VSI Manager ID the host uses, when pinned. */
  managerId: optional(managerIdField),
  /** Station MACs the host sends VDP from. */
  stationMacs: array(macField, 16),
  keys: array(hostKeySchema, 8),
})
export type PolicyHost = Infer<typeof policyHostSchema>

export const lagGroupSchema = record({
  name: idField,
  /** Member ports on this switch. */
  ports: array(portField, 64, 1),
  /** Switches sharing the group (multi-chassis): the VID of a VN is the same on all. */
  switches: array(switchIdField, 8),
})
export type LagGroup = Infer<typeof lagGroupSchema>

export const switchPolicySchema = record({
  v: literal(POLICY_SCHEMA_VERSION),
  switchId: switchIdField,
  /** Increases with every change of anything the policy is made of. */
  revision: integer(0, Number.MAX_SAFE_INTEGER),
  issuedAt: timeMsField,
  vns: array(policyVnSchema, 4094),
  vidPool: array(vidRangeSchema, 256),
  hosts: array(policyHostSchema, 4096),
  lagGroups: array(lagGroupSchema, 64),
  /** Whether a station not listed in `hosts` may associate (authentication not required). */
  unknownHosts: literal('allow', 'deny'),
})
export type SwitchPolicy = Infer<typeof switchPolicySchema>

export function validatePolicy(value: unknown): SwitchPolicy {
  return validateVersioned(value, POLICY_SCHEMA_VERSION, switchPolicySchema)
}

export function encodePolicy(policy: SwitchPolicy): Uint8Array {
  return encodeCbor(validatePolicy(policy))
}

/** Decodes and validates a policy; throws `ApiDecodeError`. */
export function decodePolicy(bytes: Uint8Array): SwitchPolicy {
  return decodeVersioned(bytes, POLICY_BYTES_MAX, POLICY_SCHEMA_VERSION, switchPolicySchema)
}

/** A copy safe to log or show: key bytes replaced by their length. */
export function redactPolicy(policy: SwitchPolicy): unknown {
  return {
    ...policy,
    hosts: policy.hosts.map((h) => ({
      ...h,
      keys: h.keys.map((k) => ({ keyId: k.keyId, key: `<${k.key.length} bytes>`, ...(k.notAfter !== undefined ? { notAfter: k.notAfter } : {}) })),
    })),
  }
}

