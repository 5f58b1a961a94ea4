/**
 * Hands the ECP ACKs that links took in (`FrameLink.absorbEcpAcks`) to the port drivers of
 * those links. One per agent: the raw socket's collector (`takeAbsorbedEcpAcks`) reports the
 * ACKs of every link of the process at once.
 *
 * Why at every step of every port: an absorbed ACK woke nobody, so it waits until something
 * else runs. At 48 ports and 10,000 VSIs something runs about every millisecond; an ack timer
 * is 2.56 ms at RTE 8 (lldpad's default), 20 ms at RTE 11. Should nothing run before a timer
 * is due, the timeout's own step collects first, so the core takes the ACK instead of
 * retransmitting. Collecting costs one read of a shared counter when nothing is new.
 *
 * @module
 */
import type { Mac } from '../../shared/ethernet/mac.ts'
import type { AbsorbedEcpAck, FrameLink } from '../transport/frame-link.ts'

export class AbsorbedAckCollector {
  readonly #take: () => readonly AbsorbedEcpAck[]
  readonly #receivers = new Map<FrameLink, (peer: Mac, sequence: number) => void>()
  #collecting = false
  /** ACKs handed over, and those of links no driver holds any more. */
  delivered = 0
  orphaned = 0

  constructor(take: () => readonly AbsorbedEcpAck[]) {
    this.#take = take
  }

  /** Routes the ACKs absorbed on `link` to `receive`; returns the function that stops it. */
  register(link: FrameLink, receive: (peer: Mac, sequence: number) => void): () => void {
    this.#receivers.set(link, receive)
    return () => {
      if (this.#receivers.get(link) === receive) this.#receivers.delete(link)
    }
  }

  /** Hands over what was absorbed since the last call. Re-entrant calls (from a receiver) return at once. */
  collect(): void {
    if (this.#collecting) return
    this.#collecting = true
    try {
      for (const ack of this.#take()) {
        const receive = this.#receivers.get(ack.link)
        if (receive === undefined) {
          this.orphaned++
          continue
        }
        this.delivered++
        receive(ack.peer, ack.sequence)
      }
    } finally {
      this.#collecting = false
    }
  }
}
