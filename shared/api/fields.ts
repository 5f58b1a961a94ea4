/**
 * Field schemas shared by the event, policy and command schemas: identifiers in the same
 * canonical form as `shared/ids.ts` and `shared/ethernet/mac.ts`, VLAN and VNI ranges.
 *
 * @module
 */
import { parseMac, type Mac } from '../ethernet/mac.ts'
import { managerIdFromHex, vsiIdFromHex, type ManagerId, type PortName, type SwitchId, type VsiIdHex } from '../ids.ts'
import type { VsiIdFormat } from '../vdp/constants.ts'
import { parseIpv4, parseIpv6 } from './ip.ts'
import { integer, literal, text, textAs, type Schema } from './schema.ts'

/** A switch id is one MQTT topic level: no `/`, `+`, `#`, at most 64 characters. */
export const SWITCH_ID_RE = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/
export const PORT_NAME_RE = /^[A-Za-z0-9][A-Za-z0-9._:/@-]{0,63}$/

export const switchIdField = text({ max: 64, pattern: SWITCH_ID_RE }) as Schema<SwitchId>
export const portField = text({ max: 64, pattern: PORT_NAME_RE }) as Schema<PortName>
/** Random per agent start; a UUID or hex. */
export const bootIdField = text({ min: 8, max: 64, pattern: /^[A-Za-z0-9-]+$/ })
/** Milliseconds since the Unix epoch. */
export const timeMsField = integer(0, Number.MAX_SAFE_INTEGER)
export const seqField = integer(0, Number.MAX_SAFE_INTEGER)
export const macField: Schema<Mac> = textAs(17, parseMac)
export const managerIdField: Schema<ManagerId> = textAs(32, managerIdFromHex)
export const vsiIdField: Schema<VsiIdHex> = textAs(36, vsiIdFromHex)
export const vsiIdFormatField = literal<VsiIdFormat>(1, 2, 3, 4, 5)
/** VSI Type ID, 24 bits (802.1Q 41.2.5). */
export const typeIdField = integer(0, 0xffffff)
/** VSI Type Version, 8 bits. */
export const typeVersionField = integer(0, 0xff)
/** 12-bit VID as it appears in a filter entry: 0 is the null VID. */
export const vidField = integer(0, 4095)
/** A VID a switch may allocate to a VN: 1..4094. */
export const usableVidField = integer(1, 4094)
/** 24-bit VXLAN Network Identifier. */
export const vniField = integer(0, 0xffffff)
/** 32-bit GroupID as carried in a filter entry (802.1Q 41.2.9). */
export const groupIdField = integer(0, 0xffffffff)
export const ipv4Field = textAs(15, parseIpv4)
export const ipv6Field = textAs(45, parseIpv6)
export const reasonField = text({ max: 200 })
/** Names of VNs, tenants, hosts, LAG groups. */
export const nameField = text({ min: 1, max: 64, pattern: /^[A-Za-z0-9][A-Za-z0-9 ._:-]*$/ })
export const idField = text({ min: 1, max: 64, pattern: /^[A-Za-z0-9][A-Za-z0-9._:-]*$/ })
