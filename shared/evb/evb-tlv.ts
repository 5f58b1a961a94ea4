/**
 * EVB TLV of 802.1Qbg-2012 (802.1Q-2018 Annex D.2.12), carried by the Nearest Customer
 * Bridge LLDP agent: LLDP type 127, OUI 00-80-C2, subtype 0x0D, information length 9.
 *
 * ```
 * OUI(3) subtype(1) | bridge status | station status | R(3) RTE(5) | mode(2) ROL RWD(5) | rsvd(2) ROL RKA(5)
 * ```
 * Reserved bits are ignored on receipt and sent as 0. Length must be exactly 9 (lldpad's
 * `evb22_rchange` copies an unbounded length: we refuse it).
 *
 * @module
 */
import { DecodeError, EncodeError } from '../wire/errors.ts'
import type { Reader } from '../wire/reader.ts'
import type { Writer } from '../wire/writer.ts'

export const EVB_OUI = 0x0080c2
export const EVB_SUBTYPE = 0x0d
/** Information string length: OUI(3) + subtype(1) + 5 octets. */
export const EVB_TLV_INFO_LENGTH = 9

/** EVB mode field (octet 9, bits 7..6). */
export const EvbMode = { NotSupported: 0, Bridge: 1, Station: 2 } as const
export type EvbMode = (typeof EvbMode)[keyof typeof EvbMode]

export interface EvbBridgeStatus {
  /** BGID: the bridge supports GroupID filter formats. */
  bgid: boolean
  /** RRCAP: the bridge can do reflective relay. */
  rrcap: boolean
  /** RRCTR: the bridge has enabled reflective relay on this port. */
  rrctr: boolean
}

export interface EvbStationStatus {
  /** SGID: the station supports GroupID filter formats. */
  sgid: boolean
  /** RRREQ: the station requests reflective relay. */
  rrreq: boolean
  /** RRSTAT, 2 bits: 0 not enabled, 1 enabled, 3 not yet known. */
  rrstat: number
}

export interface EvbTlv {
  bridge: EvbBridgeStatus
  station: EvbStationStatus
  /** R: maximum ECP retries, 0..7. */
  retries: number
  /** RTE: ECP retransmission exponent, ackTimer = 10 µs · 2^RTE. */
  rte: number
  /** 1 bridge, 2 station. */
  mode: number
  /** ROL for RWD: the remote value was adopted. */
  rwdRol: boolean
  /** RWD: resource wait delay exponent. */
  rwd: number
  /** ROL for RKA: the remote value was adopted. */
  rkaRol: boolean
  /** RKA: reinit keep-alive exponent. */
  rka: number
}

/** Decodes the information string after the OUI and subtype (5 octets). */
export function decodeEvbBody(r: Reader): Omit<EvbTlv, never> {
  const b = r.u8('EVB bridge status')
  const s = r.u8('EVB station status')
  const rr = r.u8('EVB R/RTE')
  const m = r.u8('EVB mode/RWD')
  const k = r.u8('EVB RKA')
  return {
    bridge: { bgid: (b & 0x04) !== 0, rrcap: (b & 0x02) !== 0, rrctr: (b & 0x01) !== 0 },
    station: { sgid: (s & 0x08) !== 0, rrreq: (s & 0x04) !== 0, rrstat: s & 0x03 },
    retries: rr >>> 5,
    rte: rr & 0x1f,
    mode: m >>> 6,
    rwdRol: (m & 0x20) !== 0,
    rwd: m & 0x1f,
    rkaRol: (k & 0x20) !== 0,
    rka: k & 0x1f,
  }
}

/**
 * Decodes an LLDP type-127 information string that carries the EVB TLV, OUI included.
 * @example
 * ```ts
 * const evb = decodeEvbTlv(new Reader(orgTlv.body))
 * ```
 */
export function decodeEvbTlv(r: Reader): EvbTlv {
  const at = r.offset
  if (r.remaining !== EVB_TLV_INFO_LENGTH) {
    throw new DecodeError('bad-evb-tlv', at, `Cannot decode EVB TLV at offset ${at}: length ${r.remaining}, expected 9`)
  }
  const oui = r.u24('OUI')
  const subtype = r.u8('subtype')
  if (oui !== EVB_OUI || subtype !== EVB_SUBTYPE) {
    throw new DecodeError('bad-evb-tlv', at, `Cannot decode EVB TLV at offset ${at}: OUI ${oui.toString(16)} subtype ${subtype} is not 0080c2/0d`)
  }
  return decodeEvbBody(r)
}

export const evbTlvInfoLength = (): number => EVB_TLV_INFO_LENGTH

function field(value: number, max: number, what: string): number {
  if (!Number.isInteger(value) || value < 0 || value > max) throw new EncodeError(`Cannot encode EVB TLV: ${what} ${value} not in 0..${max}`)
  return value
}

/** Writes the information string (OUI, subtype, 5 octets); the LLDP TLV header is the caller's. */
export function encodeEvbTlv(w: Writer, t: EvbTlv): void {
  w.u24(EVB_OUI, 'OUI')
  w.u8(EVB_SUBTYPE, 'subtype')
  w.u8((t.bridge.bgid ? 0x04 : 0) | (t.bridge.rrcap ? 0x02 : 0) | (t.bridge.rrctr ? 0x01 : 0))
  w.u8((t.station.sgid ? 0x08 : 0) | (t.station.rrreq ? 0x04 : 0) | field(t.station.rrstat, 3, 'rrstat'))
  w.u8((field(t.retries, 7, 'retries') << 5) | field(t.rte, 31, 'RTE'))
  w.u8((field(t.mode, 3, 'mode') << 6) | (t.rwdRol ? 0x20 : 0) | field(t.rwd, 31, 'RWD'))
  w.u8((t.rkaRol ? 0x20 : 0) | field(t.rka, 31, 'RKA'))
}
