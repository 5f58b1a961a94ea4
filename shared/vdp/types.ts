/**
 * Decoded VDP ULPDU (802.1Q-2018 clause 41, lldpad `vdp22`): the data model the codecs
 * produce and the state machines consume. Fields carry their units and wire meaning.
 *
 * @module
 */
import type { Mac } from '../ethernet/mac.ts'
import type { ManagerId, VsiIdHex } from '../ids.ts'
import type { FilterFormat, VsiIdFormat, VsiMode } from './constants.ts'

/** One filter entry; which optional fields exist depends on the TLV's filter format. */
export interface FilterEntry {
  /** 12-bit VID. 0 in a request: "the bridge picks the VID" (41.2.9, null VID). */
  vid: number
  /** PCP Significant: the PCP field carries the default priority for this VID. */
  ps: boolean
  /** Priority code point, 3 bits; meaningful only when `ps`. */
  pcp: number
  /** Formats 2 and 4. */
  mac?: Mac
  /** Formats 3 and 4: 32-bit GroupID; with 802.1Qcy the VNI is its low 24 bits. */
  groupId?: number
}

/** Status octet of a request (Req/Rsp bit clear). */
export interface RequestStatus {
  response: false
  /** S bit (0x20): the VSI is suspended / migrating away from this station. */
  migratingFrom: boolean
  /** M bit (0x10): the VSI is migrating to this station. */
  migratingTo: boolean
}

/** Status octet of a response (Req/Rsp bit set). */
export interface ResponseStatus {
  response: true
  /** Keep (0x20): request rejected, the state before the request stays. */
  keep: boolean
  /** Hard (0x10): the error is not transient. */
  hard: boolean
  /** Error code 0..15 (`VdpError`; 0 = success). */
  error: number
}

export type VsiStatus = RequestStatus | ResponseStatus

/** VSIID with its format. */
export interface VsiId {
  format: VsiIdFormat
  /** 16 octets as 32 hex digits. */
  id: VsiIdHex
}

/** Pre-Associate, Pre-Associate with RR, Associate or De-Associate TLV (types 1..4). */
export interface VsiTlv {
  kind: 'vsi'
  mode: VsiMode
  status: VsiStatus
  /** VSI Type ID, 24 bits. */
  typeId: number
  /** VSI Type Version, 8 bits. */
  typeVersion: number
  vsiId: VsiId
  filterFormat: FilterFormat
  /** At least one entry; all of the TLV's filter format. */
  entries: FilterEntry[]
}

/** Organizationally defined TLV (type 127), kept losslessly. */
export interface OrgTlv {
  kind: 'org'
  /** 24-bit OUI. */
  oui: number
  /** Everything after the OUI (subtype and body), opaque here. */
  data: Uint8Array
}

/** A TLV of a reserved type (6..126): skipped by the machines, kept for re-encoding. */
export interface UnknownTlv {
  kind: 'unknown'
  type: number
  body: Uint8Array
}

export type VdpTlv = VsiTlv | OrgTlv | UnknownTlv

/** A VDP ULPDU: one Manager ID TLV first, then association and other TLVs. */
export interface VdpPdu {
  managerId: ManagerId
  tlvs: VdpTlv[]
  /** An End TLV (`00 00`) closed the PDU. Old lldpad sends it; current lldpad does not. */
  endTlv: boolean
}
