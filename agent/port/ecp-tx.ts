/**
 * ECP transmit machine for one (port, peer) pair: stop-and-wait with one ECPDU outstanding
 * (802.1Qbg-2012 43.3.7; openlldp `qbg/ecp22.c` ECP22_TX_*: WAIT_FORREQ → WAIT_FOR_REQUEST,
 * TXMIT_ECPDU → TRANSMIT_ECPDU, the ack wait → WAIT_FOR_ACK, ERROR).
 *
 * Local rules:
 * 1. Sequence numbers follow the pacer's `lastSequence`: from 1 after initialisation by default
 *    (a bridge port sending to the group address starts at 0x8001, see port-core), and skip 0
 *    on wrap (lldpad `inc_seqno`); a retransmission reuses the number and the identical ULPDU.
 * 2. Retransmit on each ackTimer expiry: at most 1 + retriesMax sends, then drop, count, report.
 * 3. Unlike lldpad (which waits for the ack timer even after the ACK, ~390 ECPDUs/s at RTE 8),
 *    the next ECPDU leaves as soon as the matching ACK arrives.
 * 4. VDP TLVs queued for this peer with the same Manager ID, contiguous in the queue, are packed
 *    into one ECPDU while the ULPDU stays within `ECP_ULPDU_MAX` (1494 octets); exactly one
 *    Manager ID TLV leads each ECPDU (41.1, lldpad "Duplicate Manager ID TLV" rule).
 * 5. The queue is bounded (`pendingEcpduMax` TLVs); `enqueue` refuses beyond it.
 * 6. Optional pacing, off by default: `minGapUs` holds a new ECPDU until that long after the
 *    previous new one left, `burstGapUs` (longer) after one that itself waited for the gap.
 *    lldpad parses received VDP 2 ms after the frame into one buffer per port, so ECPDUs
 *    closer than ~2 ms overwrite each other there (lldpad-interop.md, note 5), and a busy
 *    lldpad runs that timer late; a lone request is still answered at once. What queued
 *    meanwhile is packed. The gap counts from the end of the step that sent (`settle`).
 *    Peers whose ECPDUs all go to the group address share one pacer (gap and numbering).
 *
 * Pure: time arrives as `nowUs`; the owner mirrors `deadlineUs` into its TimerTable.
 *
 * @module
 */
import { assert } from '../../shared/assert.ts'
import { nextSequence } from '../../shared/ecp/codec.ts'
import { ECP_ULPDU_MAX } from '../../shared/ecp/constants.ts'
import type { ManagerId } from '../../shared/ids.ts'
import type { Us } from '../../shared/time.ts'
import { MANAGER_ID_LENGTH, TLV_HEADER_LENGTH } from '../../shared/vdp/constants.ts'
import type { VdpTlv } from '../../shared/vdp/types.ts'
import { ECP_TX_TRANSITIONS, StateMachine, type EcpTxState } from './transitions.ts'

/** Octets of the Manager ID TLV that leads every VDP ULPDU. */
export const MANAGER_ID_TLV_LENGTH = TLV_HEADER_LENGTH + MANAGER_ID_LENGTH

/** One VDP TLV waiting for ECP. `owner` names the VSI to tell about a transmit failure. */
export interface EcpItem {
  managerId: ManagerId
  tlv: VdpTlv
  /** Encoded length of `tlv` including its 2-octet header. */
  length: number
  owner: string | undefined
  /** Bridge: how many times this TLV was queued again after ECP gave up on it. */
  resends?: number
}

/** An ECPDU to put on the wire (the owner encodes it). */
export interface EcpTransmission {
  sequence: number
  managerId: ManagerId
  items: readonly EcpItem[]
  /** 0 for the first send, then 1, 2, ... */
  retransmission: number
}

/**
 * Pacing state of rule 6. One per peer by default; the peers of one port share one when their
 * ECPDUs go to the group address, because every station on the segment then receives (and
 * lldpad parses into its single buffer) every peer's ECPDUs.
 */
export interface EcpPacer {
  /** Earliest time the next new ECPDU may leave. */
  holdUntilUs: Us
  /**
   * The gap of the last new ECPDU, until `settle` counts it again from the end of the step
   * that sent it (undefined once settled).
   */
  sentGapUs?: Us | undefined
  /**
   * Last sequence number any sharer used. lldpad keeps one receive sequence per port, not per
   * transmitter: if the bridge's peers each counted from 1, a station on the shared segment
   * would take another station's ECPDU with "its" next number for a duplicate and drop it.
   */
  lastSequence: number
}

/** ECPDU given up after 1 + retriesMax sends. */
export interface EcpFailure {
  sequence: number
  items: readonly EcpItem[]
}

interface Outstanding {
  sequence: number
  managerId: ManagerId
  items: EcpItem[]
  sends: number
}


export class EcpTx {
  #machine = new StateMachine(ECP_TX_TRANSITIONS, 'WAIT_FOR_REQUEST' as EcpTxState)
  #queue: EcpItem[] = []
  #head = 0
  /** Sequence number of the last ECPDU built; 0 after initialisation (43.3.7.x txSeqNum). */
  #sequence = 0
  #outstanding: Outstanding | undefined
  #deadlineUs: Us | undefined
  readonly #transmissions: EcpTransmission[] = []
  readonly #failures: EcpFailure[] = []
  /** ackTimer in µs (10 µs · 2^RTE); the owner updates it after EVB negotiation. */
  ackTimerUs: Us
  /** R: retransmissions after the first send (EVB TLV `retries`). */
  retriesMax: number

  /** Rule 6 pacing, possibly shared with the other peers of the port. */
  readonly #pacer: EcpPacer

  constructor(options: {
    ackTimerUs: Us
    retriesMax: number
    pendingMax: number
    ulpduMax?: number
    minGapUs?: Us
    /** Gap after an ECPDU that itself had to wait for the gap (a burst); default `minGapUs`. */
    burstGapUs?: Us
    pacer?: EcpPacer
  }) {
    this.#pacer = options.pacer ?? { holdUntilUs: 0, lastSequence: 0 }
    this.ackTimerUs = options.ackTimerUs
    this.retriesMax = options.retriesMax
    this.pendingMax = options.pendingMax
    this.ulpduMax = options.ulpduMax ?? ECP_ULPDU_MAX
    this.minGapUs = options.minGapUs ?? 0
    this.burstGapUs = Math.max(this.minGapUs, options.burstGapUs ?? 0)
  }

  readonly pendingMax: number
  readonly ulpduMax: number
  readonly minGapUs: Us
  readonly burstGapUs: Us
  /** The ECPDU being built had to wait for the gap: the peer is in a burst. */
  #held = false

  get state(): EcpTxState {
    return this.#machine.state
  }

  get sequence(): number {
    return this.#sequence
  }

  /** TLVs waiting (not counting the ones in flight). */
  get queued(): number {
    return this.#queue.length - this.#head
  }

  get deadlineUs(): Us | undefined {
    return this.#deadlineUs
  }

  get outstandingSequence(): number | undefined {
    return this.#outstanding?.sequence
  }

  /** Whether anything is queued or in flight. */
  get busy(): boolean {
    return this.#outstanding !== undefined || this.queued > 0
  }

  /** Queues one TLV; false (nothing queued) when the queue is full. */
  enqueue(nowUs: Us, item: EcpItem): boolean {
    if (MANAGER_ID_TLV_LENGTH + item.length > this.ulpduMax)
      assert(
        false,
        `Cannot queue VDP TLV: ${item.length} octets exceed the ULPDU limit ${this.ulpduMax}`,
      )
    if (this.queued >= this.pendingMax) return false
    this.#queue.push(item)
    this.#machine.beginInput()
    this.#afterQueueChange(nowUs)
    return true
  }

  /**
   * An ACK from the peer (43.3.7: accepted only for the outstanding sequence number).
   * Returns the items it acknowledged, or undefined for a stale or stray ACK (ignored).
   */
  handleAck(nowUs: Us, sequence: number): readonly EcpItem[] | undefined {
    this.#machine.beginInput()
    const out = this.#outstanding
    if (out === undefined || out.sequence !== sequence) {
      // A second ACK for a retransmitted ECPDU is ordinary; the caller counts it.
      this.#machine.fire('ack-mismatch')
      return undefined
    }
    this.#machine.fire('ack-received')
    this.#outstanding = undefined
    this.#deadlineUs = undefined
    this.#afterQueueChange(nowUs)
    return out.items
  }

  /** Runs the ack timer if due: retransmit, or give up after 1 + retriesMax sends. */
  handleTimeout(nowUs: Us): void {
    if (this.#deadlineUs === undefined || this.#deadlineUs > nowUs) return
    this.#machine.beginInput()
    const out = this.#outstanding
    if (out === undefined) {
      // The pacing hold ended (rule 6).
      this.#deadlineUs = undefined
      this.#afterQueueChange(nowUs)
      return
    }
    if (out.sends < 1 + this.retriesMax) {
      this.#machine.fire('ack-timer-expired')
      this.#send(nowUs, out)
      return
    }
    this.#machine.fire('retries-exhausted')
    this.#failures.push({ sequence: out.sequence, items: out.items })
    this.#outstanding = undefined
    this.#deadlineUs = undefined
    this.#machine.fire('error-reported')
    this.#afterQueueChange(nowUs)
  }

  /**
   * An ECPDU someone else sent on this machine's behalf (a link's keep-alive answer, see
   * port-core rule 5), awaiting its ACK: from now on it is this machine's own, sent once,
   * retransmitted when `deadlineUs` passes. Only while nothing is queued or in flight.
   */
  adopt(sequence: number, managerId: ManagerId, items: EcpItem[], deadlineUs: Us): void {
    assert(!this.busy, 'Cannot adopt an ECPDU: the transmit machine is busy')
    this.#machine.beginInput()
    this.#machine.fire('data-queued')
    this.#machine.fire('ecpdu-sent')
    this.#sequence = sequence
    this.#outstanding = { sequence, managerId, items, sends: 1 }
    this.#deadlineUs = deadlineUs
  }

  /**
   * The step in which this pacer's last new ECPDU left ended at `nowUs`: the gap counts from
   * then. A step hands its sends the time it started at; a long one (the first request's cold
   * code path, a GC pause) would otherwise leave the next ECPDU closer on the wire than the
   * gap, inside lldpad's 2 ms parse window.
   */
  settle(nowUs: Us): void {
    const p = this.#pacer
    if (p.sentGapUs === undefined) return
    if (nowUs + p.sentGapUs > p.holdUntilUs) p.holdUntilUs = nowUs + p.sentGapUs
    p.sentGapUs = undefined
  }

  pollTransmission(): EcpTransmission | undefined {
    return this.#transmissions.shift()
  }

  pollFailure(): EcpFailure | undefined {
    return this.#failures.shift()
  }

  /** Drops everything (port down); returns the items that were pending. */
  reset(): EcpItem[] {
    const dropped = [...(this.#outstanding?.items ?? []), ...this.#queue.slice(this.#head)]
    this.#queue = []
    this.#head = 0
    this.#outstanding = undefined
    this.#deadlineUs = undefined
    // The sequence number runs on: a peer whose receive machine did not restart would take a
    // fresh 1 for a duplicate of our last ECPDU and drop it.
    this.#transmissions.length = 0
    this.#machine = new StateMachine(ECP_TX_TRANSITIONS, 'WAIT_FOR_REQUEST' as EcpTxState)
    return dropped
  }

  #afterQueueChange(nowUs: Us): void {
    if (this.#machine.state !== 'WAIT_FOR_REQUEST' || this.queued === 0) return
    if (nowUs < this.#pacer.holdUntilUs) {
      this.#held = true
      this.#deadlineUs = this.#pacer.holdUntilUs
      return
    }
    this.#machine.fire('data-queued')
    // 41.1: one Manager ID per ECPDU; pack the contiguous run of TLVs that share it.
    const first = this.#queue[this.#head]!
    const items: EcpItem[] = []
    let length = MANAGER_ID_TLV_LENGTH
    while (this.#head < this.#queue.length) {
      const item = this.#queue[this.#head]!
      if (item.managerId !== first.managerId || length + item.length > this.ulpduMax) break
      items.push(item)
      length += item.length
      this.#head++
    }
    if (this.#head === this.#queue.length) {
      // Drained: let go of the items sent (each holds its TLV) instead of keeping up to
      // 1,024 of them per peer until the compaction below.
      this.#queue.length = 0
      this.#head = 0
    } else if (this.#head > 1024 && this.#head * 2 > this.#queue.length) {
      this.#queue = this.#queue.slice(this.#head)
      this.#head = 0
    }
    this.#sequence = this.#pacer.lastSequence = nextSequence(this.#pacer.lastSequence)
    // A lone request is answered at once and spaces the next ECPDU by minGapUs; once ECPDUs
    // queue up behind the gap (a burst), they are spaced by burstGapUs and packed.
    const gap = this.#held ? this.burstGapUs : this.minGapUs
    this.#pacer.holdUntilUs = nowUs + gap
    if (gap > 0) this.#pacer.sentGapUs = gap
    this.#held = false
    const out: Outstanding = {
      sequence: this.#sequence,
      managerId: first.managerId,
      items,
      sends: 0,
    }
    this.#outstanding = out
    this.#send(nowUs, out)
  }

  #send(nowUs: Us, out: Outstanding): void {
    this.#transmissions.push({
      sequence: out.sequence,
      managerId: out.managerId,
      items: out.items,
      retransmission: out.sends,
    })
    out.sends++
    this.#machine.fire('ecpdu-sent')
    this.#deadlineUs = nowUs + this.ackTimerUs
  }
}
