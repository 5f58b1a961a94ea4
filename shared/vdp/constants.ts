/**
 * VDP wire constants (802.1Q-2018 clause 41, as lldpad `vdp22` speaks it; see
 * docs/protocol.md). Code tables are `as const` objects with a derived union.
 *
 * @module
 */

/** VDP TLV types (7-bit). 6..126 reserved. */
export const VdpTlvType = {
  End: 0,
  PreAssociate: 1,
  PreAssociateWithRr: 2,
  Associate: 3,
  DeAssociate: 4,
  ManagerId: 5,
  Org: 127,
} as const
export type VdpTlvType = (typeof VdpTlvType)[keyof typeof VdpTlvType]

/** Association TLV kinds, named as the standard names the requests. */
export type VsiMode = 'pre-associate' | 'pre-associate-rr' | 'associate' | 'de-associate'

export const VSI_MODE_BY_TYPE: Readonly<Record<number, VsiMode>> = {
  1: 'pre-associate',
  2: 'pre-associate-rr',
  3: 'associate',
  4: 'de-associate',
}
export const TYPE_BY_VSI_MODE: Readonly<Record<VsiMode, number>> = {
  'pre-associate': 1,
  'pre-associate-rr': 2,
  associate: 3,
  'de-associate': 4,
}

/** Response error codes (status octet bits 3..0). 6..15 reserved. Wire codes only. */
export const VdpError = {
  Success: 0,
  InvalidFormat: 1,
  InsufficientResources: 2,
  UnableToContactVsiManager: 3,
  OtherFailure: 4,
  InvalidVidGroupIdOrMac: 5,
} as const
export type VdpError = (typeof VdpError)[keyof typeof VdpError]

/** Status octet masks (current lldpad/Wireshark layout; lldpad commit 66f229b). */
export const STATUS_RESERVED = 0x80
export const STATUS_RESPONSE = 0x40
/** Request: S bit, VSI suspended / migrating away. Response: Keep. */
export const STATUS_S_OR_KEEP = 0x20
/** Request: M bit, VSI migrating to this station. Response: Hard error. */
export const STATUS_M_OR_HARD = 0x10
export const STATUS_ERROR_MASK = 0x0f

/** VSIID formats (802.1Q 41.2.7). */
export const VsiIdFormat = { Ipv4: 1, Ipv6: 2, Mac: 3, Local: 4, Uuid: 5 } as const
export type VsiIdFormat = (typeof VsiIdFormat)[keyof typeof VsiIdFormat]

/** Filter Info formats (802.1Q 41.2.9). */
export const FilterFormat = { Vid: 1, MacVid: 2, GroupVid: 3, GroupMacVid: 4 } as const
export type FilterFormat = (typeof FilterFormat)[keyof typeof FilterFormat]

/** Octets per filter entry, by format. */
export const FILTER_ENTRY_LENGTH: Readonly<Record<FilterFormat, number>> = { 1: 2, 2: 8, 3: 6, 4: 12 }

/** Status(1) type id(3) version(1) VSIID format(1) VSIID(16) filter format(1). */
export const VSI_TLV_FIXED_LENGTH = 23
/** Number of entries field. */
export const VSI_TLV_COUNT_LENGTH = 2
export const MANAGER_ID_LENGTH = 16
export const VSIID_LENGTH = 16
export const TLV_HEADER_LENGTH = 2
/** Largest TLV information string the 9-bit length field can express. */
export const TLV_LENGTH_MAX = 0x1ff

/** PS/PCP/VID word masks. */
export const VID_WORD_PS = 0x8000
export const VID_WORD_PCP_MASK = 0x7000
export const VID_WORD_PCP_SHIFT = 12
export const VID_MASK = 0x0fff
