/**
 * VSI Manager ID TLV (type 5, length 16; 802.1Q-2018 41.2.2). Opaque 16 octets, part of
 * the VSI's identity. Exactly one per ECPDU, first (41 intro; lldpad `vdp22_ecp22in`).
 *
 * @module
 */
import type { ManagerId } from '../ids.ts'
import { DecodeError } from '../wire/errors.ts'
import type { Reader } from '../wire/reader.ts'
import type { Writer } from '../wire/writer.ts'
import { MANAGER_ID_LENGTH, VdpTlvType } from './constants.ts'
import { encodeTlvHeader, tlvLength } from './tlv.ts'

export function decodeManagerIdTlv(r: Reader, length: number, offset: number): ManagerId {
  if (length !== MANAGER_ID_LENGTH) {
    throw new DecodeError('bad-length', offset, `Cannot decode Manager ID TLV at offset ${offset}: length ${length}, expected 16`)
  }
  return r.hex(MANAGER_ID_LENGTH, 'Manager ID') as ManagerId
}

export const managerIdTlvLength = (): number => tlvLength(MANAGER_ID_LENGTH)

export function encodeManagerIdTlv(w: Writer, id: ManagerId): void {
  encodeTlvHeader(w, VdpTlvType.ManagerId, MANAGER_ID_LENGTH)
  w.hex(id, MANAGER_ID_LENGTH, 'Manager ID')
}
