/**
 * Bounds-checked big-endian cursor over a byte array. Every read checks `remaining` and throws
 * `DecodeError('truncated')` with the absolute offset; `sub(n)` hands a TLV body its own reader
 * so an overrun can never leak into the next TLV (the openlldp over-read, fixed by
 * construction). No module state: each decoder makes its own reader.
 *
 * @module
 */
import { macFromBytes, type Mac } from '../ethernet/mac.ts'
import { DecodeError } from './errors.ts'
import { hexOf } from './hex.ts'

export class Reader {
  readonly #bytes: Uint8Array
  readonly #end: number
  #offset: number

  /**
   * @param bytes the buffer
   * @param start first readable offset
   * @param end one past the last readable offset (defaults to `bytes.length`)
   * @example
   * ```ts
   * const r = new Reader(frame, 14)
   * const word = r.u16()
   * ```
   */
  constructor(bytes: Uint8Array, start = 0, end = bytes.length) {
    this.#bytes = bytes
    this.#offset = start
    this.#end = end
  }

  /** Absolute offset of the next byte to read. */
  get offset(): number {
    return this.#offset
  }

  /** Bytes left before the end of this reader's window. */
  get remaining(): number {
    return this.#end - this.#offset
  }

  get atEnd(): boolean {
    return this.#offset >= this.#end
  }

  #need(n: number, what: string): number {
    if (n > this.#end - this.#offset) {
      throw new DecodeError(
        'truncated',
        this.#offset,
        `Cannot read ${what} at offset ${this.#offset}: ${n} bytes needed, ${this.remaining} remain`,
      )
    }
    const at = this.#offset
    this.#offset += n
    return at
  }

  u8(what = 'u8'): number {
    return this.#bytes[this.#need(1, what)]!
  }

  u16(what = 'u16'): number {
    const at = this.#need(2, what)
    return (this.#bytes[at]! << 8) | this.#bytes[at + 1]!
  }

  u24(what = 'u24'): number {
    const at = this.#need(3, what)
    return (this.#bytes[at]! << 16) | (this.#bytes[at + 1]! << 8) | this.#bytes[at + 2]!
  }

  u32(what = 'u32'): number {
    const at = this.#need(4, what)
    return (
      ((this.#bytes[at]! << 24) >>> 0) +
      ((this.#bytes[at + 1]! << 16) | (this.#bytes[at + 2]! << 8) | this.#bytes[at + 3]!)
    )
  }

  /** A copy of the next `n` bytes. */
  bytes(n: number, what = 'bytes'): Uint8Array {
    const at = this.#need(n, what)
    return this.#bytes.slice(at, at + n)
  }

  /** The next `n` bytes without copying (valid while the underlying buffer is). */
  view(n: number, what = 'bytes'): Uint8Array {
    const at = this.#need(n, what)
    return this.#bytes.subarray(at, at + n)
  }

  /**
   * The next `n` bytes as lowercase hex (no separator), read in place: identifiers such as
   * the VSIID and Manager ID are strings, and a view per field only fed the GC.
   */
  hex(n: number, what = 'bytes'): string {
    const at = this.#need(n, what)
    return hexOf(this.#bytes, at, at + n)
  }

  /** The next 6 bytes as a MAC address `aa:bb:cc:dd:ee:ff`, read in place. */
  mac(what = 'MAC'): Mac {
    return macFromBytes(this.#bytes, this.#need(6, what))
  }

  /** Everything left, copied. */
  rest(): Uint8Array {
    return this.bytes(this.remaining)
  }

  skip(n: number, what = 'bytes'): void {
    this.#need(n, what)
  }

  /** Peeks one byte without advancing; `undefined` at the end. */
  peekU8(): number | undefined {
    return this.#offset < this.#end ? this.#bytes[this.#offset] : undefined
  }

  /** A reader over the next `n` bytes; this reader moves past them. */
  sub(n: number, what = 'TLV body'): Reader {
    const at = this.#need(n, what)
    return new Reader(this.#bytes, at, at + n)
  }
}
