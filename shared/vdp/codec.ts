/**
 * VDP ULPDU codec (802.1Q-2018 clause 41 as lldpad `vdp22` speaks it):
 *
 * ```
 * Manager ID TLV (exactly one, first) | association TLVs (1..n) | org/other TLVs | [End TLV]
 * ```
 *
 * Receive rules (lldpad `vdp22_ecp22in`, spec §2.1): the first TLV must be a Manager ID TLV
 * (`missing-manager-id`), a second one drops the PDU (`duplicate-manager-id`), any length
 * overrun drops the PDU (`truncated`), TLV type 0 ends the PDU (End TLV or zero padding up
 * to the Ethernet minimum), reserved types are kept as `unknown`, type 127 as `org`.
 *
 * @module
 */
import { DecodeError } from '../wire/errors.ts'
import { Reader } from '../wire/reader.ts'
import { Writer } from '../wire/writer.ts'
import { TLV_HEADER_LENGTH, VdpTlvType } from './constants.ts'
import { decodeManagerIdTlv, encodeManagerIdTlv, managerIdTlvLength } from './manager-id-tlv.ts'
import { decodeOrgTlv, encodeOrgTlv, orgTlvLength } from './org-tlv.ts'
import { decodeTlvHeader, encodeTlvHeader, tlvLength } from './tlv.ts'
import type { ManagerId } from '../ids.ts'
import type { VdpPdu, VdpTlv } from './types.ts'
import { decodeVsiIdentity, decodeVsiTlv, encodeVsiTlv, type VsiIdentity, vsiTlvLength } from './vsi-tlv.ts'

/** An association TLV that failed to decode but whose identity could be read. */
export interface InvalidVsiTlv {
  error: DecodeError
  /** Present when the first 23 octets of the body were readable. */
  identity?: VsiIdentity
}

export interface TolerantVdpPdu {
  pdu: VdpPdu
  /** Association TLVs that were malformed; the PDU's other TLVs still decoded. */
  invalid: InvalidVsiTlv[]
}

function decode(bytes: Uint8Array, tolerant: boolean): TolerantVdpPdu {
  const r = new Reader(bytes)
  if (r.remaining < TLV_HEADER_LENGTH) {
    throw new DecodeError('missing-manager-id', 0, `Cannot decode VDP PDU: ${r.remaining} bytes, no Manager ID TLV`)
  }
  const first = decodeTlvHeader(r)
  if (first.type !== VdpTlvType.ManagerId) {
    throw new DecodeError('missing-manager-id', 0, `Cannot decode VDP PDU: first TLV has type ${first.type}, expected Manager ID (5)`)
  }
  const managerId: ManagerId = decodeManagerIdTlv(r.sub(first.length, 'Manager ID TLV'), first.length, first.offset)
  const tlvs: VdpTlv[] = []
  const invalid: InvalidVsiTlv[] = []
  let endTlv = false
  while (!r.atEnd) {
    // A single trailing octet can only be padding.
    if (r.remaining === 1 && r.peekU8() === 0) break
    const h = decodeTlvHeader(r)
    if (h.type === VdpTlvType.End) {
      endTlv = true
      break
    }
    if (h.length > r.remaining) {
      throw new DecodeError('truncated', h.offset, `Cannot decode TLV at offset ${h.offset}: length ${h.length} exceeds remaining ${r.remaining} bytes`)
    }
    const body = r.sub(h.length)
    switch (h.type) {
      case VdpTlvType.ManagerId:
        throw new DecodeError('duplicate-manager-id', h.offset, `Cannot decode VDP PDU: second Manager ID TLV at offset ${h.offset}`)
      case VdpTlvType.PreAssociate:
      case VdpTlvType.PreAssociateWithRr:
      case VdpTlvType.Associate:
      case VdpTlvType.DeAssociate:
        try {
          tlvs.push(decodeVsiTlv(body, h.type))
        } catch (e) {
          if (!tolerant || !(e instanceof DecodeError)) throw e
          invalid.push(invalidTlv(bytes, h.offset, h.length, h.type, e))
        }
        break
      case VdpTlvType.Org:
        tlvs.push(decodeOrgTlv(body, h.offset))
        break
      default:
        tlvs.push({ kind: 'unknown', type: h.type, body: body.rest() })
    }
  }
  return { pdu: { managerId, tlvs, endTlv }, invalid }
}

function invalidTlv(bytes: Uint8Array, offset: number, length: number, type: number, error: DecodeError): InvalidVsiTlv {
  try {
    return { error, identity: decodeVsiIdentity(new Reader(bytes, offset + TLV_HEADER_LENGTH, offset + TLV_HEADER_LENGTH + length), type) }
  } catch {
    return { error }
  }
}

/**
 * Strict decode: any malformed TLV throws `DecodeError`.
 * @example
 * ```ts
 * const pdu = decodeVdpPdu(ecpdu.ulpdu)
 * for (const tlv of pdu.tlvs) if (tlv.kind === 'vsi') handle(pdu.managerId, tlv)
 * ```
 */
export function decodeVdpPdu(bytes: Uint8Array): VdpPdu {
  return decode(bytes, false).pdu
}

/**
 * Decode that survives malformed association TLVs: PDU-level faults (no or duplicate
 * Manager ID, truncation) still throw; a bad association TLV is returned in `invalid` with
 * its identity when readable, so a bridge can answer "invalid format" for that VSI.
 */
export function decodeVdpPduTolerant(bytes: Uint8Array): TolerantVdpPdu {
  return decode(bytes, true)
}

export function vdpTlvLength(tlv: VdpTlv): number {
  switch (tlv.kind) {
    case 'vsi':
      return vsiTlvLength(tlv)
    case 'org':
      return orgTlvLength(tlv)
    case 'unknown':
      return tlvLength(tlv.body.length)
  }
}

export function vdpPduLength(pdu: VdpPdu): number {
  let n = managerIdTlvLength()
  for (const t of pdu.tlvs) n += vdpTlvLength(t)
  return n + (pdu.endTlv ? TLV_HEADER_LENGTH : 0)
}

export function encodeVdpTlv(w: Writer, tlv: VdpTlv): void {
  switch (tlv.kind) {
    case 'vsi':
      return encodeVsiTlv(w, tlv)
    case 'org':
      return encodeOrgTlv(w, tlv)
    case 'unknown':
      encodeTlvHeader(w, tlv.type, tlv.body.length)
      w.bytes(tlv.body)
  }
}

export function encodeVdpPdu(pdu: VdpPdu): Uint8Array {
  const w = new Writer(vdpPduLength(pdu))
  encodeVdpPduInto(w, pdu)
  return w.toBytes()
}

/** Writes `pdu` (`vdpPduLength(pdu)` octets) at the writer's offset, e.g. behind the headers. */
export function encodeVdpPduInto(w: Writer, pdu: VdpPdu): void {
  encodeManagerIdTlv(w, pdu.managerId)
  for (const t of pdu.tlvs) encodeVdpTlv(w, t)
  if (pdu.endTlv) w.u16(0, 'End TLV')
}

export { vsiTlvLength } from './vsi-tlv.ts'
