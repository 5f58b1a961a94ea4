/**
 * The only view of a network port the rest of the agent has: send a frame, receive frames.
 * Implementations: `af-packet.ts` (Linux raw socket, the real one) and `memory-link.ts`
 * (in-process, for tests and the demonstration fleet when not root).
 *
 * Rules every implementation keeps: frames are whole Ethernet frames (an 802.1Q tag, if any,
 * is in the bytes); a link never hands back a frame it sent itself; delivery is asynchronous
 * (never from inside `send`); after `close()` no handler is called again.
 *
 * A received frame's bytes are valid only until the `onFrame` handler returns (the raw socket
 * reads every batch into one receive area); a handler that keeps them copies them.
 *
 * ECP ACK offload (`ackEcp`, optional): a link may acknowledge ECP requests itself the moment
 * it reads them, before the handler runs, for the peers the port core names (the stations a
 * bridge port holds, a station port's bridge); the handler is
 * told so (`acked`) and does not acknowledge them again. The raw socket does it in C, which
 * takes the JavaScript of a whole frame off the ACK's way to the wire and off the way of the
 * VDP response that follows it.
 *
 * ECP ACK absorption (`absorbEcpAcks`, optional): the other direction. An ACK for an ECPDU
 * with nothing queued behind it only stops the ack timer; a link may take such ACKs in, for the
 * (peer, sequence) pairs the port core names, without handing over the frame, and report them
 * later through its own collector (the raw socket: `takeAbsorbedEcpAcks`, asked at every step
 * of every port). The raw socket does it in the kernel, in an eBPF socket filter: the process
 * reads nothing for the ACK, which at 10,000 VSIs is half the frames a bridge reads.
 *
 * Keep-alive answers (`answers`, optional): most of the rest. A bridge port core stores, per
 * VSI, the request it confirmed and the response it sent; while it has nothing to send it
 * lends the link its ECP transmit side, and the link answers a request that repeats stored
 * requests octet for octet with the stored responses, numbering the ECPDU on from where the
 * core stopped. The core learns when each VSI was last answered from a shared array, takes the
 * transmit side back (with any ECPDU still awaiting its ACK) before it does anything else on
 * the port, and is called when such an ECPDU's ack timer runs out. The raw socket does it in C:
 * a keep-alive then costs the agent no JavaScript at all.
 *
 * @module
 */
import type { Mac } from '../../shared/ethernet/mac.ts'
import type {
  AnswerLoan,
  AnswerLoanReturn,
  AnswerPeerStats,
  EcpAckAbsorb,
  EcpAckOffload,
  KeepAliveAnswers,
} from '../port/port-core.ts'

export type { AnswerLoan, AnswerLoanReturn, AnswerPeerStats, EcpAckAbsorb, EcpAckOffload, KeepAliveAnswers }

/** An ECP ACK a link took in (`FrameLink.absorbEcpAcks`), for the port core of `link`. */
export interface AbsorbedEcpAck {
  readonly link: FrameLink
  readonly peer: Mac
  readonly sequence: number
}

export interface FrameLinkStats {
  /** Frames handed to the `onFrame` handler. */
  rxFrames: number
  /** Frames the link accepted for transmission. */
  txFrames: number
  /**
   * Frames lost on the receive path before the handler saw them: kernel drops
   * (PACKET_STATISTICS, receive queue full) and oversized (truncated) frames for the raw
   * socket; frames lost by the simulated medium for the memory link.
   */
  drops: number
  /** Frames that could not be sent (interface down or gone, queue full, too long). */
  txErrors: number
  /** Error events raised (delivered to `onError` or not). */
  errors?: number
  /** ECP ACKs the link sent itself (`ackEcp`); they are in `txFrames` too. */
  offloadedAcks?: number
  /** ECP ACKs the link took in without handing over the frame (`absorbEcpAcks`). */
  absorbedAcks?: number
  /** ECPDUs the link sent as keep-alive answers (`answers`); they are in `txFrames` too. */
  answeredKeepalives?: number
  /** ECPDUs the link sent as answers from offers (`answers.offers`); in `txFrames` too. */
  answeredFromOffers?: number
}

/** What `FrameLink.onFrame` calls for each frame received. */
export type FrameHandler = (frame: Uint8Array, acked: boolean, resync?: boolean, answer?: Uint8Array) => void

/**
 * Something went wrong on a link after it was opened: the interface went down (`ENETDOWN`,
 * not fatal, the link resumes when it comes back up) or disappeared (`ENXIO`, fatal: the link
 * receives nothing more and should be closed and reopened).
 */
export class FrameLinkError extends Error {
  override readonly name = 'FrameLinkError'
  constructor(
    /** errno-style code: 'ENETDOWN', 'ENXIO', 'EPERM', 'ENODEV', 'EMSGSIZE', 'ENOBUFS', ... */
    readonly code: string,
    /** True when the link cannot recover by itself. */
    readonly fatal: boolean,
    message: string,
    /** Failing system call, when there is one (e.g. 'recvmmsg', 'send', 'socket'). */
    readonly syscall?: string,
  ) {
    super(message)
  }
}

export interface FrameLink {
  /** Interface name. */
  readonly name: string
  /** The port's own MAC address. */
  readonly mac: Mac
  /**
   * Sends one complete Ethernet frame (destination, source, ethertype, payload). Never
   * throws for network conditions (those are counted in `txErrors` and reported to
   * `onError`); throws only for caller bugs: a closed link or a frame shorter than 14 bytes.
   */
  send(frame: Uint8Array): void
  /**
   * Registers the receiver; one per link (a second call replaces it). The frame is valid only
   * during the call. `acked` is true when the link already acknowledged the frame, an ECP
   * request, itself (`ackEcp`). `resync` is true when the link answered requests of the same
   * peer itself since the previous one it handed over (`answers`): the frame is a new ECPDU
   * whatever sequence number the receive machine saw last. `answer` is the ECPDU the link sent
   * in answer to the frame from the core's offers (`KeepAliveAnswers.offers`), valid as long as
   * the frame.
   */
  onFrame(handler: FrameHandler): void
  /**
   * Optional: acknowledge ECP requests as `offload` says from now on (`undefined`: stop).
   * Replaces the previous setting. Links without it leave every ACK to the port core.
   */
  ackEcp?(offload: EcpAckOffload | undefined): void
  /**
   * Optional: from now on take in the ECP ACKs `absorb` names, without handing their frames
   * to `onFrame`, for the link module's collector to report (`undefined`: stop; ACKs taken in
   * but not yet collected are then lost, and the ack timer retransmits). Replaces the previous
   * setting. Throws a `FrameLinkError` when the link cannot (the kernel refuses the filter);
   * every ACK then comes as a frame, as without it.
   */
  absorbEcpAcks?(absorb: EcpAckAbsorb | undefined): void
  /** Optional: keep-alive answers given by the link itself (bridge ports). */
  readonly answers?: KeepAliveAnswers
  /**
   * Registers the error receiver; one per link. Optional so that simple fakes stay valid;
   * both implementations in this folder provide it.
   */
  onError?(handler: (error: FrameLinkError) => void): void
  stats(): FrameLinkStats
  /** Stops receiving and releases the port; idempotent. */
  close(): void
}

/** Shortest frame a link accepts: destination, source and Ethertype. */
export const ETHERNET_HEADER_BYTES = 14
