/**
 * The protocol core of one port (STYLE.md §3): Ethernet → ECP → VDP with the shared codecs,
 * one ECP transmit/receive pair per peer MAC (several stations may share a bridge port), one
 * VDP machine per VSI, and the Nearest Customer Bridge LLDP agent that carries the EVB TLV
 * (802.1Qbg-2012 D.2.12) and negotiates R/RTE/RWD/RKA and the GroupID bits.
 *
 * Contract (quinn / str0m): make one mutation (`handleFrame`, `handleTimeout`,
 * `handleCommand`), then drain `pollTransmit()` and `pollEvent()` until undefined and re-arm
 * one timer at `nextDeadlineUs()`. No I/O, no clock: time arrives as `nowUs`. A driver may
 * instead take frames as they are built (`setTransmitSink`), so that they leave mid-step.
 *
 * Local rules:
 * 1. Peer input never throws out of the core: `DecodeError` and `RemoteProtocolError` are
 *    counted and reported as `{ kind: 'frame-dropped', code, offset }`. Only a failed assert
 *    (a bug) escapes; the driver then discards this core.
 * 2. `handleCommand` throws `LocalProtocolError` for an illegal request and changes nothing.
 * 3. Every table and queue is bounded (`vsiCountMax`, `peerCountMax`, `pendingEcpduMax`,
 *    `eventQueueMax`, `transmitQueueMax`); overflow is counted, never unbounded growth.
 * 4. Before an EVB TLV is heard the local EVB values run (lldpad would run with zeros, see
 *    lldpad-interop "requests before EVB parameters"); GroupID formats need BGID and SGID, so
 *    with LLDP enabled they wait for the peer's TLV.
 * 5. Keep-alive answers (bridge, `useAnswers`; vdp-bridge rule 6): the core stores each
 *    confirmed (request, response) pair at the link and, between steps, may lend the link its
 *    ECP transmit side (`answerLoan`) while no peer has anything queued or in flight and
 *    ECPDUs go to the group address (one sequence space and one pacing gap for the port).
 *    The driver takes it back (`takeBackLoan`) before any other input: the port's sequence
 *    number moves on from the link's, and an ECPDU the link sent that still awaits its ACK
 *    becomes this core's, retransmitted and given up on as its own. Counters include what the
 *    link did (`KeepAliveAnswers.peerStats`). A VSI the link holds an answer for has no timer
 *    of its own: one sweep per port, on a grid shared by all ports (toutKeepAlive/16, at most
 *    0.5 s), moves each such VSI's last-seen time to the link's last answer and times out
 *    those silent for toutKeepAlive. Per-VSI timers would each fire about once per keep-alive
 *    period, as often as the keep-alives the link took off the core.
 * 6. Answers from offers (bridge, `KeepAliveAnswers.offers`, with the resource manager's
 *    `offerState`): whenever the core grants an entry that asked for the null VID, it stores
 *    (VSI type, version, filter format, GroupID) → VID with the resource manager's epoch at
 *    the link, and it tells the link each VSI it starts or stops holding. While the side is
 *    lent, the link answers a request for VSIs the port does not hold, each entry of which has
 *    an offer of the current epoch, with the grant the core would give (the TLV echoed, status
 *    0x40, VIDs filled) and hands the request over with its answer. The core then decides it
 *    as any other (state, journal, data plane, events) with its sends to that peer held back,
 *    and drops them if they are the link's answer octet for octet. If not (never, while the
 *    resource manager keeps its rule 7), it counts `offerMismatches`: a VSI it granted
 *    otherwise ends with an unsolicited De-Associate (`answer-mismatch`), and what it refused
 *    it answers as decided. The loan carries the port's room for new VSIs and the filter
 *    formats it accepts now (GroupID formats only once negotiated).
 *
 * @module
 */
import { assert } from '../../shared/assert.ts'
import {
  ECP_HEADER_LENGTH,
  ECP_VERSION,
  EcpOperation,
  EcpSubtype,
  ETHERTYPE_ECP,
} from '../../shared/ecp/constants.ts'
import { decodeEcpHeader, encodeEcpdu } from '../../shared/ecp/codec.ts'
import {
  decodeEthernetHeader,
  encodeEthernetFrame,
  ETHERTYPE_LLDP,
} from '../../shared/ethernet/frame.ts'
import {
  isValidUnicastMac,
  macToBytes,
  NCB_GROUP_MAC,
  type Mac,
} from '../../shared/ethernet/mac.ts'
import { EvbMode, type EvbTlv } from '../../shared/evb/evb-tlv.ts'
import { negotiateEvb, type EvbConfig } from '../../shared/evb/negotiate.ts'
import type { ManagerId, VsiIdHex } from '../../shared/ids.ts'
import {
  CHASSIS_ID_SUBTYPE_MAC,
  decodeLldpdu,
  encodeLldpdu,
  evbLldpTlv,
  findEvbTlv,
  PORT_ID_SUBTYPE_MAC,
} from '../../shared/lldp/codec.ts'
import type { Us } from '../../shared/time.ts'
import { encodeVdpFrame } from '../../shared/encode-frame.ts'
import {
  decodeVdpPduTolerant,
  vsiTlvLength,
  type InvalidVsiTlv,
} from '../../shared/vdp/codec.ts'
import {
  FilterFormat,
  TYPE_BY_VSI_MODE,
  VdpError,
  type VsiMode,
} from '../../shared/vdp/constants.ts'
import type { FilterEntry, VdpPdu, VdpTlv, VsiId, VsiTlv } from '../../shared/vdp/types.ts'
import { encodeStatus } from '../../shared/vdp/vsi-tlv.ts'
import { DecodeError } from '../../shared/wire/errors.ts'
import { Reader } from '../../shared/wire/reader.ts'
import { Writer } from '../../shared/wire/writer.ts'
import { toHex } from '../../shared/wire/hex.ts'
import {
  resolvePortConfig,
  type PortConfig,
  type PortConfigInput,
  type PortRole,
} from './config.ts'
import { decodeVdpPdu, vdpTlvLength } from '../../shared/vdp/codec.ts'
import { encodeManagerIdTlv } from '../../shared/vdp/manager-id-tlv.ts'
import { encodeVsiTlv as writeVsiTlv, vsiTlvLength as vsiTlvOctets } from '../../shared/vdp/vsi-tlv.ts'
import { EcpRx } from './ecp-rx.ts'
import { EcpTx, MANAGER_ID_TLV_LENGTH, type EcpItem, type EcpPacer } from './ecp-tx.ts'
import { LocalProtocolError, RemoteProtocolError } from './errors.ts'
import {
  zeroPeerCounters,
  zeroPortCounters,
  type OperationalTiming,
  type PeerCounters,
  type PeerSnapshot,
  type PortCounters,
  type PortEvent,
  type VsiSnapshot,
} from './events.ts'
import type { ResourceManager } from './resources.ts'
import {
  ackTimerUs,
  reinitKeepAliveUs,
  resourceWaitDelayUs,
  respWaitDelayUs,
  TimerTable,
  toutKeepAliveUs,
} from './timers.ts'
import { BridgeVsi, type BridgeContext } from './vdp-bridge.ts'
import { StationVsi, type StationContext, type StationRequest } from './vdp-station.ts'
import { migrationOf, RESPONSE_OK, vsiKey, vsiRef, withMode } from './vsi.ts'

// ---------------------------------------------------------------------------------------------
// Commands

/** Station role: ask the bridge for a mode (41.2.1 request types). */
export interface VsiRequestCommand {
  kind: 'associate' | 'pre-associate' | 'pre-associate-rr'
  managerId: ManagerId
  typeId: number
  typeVersion: number
  vsiId: VsiId
  filterFormat: FilterFormat
  /** VID 0 asks the bridge to pick the VID (41.2.9). */
  entries: FilterEntry[]
  /** Migration hints: M bit (to this station), S bit (suspended / from this station). */
  hints?: { migratingTo?: boolean; migratingFrom?: boolean }
}

/**
 * De-associate a VSI. Station: sends a De-Associate with the stored (bridge-assigned) VIDs.
 * Bridge: unsolicited De-Associate (status 0x00) to the station; `peer` picks the station
 * when the VSIID is known from several.
 */
export interface DeassociateCommand {
  kind: 'de-associate'
  vsiId: VsiId
  peer?: Mac
}

/** Emit a `counters` event now. */
export interface ReportCountersCommand {
  kind: 'report-counters'
}

/**
 * The shell saw the port's carrier go down or come back. Down: both ECP machines of every
 * peer restart (43.3.8: port down resets the receive machine; queued ECPDUs are dropped and
 * counted) and LLDP stops sending. Up: LLDP fast start again and, on a station, every settled
 * VSI sends its keep-alive at once (the standard's localChange on link up).
 */
export interface LinkCommand {
  kind: 'link-down' | 'link-up'
}

export type PortCommand =
  VsiRequestCommand | DeassociateCommand | ReportCountersCommand | LinkCommand

// ---------------------------------------------------------------------------------------------

interface Peer {
  mac: Mac
  rx: EcpRx
  tx: EcpTx
  counters: PeerCounters
  /** Reported up (peer-up sent, no peer-down since). */
  up: boolean
  lldpTtlDeadlineUs: Us | undefined
  /** Name of this peer's ECP timer in the table, built once (it is looked up per ECPDU). */
  readonly ecpTimer: TimerName
}

/**
 * A VSI's timer is named by its key (`vsiKey`: a MAC or '-' first), the same string object the
 * VSI holds, so a keep-alive re-arms it without building a name; the port's own timers start
 * with '#', which no VSI key does.
 */
type TimerName = string
const OWN_TIMER_PREFIX = 0x23 // '#'
const ECP_TIMER = '#e|'
const LLDP_TX_TIMER = '#l|tx'
const LLDP_TTL_TIMER = '#l|ttl|'
const COUNTERS_TIMER = '#c|counters'
const ANSWER_SWEEP_TIMER = '#a|sweep'
/** Rule 6: offers remembered as stored at the link (the link keeps at most 256). */
const OFFERS_TRACKED_MAX = 1024

/** Same octets (Buffer.equals without the Buffer). */
function equalBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false
  return true
}

/** Rule 5: longest period of the sweep of VSIs the link answers for. */
const SWEEP_PERIOD_MAX_US = 500_000
const UPLINK = 'uplink'
/** Times a VDP TLV is queued again after ECP gave up on the ECPDU that carried it. */
const RESPONSE_RESENDS_MAX = 2
/** Default first ECP sequence number of a bridge port (see `#groupPacer`). */
export const BRIDGE_FIRST_SEQUENCE = 0x8001

/** Body of an association TLV that could not be decoded: identity, no entries (41.2). */
function identityReplyTlv(bad: InvalidVsiTlv, keep: boolean): VdpTlv {
  const id = bad.identity!
  const w = new Writer(25)
  w.u8(encodeStatus({ response: true, keep, hard: false, error: VdpError.InvalidFormat }))
  w.u24(id.typeId)
  w.u8(id.typeVersion)
  w.u8(id.vsiId.format)
  for (let i = 0; i < 16; i++) w.u8(parseInt(id.vsiId.id.slice(2 * i, 2 * i + 2), 16))
  w.u8(id.filterFormat & 0xff)
  w.u16(0)
  return { kind: 'unknown', type: TYPE_BY_VSI_MODE[id.mode], body: w.toBytes() }
}

const ACK_SEQUENCE_OFFSET = 14 + 2

/** Runs a decoder on a slice of the frame; a `DecodeError` gets its offset from the frame start. */
function rebased<T>(base: number, decode: () => T): T {
  try {
    return decode()
  } catch (e) {
    if (!(e instanceof DecodeError) || base === 0) throw e
    throw new DecodeError(e.code, base + e.offset, e.message, e.statusHint)
  }
}

/**
 * 41.2.9 and lldpad `filter_ok`: VID 0 or 2..4094, unicast non-zero MACs, GroupID ≠ 0, GroupID
 * formats only when negotiated. Returns the VDP error code, 0 when valid.
 */
export function filterError(tlv: VsiTlv, groupIdEnabled: boolean): number {
  const grouped =
    tlv.filterFormat === FilterFormat.GroupVid || tlv.filterFormat === FilterFormat.GroupMacVid
  if (grouped && !groupIdEnabled) return VdpError.InvalidFormat
  let nullVids = 0
  for (const e of tlv.entries) {
    if (e.vid === 1 || e.vid > 4094) return VdpError.InvalidVidGroupIdOrMac
    if (e.vid === 0) nullVids++
    if (e.mac !== undefined && !isValidUnicastMac(e.mac)) return VdpError.InvalidVidGroupIdOrMac
    if (e.groupId !== undefined && e.groupId === 0) return VdpError.InvalidVidGroupIdOrMac
  }
  if (tlv.filterFormat === FilterFormat.Vid && nullVids > 1) return VdpError.InvalidVidGroupIdOrMac
  return 0
}

/**
 * What a link may acknowledge by itself for a port core (`PortCore.ecpAckOffload`, applied
 * with `FrameLink.ackEcp`): every ECP VDP request (version 1, operation request, subtype VDP;
 * untagged or behind one tag) to the nearest customer bridge group address or to the port's
 * own MAC whose source is one of `peers` gets an untagged ECP ACK with the request's sequence
 * number, from `source`, to the requester (`unicast`) or to the group address: the ACK the
 * core would build itself (`#sendAck`).
 */
export interface EcpAckOffload {
  readonly source: Mac
  readonly unicast: boolean
  readonly peers: readonly Mac[]
}

/**
 * An ECPDU of this core waiting for its ACK with nothing queued behind it for that peer: the
 * ACK then only has to stop the ack timer, and a link may take it in without handing over the
 * frame (`FrameLink.absorbEcpAcks`) and report it later (`PortCore.handleAbsorbedAck`). ACKs
 * the core would accept: ECP version 1, operation ACK, subtype VDP, from `peer` with
 * `sequence`, to the nearest customer bridge group address or to `own`.
 */
export interface EcpAckAbsorb {
  readonly own: Mac
  readonly awaited: readonly { readonly peer: Mac; readonly sequence: number }[]
}

/** The ECP transmit side back from a link (`KeepAliveAnswers.takeBack`). */
export interface AnswerLoanReturn {
  /** The last sequence number the link used (the one lent if it sent nothing). */
  readonly sequence: number
  /** No new ECPDU before this (pacing, `ecpTxGapUs`), on the core's clock. */
  readonly holdUntilUs: number
  /** ECPDUs the link sent that await their ACK, now the core's to retransmit or forget. */
  readonly outstanding: readonly {
    readonly peer: Mac
    readonly sequence: number
    /** The whole frame as sent. */
    readonly frame: Uint8Array
    /** When its ack timer runs out, on the core's clock. */
    readonly deadlineUs: number
  }[]
}

/** The ECP transmit side as a core lends it to its link (`PortCore.answerLoan`). */
export interface AnswerLoan {
  readonly lastSequence: number
  readonly ackTimerUs: Us
  readonly holdUntilUs: Us
  readonly gapUs: Us
  /** Rule 6: new VSIs the link may answer from offers during this loan (0: none). */
  readonly offerCredit?: number
  /** Rule 6: bit `1 << f` set: filter format f may be answered from offers. */
  readonly offerFormats?: number
}

/** A decision for new VSIs of one kind (rule 6), valid while the epoch stays `epoch`. */
export interface AnswerOffer {
  readonly typeId: number
  readonly typeVersion: number
  readonly filterFormat: number
  /** 0 for filter formats 1 and 2. */
  readonly groupId: number
  readonly vid: number
  readonly epoch: number
}

/** Answers from offers a link gives by itself (rule 6). */
export interface AnswerOffers {
  /** Turns offers on (after `KeepAliveAnswers.start`) with the resource manager's [epoch, headroom]. */
  start(state: Int32Array): void
  /** Stores (or replaces) an offer; false when the link's table is full. */
  set(offer: AnswerOffer): boolean
  /** The core now holds (or no longer holds) the VSI `vsiId` of `peer`. */
  known(peer: Mac, vsiId: VsiIdHex, held: boolean): void
}

/** What a link's keep-alive answers did for one peer since `start`. */
export interface AnswerPeerStats {
  readonly peer: Mac
  readonly rxEcpdus: number
  readonly rxDuplicates: number
  readonly rxVdpTlvs: number
  readonly txEcpdus: number
  readonly txVdpTlvs: number
  readonly rxAcks: number
  readonly rxAcksAbsorbed: number
}

/** Keep-alive answers a link gives by itself (`FrameLink.answers`; rule 5 above). */
export interface KeepAliveAnswers {
  /**
   * Turns answers on for a fresh core, dropping any from before; ids run below `capacity`.
   * Returns the shared array: [last time answered (µs, the core's clock, of which `nowUs` is
   * the present), times answered] per id. `onReturn` runs when an ECPDU the link sent ran out
   * of its ack timer; the link answers nothing more until `takeBack`.
   */
  start(capacity: number, nowUs: number, onReturn: () => void): Float64Array
  /** Turns answers off and drops them. */
  stop(): void
  /** Stores (or replaces) answer `id`: request = Manager ID TLV + VSI TLV, response = VSI TLV. */
  set(id: number, peer: Mac, request: Uint8Array, response: Uint8Array): void
  remove(id: number): void
  /**
   * Lends the port's ECP transmit side: the link numbers on from `lastSequence`, sends no
   * ECPDU before `holdUntilUs` and each at least `gapUs` after the one before.
   */
  lend(loan: AnswerLoan): void
  takeBack(): AnswerLoanReturn
  /** The core restarted its receive machine for `peer`: its next request is new. */
  forget(peer: Mac): void
  peerStats(): AnswerPeerStats[]
  /** Optional: answers to requests for new VSIs from the core's offers (rule 6). */
  readonly offers?: AnswerOffers
}

/** Adds what a link's keep-alive answers did for a peer (rule 5) to port or peer counters. */
function addAnswered(c: PeerCounters, a: AnswerPeerStats): void {
  c.rxEcpdus += a.rxEcpdus
  c.rxDuplicates += a.rxDuplicates
  c.rxAcks += a.rxAcks
  c.txEcpdus += a.txEcpdus
  c.rxVdpTlvs += a.rxVdpTlvs
  c.txVdpTlvs += a.txVdpTlvs
}

/**
 * One port's protocol core.
 *
 * @example
 * ```ts
 * const core = new PortCore({ port: portName('eth0'), mac, role: 'bridge' }, resources, clock.nowUs())
 * link.onFrame((f) => { core.handleFrame(clock.nowUs(), f); drain(core) })
 * ```
 */
export class PortCore {
  readonly config: PortConfig
  readonly #resources: ResourceManager | undefined
  readonly #timers = new TimerTable<TimerName>()
  readonly #counters = zeroPortCounters()
  #nowUs: Us
  /** Offset of the current frame's payload (after the Ethernet header and any tag). */
  #payloadOffset = 0
  #transmits: Uint8Array[] = []
  #transmitHead = 0
  #transmitSink: ((frame: Uint8Array) => void) | undefined
  /** ECP ACK frames by destination, sequence 0 (`#sendAck`). */
  readonly #ackTemplates = new Map<Mac, Uint8Array>()
  #events: PortEvent[] = []
  #eventHead = 0

  readonly #peers = new Map<Mac, Peer>()
  /** Moves whenever a peer is added or removed or the bridge changes (what `ecpAckOffload()` names). */
  #peersVersion = 0
  /** A new ECPDU left in this step with a pacing gap to settle (`endStep`). */
  #paced = false
  /** Moves whenever an ECP transmit machine may have changed (what `ecpAckAbsorb()` names). */
  #txVersion = 0
  /** Station role: the ECP pair towards the bridge. */
  #uplink: Peer | undefined
  #bridgeMac: Mac | undefined
  readonly #bridgeVsis = new Map<string, BridgeVsi>()
  readonly #stationVsis = new Map<string, StationVsi>()
  /** Rule 5: the link's keep-alive answers, their shared array, and the ids in use. */
  #answers: KeepAliveAnswers | undefined
  #answerSeen: Float64Array = new Float64Array(0)
  readonly #answerFreeIds: number[] = []
  #answerNextId = 0
  /** Rule 5: VSIs the link holds an answer for, supervised by the sweep. */
  readonly #answered = new Set<BridgeVsi>()
  /** Rule 6: the link's offers, the resource manager's [epoch, headroom], what the link holds. */
  #offers: AnswerOffers | undefined
  #offerState: Int32Array | undefined
  readonly #offersStored = new Map<string, { vid: number; epoch: number }>()
  /** Rule 6: the request being decided was answered by the link with `answer`. */
  #offered: { peer: Peer; answer: Uint8Array; items: EcpItem[] } | undefined

  // EVB / LLDP (802.1Qbg-2012 D.2.12, 802.1AB)
  readonly #evbLocal: EvbConfig
  #evbTlv: EvbTlv
  #timing: OperationalTiming
  #lldpFastRemaining: number
  readonly #lldpNeighbors = new Set<Mac>()

  readonly #bridgeCtx: BridgeContext
  readonly #stationCtx: StationContext

  constructor(
    input: PortConfigInput | PortConfig,
    resources: ResourceManager | undefined,
    startUs: Us = 0,
  ) {
    this.config = resolvePortConfig(input)
    this.#groupPacer = { holdUntilUs: 0, lastSequence: this.config.bridgeFirstSequence - 1 }
    assert(
      this.config.role !== 'bridge' || resources !== undefined,
      'Cannot create a bridge port core: no resource manager',
    )
    this.#resources = resources
    this.#nowUs = startUs
    const evb = this.config.evb
    this.#evbLocal = { role: this.config.role, ...evb }
    const first = negotiateEvb(this.#evbLocal, undefined)
    this.#evbTlv = first.tlv
    this.#timing = this.#timingFrom({
      ...evb,
      // Without LLDP there is no negotiation: trust the local setting.
      groupIdEnabled: this.config.lldp.enabled ? first.operational.groupIdEnabled : evb.groupId,
    })
    this.#lldpFastRemaining = this.config.lldp.txFastCount
    if (this.config.lldp.enabled) this.#timers.set(LLDP_TX_TIMER, startUs)
    if (this.config.countersIntervalUs > 0)
      this.#timers.set(COUNTERS_TIMER, startUs + this.config.countersIntervalUs)

    const core = this
    const common = {
      port: this.config.port,
      role: this.config.role,
      counters: this.#counters,
      send: (peer: Mac | undefined, managerId: ManagerId, tlv: VsiTlv, owner: string) =>
        core.#enqueueVdp(peer, managerId, tlv, owner),
      emit: (event: PortEvent) => core.#emit(event),
      setTimer: (key: string, atUs: Us | undefined) =>
        atUs === undefined ? core.#timers.stop(key) : core.#timers.set(key, atUs),
    }
    this.#bridgeCtx = {
      ...common,
      get resources() {
        return core.#resources!
      },
      get toutKeepAliveUs() {
        return core.#timing.toutKeepAliveUs
      },
      answer: (vsi: BridgeVsi, request: VsiTlv) => core.#answer(vsi, request),
      unanswer: (vsi: BridgeVsi) => core.#unanswer(vsi),
    }
    this.#stationCtx = {
      ...common,
      get respWaitDelayUs() {
        return core.#timing.respWaitDelayUs
      },
      get reinitKeepAliveUs() {
        return core.#timing.reinitKeepAliveUs
      },
      get bridgeMac() {
        return core.#bridgeMac
      },
    }
  }

  get role(): PortRole {
    return this.config.role
  }

  // -------------------------------------------------------------------------------------------
  // Inputs

  /**
   * A whole Ethernet frame from the port. Never throws for bad peer input. Keeps no view of
   * `frame`: the caller may reuse its bytes once this returns. `ecpAcked`: the link already
   * acknowledged this ECP request itself, as `ecpAckOffload()` allowed; no ACK is built again.
   * `answer`: the link answered it from offers with this frame (rule 6).
   */
  handleFrame(nowUs: Us, frame: Uint8Array, ecpAcked = false, resync = false, answer?: Uint8Array): void {
    this.#advance(nowUs)
    this.#counters.rxFrames++
    try {
      this.#frame(frame, ecpAcked, resync, answer)
    } catch (e) {
      if (e instanceof DecodeError) {
        this.#counters.decodeErrors++
        this.#drop(e.code, e.offset)
      } else if (e instanceof RemoteProtocolError) {
        this.#counters.protocolErrors++
        this.#drop(e.code, e.offset)
      } else {
        throw e
      }
    }
  }

  /**
   * An ECP ACK the link took in for this core (`ecpAckAbsorb()` named it): handled exactly as
   * the frame would have been, some time after it arrived. A peer the core no longer holds, or
   * a station's bridge that changed since, makes it a stray ACK, counted and otherwise ignored.
   */
  handleAbsorbedAck(nowUs: Us, source: Mac, sequence: number): void {
    this.#advance(nowUs)
    const peer = this.role === 'station' ? (source === this.#bridgeMac ? this.#uplink : undefined) : this.#peers.get(source)
    this.#counters.rxAcksAbsorbed++
    if (peer === undefined) {
      this.#counters.rxAcks++
      return
    }
    this.#ackReceived(this.#peerFor(source, 'ecp'), sequence)
  }

  /** Runs every timer due at `nowUs`. */
  handleTimeout(nowUs: Us): void {
    this.#advance(nowUs)
    for (const name of this.#timers.popExpired(nowUs)) this.#timer(name)
  }

  /** A local request; throws `LocalProtocolError` (and changes nothing) when illegal. */
  /**
   * Bridge, after an agent restart: takes a VSI the agent held before exactly as if its
   * station had just sent the request again (resource decision, state, keep-alive
   * supervision, events). The answer goes out to the station at once: a station waiting for
   * the answer to a keep-alive the dead agent never gave (lldpad waits respWaitDelay, then
   * drops the VSI) takes it as that answer; one that waits for nothing ignores it. A station
   * that is gone is timed out after toutKeepAlive like any silent one.
   */
  restoreVsi(nowUs: Us, vsi: { peer: Mac; managerId: ManagerId; tlv: VsiTlv }): void {
    if (this.role !== 'bridge') throw new LocalProtocolError('wrong-role', `Cannot restore VSI ${vsi.tlv.vsiId.id} on port ${this.config.port}: role is station`)
    if (vsi.tlv.status.response || vsi.tlv.mode === 'de-associate') {
      throw new LocalProtocolError('bad-command', `Cannot restore VSI ${vsi.tlv.vsiId.id}: not a request for a held mode`)
    }
    this.#advance(nowUs)
    const peer = this.#peerFor(vsi.peer, 'ecp')
    this.#guard(peer, () => this.#bridgeTlv(peer, vsi.managerId, vsi.tlv, true))
  }

  handleCommand(nowUs: Us, command: PortCommand): void {
    this.#advance(nowUs)
    switch (command.kind) {
      case 'report-counters':
        this.#emitCounters()
        return
      case 'link-down':
        this.#linkDown()
        return
      case 'link-up':
        this.#linkUp()
        return
      case 'de-associate':
        if (this.role === 'bridge') this.#bridgeDeassociateCommand(command)
        else this.#stationDeassociateCommand(command)
        return
      case 'associate':
      case 'pre-associate':
      case 'pre-associate-rr':
        if (this.role !== 'station') {
          throw new LocalProtocolError(
            'wrong-role',
            `Cannot ${command.kind} on port ${this.config.port}: role is bridge`,
          )
        }
        this.#stationRequestCommand(command)
        return
      default: {
        const never: never = command
        throw new LocalProtocolError(
          'bad-command',
          `Cannot run command: unknown kind ${String((never as { kind: unknown }).kind)}`,
        )
      }
    }
  }

  // -------------------------------------------------------------------------------------------
  // Outputs

  /**
   * Hands every frame to `sink` the moment it is built instead of queueing it for
   * `pollTransmit()` (undefined: queue again). Order is unchanged; what the sink gets is what
   * `pollTransmit()` would have returned. The driver uses it so that frames reach the link
   * in the order built, the ECP ACK first (43.3.8), and a response before this step's events
   * are handled. The sink must not throw and must not call back into the core.
   */
  setTransmitSink(sink: ((frame: Uint8Array) => void) | undefined): void {
    this.#transmitSink = sink
    if (sink === undefined) return
    for (let f = this.pollTransmit(); f !== undefined; f = this.pollTransmit()) sink(f)
  }

  pollTransmit(): Uint8Array | undefined {
    if (this.#transmitHead >= this.#transmits.length) {
      if (this.#transmits.length > 0) {
        this.#transmits = []
        this.#transmitHead = 0
      }
      return undefined
    }
    return this.#transmits[this.#transmitHead++]
  }

  pollEvent(): PortEvent | undefined {
    if (this.#eventHead >= this.#events.length) {
      if (this.#events.length > 0) {
        this.#events = []
        this.#eventHead = 0
      }
      return undefined
    }
    return this.#events[this.#eventHead++]
  }

  /**
   * The ECP ACKs a link may send for this core (`FrameLink.ackEcp`), acknowledged exactly as
   * `#sendAck` would. Bridge role: requests from the peers it holds; a new station's first
   * frame is still acknowledged here, as it decides whether the peer table takes it. Station
   * role: requests from the bridge once it is known (`#fromBridge`); before that, whether a
   * request is ours depends on what it carries, so none. The driver applies it again whenever
   * `peersVersion` moves.
   */
  ecpAckOffload(): EcpAckOffload {
    const peers = this.role === 'bridge' ? [...this.#peers.keys()] : this.#bridgeMac === undefined ? [] : [this.#bridgeMac]
    return { source: this.config.mac, unicast: this.config.ecpDestination === 'peer-unicast', peers }
  }

  get peersVersion(): number {
    return this.#peersVersion
  }

  /**
   * The ECP ACKs a link may take in for this core (`FrameLink.absorbEcpAcks`): per peer, the
   * ECPDU in flight when nothing is queued behind it. Once something is queued, its ACK must
   * come in at once (it releases the next ECPDU), so that peer is left out. The driver applies
   * it again whenever `ecpTxVersion` or `peersVersion` moves.
   */
  ecpAckAbsorb(): EcpAckAbsorb {
    const awaited: { peer: Mac; sequence: number }[] = []
    if (this.role === 'bridge') {
      for (const p of this.#peers.values()) {
        const sequence = p.tx.outstandingSequence
        if (sequence !== undefined && p.tx.queued === 0) awaited.push({ peer: p.mac, sequence })
      }
    } else if (this.#uplink !== undefined && this.#bridgeMac !== undefined) {
      const sequence = this.#uplink.tx.outstandingSequence
      if (sequence !== undefined && this.#uplink.tx.queued === 0) awaited.push({ peer: this.#bridgeMac, sequence })
    }
    return { own: this.config.mac, awaited }
  }

  get ecpTxVersion(): number {
    return this.#txVersion
  }

  /**
   * The step that just ran ended at `nowUs` (the driver's clock after it): ECP pacing gaps
   * count from when its ECPDUs really left, not from the time the step was given. Costs
   * nothing after a step that sent no new ECPDU.
   */
  endStep(nowUs: Us): void {
    if (!this.#paced) return
    this.#paced = false
    for (const p of this.#allPeers()) p.tx.settle(nowUs)
  }

  nextDeadlineUs(): Us | undefined {
    return this.#timers.nextUs()
  }

  // -------------------------------------------------------------------------------------------
  // Inspection (CLI, tests)

  counters(): PortCounters {
    const c = { ...this.#counters }
    if (this.#answers === undefined) return c
    for (const a of this.#answers.peerStats()) {
      addAnswered(c, a)
      // The link read each request and sent its ACK and the answer; it read or took in each ACK.
      c.rxFrames += a.rxEcpdus + a.rxAcks - a.rxAcksAbsorbed
      c.txAcks += a.rxEcpdus
      c.txFrames += a.txEcpdus
      c.keepalivesRx += a.rxVdpTlvs
      c.keepalivesAnswered += a.rxVdpTlvs
      c.rxAcksAbsorbed += a.rxAcksAbsorbed
    }
    return c
  }

  peerCounters(peer: Mac): PeerCounters | undefined {
    const p = this.role === 'station' ? this.#uplink : this.#peers.get(peer)
    return p === undefined ? undefined : this.#peerCountersOf(p, this.#answers?.peerStats())
  }

  /** A peer's counters with what the link's answers did for it (rule 5). */
  #peerCountersOf(p: Peer, answered: readonly AnswerPeerStats[] | undefined): PeerCounters {
    const c = { ...p.counters }
    const a = answered?.find((s) => s.peer === p.mac)
    if (a !== undefined) addAnswered(c, a)
    return c
  }

  peers(): PeerSnapshot[] {
    const all =
      this.role === 'station' ? (this.#uplink ? [this.#uplink] : []) : [...this.#peers.values()]
    const answered = this.#answers?.peerStats()
    return all.map((p) => ({
      peer: p.mac,
      counters: this.#peerCountersOf(p, answered),
      ecpState: p.tx.state,
      queued: p.tx.queued,
      lldpTtlDeadlineUs: p.lldpTtlDeadlineUs,
    }))
  }

  /** The VSI table, for `vdpctl show vsis`. */
  vsiSnapshot(): VsiSnapshot[] {
    const out: VsiSnapshot[] = []
    if (this.role === 'bridge') {
      for (const v of this.#bridgeVsis.values()) {
        const shown = v.confirmed ?? v.request
        const answered = this.#answeredSince(v)
        out.push({
          role: 'bridge',
          vsi: vsiRef(v.peer, v.managerId, shown, migrationOf(v.request.status)),
          state: v.state,
          confirmedMode: v.confirmedMode,
          pendingMode: undefined,
          sinceUs: v.sinceUs,
          lastSeenUs: answered ?? v.lastSeenUs,
          deadlineUs: answered === undefined ? v.deadlineUs : answered + this.#timing.toutKeepAliveUs,
        })
      }
    } else {
      for (const v of this.#stationVsis.values()) {
        const shown = v.confirmed ?? v.request
        out.push({
          role: 'station',
          vsi: vsiRef(this.#bridgeMac ?? NCB_GROUP_MAC, v.managerId, shown, migrationOf(v.hints)),
          state: v.state,
          confirmedMode: v.confirmedMode,
          pendingMode: v.waiting ? v.request.mode : undefined,
          sinceUs: v.sinceUs,
          lastSeenUs: v.lastSeenUs,
          deadlineUs: v.deadlineUs,
        })
      }
    }
    return out
  }

  /** Rule 5: VSIs whose keep-alives the link may answer (an answer stored there). */
  get answersHeld(): number {
    return this.#answered.size
  }

  get vsiCount(): number {
    return this.role === 'bridge' ? this.#bridgeVsis.size : this.#stationVsis.size
  }

  /** Operational EVB values and the timers derived from them. */
  operational(): OperationalTiming {
    return { ...this.#timing }
  }

  /** The EVB TLV this port transmits. */
  evbTlv(): EvbTlv {
    return { ...this.#evbTlv }
  }

  /** Whether ECP has data queued or in flight, or a station VSI waits for a response. */
  hasPendingWork(): boolean {
    for (const p of this.#allPeers()) if (p.tx.busy) return true
    for (const v of this.#stationVsis.values()) if (v.waiting) return true
    return false
  }

  // -------------------------------------------------------------------------------------------
  // Keep-alive answers by the link (rule 5)

  /** Bridge: the link answers keep-alives (`FrameLink.answers`); `seen` from its `start`. */
  useAnswers(answers: KeepAliveAnswers, seen: Float64Array, options: { offers?: boolean } = {}): void {
    assert(this.role === 'bridge', 'Cannot use keep-alive answers on a station port')
    this.#answers = answers
    this.#answerSeen = seen
    const state = this.#resources?.offerState
    if (options.offers !== false && answers.offers !== undefined && state !== undefined) {
      // Rule 6: a fresh core holds no VSI yet, so the link's set of known VSIs starts right.
      assert(this.#bridgeVsis.size === 0, 'Cannot turn offers on: the core holds VSIs already')
      answers.offers.start(state)
      this.#offers = answers.offers
      this.#offerState = state
    }
  }

  /** Rule 6: offers stored at the link (of any epoch). */
  get offersStored(): number {
    return this.#offersStored.size
  }

  /** Whether the link may have the ECP transmit side now, numbering on from `lastSequence`. */
  answerLoan(): AnswerLoan | undefined {
    const offering = this.#offersStored.size > 0
    if (this.#answers === undefined || (this.#answered.size === 0 && !offering)) return undefined
    if (this.config.ecpDestination !== 'ncb-group') return undefined
    for (const p of this.#peers.values()) if (p.tx.busy) return undefined
    const pacer = this.#groupPacer
    return {
      lastSequence: pacer.lastSequence,
      ackTimerUs: this.#timing.ackTimerUs,
      holdUntilUs: pacer.holdUntilUs,
      gapUs: this.config.ecpTxGapUs,
      offerCredit: offering ? Math.max(0, this.config.vsiCountMax - this.#bridgeVsis.size) : 0,
      // Formats 1 and 2 always; 3 and 4 (GroupID) once negotiated (filterError).
      offerFormats: offering ? (this.#groupIdAllowed() ? 0b11110 : 0b00110) : 0,
    }
  }

  /** The ECP transmit side back from the link, with what it sent that awaits an ACK. */
  takeBackLoan(nowUs: Us, back: AnswerLoanReturn): void {
    this.#advance(nowUs)
    this.#groupPacer.lastSequence = back.sequence
    if (back.holdUntilUs > this.#groupPacer.holdUntilUs) this.#groupPacer.holdUntilUs = back.holdUntilUs
    for (const o of back.outstanding) {
      const peer = this.#peers.get(o.peer)
      if (peer === undefined) continue
      // The link's own frame: untagged Ethernet header, ECP header, then the VDP ULPDU.
      const pdu = decodeVdpPdu(o.frame.subarray(ACK_SEQUENCE_OFFSET + 2))
      const items: EcpItem[] = pdu.tlvs.map((tlv) => ({
        managerId: pdu.managerId,
        tlv,
        length: vdpTlvLength(tlv),
        owner: undefined,
      }))
      peer.tx.adopt(o.sequence, pdu.managerId, items, o.deadlineUs)
      this.#flushEcp(peer)
    }
  }

  #answer(vsi: BridgeVsi, request: VsiTlv): void {
    const answers = this.#answers
    const confirmed = vsi.confirmed
    if (answers === undefined || confirmed === undefined) return
    if (this.#offers !== undefined) this.#learnOffers(request, confirmed)
    let id = vsi.answerId
    if (id < 0) {
      id = this.#answerFreeIds.pop() ?? (2 * this.#answerNextId < this.#answerSeen.length ? this.#answerNextId++ : -1)
      if (id < 0) return
      vsi.answerId = id
      this.#answerSeen[2 * id] = 0
      this.#answerSeen[2 * id + 1] = 0
      this.#answered.add(vsi)
      if (this.#answered.size === 1) this.#armSweep()
    }
    // The sweep supervises it from now on (the VSI just armed its own timer).
    this.#timers.stop(vsi.key)
    const key = new Writer(MANAGER_ID_TLV_LENGTH + vsiTlvOctets(request))
    encodeManagerIdTlv(key, vsi.managerId)
    writeVsiTlv(key, request)
    const response = new Writer(vsiTlvOctets(confirmed))
    writeVsiTlv(response, confirmed)
    answers.set(id, vsi.peer, key.toBytes(), response.toBytes())
  }

  /**
   * Rule 6: each entry of a granted request that asked for the null VID tells what any new
   * VSI's entry of the same kind gets until the resource manager's epoch moves.
   */
  #learnOffers(request: VsiTlv, confirmed: VsiTlv): void {
    const epoch = this.#offerState![0]! >>> 0
    for (let i = 0; i < request.entries.length; i++) {
      if (request.entries[i]!.vid !== 0) continue
      const groupId = request.entries[i]!.groupId ?? 0
      const vid = confirmed.entries[i]!.vid
      const key = `${request.typeId}/${request.typeVersion}/${request.filterFormat}/${groupId}`
      const stored = this.#offersStored.get(key)
      if (stored !== undefined && stored.vid === vid && stored.epoch === epoch) continue
      if (this.#offersStored.size >= OFFERS_TRACKED_MAX) this.#offersStored.clear()
      const offer = { typeId: request.typeId, typeVersion: request.typeVersion, filterFormat: request.filterFormat, groupId, vid, epoch }
      if (this.#offers!.set(offer)) this.#offersStored.set(key, { vid, epoch })
    }
  }

  #unanswer(vsi: BridgeVsi): void {
    const id = vsi.answerId
    if (id < 0) return
    vsi.answerId = -1
    this.#answered.delete(vsi)
    this.#answerFreeIds.push(id)
    this.#answers?.remove(id)
  }

  #sweepPeriodUs(): Us {
    return Math.max(1000, Math.min(SWEEP_PERIOD_MAX_US, Math.floor(this.#timing.toutKeepAliveUs / 16)))
  }

  /** The next sweep on the period's grid, so that every port's sweep falls in one wake-up. */
  #armSweep(): void {
    const period = this.#sweepPeriodUs()
    this.#timers.set(ANSWER_SWEEP_TIMER, (Math.floor(this.#nowUs / period) + 1) * period)
  }

  /** Rule 5: last-seen times from the link's answers; VSIs silent for toutKeepAlive time out. */
  #sweepAnswered(): void {
    const seen = this.#answerSeen
    const tout = this.#timing.toutKeepAliveUs
    let silent: BridgeVsi[] | undefined
    for (const vsi of this.#answered) {
      const at = seen[2 * vsi.answerId]!
      if (at > vsi.lastSeenUs) vsi.lastSeenUs = at
      vsi.deadlineUs = vsi.lastSeenUs + tout
      if (vsi.deadlineUs <= this.#nowUs) (silent ??= []).push(vsi)
    }
    for (const vsi of silent ?? []) {
      vsi.handleTimeout(this.#bridgeCtx, this.#nowUs)
      this.#reapBridge(vsi)
    }
    if (this.#answered.size > 0) this.#armSweep()
  }

  #answeredSince(vsi: BridgeVsi): Us | undefined {
    const id = vsi.answerId
    if (id < 0) return undefined
    const at = this.#answerSeen[2 * id]!
    return at > vsi.lastSeenUs ? at : undefined
  }

  // -------------------------------------------------------------------------------------------
  // Frame input

  #frame(bytes: Uint8Array, ecpAcked: boolean, resync: boolean, answer: Uint8Array | undefined): void {
    // One reader over the whole frame: headers are read in place, payloads are views (the
    // frame is valid only during handleFrame, and nothing decoded from it keeps a view).
    const r = new Reader(bytes)
    const frame = decodeEthernetHeader(r)
    this.#payloadOffset = r.offset
    if (frame.source === this.config.mac) return
    if (frame.destination !== NCB_GROUP_MAC && frame.destination !== this.config.mac) return
    if (frame.ethertype === ETHERTYPE_ECP) {
      if (answer === undefined) this.#ecpFrame(frame.source, bytes, r, ecpAcked, resync)
      else this.#offeredFrame(frame.source, bytes, r, resync, answer)
    } else if (frame.ethertype === ETHERTYPE_LLDP && frame.destination === NCB_GROUP_MAC) {
      if (this.config.lldp.enabled) this.#lldpFrame(frame.source, bytes.subarray(r.offset))
    }
  }

  /** `r` is at the ECP header; its offsets (and so those in errors) count from the frame start. */
  #ecpFrame(source: Mac, bytes: Uint8Array, r: Reader, ecpAcked: boolean, resync: boolean): void {
    const header = decodeEcpHeader(r)
    const ulpduOffset = r.offset
    const ulpdu = bytes.subarray(ulpduOffset)
    if (header.subtype !== EcpSubtype.Vdp) {
      // 43.3.1: lldpad drops other ULPs unacknowledged; so do we.
      throw new RemoteProtocolError(
        'unsupported-subtype',
        `Cannot handle ECPDU: subtype ${header.subtype} is not VDP`,
        VdpError.InvalidFormat,
        14,
      )
    }
    if (this.role === 'station' && !this.#fromBridge(source, header.operation, ulpdu)) {
      this.#counters.foreignFrames++
      return
    }
    const peer = this.#peerFor(source, 'ecp')
    if (header.operation === EcpOperation.Ack) {
      this.#ackReceived(peer, header.sequence)
      return
    }
    this.#counters.rxEcpdus++
    peer.counters.rxEcpdus++
    // 43.3.8: every request is acknowledged, duplicates included; the ACK leaves first (or
    // left already: the link acknowledged it on receipt, see ecpAckOffload). A station's link
    // may have acknowledged a request of a bridge that an earlier frame of the same batch
    // replaced: #fromBridge above then counted it as foreign, as it would any other frame.
    if (ecpAcked) this.#counters.txAcks++
    else this.#sendAck(source, header.sequence)
    // The link answered this peer's requests since the last one handed over (rule 5): they
    // were new ECPDUs this machine never saw, and so is this one.
    if (resync) peer.rx.reset()
    if (peer.rx.handleRequest(header.sequence) === 'duplicate') {
      this.#counters.rxDuplicates++
      peer.counters.rxDuplicates++
      return
    }
    const { pdu: vdp, invalid } = rebased(ulpduOffset, () => decodeVdpPduTolerant(ulpdu))
    this.#vdpPdu(peer, vdp, invalid, ulpduOffset)
  }

  /**
   * Rule 6: a request the link answered from offers. Decided as any other, with what the core
   * sends to its peer meanwhile held back and compared with the link's answer afterwards.
   */
  #offeredFrame(source: Mac, bytes: Uint8Array, r: Reader, resync: boolean, answer: Uint8Array): void {
    const peer = this.#peers.get(source)
    if (peer === undefined || this.role !== 'bridge') {
      // Not reached: the link answers only peers the core named for its ACK offload.
      this.#counters.offerMismatches++
      this.#ecpFrame(source, bytes, r, true, resync)
      return
    }
    const offered = { peer, answer, items: [] as EcpItem[] }
    this.#offered = offered
    try {
      this.#ecpFrame(source, bytes, r, true, resync)
    } finally {
      this.#offered = undefined
      this.#settleOffered(offered)
    }
  }

  /** Rule 6: drops the held-back sends that are the link's answer, else sends them after it. */
  #settleOffered(o: { peer: Peer; answer: Uint8Array; items: EcpItem[] }): void {
    const first = o.items[0]
    const answer = o.answer
    if (first !== undefined && answer.length > ACK_SEQUENCE_OFFSET + 2 && o.items.every((i) => i.managerId === first.managerId)) {
      const own = encodeVdpFrame({
        destination: this.#destinationFor(o.peer),
        source: this.config.mac,
        sequence: (answer[ACK_SEQUENCE_OFFSET]! << 8) | answer[ACK_SEQUENCE_OFFSET + 1]!,
        pdu: { managerId: first.managerId, tlvs: o.items.map((i) => i.tlv), endTlv: false },
      })
      if (equalBytes(own, answer)) {
        // The link's answer is this core's: it counts as sent (the link's counters have it).
        this.#counters.offersAnswered += o.items.length
        return
      }
    }
    this.#counters.offerMismatches++
    // The station took the link's answer. A VSI the core granted otherwise ends on both sides
    // (an unsolicited De-Associate); what the core refused, it answers as it decided (the
    // station's next keep-alive meets the same refusal). TLVs the link got right stay answered.
    const linkTlvs = new Set<string>()
    for (let at = ACK_SEQUENCE_OFFSET + 2 + MANAGER_ID_TLV_LENGTH; at + 2 <= answer.length; ) {
      const end = at + 2 + (((answer[at]! & 1) << 8) | answer[at + 1]!)
      linkTlvs.add(toHex(answer.subarray(at, end)))
      at = end
    }
    const again: EcpItem[] = []
    for (const item of o.items) {
      const tlv = item.tlv
      if (tlv.kind !== 'vsi') {
        again.push(item)
        continue
      }
      const own = new Writer(vsiTlvOctets(tlv))
      writeVsiTlv(own, tlv)
      if (linkTlvs.has(toHex(own.toBytes()))) continue
      const vsi = tlv.mode === 'de-associate' ? undefined : this.#bridgeVsis.get(vsiKey(o.peer.mac, tlv.vsiId))
      if (vsi?.state === 'WAITCMD') {
        vsi.handleLocalDeassociate(this.#bridgeCtx, this.#nowUs, 'answer-mismatch')
        this.#reapBridge(vsi)
      } else {
        again.push(item)
      }
    }
    for (const item of again) {
      if (!o.peer.tx.enqueue(this.#nowUs, item)) {
        this.#counters.queueDrops++
        o.peer.counters.queueDrops++
      }
    }
    this.#flushEcp(o.peer)
  }

  /** An ECP ACK from `peer`, read as a frame or taken in by the link. */
  #ackReceived(peer: Peer, sequence: number): void {
    this.#counters.rxAcks++
    peer.counters.rxAcks++
    peer.tx.handleAck(this.#nowUs, sequence)
    this.#flushEcp(peer)
  }

  /**
   * Station role: whether an ECPDU comes from the bridge. Once the bridge is known (LLDP EVB
   * TLV in bridge mode, or its first ECP frame) only its MAC counts. Before that, requests that
   * carry station requests (anything but responses and De-Associate) are another station's
   * traffic on a shared segment: not ours to ACK (RFC 8394 Req-2, several stations per port).
   */
  #fromBridge(source: Mac, operation: number, ulpdu: Uint8Array): boolean {
    if (this.#bridgeMac !== undefined) return source === this.#bridgeMac
    if (operation === EcpOperation.Ack) return true
    try {
      const { pdu } = decodeVdpPduTolerant(ulpdu)
      return pdu.tlvs.every(
        (t) => t.kind !== 'vsi' || t.status.response || t.mode === 'de-associate',
      )
    } catch {
      // Undecodable: let the normal path count and report it.
      return true
    }
  }

  #vdpPdu(peer: Peer, pdu: VdpPdu, invalid: InvalidVsiTlv[], ulpduOffset: number): void {
    for (const bad of invalid) {
      this.#counters.decodeErrors++
      this.#drop(bad.error.code, ulpduOffset + bad.error.offset)
      if (bad.identity === undefined) continue
      if (this.role === 'bridge') {
        if (bad.identity.status.response) continue
        // Unlike lldpad (silence), a TLV that still names a VSI gets "invalid format" (41.2.4).
        const known = this.#bridgeVsis.has(vsiKey(peer.mac, bad.identity.vsiId))
        this.#enqueueRaw(peer, pdu.managerId, identityReplyTlv(bad, known), undefined)
        this.#counters.rejects++
      } else if (bad.identity.status.response && bad.identity.status.error !== 0) {
        const id = bad.identity
        const pseudo: VsiTlv = {
          kind: 'vsi',
          ...id,
          filterFormat: id.filterFormat as FilterFormat,
          entries: [],
        }
        this.#guard(peer, () => this.#stationTlv(pdu.managerId, pseudo))
      }
    }
    for (const tlv of pdu.tlvs) {
      if (tlv.kind !== 'vsi') continue
      this.#counters.rxVdpTlvs++
      peer.counters.rxVdpTlvs++
      this.#guard(peer, () =>
        this.role === 'bridge'
          ? this.#bridgeTlv(peer, pdu.managerId, tlv)
          : this.#stationTlv(pdu.managerId, tlv),
      )
    }
  }

  /** Per-TLV fault isolation: one bad TLV does not stop the rest of the ECPDU. */
  #guard(peer: Peer, fn: () => void): void {
    try {
      fn()
    } catch (e) {
      if (!(e instanceof RemoteProtocolError)) throw e
      this.#counters.protocolErrors++
      this.#drop(e.code, e.offset, peer.mac)
    }
  }

  #bridgeTlv(peer: Peer, managerId: ManagerId, tlv: VsiTlv, restoring = false): void {
    const key = vsiKey(peer.mac, tlv.vsiId)
    const vsi = this.#bridgeVsis.get(key)
    if (tlv.status.response) {
      // Every bridge state answers 'protocol-error' to a response (transitions.ts).
      vsi?.machine.fire('response-received')
      throw new RemoteProtocolError(
        'unexpected-response',
        'Cannot take a VDP response on a bridge port: stations send requests',
      )
    }
    if (tlv.mode === 'de-associate') {
      if (vsi === undefined) {
        // vdp-spec §3.4: De-Associate of an unknown VSI is answered at once, without state.
        this.#enqueueRaw(peer, managerId, withMode(tlv, 'de-associate', RESPONSE_OK), undefined)
        return
      }
      vsi.handleDeassociate(this.#bridgeCtx, this.#nowUs, tlv)
      this.#reapBridge(vsi)
      return
    }
    // A restored VSI passed these checks under the EVB negotiation before the restart; right
    // after it no LLDPDU has told this run whether GroupID formats are on yet.
    const error = restoring ? 0 : filterError(tlv, this.#groupIdAllowed())
    if (error !== 0) {
      this.#bridgeReject(
        peer,
        managerId,
        tlv,
        { response: true, keep: vsi !== undefined, hard: false, error },
        error === VdpError.InvalidFormat ? 'group-id-not-negotiated' : 'invalid-filter',
      )
      return
    }
    if (vsi !== undefined) {
      vsi.handleRequest(this.#bridgeCtx, this.#nowUs, managerId, tlv)
      this.#reapBridge(vsi)
      return
    }
    if (this.#bridgeVsis.size >= this.config.vsiCountMax) {
      this.#bridgeReject(
        peer,
        managerId,
        withMode(tlv, 'de-associate', tlv.status),
        {
          response: true,
          keep: false,
          hard: false,
          error: VdpError.InsufficientResources,
        },
        'vsi-table-full',
      )
      return
    }
    const created = new BridgeVsi(key, peer.mac, managerId, tlv, this.#nowUs)
    this.#bridgeVsis.set(key, created)
    this.#offers?.known(peer.mac, tlv.vsiId.id, true)
    created.handleRequest(this.#bridgeCtx, this.#nowUs, managerId, tlv)
    this.#reapBridge(created)
  }

  #bridgeReject(
    peer: Peer,
    managerId: ManagerId,
    tlv: VsiTlv,
    status: { response: true; keep: boolean; hard: boolean; error: number },
    detail: string,
  ): void {
    this.#counters.rejects++
    this.#enqueueRaw(peer, managerId, withMode(tlv, tlv.mode, status), undefined)
    this.#emit({
      kind: 'vsi-rejected',
      atUs: this.#nowUs,
      role: 'bridge',
      vsi: vsiRef(peer.mac, managerId, tlv),
      requested: tlv.mode,
      error: status.error,
      keep: status.keep,
      hard: status.hard,
      detail,
    })
  }

  #reapBridge(vsi: BridgeVsi): void {
    if (vsi.ended && this.#bridgeVsis.get(vsi.key) === vsi) {
      this.#bridgeVsis.delete(vsi.key)
      this.#offers?.known(vsi.peer, vsi.request.vsiId.id, false)
    }
  }

  #stationTlv(managerId: ManagerId, tlv: VsiTlv): void {
    const vsi = this.#stationVsis.get(vsiKey(undefined, tlv.vsiId))
    if (vsi === undefined) {
      // A late answer after the VSI ended, or another station's traffic on a shared segment.
      throw new RemoteProtocolError(
        'unknown-vsi',
        `Cannot match VDP TLV: VSI ${tlv.vsiId.id} is unknown`,
      )
    }
    if (!tlv.status.response) {
      if (tlv.mode !== 'de-associate') {
        throw new RemoteProtocolError(
          'bad-request',
          `Cannot take a ${tlv.mode} request on a station port: only De-Associate`,
        )
      }
      vsi.handleBridgeDeassociate(this.#stationCtx, this.#nowUs)
    } else if (
      managerId !== vsi.managerId ||
      !vsi.handleResponse(this.#stationCtx, this.#nowUs, tlv)
    ) {
      throw new RemoteProtocolError(
        'unexpected-response',
        `Cannot match VDP response: VSI ${tlv.vsiId.id} is in ${vsi.state}`,
      )
    }
    this.#reapStation(vsi)
  }

  #reapStation(vsi: StationVsi): void {
    if (!vsi.ended || this.#stationVsis.get(vsi.key) !== vsi) return
    this.#stationVsis.delete(vsi.key)
    const leftover = vsi.leftover
    if (leftover !== undefined) {
      // A command issued while the ended request was in flight: run it on a fresh VSI.
      const next = new StationVsi(vsi.key, leftover, this.#nowUs)
      this.#stationVsis.set(vsi.key, next)
      next.handleCommand(this.#stationCtx, this.#nowUs, leftover)
      this.#reapStation(next)
    }
  }

  // -------------------------------------------------------------------------------------------
  // Commands

  #stationRequestCommand(command: VsiRequestCommand): void {
    if (command.entries.length === 0) {
      throw new LocalProtocolError(
        'bad-command',
        `Cannot ${command.kind} VSI ${command.vsiId.id}: no filter entries`,
      )
    }
    const tlv: VsiTlv = {
      kind: 'vsi',
      mode: command.kind,
      status: {
        response: false,
        migratingTo: command.hints?.migratingTo ?? false,
        migratingFrom: command.hints?.migratingFrom ?? false,
      },
      typeId: command.typeId,
      typeVersion: command.typeVersion,
      vsiId: { ...command.vsiId },
      filterFormat: command.filterFormat,
      entries: command.entries.map((e) => ({ ...e })),
    }
    const error = filterError(tlv, this.#timing.groupIdEnabled)
    if (error === VdpError.InvalidFormat) {
      throw new LocalProtocolError(
        'group-id-not-negotiated',
        `Cannot ${command.kind} VSI ${command.vsiId.id}: GroupID formats need BGID and SGID (not negotiated)`,
      )
    }
    if (error !== 0) {
      throw new LocalProtocolError(
        'bad-command',
        `Cannot ${command.kind} VSI ${command.vsiId.id}: invalid VID, GroupID or MAC`,
      )
    }
    const key = vsiKey(undefined, command.vsiId)
    let vsi = this.#stationVsis.get(key)
    if (vsi === undefined && this.#stationVsis.size >= this.config.vsiCountMax) {
      throw new LocalProtocolError(
        'vsi-table-full',
        `Cannot ${command.kind} VSI ${command.vsiId.id}: ${this.config.vsiCountMax} VSIs held`,
      )
    }
    this.#checkUplinkRoom(command.kind, command.vsiId)
    const request: StationRequest = { managerId: command.managerId, tlv }
    if (vsi === undefined) {
      vsi = new StationVsi(key, request, this.#nowUs)
      this.#stationVsis.set(key, vsi)
    }
    vsi.handleCommand(this.#stationCtx, this.#nowUs, request)
    this.#reapStation(vsi)
  }

  #stationDeassociateCommand(command: DeassociateCommand): void {
    const vsi = this.#stationVsis.get(vsiKey(undefined, command.vsiId))
    if (vsi === undefined) {
      throw new LocalProtocolError(
        'unknown-vsi',
        `Cannot de-associate VSI ${command.vsiId.id}: not held on port ${this.config.port}`,
      )
    }
    this.#checkUplinkRoom('de-associate', command.vsiId)
    const base = vsi.confirmed ?? vsi.request
    const tlv = withMode(base, 'de-associate', vsi.hints)
    vsi.handleCommand(this.#stationCtx, this.#nowUs, { managerId: vsi.managerId, tlv })
    this.#reapStation(vsi)
  }

  #checkUplinkRoom(what: string, vsiId: VsiId): void {
    const uplink = this.#uplinkPeer()
    if (uplink.tx.queued >= this.config.pendingEcpduMax) {
      throw new LocalProtocolError(
        'queue-full',
        `Cannot ${what} VSI ${vsiId.id}: ${uplink.tx.queued} TLVs wait for ECP`,
      )
    }
  }

  #bridgeDeassociateCommand(command: DeassociateCommand): void {
    let vsi: BridgeVsi | undefined
    if (command.peer !== undefined) {
      vsi = this.#bridgeVsis.get(vsiKey(command.peer, command.vsiId))
    } else {
      for (const v of this.#bridgeVsis.values()) {
        if (
          v.request.vsiId.id === command.vsiId.id &&
          v.request.vsiId.format === command.vsiId.format
        ) {
          vsi = v
          break
        }
      }
    }
    if (vsi === undefined || vsi.state !== 'WAITCMD') {
      throw new LocalProtocolError(
        'unknown-vsi',
        `Cannot de-associate VSI ${command.vsiId.id}: not held on port ${this.config.port}`,
      )
    }
    vsi.handleLocalDeassociate(this.#bridgeCtx, this.#nowUs)
    this.#reapBridge(vsi)
  }

  #linkDown(): void {
    for (const peer of this.#allPeers()) {
      const dropped = peer.tx.reset()
      this.#counters.queueDrops += dropped.length
      peer.counters.queueDrops += dropped.length
      peer.rx.reset()
      this.#answers?.forget(peer.mac)
      this.#flushEcp(peer)
    }
    this.#timers.stop(LLDP_TX_TIMER)
  }

  #linkUp(): void {
    if (this.config.lldp.enabled) {
      this.#lldpFastRemaining = this.config.lldp.txFastCount
      this.#timers.set(LLDP_TX_TIMER, this.#nowUs)
    }
    for (const vsi of this.#stationVsis.values()) {
      if (vsi.state !== 'WAIT_SYSCMD') continue
      vsi.deadlineUs = this.#nowUs
      this.#timers.set(vsi.key, this.#nowUs)
    }
  }

  // -------------------------------------------------------------------------------------------
  // Timers

  #timer(name: TimerName): void {
    if (name.charCodeAt(0) !== OWN_TIMER_PREFIX) {
      const key = name
      if (this.role === 'bridge') {
        const vsi = this.#bridgeVsis.get(key)
        // A VSI the link answers for is the sweep's (rule 5).
        if (vsi === undefined || vsi.answerId >= 0 || vsi.deadlineUs === undefined || vsi.deadlineUs > this.#nowUs)
          return
        vsi.handleTimeout(this.#bridgeCtx, this.#nowUs)
        this.#reapBridge(vsi)
      } else {
        const vsi = this.#stationVsis.get(key)
        if (vsi === undefined || vsi.deadlineUs === undefined || vsi.deadlineUs > this.#nowUs)
          return
        vsi.handleTimeout(this.#stationCtx, this.#nowUs)
        this.#reapStation(vsi)
      }
    } else if (name.startsWith(ECP_TIMER)) {
      const id = name.slice(ECP_TIMER.length)
      const peer = id === UPLINK ? this.#uplink : this.#peers.get(id as Mac)
      if (peer === undefined) return
      peer.tx.handleTimeout(this.#nowUs)
      this.#flushEcp(peer)
    } else if (name === LLDP_TX_TIMER) {
      this.#lldpTransmit()
    } else if (name.startsWith(LLDP_TTL_TIMER)) {
      this.#lldpNeighborGone(name.slice(LLDP_TTL_TIMER.length) as Mac, 'lldp-ttl-expired')
    } else if (name === ANSWER_SWEEP_TIMER) {
      this.#sweepAnswered()
    } else if (name === COUNTERS_TIMER) {
      this.#emitCounters()
      this.#timers.set(COUNTERS_TIMER, this.#nowUs + this.config.countersIntervalUs)
    }
  }

  // -------------------------------------------------------------------------------------------
  // ECP output

  #allPeers(): Peer[] {
    return this.role === 'station'
      ? this.#uplink
        ? [this.#uplink]
        : []
      : [...this.#peers.values()]
  }

  /**
   * Shared by all peers while ECPDUs go to the group address (ecp-tx.ts rule 6): one gap and
   * one sequence space for the port. The space starts half-way round (first ECPDU 0x8001)
   * because stations count from 1 and lldpad takes every ECPDU on the segment, a neighbour
   * station's requests included, into its one receive sequence: starting at 1 would make our
   * first responses look like duplicates of those requests. A station counts from 1 as
   * lldpad does.
   */
  readonly #groupPacer: EcpPacer
  /** An EVB TLV from a peer is in force (see `#groupIdAllowed`). */
  #evbHeard = false

  #newPeer(mac: Mac): Peer {
    return {
      mac,
      rx: new EcpRx(),
      tx: new EcpTx({
        ackTimerUs: this.#timing.ackTimerUs,
        retriesMax: this.#timing.retries,
        pendingMax: this.config.pendingEcpduMax,
        minGapUs: this.config.ecpTxGapUs,
        burstGapUs: this.config.ecpTxBurstGapUs,
        ...(this.config.ecpDestination === 'ncb-group' && this.role === 'bridge'
          ? { pacer: this.#groupPacer }
          : {}),
      }),
      counters: zeroPeerCounters(),
      up: false,
      lldpTtlDeadlineUs: undefined,
      ecpTimer: ECP_TIMER + (this.role === 'station' ? UPLINK : mac),
    }
  }

  #uplinkPeer(): Peer {
    this.#uplink ??= this.#newPeer(NCB_GROUP_MAC)
    return this.#uplink
  }

  /** The peer a frame from `source` belongs to; created (bounded) on first sight. */
  #peerFor(source: Mac, via: 'ecp' | 'lldp'): Peer {
    let peer: Peer
    if (this.role === 'station') {
      peer = this.#uplinkPeer()
      if (this.#bridgeMac !== source) {
        this.#bridgeMac = source
        this.#peersVersion++
        peer.mac = source
        peer.up = false
      }
    } else {
      const known = this.#peers.get(source)
      if (known === undefined) {
        if (this.#peers.size >= this.config.peerCountMax) {
          throw new RemoteProtocolError(
            'peer-table-full',
            `Cannot add peer ${source}: ${this.config.peerCountMax} peers held`,
            VdpError.InsufficientResources,
            6,
          )
        }
        peer = this.#newPeer(source)
        this.#peers.set(source, peer)
        this.#peersVersion++
      } else {
        peer = known
      }
    }
    if (!peer.up) {
      peer.up = true
      this.#emit({ kind: 'peer-up', atUs: this.#nowUs, peer: source, via })
    }
    return peer
  }


  #destinationFor(peer: Peer | undefined): Mac {
    if (
      this.config.ecpDestination === 'peer-unicast' &&
      peer !== undefined &&
      peer.mac !== NCB_GROUP_MAC
    )
      return peer.mac
    return NCB_GROUP_MAC
  }

  #enqueueVdp(peerMac: Mac | undefined, managerId: ManagerId, tlv: VsiTlv, owner: string): void {
    const peer = this.role === 'station' ? this.#uplinkPeer() : this.#peers.get(peerMac!)
    if (peer === undefined) assert(false, `Cannot send VDP TLV: peer ${String(peerMac)} is unknown`)
    this.#enqueueRaw(peer, managerId, tlv, owner)
  }

  #enqueueRaw(peer: Peer, managerId: ManagerId, tlv: VdpTlv, owner: string | undefined): void {
    const length =
      tlv.kind === 'vsi'
        ? vsiTlvLength(tlv)
        : 2 + (tlv.kind === 'unknown' ? tlv.body.length : 3 + tlv.data.length)
    const item: EcpItem = { managerId, tlv, length, owner }
    if (this.#offered?.peer === peer) {
      this.#offered.items.push(item)
      return
    }
    if (!peer.tx.enqueue(this.#nowUs, item)) {
      this.#counters.queueDrops++
      peer.counters.queueDrops++
      return
    }
    this.#flushEcp(peer)
  }

  /** Turns the ECP machine's output into frames and failures into events. */
  #flushEcp(peer: Peer): void {
    this.#txVersion++
    for (let t = peer.tx.pollTransmission(); t !== undefined; t = peer.tx.pollTransmission()) {
      // One buffer for Ethernet, ECP and VDP (same bytes as the layered encoders).
      this.#transmitFrame(
        encodeVdpFrame({
          destination: this.#destinationFor(peer),
          source: this.config.mac,
          sequence: t.sequence,
          pdu: { managerId: t.managerId, tlvs: t.items.map((i) => i.tlv), endTlv: false },
        }),
      )
      this.#counters.txEcpdus++
      peer.counters.txEcpdus++
      if (t.retransmission > 0) {
        this.#counters.txRetransmits++
        peer.counters.txRetransmits++
      } else {
        this.#counters.txVdpTlvs += t.items.length
        peer.counters.txVdpTlvs += t.items.length
        if (peer.tx.minGapUs > 0) this.#paced = true
      }
    }
    const again: EcpItem[] = []
    for (let f = peer.tx.pollFailure(); f !== undefined; f = peer.tx.pollFailure()) {
      // Both ends wait far longer for a VDP answer (respWaitDelay, toutKeepAlive: seconds)
      // than ECP's retries last (1 + R ackTimers, ~10 ms at RTE 8): a TLV whose ECPDU went
      // unacknowledged because the peer's loop was busy (lldpad's, or a GC pause) is queued
      // again in a fresh ECPDU, up to RESPONSE_RESENDS_MAX times, before it counts as lost.
      const lost: EcpItem[] = []
      for (const item of f.items) {
        if ((item.resends ?? 0) < RESPONSE_RESENDS_MAX && item.tlv.kind !== 'org')
          again.push({ ...item, resends: (item.resends ?? 0) + 1 })
        else lost.push(item)
      }
      this.#counters.txErrors++
      peer.counters.txErrors++
      this.#emit({
        kind: 'ecp-tx-error',
        atUs: this.#nowUs,
        peer: peer.mac,
        sequence: f.sequence,
        tlvCount: f.items.length,
      })
      if (this.role === 'station') {
        for (const item of lost) {
          const vsi = item.owner === undefined ? undefined : this.#stationVsis.get(item.owner)
          // Only the request the VSI waits for counts: an older one may have been answered
          // although its ACKs were lost.
          if (vsi === undefined || vsi.request !== item.tlv) continue
          vsi.handleTxError(this.#stationCtx, this.#nowUs)
          this.#reapStation(vsi)
        }
      }
    }
    for (const item of again) {
      if (!peer.tx.enqueue(this.#nowUs, item)) {
        this.#counters.queueDrops++
        peer.counters.queueDrops++
      } else {
        this.#counters.txResends++
      }
    }
    if (again.length > 0) {
      this.#flushEcp(peer)
      return
    }
    const at = peer.tx.deadlineUs
    if (at === undefined) this.#timers.stop(peer.ecpTimer)
    else this.#timers.set(peer.ecpTimer, at)
  }

  #sendAck(source: Mac, sequence: number): void {
    const destination = this.config.ecpDestination === 'peer-unicast' ? source : NCB_GROUP_MAC
    let template = this.#ackTemplates.get(destination)
    if (template === undefined) {
      // Every ACK to one destination differs only in its sequence number: encode it once.
      const payload = encodeEcpdu({
        header: { version: ECP_VERSION, operation: EcpOperation.Ack, subtype: EcpSubtype.Vdp, sequence: 0 },
        ulpdu: new Uint8Array(0),
      })
      template = encodeEthernetFrame({ destination, source: this.config.mac, ethertype: ETHERTYPE_ECP, payload })
      if (this.#ackTemplates.size >= this.config.peerCountMax) this.#ackTemplates.clear()
      this.#ackTemplates.set(destination, template)
    }
    const frame = template.slice()
    // Untagged Ethernet header (14 octets), then ECP: version/operation/subtype, sequence.
    frame[ACK_SEQUENCE_OFFSET] = sequence >>> 8
    frame[ACK_SEQUENCE_OFFSET + 1] = sequence & 0xff
    this.#transmitFrame(frame)
    this.#counters.txAcks++
  }

  #transmit(destination: Mac, ethertype: number, payload: Uint8Array): void {
    this.#transmitFrame(encodeEthernetFrame({ destination, source: this.config.mac, ethertype, payload }))
  }

  #transmitFrame(frame: Uint8Array): void {
    if (this.#transmits.length - this.#transmitHead >= this.config.transmitQueueMax) {
      this.#counters.transmitsDropped++
      return
    }
    this.#counters.txFrames++
    if (this.#transmitSink !== undefined) this.#transmitSink(frame)
    else this.#transmits.push(frame)
  }

  // -------------------------------------------------------------------------------------------
  // LLDP NCB agent and EVB negotiation (802.1Qbg-2012 D.2.12; 802.1AB 9.2)

  #lldpTransmit(): void {
    const lldp = this.config.lldp
    const mac = macToBytes(this.config.mac)
    const ttlS = Math.min(0xffff, Math.ceil((lldp.txIntervalUs * lldp.txHold) / 1_000_000))
    const payload = encodeLldpdu({
      chassisId: { subtype: CHASSIS_ID_SUBTYPE_MAC, value: mac },
      portId: { subtype: PORT_ID_SUBTYPE_MAC, value: mac },
      ttlS,
      tlvs: [evbLldpTlv(this.#evbTlv)],
    })
    this.#transmit(NCB_GROUP_MAC, ETHERTYPE_LLDP, payload)
    this.#counters.txLldpdus++
    let intervalUs = lldp.txIntervalUs
    if (this.#lldpFastRemaining > 0) {
      this.#lldpFastRemaining--
      if (this.#lldpFastRemaining > 0) intervalUs = lldp.txFastIntervalUs
    }
    this.#timers.set(LLDP_TX_TIMER, this.#nowUs + intervalUs)
  }

  #lldpFrame(source: Mac, payload: Uint8Array): void {
    const pdu = rebased(this.#payloadOffset, () => decodeLldpdu(payload))
    this.#counters.rxLldpdus++
    if (pdu.ttlS === 0) {
      this.#lldpNeighborGone(source, 'lldp-shutdown')
      return
    }
    const evb = rebased(this.#payloadOffset, () => findEvbTlv(pdu))
    // Only the other role's TLV negotiates (a bridge listens to stations and vice versa).
    const wanted = this.role === 'bridge' ? EvbMode.Station : EvbMode.Bridge
    if (evb === undefined || evb.mode !== wanted) return
    const peer = this.#peerFor(source, 'lldp')
    this.#lldpNeighbors.add(source)
    peer.lldpTtlDeadlineUs = this.#nowUs + pdu.ttlS * 1_000_000
    this.#timers.set(LLDP_TTL_TIMER + source, peer.lldpTtlDeadlineUs)
    this.#negotiate(source, evb)
  }

  #lldpNeighborGone(source: Mac, reason: 'lldp-ttl-expired' | 'lldp-shutdown'): void {
    this.#timers.stop(LLDP_TTL_TIMER + source)
    if (!this.#lldpNeighbors.delete(source)) return
    const peer = this.role === 'station' ? this.#uplink : this.#peers.get(source)
    if (peer !== undefined) {
      peer.lldpTtlDeadlineUs = undefined
      if (peer.up) {
        peer.up = false
        this.#emit({ kind: 'peer-down', atUs: this.#nowUs, peer: source, reason })
      }
      // 43.3.8: a lost peer restarts its receive machine (and the link's duplicate check).
      peer.rx.reset()
      this.#answers?.forget(peer.mac)
      if (this.role === 'bridge' && !peer.tx.busy && !this.#hasBridgeVsisOf(source)) {
        this.#peers.delete(source)
        this.#peersVersion++
      }
    }
    if (this.#lldpNeighbors.size === 0) this.#negotiate(source, undefined)
  }

  #hasBridgeVsisOf(peer: Mac): boolean {
    for (const v of this.#bridgeVsis.values()) if (v.peer === peer) return true
    return false
  }

  /**
   * GroupID formats may be used: negotiated (BGID and SGID), or, on a bridge that offers them,
   * not yet known because no EVB TLV has been heard since this core started. A station only
   * uses GroupID formats after it heard our BGID, so before its own EVB TLV arrives (a
   * restarted agent hears it only at the station's next LLDPDU, up to msgTxInterval later)
   * refusing them would turn every keep-alive of a running station into a reject.
   */
  #groupIdAllowed(): boolean {
    return this.#timing.groupIdEnabled || (!this.#evbHeard && this.config.evb.groupId && this.config.lldp.enabled)
  }

  #negotiate(peer: Mac, received: EvbTlv | undefined): void {
    this.#evbHeard = received !== undefined
    const { tlv, operational } = negotiateEvb(this.#evbLocal, received)
    const tlvChanged = JSON.stringify(tlv) !== JSON.stringify(this.#evbTlv)
    this.#evbTlv = tlv
    const timing = this.#timingFrom(operational)
    const changed = JSON.stringify(timing) !== JSON.stringify(this.#timing)
    this.#timing = timing
    if (changed) {
      for (const p of this.#allPeers()) {
        p.tx.ackTimerUs = timing.ackTimerUs
        p.tx.retriesMax = timing.retries
      }
      this.#emit({ kind: 'evb-negotiated', atUs: this.#nowUs, peer, operational: { ...timing } })
    }
    // 802.1AB 9.2.7.7 (somethingChangedLocal): tell the peer at once.
    if (tlvChanged && this.config.lldp.enabled) this.#timers.set(LLDP_TX_TIMER, this.#nowUs)
  }

  #timingFrom(o: {
    retries: number
    rte: number
    rwd: number
    rka: number
    groupIdEnabled: boolean
  }): OperationalTiming {
    return {
      retries: o.retries,
      rte: o.rte,
      rwd: o.rwd,
      rka: o.rka,
      groupIdEnabled: o.groupIdEnabled,
      ackTimerUs: ackTimerUs(o.rte),
      respWaitDelayUs: respWaitDelayUs(o),
      toutKeepAliveUs: toutKeepAliveUs(o),
      reinitKeepAliveUs: reinitKeepAliveUs(o.rka),
      resourceWaitDelayUs: resourceWaitDelayUs(o.rwd),
    }
  }

  // -------------------------------------------------------------------------------------------

  #advance(nowUs: Us): void {
    if (!Number.isFinite(nowUs)) assert(false, `Cannot use time ${nowUs}: not a finite number`)
    // Monotonic: a shell clock that steps back must not rewind the machines.
    if (nowUs > this.#nowUs) this.#nowUs = nowUs
  }

  #emit(event: PortEvent): void {
    if (this.#events.length - this.#eventHead >= this.config.eventQueueMax) {
      this.#counters.eventsDropped++
      return
    }
    this.#events.push(event)
  }

  #emitCounters(): void {
    const answered = this.#answers?.peerStats()
    this.#emit({
      kind: 'counters',
      atUs: this.#nowUs,
      port: this.counters(),
      peers: this.#allPeers().map((p) => ({ peer: p.mac, counters: this.#peerCountersOf(p, answered) })),
    })
  }

  #drop(code: string, offset: number, peer?: Mac): void {
    this.#counters.framesDropped++
    this.#emit(
      peer === undefined
        ? { kind: 'frame-dropped', atUs: this.#nowUs, code, offset }
        : { kind: 'frame-dropped', atUs: this.#nowUs, code, offset, peer },
    )
  }
}

export type { VsiMode }
