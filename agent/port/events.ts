/**
 * What a port core reports (`PortCore.pollEvent()`): VSI state changes, rejects, peers coming
 * and going, dropped frames, ECP transmit failures, EVB negotiation and counters. Wire status
 * codes (`error`, 0..15) and local outcomes (`reason`) are separate fields (STYLE.md §4.2).
 *
 * @module
 */
import type { Mac } from '../../shared/ethernet/mac.ts'
import type { ManagerId } from '../../shared/ids.ts'
import type { Us } from '../../shared/time.ts'
import type { FilterFormat, VsiMode } from '../../shared/vdp/constants.ts'
import type { FilterEntry, VsiId } from '../../shared/vdp/types.ts'
import type { PortRole } from './config.ts'
import type { TransitionReason } from './transitions.ts'

/** Identifies a VSI in events and snapshots. `peer` is the station (bridge role) or the bridge. */
export interface VsiRef {
  peer: Mac
  managerId: ManagerId
  vsiId: VsiId
  typeId: number
  typeVersion: number
  filterFormat: FilterFormat
  /** Filter entries as confirmed (bridge-assigned VIDs filled in). */
  entries: FilterEntry[]
  /** Migration hint of the station's request (M bit = to, S bit = from); none without one. */
  migration: 'none' | 'to' | 'from'
}

/** Who ends a VSI for each reason (fleet events carry it as `initiator`). */
export const INITIATOR_BY_REASON: Readonly<Record<DeassociateReason, 'station' | 'bridge'>> = {
  'station-request': 'station',
  'keepalive-timeout': 'bridge',
  'local-command': 'bridge',
  rejected: 'bridge',
  'response-timeout': 'station',
  'bridge-request': 'bridge',
  'response-mismatch': 'station',
  'tx-error': 'station',
  'answer-mismatch': 'bridge',
}

/** Why a VSI ended. */
export type DeassociateReason =
  /** The station de-associated it. */
  | 'station-request'
  /** Bridge: no request or keep-alive within toutKeepAlive (41.5.5.13). */
  | 'keepalive-timeout'
  /** A local command (CLI / fleet) on this port. */
  | 'local-command'
  /** The bridge refused a request (error without Keep). */
  | 'rejected'
  /** Station: no response within respWaitDelay (41.5.5.9). */
  | 'response-timeout'
  /** Station: the bridge sent an unsolicited De-Associate. */
  | 'bridge-request'
  /** Station: the response's filter data did not match the request. */
  | 'response-mismatch'
  /** Station: ECP gave up on the request. */
  | 'tx-error'
  /** Bridge: its raw socket answered the request from an offer the core's decision disagreed with. */
  | 'answer-mismatch'

export interface PortCounters {
  rxFrames: number
  txFrames: number
  /** ECP requests received (duplicates included; ACKs are `rxAcks`). */
  rxEcpdus: number
  rxDuplicates: number
  rxAcks: number
  /** Of `rxAcks`: ACKs the link took in without handing over the frame (`handleAbsorbedAck`). */
  rxAcksAbsorbed: number
  /** ECP requests sent, retransmissions included. */
  txEcpdus: number
  txRetransmits: number
  txAcks: number
  txErrors: number
  /** Bridge: VDP TLVs queued again after an ECP transmit failure. */
  txResends: number
  rxVdpTlvs: number
  txVdpTlvs: number
  rxLldpdus: number
  txLldpdus: number
  framesDropped: number
  /** Station role: ECP frames from a source other than the bridge (another station's). */
  foreignFrames: number
  decodeErrors: number
  protocolErrors: number
  queueDrops: number
  eventsDropped: number
  transmitsDropped: number
  keepalivesRx: number
  /** Of `keepalivesRx`: answered by the link itself (`FrameLink.answers`). */
  keepalivesAnswered: number
  keepalivesTx: number
  rejects: number
  /** VDP requests for new VSIs the link answered from the core's offers (rule 6 of port-core). */
  offersAnswered: number
  /** Answers from offers the core's own decision disagreed with (port-core rule 6). */
  offerMismatches: number
}

export interface PeerCounters {
  rxEcpdus: number
  rxDuplicates: number
  rxAcks: number
  txEcpdus: number
  txRetransmits: number
  txErrors: number
  rxVdpTlvs: number
  txVdpTlvs: number
  queueDrops: number
}

export const zeroPortCounters = (): PortCounters => ({
  rxFrames: 0,
  txFrames: 0,
  rxEcpdus: 0,
  rxDuplicates: 0,
  rxAcks: 0,
  rxAcksAbsorbed: 0,
  txEcpdus: 0,
  txRetransmits: 0,
  txAcks: 0,
  txErrors: 0,
  txResends: 0,
  rxVdpTlvs: 0,
  txVdpTlvs: 0,
  rxLldpdus: 0,
  txLldpdus: 0,
  framesDropped: 0,
  foreignFrames: 0,
  decodeErrors: 0,
  protocolErrors: 0,
  queueDrops: 0,
  eventsDropped: 0,
  transmitsDropped: 0,
  keepalivesRx: 0,
  keepalivesAnswered: 0,
  keepalivesTx: 0,
  rejects: 0,
  offersAnswered: 0,
  offerMismatches: 0,
})

export const zeroPeerCounters = (): PeerCounters => ({
  rxEcpdus: 0,
  rxDuplicates: 0,
  rxAcks: 0,
  txEcpdus: 0,
  txRetransmits: 0,
  txErrors: 0,
  rxVdpTlvs: 0,
  txVdpTlvs: 0,
  queueDrops: 0,
})

/** Operational EVB values after negotiation (max of both ends) and the timers they give. */
export interface OperationalTiming {
  retries: number
  rte: number
  rwd: number
  rka: number
  /** GroupID filter formats usable: BGID and SGID both set. */
  groupIdEnabled: boolean
  ackTimerUs: Us
  respWaitDelayUs: Us
  toutKeepAliveUs: Us
  reinitKeepAliveUs: Us
  resourceWaitDelayUs: Us
}

export type PortEvent =
  | { kind: 'vsi-associated'; atUs: Us; role: PortRole; vsi: VsiRef; transition: TransitionReason }
  | {
      kind: 'vsi-pre-associated'
      atUs: Us
      role: PortRole
      vsi: VsiRef
      /** Pre-Associate with resource reservation. */
      rr: boolean
      transition: TransitionReason
    }
  | {
      /** Associate → Pre-Associate (RFC 8394 Req-8 "deactivate"). */
      kind: 'vsi-deactivated'
      atUs: Us
      role: PortRole
      vsi: VsiRef
      rr: boolean
      /** Who asked: in standard VDP only the station can. */
      initiator: 'station'
      transition: TransitionReason
    }
  | {
      kind: 'vsi-de-associated'
      atUs: Us
      role: PortRole
      vsi: VsiRef
      reason: DeassociateReason
      /** Who ended it: the station (its request or its own timers) or the bridge. */
      initiator: 'station' | 'bridge'
      transition: TransitionReason
    }
  | {
      /** A request refused with a wire error code; `keep` = the previous state stays. */
      kind: 'vsi-rejected'
      atUs: Us
      role: PortRole
      vsi: VsiRef
      requested: VsiMode
      error: number
      keep: boolean
      hard: boolean
      /** Bridge: why, as the resource manager or validation put it (e.g. 'pool-exhausted'). */
      detail?: string
    }
  | { kind: 'peer-up'; atUs: Us; peer: Mac; via: 'ecp' | 'lldp' }
  | { kind: 'peer-down'; atUs: Us; peer: Mac; reason: 'lldp-ttl-expired' | 'lldp-shutdown' }
  | { kind: 'evb-negotiated'; atUs: Us; peer: Mac; operational: OperationalTiming }
  | {
      kind: 'frame-dropped'
      atUs: Us
      /** A `DecodeErrorCode` or a `RemoteProtocolErrorCode`. */
      code: string
      /** Byte offset of the fault from the start of the Ethernet frame (0 when not known). */
      offset: number
      peer?: Mac
    }
  | { kind: 'ecp-tx-error'; atUs: Us; peer: Mac; sequence: number; tlvCount: number }
  | {
      kind: 'counters'
      atUs: Us
      port: PortCounters
      peers: { peer: Mac; counters: PeerCounters }[]
    }

export type PortEventKind = PortEvent['kind']

/** One row of the VSI table for the CLI (`vdpctl show vsis`). */
export interface VsiSnapshot {
  role: PortRole
  vsi: VsiRef
  /** Machine state, standard spelling (e.g. `WAITCMD`, `WAIT_SYSCMD`, `PROCWAIT`). */
  state: string
  /** Mode the peer confirmed, or none yet. */
  confirmedMode: VsiMode | undefined
  /** Station: mode of the request in flight, if any. */
  pendingMode: VsiMode | undefined
  sinceUs: Us
  lastSeenUs: Us
  /** Next timer of this VSI (keep-alive supervision or response wait). */
  deadlineUs: Us | undefined
}

export interface PeerSnapshot {
  peer: Mac
  counters: PeerCounters
  ecpState: string
  queued: number
  lldpTtlDeadlineUs: Us | undefined
}
