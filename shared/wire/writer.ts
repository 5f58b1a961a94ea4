/**
 * Preallocated big-endian writer. Encoders size the buffer with their `xLength()` function
 * first, then write into it; `toBytes()` asserts the size was exact, so a length function that
 * disagrees with its encoder is caught at once.
 *
 * @module
 */
import { assert } from '../assert.ts'
import { EncodeError } from './errors.ts'
import { bytesFromPlainHex, hexOctetAt } from './hex.ts'

export class Writer {
  readonly #bytes: Uint8Array
  #offset = 0

  /**
   * @example
   * ```ts
   * const w = new Writer(ecpduLength(pdu)); encodeEcpdu(w, pdu); send(w.toBytes())
   * ```
   */
  constructor(size: number) {
    this.#bytes = new Uint8Array(size)
  }

  get offset(): number {
    return this.#offset
  }

  #room(n: number): number {
    // The message is built only on failure: this runs for every field written.
    if (this.#offset + n > this.#bytes.length) {
      assert(false, `Cannot write ${n} bytes at offset ${this.#offset}: buffer holds ${this.#bytes.length}`)
    }
    const at = this.#offset
    this.#offset += n
    return at
  }

  #range(value: number, max: number, what: string): void {
    if (!Number.isInteger(value) || value < 0 || value > max) {
      throw new EncodeError(`Cannot encode ${what}: ${value} is not an integer in 0..${max}`)
    }
  }

  u8(value: number, what = 'u8'): void {
    this.#range(value, 0xff, what)
    this.#bytes[this.#room(1)] = value
  }

  u16(value: number, what = 'u16'): void {
    this.#range(value, 0xffff, what)
    const at = this.#room(2)
    this.#bytes[at] = value >>> 8
    this.#bytes[at + 1] = value & 0xff
  }

  u24(value: number, what = 'u24'): void {
    this.#range(value, 0xffffff, what)
    const at = this.#room(3)
    this.#bytes[at] = value >>> 16
    this.#bytes[at + 1] = (value >>> 8) & 0xff
    this.#bytes[at + 2] = value & 0xff
  }

  u32(value: number, what = 'u32'): void {
    this.#range(value, 0xffffffff, what)
    const at = this.#room(4)
    this.#bytes[at] = value >>> 24
    this.#bytes[at + 1] = (value >>> 16) & 0xff
    this.#bytes[at + 2] = (value >>> 8) & 0xff
    this.#bytes[at + 3] = value & 0xff
  }

  bytes(value: Uint8Array, length = value.length, what = 'bytes'): void {
    if (value.length !== length) {
      throw new EncodeError(`Cannot encode ${what}: ${value.length} bytes given, ${length} expected`)
    }
    this.#bytes.set(value, this.#room(length))
  }

  /**
   * `length` octets given as plain hex digits (Manager ID, VSIID), written in place: the same
   * as `bytes(bytesFromPlainHex(text), length, what)`, errors included, without the buffer.
   */
  hex(text: string, length: number, what = 'hex'): void {
    let ok = text.length === 2 * length
    for (let i = 0; ok && i < length; i++) ok = hexOctetAt(text, 2 * i) >= 0
    if (!ok) {
      this.bytes(bytesFromPlainHex(text), length, what)
      return
    }
    const at = this.#room(length)
    for (let i = 0; i < length; i++) this.#bytes[at + i] = hexOctetAt(text, 2 * i)
  }

  zeros(n: number): void {
    this.#room(n)
  }

  /** The finished buffer; asserts every byte was written. */
  toBytes(): Uint8Array {
    if (this.#offset !== this.#bytes.length) {
      assert(false, `Cannot finish buffer: wrote ${this.#offset} of ${this.#bytes.length} bytes (length function disagrees)`)
    }
    return this.#bytes
  }
}
