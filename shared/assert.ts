/**
 * `assert()` is for bugs only: a failed assertion means our own code is wrong, never the peer.
 * Peer input errors are `DecodeError` / `RemoteProtocolError`. A core that fails an assert is
 * discarded and recreated by its driver (str0m's "panic means bug").
 *
 * @module
 */
export class AssertionError extends Error {
  override readonly name = 'AssertionError'
}

/**
 * @example
 * ```ts
 * assert(retries <= retriesMax, `Cannot retransmit: retries ${retries} exceed ${retriesMax}`)
 * ```
 */
export function assert(condition: unknown, message: string): asserts condition {
  if (!condition) throw new AssertionError(message)
}
