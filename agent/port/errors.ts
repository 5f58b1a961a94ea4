/**
 * Errors of the port core, split by who is at fault (h11, STYLE.md §4.5):
 *
 * - `RemoteProtocolError`: the peer broke the protocol (a response for an unknown VSI, an ACK
 *   nobody waits for, a TLV the bridge cannot accept). It carries `statusHint`, the VDP error
 *   code to answer with when the input still names a VSI. `PortCore.handleFrame` never lets it
 *   escape: it is counted and reported as a `frame-dropped` event.
 * - `LocalProtocolError`: the caller asked for something illegal (de-associate an unknown VSI,
 *   a station command on a bridge port, a full table). The local API turns it into a 4xx.
 *
 * Bugs are neither: they fail an `assert()`.
 *
 * @module
 */
import { VdpError } from '../../shared/vdp/constants.ts'

export type RemoteProtocolErrorCode =
  | 'unexpected-ack'
  | 'unknown-vsi'
  | 'unexpected-response'
  | 'bad-request'
  | 'bad-filter'
  | 'group-id-not-negotiated'
  | 'peer-table-full'
  | 'vsi-table-full'
  | 'queue-full'
  | 'unsupported-subtype'
  | 'wrong-role'

export class RemoteProtocolError extends Error {
  override readonly name = 'RemoteProtocolError'
  constructor(
    readonly code: RemoteProtocolErrorCode,
    message: string,
    /** VDP response error code to answer with (802.1Qbg-2012 41.2.4 status). */
    readonly statusHint: number = VdpError.InvalidFormat,
    /** Byte offset in the frame, when known. */
    readonly offset = 0,
  ) {
    super(message)
  }
}

export type LocalProtocolErrorCode =
  | 'wrong-role'
  | 'unknown-vsi'
  | 'bad-command'
  | 'vsi-table-full'
  | 'peer-table-full'
  | 'queue-full'
  | 'group-id-not-negotiated'
  | 'illegal-transition'

export class LocalProtocolError extends Error {
  override readonly name = 'LocalProtocolError'
  constructor(
    readonly code: LocalProtocolErrorCode,
    message: string,
  ) {
    super(message)
  }
}
