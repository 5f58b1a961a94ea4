/**
 * Decoded ECPDU (802.1Q-2018 43.3.1). The ULPDU stays bytes here; VDP decodes it.
 *
 * @module
 */
import type { EcpOperation } from './constants.ts'

export interface EcpHeader {
  /** Protocol version, 4 bits; 1 for 802.1Q-2018. */
  version: number
  /** 0 request (carries data), 1 acknowledgement. */
  operation: EcpOperation
  /** Upper-layer protocol, 10 bits; 1 = VDP. */
  subtype: number
  /** Transmitter's 16-bit sequence number; an ACK echoes the request's. */
  sequence: number
}

export interface Ecpdu {
  header: EcpHeader
  /** Upper-layer PDU; empty for an ACK. May include Ethernet padding from the wire. */
  ulpdu: Uint8Array
}
