/**
 * Errors raised by the wire codecs.
 *
 * Who is at fault decides the type (h11's split): `DecodeError` means the bytes from the peer
 * are wrong and carries the VDP status to answer with; `EncodeError` means the caller handed
 * the encoder a value it cannot put on the wire (a local bug or a bad command).
 *
 * @module
 */
import { VdpError } from '../vdp/constants.ts'

/** Why a decode failed. Tests assert these codes, never the message text. */
export type DecodeErrorCode =
  | 'truncated'
  | 'bad-length'
  | 'bad-version'
  | 'bad-operation'
  | 'bad-subtype'
  | 'bad-ethertype'
  | 'missing-manager-id'
  | 'duplicate-manager-id'
  | 'bad-tlv-type'
  | 'bad-filter-format'
  | 'bad-vsiid-format'
  | 'bad-entry-count'
  | 'bad-status'
  | 'bad-lldp'
  | 'bad-evb-tlv'
  | 'bad-pcap'
  | 'bad-extension'

/**
 * The peer sent bytes that cannot be decoded.
 *
 * @example
 * ```ts
 * try { decodeVdpPdu(bytes) } catch (e) { if (e instanceof DecodeError) reply(e.statusHint) }
 * ```
 */
export class DecodeError extends Error {
  override readonly name = 'DecodeError'
  constructor(
    /** Machine-readable reason. */
    readonly code: DecodeErrorCode,
    /** Byte offset, relative to the start of the buffer handed to the decoder. */
    readonly offset: number,
    message: string,
    /** The VDP response error code a bridge should answer with when it can name the VSI. */
    readonly statusHint: VdpError = VdpError.InvalidFormat,
  ) {
    super(message)
  }
}

/** A value cannot be encoded (out-of-range field, inconsistent lengths). */
export class EncodeError extends Error {
  override readonly name = 'EncodeError'
  constructor(message: string) {
    super(message)
  }
}
