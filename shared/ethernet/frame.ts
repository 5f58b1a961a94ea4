/**
 * Ethernet II header with an optional 802.1Q (0x8100) or 802.1ad (0x88a8) tag.
 * `encodeEthernetFrame` adds no padding: lldpad and veth accept short frames, and a NIC pads
 * on the wire anyway (lldpad-interop.md, note 7).
 *
 * @module
 */
import { EncodeError, DecodeError } from '../wire/errors.ts'
import { Reader } from '../wire/reader.ts'
import { Writer } from '../wire/writer.ts'
import { hexOctetAt } from '../wire/hex.ts'
import { type Mac, macToBytes } from './mac.ts'

export const ETHERTYPE_VLAN = 0x8100
export const ETHERTYPE_QINQ = 0x88a8
export const ETHERTYPE_LLDP = 0x88cc
export const ETHERNET_HEADER_LENGTH = 14
export const ETHERNET_MIN_FRAME_LENGTH = 60

export interface VlanTag {
  /** Tag protocol identifier: 0x8100 (C-tag) or 0x88a8 (S-tag, S-channels). */
  tpid: number
  /** Priority code point, 3 bits. */
  pcp: number
  /** Drop eligible indicator. */
  dei: boolean
  /** 12-bit VLAN id. */
  vid: number
}

export interface EthernetFrame {
  destination: Mac
  source: Mac
  /** Present when the frame carried one 802.1Q/802.1ad tag. */
  vlan?: VlanTag
  /** Ethertype of the payload (after the tag, if any). */
  ethertype: number
  /** Everything after the header, Ethernet padding included. */
  payload: Uint8Array
}

/**
 * @example
 * ```ts
 * const f = decodeEthernetFrame(bytes); if (f.ethertype === ETHERTYPE_ECP) decodeEcpdu(f.payload)
 * ```
 */
export function decodeEthernetFrame(bytes: Uint8Array): EthernetFrame {
  const r = new Reader(bytes)
  const { destination, source, vlan, ethertype } = decodeEthernetHeader(r)
  const payload = r.rest()
  return vlan === undefined ? { destination, source, ethertype, payload } : { destination, source, vlan, ethertype, payload }
}

/** An Ethernet frame's header: everything of `EthernetFrame` but the payload. */
export type EthernetHeader = Omit<EthernetFrame, 'payload'>

/**
 * Reads the header and leaves `r` at the payload: a receiver that decodes the payload with
 * the same reader copies nothing.
 */
export function decodeEthernetHeader(r: Reader): EthernetHeader {
  const destination = r.mac('destination MAC')
  const source = r.mac('source MAC')
  let ethertype = r.u16('ethertype')
  let vlan: VlanTag | undefined
  if (ethertype === ETHERTYPE_VLAN || ethertype === ETHERTYPE_QINQ) {
    const tci = r.u16('VLAN TCI')
    vlan = { tpid: ethertype, pcp: tci >>> 13, dei: (tci & 0x1000) !== 0, vid: tci & 0x0fff }
    ethertype = r.u16('ethertype')
  }
  if (ethertype < 0x0600) {
    throw new DecodeError('bad-ethertype', 12, `Cannot decode Ethernet frame: 0x${ethertype.toString(16)} is an 802.3 length, not an Ethertype`)
  }
  return vlan === undefined ? { destination, source, ethertype } : { destination, source, vlan, ethertype }
}

export function ethernetFrameLength(frame: EthernetFrame): number {
  return ETHERNET_HEADER_LENGTH + (frame.vlan ? 4 : 0) + frame.payload.length
}

/** A MAC written octet by octet from its string (no buffer per frame); odd input as before. */
export function writeMac(w: Writer, mac: Mac, what: string): void {
  let ok = mac.length === 17
  for (let i = 0; ok && i < 6; i++) ok = hexOctetAt(mac, 3 * i) >= 0
  if (!ok) {
    w.bytes(macToBytes(mac), 6, what)
    return
  }
  for (let i = 0; i < 6; i++) w.u8(hexOctetAt(mac, 3 * i), what)
}

export function encodeEthernetFrame(frame: EthernetFrame): Uint8Array {
  const w = new Writer(ethernetFrameLength(frame))
  writeMac(w, frame.destination, 'destination MAC')
  writeMac(w, frame.source, 'source MAC')
  if (frame.vlan) {
    const { tpid, pcp, dei, vid } = frame.vlan
    if (pcp > 7 || vid > 0xfff) throw new EncodeError(`Cannot encode VLAN tag: pcp ${pcp} or vid ${vid} out of range`)
    w.u16(tpid, 'TPID')
    w.u16((pcp << 13) | (dei ? 0x1000 : 0) | vid, 'VLAN TCI')
  }
  w.u16(frame.ethertype, 'ethertype')
  w.bytes(frame.payload)
  return w.toBytes()
}

/** Zero-pads a frame to the Ethernet minimum (60 octets without FCS), as a NIC would. */
export function padFrame(frame: Uint8Array, minLength = ETHERNET_MIN_FRAME_LENGTH): Uint8Array {
  if (frame.length >= minLength) return frame
  const out = new Uint8Array(minLength)
  out.set(frame)
  return out
}
