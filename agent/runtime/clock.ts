/**
 * The shell's clock: monotonic microseconds for the core (`performance.now()`), wall-clock
 * milliseconds for events and logs.
 *
 * @module
 */
import type { Us } from '../../shared/time.ts'

export interface Clock {
  /** Monotonic, microseconds, integral. */
  nowUs(): Us
  /** Wall clock, ms since the epoch. */
  wallMs(): number
}

export const monotonicClock: Clock = {
  // performance.now() is monotonic (hrtime) ms since the process started, to a fraction of
  // a µs: the same value without the three BigInts per call of hrtime.bigint() arithmetic
  // (read several times per frame).
  nowUs: () => Math.floor(performance.now() * 1000),
  wallMs: () => Date.now(),
}
