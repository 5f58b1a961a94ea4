/**
 * Organizationally defined TLV (type 127): OUI(3) then data. Kept losslessly so an unknown
 * OUI survives re-encoding; our extension TLVs are decoded from `data` by their own module.
 *
 * @module
 */
import { DecodeError } from '../wire/errors.ts'
import type { Reader } from '../wire/reader.ts'
import type { Writer } from '../wire/writer.ts'
import { VdpTlvType } from './constants.ts'
import { encodeTlvHeader, tlvLength } from './tlv.ts'
import type { OrgTlv } from './types.ts'

export function decodeOrgTlv(r: Reader, offset: number): OrgTlv {
  if (r.remaining < 3) {
    throw new DecodeError('bad-length', offset, `Cannot decode organizational TLV at offset ${offset}: length ${r.remaining} is shorter than an OUI`)
  }
  const oui = r.u24('OUI')
  return { kind: 'org', oui, data: r.rest() }
}

export const orgTlvLength = (tlv: OrgTlv): number => tlvLength(3 + tlv.data.length)

export function encodeOrgTlv(w: Writer, tlv: OrgTlv): void {
  encodeTlvHeader(w, VdpTlvType.Org, 3 + tlv.data.length)
  w.u24(tlv.oui, 'OUI')
  w.bytes(tlv.data)
}
