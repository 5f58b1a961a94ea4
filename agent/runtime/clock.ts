/**
 * The shell's clock: monotonic microseconds for the core (`process.hrtime`), wall-clock
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

const origin = process.hrtime.bigint()

export const monotonicClock: Clock = {
  nowUs: () => Number((process.hrtime.bigint() - origin) / 1000n),
  wallMs: () => Date.now(),
}
