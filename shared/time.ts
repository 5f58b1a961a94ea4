/**
 * Time units. The core never reads a clock: time arrives as `nowUs`, a monotonic integer in
 * microseconds (ECP's ack timer base is 10 µs · 2^RTE, 802.1Q-2018 43.3.7 / D.2.12).
 *
 * @module
 */
/** Microseconds, monotonic, integral. */
export type Us = number
/** Milliseconds. */
export type Ms = number

export const US_PER_MS = 1000
export const US_PER_S = 1_000_000

/** Duration of a timer exponent field of the EVB TLV: 10 µs · 2^exp (802.1Q D.2.12). */
export const usFromExponent = (exponent: number): Us => 10 * 2 ** exponent

/** Converts a delay for `setTimeout`, rounding up so a timer never fires early. */
export const msCeil = (us: Us): Ms => Math.ceil(us / US_PER_MS)
