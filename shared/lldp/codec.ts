/**
 * LLDPDU codec (IEEE 802.1AB-2016 8.4-8.5) for the Nearest Customer Bridge agent that
 * carries the EVB TLV. Mandatory TLVs first and in order: Chassis ID (1), Port ID (2),
 * TTL (3); then optional TLVs; End (0) closes the PDU, zero padding may follow. Optional
 * TLVs are kept as `{ type, body }` (type-127 bodies include the OUI) so unknown ones
 * survive re-encoding.
 *
 * @module
 */
import { DecodeError, EncodeError } from '../wire/errors.ts'
import { Reader } from '../wire/reader.ts'
import { Writer } from '../wire/writer.ts'
import { decodeTlvHeader, encodeTlvHeader } from '../vdp/tlv.ts'
import { decodeEvbTlv, encodeEvbTlv, EVB_OUI, EVB_SUBTYPE, EVB_TLV_INFO_LENGTH, type EvbTlv } from '../evb/evb-tlv.ts'

export const LldpTlvType = { End: 0, ChassisId: 1, PortId: 2, Ttl: 3, Org: 127 } as const

/** Chassis ID subtype 4 = MAC address; Port ID subtype 3 = MAC address (802.1AB 8.5.2/8.5.3). */
export const CHASSIS_ID_SUBTYPE_MAC = 4
export const PORT_ID_SUBTYPE_MAC = 3
export const PORT_ID_SUBTYPE_INTERFACE_NAME = 5

export interface LldpId {
  subtype: number
  value: Uint8Array
}

export interface LldpTlv {
  type: number
  body: Uint8Array
}

export interface Lldpdu {
  chassisId: LldpId
  portId: LldpId
  /** Time to live, seconds; 0 = shutdown (the peer leaves). */
  ttlS: number
  /** Optional TLVs in order, End excluded. */
  tlvs: LldpTlv[]
}

function decodeId(r: Reader, expectedType: number, what: string): LldpId {
  const h = decodeTlvHeader(r)
  if (h.type !== expectedType) {
    throw new DecodeError('bad-lldp', h.offset, `Cannot decode LLDPDU: TLV at offset ${h.offset} has type ${h.type}, expected ${what} (${expectedType})`)
  }
  if (h.length < 2 || h.length > 256) {
    throw new DecodeError('bad-lldp', h.offset, `Cannot decode LLDPDU: ${what} length ${h.length} not in 2..256`)
  }
  const body = r.sub(h.length, what)
  return { subtype: body.u8('subtype'), value: body.rest() }
}

/**
 * @example
 * ```ts
 * const pdu = decodeLldpdu(frame.payload); const evb = findEvbTlv(pdu)
 * ```
 */
export function decodeLldpdu(bytes: Uint8Array): Lldpdu {
  const r = new Reader(bytes)
  const chassisId = decodeId(r, LldpTlvType.ChassisId, 'Chassis ID')
  const portId = decodeId(r, LldpTlvType.PortId, 'Port ID')
  const th = decodeTlvHeader(r)
  if (th.type !== LldpTlvType.Ttl || th.length < 2) {
    throw new DecodeError('bad-lldp', th.offset, `Cannot decode LLDPDU: TLV at offset ${th.offset} is type ${th.type} length ${th.length}, expected TTL`)
  }
  const ttlS = r.sub(th.length, 'TTL').u16('TTL')
  const tlvs: LldpTlv[] = []
  while (r.remaining >= 2) {
    const h = decodeTlvHeader(r)
    if (h.type === LldpTlvType.End) break
    if (h.length > r.remaining) {
      throw new DecodeError('truncated', h.offset, `Cannot decode LLDP TLV at offset ${h.offset}: length ${h.length} exceeds remaining ${r.remaining} bytes`)
    }
    tlvs.push({ type: h.type, body: r.bytes(h.length) })
  }
  return { chassisId, portId, ttlS, tlvs }
}

export function lldpduLength(pdu: Lldpdu): number {
  let n = 2 + 1 + pdu.chassisId.value.length + 2 + 1 + pdu.portId.value.length + 2 + 2
  for (const t of pdu.tlvs) n += 2 + t.body.length
  return n + 2
}

export function encodeLldpdu(pdu: Lldpdu): Uint8Array {
  const w = new Writer(lldpduLength(pdu))
  for (const [type, id] of [[LldpTlvType.ChassisId, pdu.chassisId], [LldpTlvType.PortId, pdu.portId]] as const) {
    if (id.value.length < 1 || id.value.length > 255) throw new EncodeError(`Cannot encode LLDP ID: length ${id.value.length} not in 1..255`)
    encodeTlvHeader(w, type, 1 + id.value.length)
    w.u8(id.subtype)
    w.bytes(id.value)
  }
  encodeTlvHeader(w, LldpTlvType.Ttl, 2)
  w.u16(pdu.ttlS, 'TTL')
  for (const t of pdu.tlvs) {
    encodeTlvHeader(w, t.type, t.body.length)
    w.bytes(t.body)
  }
  w.u16(0, 'End TLV')
  return w.toBytes()
}

const isEvb = (t: LldpTlv): boolean =>
  t.type === LldpTlvType.Org && t.body.length >= 4 &&
  ((t.body[0]! << 16) | (t.body[1]! << 8) | t.body[2]!) === EVB_OUI && t.body[3] === EVB_SUBTYPE

/** The EVB TLV of an LLDPDU, if any. Throws `DecodeError('bad-evb-tlv')` when it is malformed. */
export function findEvbTlv(pdu: Lldpdu): EvbTlv | undefined {
  const t = pdu.tlvs.find(isEvb)
  return t === undefined ? undefined : decodeEvbTlv(new Reader(t.body))
}

/** An LLDP TLV carrying `evb`. */
export function evbLldpTlv(evb: EvbTlv): LldpTlv {
  const w = new Writer(EVB_TLV_INFO_LENGTH)
  encodeEvbTlv(w, evb)
  return { type: LldpTlvType.Org, body: w.toBytes() }
}
