/**
 * One-pass encoding of a whole untagged VDP frame (Ethernet header, ECP request header, VDP
 * PDU) into one buffer: what a bridge or station sends for every VDP exchange. Byte for byte
 * what `encodeEthernetFrame` over `encodeEcpdu` over `encodeVdpPdu` give, with one allocation
 * instead of three and no copies.
 *
 * @module
 */
import { ECP_HEADER_LENGTH, ECP_VERSION, ETHERTYPE_ECP, EcpOperation, EcpSubtype } from './ecp/constants.ts'
import { encodeEcpHeader } from './ecp/codec.ts'
import { writeMac } from './ethernet/frame.ts'
import type { Mac } from './ethernet/mac.ts'
import { encodeVdpPduInto, vdpPduLength } from './vdp/codec.ts'
import type { VdpPdu } from './vdp/types.ts'
import { Writer } from './wire/writer.ts'

const ETHERNET_HEADER_LENGTH = 14

export interface VdpFrameFields {
  readonly destination: Mac
  readonly source: Mac
  /** ECP sequence number of this request ECPDU. */
  readonly sequence: number
  readonly pdu: VdpPdu
}

/**
 * @example
 * ```ts
 * link.send(encodeVdpFrame({ destination: NCB_GROUP_MAC, source: port.mac, sequence: 7, pdu }))
 * ```
 */
export function encodeVdpFrame(f: VdpFrameFields): Uint8Array {
  const w = new Writer(ETHERNET_HEADER_LENGTH + ECP_HEADER_LENGTH + vdpPduLength(f.pdu))
  writeMac(w, f.destination, 'destination MAC')
  writeMac(w, f.source, 'source MAC')
  w.u16(ETHERTYPE_ECP, 'ethertype')
  encodeEcpHeader(w, { version: ECP_VERSION, operation: EcpOperation.Request, subtype: EcpSubtype.Vdp, sequence: f.sequence })
  encodeVdpPduInto(w, f.pdu)
  return w.toBytes()
}
