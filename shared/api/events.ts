/**
 * Fleet events, schema version 1: what a switch agent publishes (one CBOR map per state
 * change, topic `<prefix>/switch/<switchId>/events`) and the edge consumes. `docs/events.cddl`
 * is the same schema in CDDL; a test keeps the two in step.
 *
 * Rules:
 * 1. `(switchId, bootId, seq)` identifies an event: consumers deduplicate on it (QoS 1
 *    delivers at least once). `bootId` is random per agent start, `seq` starts at 0 and grows
 *    by one per event within a boot, `bootTime` is the wall-clock start of that boot, so
 *    `(bootTime, bootId, seq)` orders all events of one switch.
 * 2. `time` is the agent's wall clock in ms since the epoch when the state changed.
 * 3. Unknown fields are ignored, unknown `kind`s are rejected, a different `v` is rejected
 *    with 'unsupported-version'.
 * 4. After `agent-started`, the agent re-announces every VSI it still holds (an
 *    `vsi-associated` / `vsi-pre-associated` of the new boot); consumers treat a VSI last
 *    reported in an older boot as gone.
 *
 * @module
 */
import type { Mac } from '../ethernet/mac.ts'
import type { SwitchId } from '../ids.ts'
import { decodeCbor, decodeVersioned, encodeCbor, validateVersioned, ApiDecodeError } from './cbor.ts'
import {
  bootIdField,
  groupIdField,
  ipv4Field,
  ipv6Field,
  macField,
  managerIdField,
  portField,
  reasonField,
  seqField,
  switchIdField,
  timeMsField,
  typeIdField,
  typeVersionField,
  usableVidField,
  vidField,
  vniField,
  vsiIdField,
  vsiIdFormatField,
  idField,
} from './fields.ts'
import { array, boolean, integer, literal, optional, record, tagged, text, type Infer } from './schema.ts'

export const EVENT_SCHEMA_VERSION = 1
/** Largest encoded event accepted (bytes). A VSI event with 64 MACs and 64 IPs fits. */
export const EVENT_BYTES_MAX = 16 * 1024
/** Largest batch a single ingest call accepts (events). */
export const EVENT_BATCH_MAX = 1000
export const ADDRESSES_MAX = 64

/** Migration indicator (RFC 8394 Req-13 and our extension): 'unknown' = no guidance given. */
export type MigrationIndicator = 'none' | 'to' | 'from' | 'unknown'

const header = {
  v: literal(EVENT_SCHEMA_VERSION),
  switchId: switchIdField,
  bootId: bootIdField,
  /** Wall-clock start of this boot, ms since the epoch. */
  bootTime: timeMsField,
  seq: seqField,
  time: timeMsField,
}

const vsiFields = {
  ...header,
  port: portField,
  /** Source MAC of the station (its ECP peer). */
  stationMac: macField,
  managerId: managerIdField,
  typeId: typeIdField,
  typeVersion: typeVersionField,
  vsiIdFormat: vsiIdFormatField,
  vsiId: vsiIdField,
  /** 32-bit GroupID of the filter entries (formats 3 and 4). */
  groupId: optional(groupIdField),
  /** VNI of the VN the VSI joins: the GroupID's low 24 bits (802.1Qcy). */
  vni: optional(vniField),
  /** VID the bridge chose (0 in a rejection of a null-VID request). */
  vid: vidField,
  macs: array(macField, ADDRESSES_MAX),
  ipv4: optional(array(ipv4Field, ADDRESSES_MAX)),
  ipv6: optional(array(ipv6Field, ADDRESSES_MAX)),
  migration: literal<MigrationIndicator>('none', 'to', 'from', 'unknown'),
  /** Links both ends of one migration when the station supplies it. */
  migrationId: optional(idField),
  reason: reasonField,
}

const initiator = optional(literal('station', 'bridge'))

const agentStarted = record({
  ...header,
  kind: literal('agent-started'),
  agentVersion: text({ max: 64 }),
  role: literal('bridge', 'station'),
  ports: array(portField, 1024),
  reason: reasonField,
})
const vsiAssociated = record({ ...vsiFields, kind: literal('vsi-associated') })
const vsiPreAssociated = record({ ...vsiFields, kind: literal('vsi-pre-associated') })
/** Associate to pre-associate (extension): the VSI keeps its resources but stops forwarding. */
const vsiDeactivated = record({ ...vsiFields, kind: literal('vsi-deactivated'), initiator })
const vsiDeAssociated = record({ ...vsiFields, kind: literal('vsi-de-associated'), initiator })
const vsiRejected = record({
  ...vsiFields,
  kind: literal('vsi-rejected'),
  /** VDP response error code (`VdpError`), 1..15. */
  error: integer(1, 15),
  /** The Keep bit: the state before the request stays. */
  keep: boolean,
})
/** The bridge dropped the VSI: no keep-alive within resourceWaitDelay (802.1Q 41.5.5.9). */
const vsiTimeout = record({ ...vsiFields, kind: literal('vsi-timeout') })
const peerUp = record({
  ...header,
  kind: literal('peer-up'),
  port: portField,
  stationMac: macField,
  /** Extensions both sides showed support for (e.g. 'auth', 'ip', 'migration', 'lag'). */
  extensions: optional(array(text({ min: 1, max: 32 }), 16)),
  reason: reasonField,
})
const peerDown = record({ ...header, kind: literal('peer-down'), port: portField, stationMac: macField, reason: reasonField })
const vlanAllocated = record({ ...header, kind: literal('vlan-allocated'), vid: usableVidField, vni: optional(vniField), reason: reasonField })
const vlanReleased = record({ ...header, kind: literal('vlan-released'), vid: usableVidField, vni: optional(vniField), reason: reasonField })

/** The event schema: a union over `kind`. `eventSchema.variants[kind].fields` lists fields. */
export const eventSchema = tagged('kind', {
  'agent-started': agentStarted,
  'vsi-associated': vsiAssociated,
  'vsi-pre-associated': vsiPreAssociated,
  'vsi-deactivated': vsiDeactivated,
  'vsi-de-associated': vsiDeAssociated,
  'vsi-rejected': vsiRejected,
  'vsi-timeout': vsiTimeout,
  'peer-up': peerUp,
  'peer-down': peerDown,
  'vlan-allocated': vlanAllocated,
  'vlan-released': vlanReleased,
})

export type FleetEvent = Infer<typeof eventSchema>
export type EventKind = FleetEvent['kind']
export type VsiEvent = Extract<FleetEvent, { stationMac: Mac; vsiId: unknown }>
export type VsiEventKind = VsiEvent['kind']
export type PeerEvent = Extract<FleetEvent, { kind: 'peer-up' | 'peer-down' }>
export type VlanEvent = Extract<FleetEvent, { kind: 'vlan-allocated' | 'vlan-released' }>
export type AgentStartedEvent = Extract<FleetEvent, { kind: 'agent-started' }>

export const EVENT_KINDS = Object.keys(eventSchema.variants) as EventKind[]
export const VSI_EVENT_KINDS: readonly VsiEventKind[] = [
  'vsi-associated',
  'vsi-pre-associated',
  'vsi-deactivated',
  'vsi-de-associated',
  'vsi-rejected',
  'vsi-timeout',
]

export const isVsiEvent = (e: FleetEvent): e is VsiEvent => (VSI_EVENT_KINDS as readonly string[]).includes(e.kind)

/** The identity used for deduplication. */
export interface EventId {
  switchId: SwitchId
  bootId: string
  seq: number
}

/** Validates a decoded (not yet trusted) value as an event; throws `ApiDecodeError`. */
export function validateEvent(value: unknown): FleetEvent {
  return validateVersioned(value, EVENT_SCHEMA_VERSION, eventSchema)
}

/**
 * Encodes one event to CBOR after validating it, so a producer cannot put on the wire what a
 * consumer would reject.
 * @example
 * ```ts
 * const bytes = encodeEvent({ v: 1, kind: 'peer-down', switchId: switchId('tor1'), bootId: 'b00t0001',
 *   bootTime: 1_700_000_000_000, seq: 7, time: 1_700_000_000_500, port: portName('Ethernet8'),
 *   stationMac: parseMac('02:00:00:00:00:01'), reason: 'ttl-expired' })
 * decodeEvent(bytes).kind // 'peer-down'
 * ```
 */
export function encodeEvent(event: FleetEvent): Uint8Array {
  const bytes = encodeCbor(validateEvent(event))
  if (bytes.byteLength > EVENT_BYTES_MAX) {
    throw new ApiDecodeError('too-large', `Cannot encode event: ${bytes.byteLength} bytes exceed ${EVENT_BYTES_MAX}`)
  }
  return bytes
}

/** Decodes and validates one event; throws `ApiDecodeError` with a code. */
export function decodeEvent(bytes: Uint8Array): FleetEvent {
  return decodeVersioned(bytes, EVENT_BYTES_MAX, EVENT_SCHEMA_VERSION, eventSchema)
}

/** One event or an array of events (the HTTP ingest body); validation stops at the first error. */
export function decodeEventBatch(bytes: Uint8Array, batchMax = EVENT_BATCH_MAX): FleetEvent[] {
  const value = decodeCbor(bytes, EVENT_BYTES_MAX * Math.min(batchMax, 64))
  if (!Array.isArray(value)) {
    if (bytes.byteLength > EVENT_BYTES_MAX) {
      throw new ApiDecodeError('too-large', `Cannot decode event: ${bytes.byteLength} bytes exceed ${EVENT_BYTES_MAX}`)
    }
    return [validateEvent(value)]
  }
  if (value.length > batchMax) {
    throw new ApiDecodeError('too-large', `Cannot accept batch: ${value.length} events exceed ${batchMax}`)
  }
  return value.map((v, i) => {
    try {
      return validateEvent(v)
    } catch (err) {
      if (err instanceof ApiDecodeError) throw new ApiDecodeError(err.code, `Event ${i}: ${err.message}`, `[${i}]${err.path ? '.' + err.path : ''}`)
      throw err
    }
  })
}

export function encodeEventBatch(events: readonly FleetEvent[]): Uint8Array {
  return encodeCbor(events.map(validateEvent))
}

/** Dedup key of an event. */
export const eventKey = (e: EventId): string => `${e.switchId}\u0000${e.bootId}\u0000${e.seq}`

/**
 * Orders two events of the same switch: by boot (bootTime, then bootId), then by seq.
 * Negative when `a` happened before `b`.
 */
export function compareSwitchOrder(
  a: { bootTime: number; bootId: string; seq: number },
  b: { bootTime: number; bootId: string; seq: number },
): number {
  if (a.bootTime !== b.bootTime) return a.bootTime - b.bootTime
  if (a.bootId !== b.bootId) return a.bootId < b.bootId ? -1 : 1
  return a.seq - b.seq
}

