/**
 * ECP wire constants (802.1Q-2018 clause 43; lldpad `qbg/ecp22.c`, Wireshark `packet-ecp.c`).
 *
 * @module
 */
export const ETHERTYPE_ECP = 0x8940
export const ECP_VERSION = 1
export const ECP_HEADER_LENGTH = 4

/** ECP operation (2 bits). 2 and 3 are reserved; receivers drop them. */
export const EcpOperation = { Request: 0, Ack: 1 } as const
export type EcpOperation = (typeof EcpOperation)[keyof typeof EcpOperation]

/** Upper-layer protocol carried in the ECPDU (10 bits). */
export const EcpSubtype = { Vdp: 1, PeCsp: 2 } as const
export type EcpSubtype = (typeof EcpSubtype)[keyof typeof EcpSubtype]

/** Largest ULPDU lldpad accepts: ETH_DATA_LEN - 4 - 2 (include/qbg_ecp22.h). */
export const ECP_ULPDU_MAX = 1494
