/**
 * ECPDU codec (802.1Q-2018 43.3.1; lldpad `qbg/ecp22.c`): a 4-octet header, version(4)
 * operation(2) subtype(10) sequence(16), then the upper-layer PDU. ACKs carry no ULPDU.
 *
 * @module
 */
import { DecodeError, EncodeError } from '../wire/errors.ts'
import { Reader } from '../wire/reader.ts'
import { Writer } from '../wire/writer.ts'
import { ECP_HEADER_LENGTH, ECP_VERSION, EcpOperation } from './constants.ts'
import type { EcpHeader, Ecpdu } from './types.ts'

export function decodeEcpHeader(r: Reader): EcpHeader {
  const at = r.offset
  const word = r.u16('ECP header')
  const version = word >>> 12
  const operation = (word >>> 10) & 0x3
  const subtype = word & 0x3ff
  const sequence = r.u16('ECP sequence number')
  // 43.3.1: lldpad drops other versions and reserved operations without ACKing them.
  if (version !== ECP_VERSION) {
    throw new DecodeError('bad-version', at, `Cannot decode ECPDU: version ${version}, expected ${ECP_VERSION}`)
  }
  if (operation !== EcpOperation.Request && operation !== EcpOperation.Ack) {
    throw new DecodeError('bad-operation', at, `Cannot decode ECPDU: reserved operation ${operation}`)
  }
  return { version, operation, subtype, sequence }
}

export function encodeEcpHeader(w: Writer, h: EcpHeader): void {
  if (h.version > 0xf || h.operation > 0x3 || h.subtype > 0x3ff) {
    throw new EncodeError(`Cannot encode ECP header: version ${h.version}, operation ${h.operation} or subtype ${h.subtype} out of range`)
  }
  w.u16((h.version << 12) | (h.operation << 10) | h.subtype, 'ECP header')
  w.u16(h.sequence, 'ECP sequence number')
}

/**
 * Decodes the payload of an 0x8940 frame. The ULPDU is everything after the header,
 * padding included; VDP stops at its End TLV or at zero padding.
 * @example
 * ```ts
 * const { header, ulpdu } = decodeEcpdu(frame.payload)
 * ```
 */
export function decodeEcpdu(bytes: Uint8Array): Ecpdu {
  const r = new Reader(bytes)
  const header = decodeEcpHeader(r)
  return { header, ulpdu: r.rest() }
}

export const ecpduLength = (pdu: Ecpdu): number => ECP_HEADER_LENGTH + pdu.ulpdu.length

export function encodeEcpdu(pdu: Ecpdu): Uint8Array {
  const w = new Writer(ecpduLength(pdu))
  encodeEcpHeader(w, pdu.header)
  w.bytes(pdu.ulpdu)
  return w.toBytes()
}

/** Serial-number comparison of 16-bit sequence numbers (RFC 1982 style). */
export function seqLessThan(a: number, b: number): boolean {
  return a !== b && ((b - a) & 0xffff) < 0x8000
}

/** Next sequence number; lldpad skips 0 on wrap (`inc_seqno`), so do we. */
export const nextSequence = (seq: number): number => ((seq + 1) & 0xffff) || 1
