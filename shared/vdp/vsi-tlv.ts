/**
 * VDP association TLV body (types 1..4; 802.1Q-2018 41.2.3-41.2.9, lldpad `vsi22_2tlv` /
 * `ptlv_2_vsi22`):
 *
 * ```
 * status(1) typeId(3) typeVersion(1) vsiIdFormat(1) vsiId(16) filterFormat(1) count(2) entries
 * ```
 *
 * Entry layouts by filter format (lldpad order, interoperated with Cisco DFA):
 * 1 `vidWord`, 2 `mac(6) vidWord`, 3 `groupId(4) vidWord`, 4 `groupId(4) mac(6) vidWord`,
 * with `vidWord = PS(1) PCP(3) VID(12)`.
 *
 * Rules: the TLV length must equal 25 + N·entrySize and N must be at least 1 (lldpad ignores
 * the TLV otherwise; we raise `DecodeError` so a bridge can answer "invalid format").
 *
 * @module
 */
import { macToBytes } from '../ethernet/mac.ts'
import type { VsiIdHex } from '../ids.ts'
import { DecodeError, EncodeError } from '../wire/errors.ts'
import type { Reader } from '../wire/reader.ts'
import type { Writer } from '../wire/writer.ts'
import {
  FILTER_ENTRY_LENGTH,
  type FilterFormat,
  STATUS_ERROR_MASK,
  STATUS_M_OR_HARD,
  STATUS_RESPONSE,
  STATUS_S_OR_KEEP,
  TYPE_BY_VSI_MODE,
  VID_MASK,
  VID_WORD_PCP_MASK,
  VID_WORD_PCP_SHIFT,
  VID_WORD_PS,
  VSIID_LENGTH,
  VSI_MODE_BY_TYPE,
  VSI_TLV_COUNT_LENGTH,
  VSI_TLV_FIXED_LENGTH,
  type VsiIdFormat,
  type VsiMode,
} from './constants.ts'
import { encodeTlvHeader, tlvLength } from './tlv.ts'
import type { FilterEntry, VsiId, VsiStatus, VsiTlv } from './types.ts'

/** Everything before the entries: enough to name the VSI in an error response. */
export interface VsiIdentity {
  mode: VsiMode
  status: VsiStatus
  typeId: number
  typeVersion: number
  vsiId: VsiId
  filterFormat: number
}

export const isFilterFormat = (n: number): n is FilterFormat => n >= 1 && n <= 4
export const isVsiIdFormat = (n: number): n is VsiIdFormat => n >= 1 && n <= 5

export function decodeStatus(octet: number): VsiStatus {
  // 0x80 is reserved: ignored on receipt.
  if (octet & STATUS_RESPONSE) {
    return {
      response: true,
      keep: (octet & STATUS_S_OR_KEEP) !== 0,
      hard: (octet & STATUS_M_OR_HARD) !== 0,
      error: octet & STATUS_ERROR_MASK,
    }
  }
  return { response: false, migratingFrom: (octet & STATUS_S_OR_KEEP) !== 0, migratingTo: (octet & STATUS_M_OR_HARD) !== 0 }
}

export function encodeStatus(s: VsiStatus): number {
  if (s.response) {
    if (!Number.isInteger(s.error) || s.error < 0 || s.error > 15) {
      throw new EncodeError(`Cannot encode status: error code ${s.error} is not in 0..15`)
    }
    return STATUS_RESPONSE | (s.keep ? STATUS_S_OR_KEEP : 0) | (s.hard ? STATUS_M_OR_HARD : 0) | s.error
  }
  return (s.migratingFrom ? STATUS_S_OR_KEEP : 0) | (s.migratingTo ? STATUS_M_OR_HARD : 0)
}

export function decodeVidWord(word: number): Pick<FilterEntry, 'vid' | 'ps' | 'pcp'> {
  return { vid: word & VID_MASK, ps: (word & VID_WORD_PS) !== 0, pcp: (word & VID_WORD_PCP_MASK) >>> VID_WORD_PCP_SHIFT }
}

export function encodeVidWord(e: Pick<FilterEntry, 'vid' | 'ps' | 'pcp'>): number {
  if (!Number.isInteger(e.vid) || e.vid < 0 || e.vid > VID_MASK || !Number.isInteger(e.pcp) || e.pcp < 0 || e.pcp > 7) {
    throw new EncodeError(`Cannot encode VID word: vid ${e.vid} (0..4095) or pcp ${e.pcp} (0..7) out of range`)
  }
  return (e.ps ? VID_WORD_PS : 0) | (e.pcp << VID_WORD_PCP_SHIFT) | e.vid
}

/** Reads the fixed part of an association TLV body (its first 23 octets). */
export function decodeVsiIdentity(r: Reader, type: number): VsiIdentity {
  const mode = VSI_MODE_BY_TYPE[type]
  if (mode === undefined) throw new DecodeError('bad-tlv-type', r.offset, `Cannot decode VSI TLV: type ${type} is not 1..4`)
  const status = decodeStatus(r.u8('status'))
  const typeId = r.u24('VSI type id')
  const typeVersion = r.u8('VSI type version')
  const formatAt = r.offset
  const format = r.u8('VSIID format')
  const id = r.hex(VSIID_LENGTH, 'VSIID') as VsiIdHex
  if (!isVsiIdFormat(format)) {
    throw new DecodeError('bad-vsiid-format', formatAt, `Cannot decode VSI TLV at offset ${formatAt}: VSIID format ${format} is not 1..5`)
  }
  const filterFormat = r.u8('filter info format')
  return { mode, status, typeId, typeVersion, vsiId: { format, id }, filterFormat }
}

/**
 * Decodes an association TLV body; `r` must span exactly the TLV's information string.
 * @example
 * ```ts
 * const tlv = decodeVsiTlv(reader.sub(header.length), header.type)
 * ```
 */
export function decodeVsiTlv(r: Reader, type: number): VsiTlv {
  const start = r.offset
  const bodyLength = r.remaining
  const identity = decodeVsiIdentity(r, type)
  const filterFormat = identity.filterFormat
  if (!isFilterFormat(filterFormat)) {
    throw new DecodeError('bad-filter-format', start + 22, `Cannot decode VSI TLV at offset ${start}: filter format ${filterFormat} is not 1..4`)
  }
  const countAt = r.offset
  const count = r.u16('number of entries')
  if (count === 0) {
    throw new DecodeError('bad-entry-count', countAt, `Cannot decode VSI TLV at offset ${start}: number of entries is 0`)
  }
  const expected = VSI_TLV_FIXED_LENGTH + VSI_TLV_COUNT_LENGTH + count * FILTER_ENTRY_LENGTH[filterFormat]
  if (bodyLength !== expected) {
    throw new DecodeError(
      'bad-length',
      start,
      `Cannot decode VSI TLV at offset ${start}: length ${bodyLength} but ${count} entries of format ${filterFormat} need ${expected}`,
    )
  }
  const entries: FilterEntry[] = []
  for (let i = 0; i < count; i++) entries.push(decodeFilterEntry(r, filterFormat))
  // A literal, not a spread of `identity`: one shape for every decoded TLV.
  return {
    kind: 'vsi',
    mode: identity.mode,
    status: identity.status,
    typeId: identity.typeId,
    typeVersion: identity.typeVersion,
    vsiId: identity.vsiId,
    filterFormat,
    entries,
  }
}

export function decodeFilterEntry(r: Reader, format: FilterFormat): FilterEntry {
  switch (format) {
    // Object literals rather than spreads: one allocation and a fixed shape per format.
    case 1: {
      const word = r.u16('VID word')
      return { vid: word & VID_MASK, ps: (word & VID_WORD_PS) !== 0, pcp: (word & VID_WORD_PCP_MASK) >>> VID_WORD_PCP_SHIFT }
    }
    case 2: {
      const mac = r.mac('MAC')
      const word = r.u16('VID word')
      return { vid: word & VID_MASK, ps: (word & VID_WORD_PS) !== 0, pcp: (word & VID_WORD_PCP_MASK) >>> VID_WORD_PCP_SHIFT, mac }
    }
    case 3: {
      const groupId = r.u32('GroupID')
      const word = r.u16('VID word')
      return { vid: word & VID_MASK, ps: (word & VID_WORD_PS) !== 0, pcp: (word & VID_WORD_PCP_MASK) >>> VID_WORD_PCP_SHIFT, groupId }
    }
    case 4: {
      const groupId = r.u32('GroupID')
      const mac = r.mac('MAC')
      const word = r.u16('VID word')
      return { vid: word & VID_MASK, ps: (word & VID_WORD_PS) !== 0, pcp: (word & VID_WORD_PCP_MASK) >>> VID_WORD_PCP_SHIFT, mac, groupId }
    }
  }
}

export function encodeFilterEntry(w: Writer, format: FilterFormat, e: FilterEntry): void {
  const needsGroup = format === 3 || format === 4
  const needsMac = format === 2 || format === 4
  if (needsGroup && e.groupId === undefined) throw new EncodeError(`Cannot encode filter entry: format ${format} needs a GroupID`)
  if (needsMac && e.mac === undefined) throw new EncodeError(`Cannot encode filter entry: format ${format} needs a MAC`)
  if (needsGroup) w.u32(e.groupId!, 'GroupID')
  if (needsMac) w.bytes(macToBytes(e.mac!), 6, 'MAC')
  w.u16(encodeVidWord(e), 'VID word')
}

export function vsiTlvBodyLength(tlv: VsiTlv): number {
  return VSI_TLV_FIXED_LENGTH + VSI_TLV_COUNT_LENGTH + tlv.entries.length * FILTER_ENTRY_LENGTH[tlv.filterFormat]
}

/** Whole TLV length, header included. */
export const vsiTlvLength = (tlv: VsiTlv): number => tlvLength(vsiTlvBodyLength(tlv))

export function encodeVsiTlv(w: Writer, tlv: VsiTlv): void {
  if (tlv.entries.length === 0) throw new EncodeError('Cannot encode VSI TLV: it has no filter entries')
  if (!isFilterFormat(tlv.filterFormat)) throw new EncodeError(`Cannot encode VSI TLV: filter format ${tlv.filterFormat} is not 1..4`)
  encodeTlvHeader(w, TYPE_BY_VSI_MODE[tlv.mode], vsiTlvBodyLength(tlv))
  w.u8(encodeStatus(tlv.status), 'status')
  w.u24(tlv.typeId, 'VSI type id')
  w.u8(tlv.typeVersion, 'VSI type version')
  w.u8(tlv.vsiId.format, 'VSIID format')
  w.hex(tlv.vsiId.id, VSIID_LENGTH, 'VSIID')
  w.u8(tlv.filterFormat, 'filter info format')
  w.u16(tlv.entries.length, 'number of entries')
  for (const e of tlv.entries) encodeFilterEntry(w, tlv.filterFormat, e)
}
