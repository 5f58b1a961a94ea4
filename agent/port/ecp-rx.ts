/**
 * ECP receive machine for one (port, peer) pair (802.1Qbg-2012 43.3.8; openlldp
 * `qbg/ecp22.c` ECP22_RX_*: RX_FIRST, and RX_WAIT for WAIT/WAIT2/REC_ECPDU/NEW_ECPDU/SEND_ACK).
 *
 * Local rules:
 * 1. Every request is acknowledged, duplicates included (the owner sends the ACK).
 * 2. The first ECPDU after initialisation is always new (lastSeq primed to seq - 1).
 * 3. Only equality with the last accepted sequence number is a duplicate; gaps and going
 *    backwards count as new (the peer restarted or lost our ACK of an older PDU).
 * 4. Duplicates are not delivered to VDP.
 *
 * @module
 */
import { ECP_RX_TRANSITIONS, StateMachine, type EcpRxState } from './transitions.ts'

export type EcpRxVerdict = 'new' | 'duplicate'

export class EcpRx {
  #machine = new StateMachine(ECP_RX_TRANSITIONS, 'RX_FIRST' as EcpRxState)
  /** Sequence number of the last accepted ECPDU (43.3.8 lastSeq). */
  #lastSequence: number | undefined

  get state(): EcpRxState {
    return this.#machine.state
  }

  get lastSequence(): number | undefined {
    return this.#lastSequence
  }

  /** Classifies a received request; the caller ACKs it either way and delivers only new ones. */
  handleRequest(sequence: number): EcpRxVerdict {
    this.#machine.beginInput()
    if (this.#machine.state === 'RX_WAIT' && sequence === this.#lastSequence) {
      this.#machine.fire('duplicate-ecpdu')
      return 'duplicate'
    }
    this.#machine.fire('new-ecpdu')
    this.#lastSequence = sequence
    return 'new'
  }

  /** Port down / peer lost: the next ECPDU is new whatever its number. */
  reset(): void {
    this.#machine.beginInput()
    this.#machine.fire('port-reset')
    this.#lastSequence = undefined
  }
}
