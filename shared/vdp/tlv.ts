/**
 * VDP/LLDP TLV header: 7-bit type, 9-bit length of the information string
 * (802.1Q-2018 41.2.1; same packing as LLDP, 802.1AB 8.4). `head = (type << 9) | length`.
 *
 * @module
 */
import { EncodeError } from '../wire/errors.ts'
import type { Reader } from '../wire/reader.ts'
import type { Writer } from '../wire/writer.ts'
import { TLV_HEADER_LENGTH, TLV_LENGTH_MAX } from './constants.ts'

export interface TlvHeader {
  /** 7-bit TLV type. */
  type: number
  /** Octets of the information string that follows (header excluded), 0..511. */
  length: number
  /** Absolute offset of the header in the decoded buffer. */
  offset: number
}

export function decodeTlvHeader(r: Reader): TlvHeader {
  const offset = r.offset
  const head = r.u16('TLV header')
  return { type: head >>> 9, length: head & TLV_LENGTH_MAX, offset }
}

export function encodeTlvHeader(w: Writer, type: number, length: number): void {
  if (type > 0x7f || length > TLV_LENGTH_MAX) {
    throw new EncodeError(`Cannot encode TLV header: type ${type} or length ${length} exceeds 7/9 bits`)
  }
  w.u16((type << 9) | length, 'TLV header')
}

export const tlvLength = (bodyLength: number): number => TLV_HEADER_LENGTH + bodyLength
