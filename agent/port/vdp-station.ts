/**
 * VDP station machine for one VSI (802.1Qbg-2012 41.5.5, the station state machine; vdp-spec
 * §3.3). State names follow the standard as openlldp (`qbg/vdp22sm.c`, VDP22_S_*) spells them:
 * INIT, STATION_PROC, PROCWAIT (+ PROCWAIT_2 folded into the response classification),
 * ASSOC_NEW, PREASSOC_NEW, ASSOC_COMPL, WAIT_SYSCMD (+ _2), TXMIT_KA, TXMIT_KAWAIT (+ _2), END.
 *
 * Local rules:
 * 1. One request in flight per VSI; it is answered within respWaitDelay (41.5.5.9) or the VSI
 *    ends without a De-Associate (lldpad does the same).
 * 2. A command that arrives while a request is in flight is kept in `localChange` (the
 *    standard's variable) and runs as soon as the machine is back in WAIT_SYSCMD; a newer
 *    command replaces an older pending one.
 * 3. Keep-alive = the current TLV re-sent every reinitKeepAlive (41.5.5.5) with the stored
 *    bridge-assigned VIDs and the same hints.
 * 4. A response matches when the entry count, MACs and GroupIDs are equal and each VID is
 *    equal unless the request had VID 0 (41.2.9, lldpad `cmp_fdata1`); the returned VIDs are
 *    stored. A mismatch ends the VSI.
 * 5. An error with Keep leaves the prior confirmed state (back to WAIT_SYSCMD); with nothing
 *    confirmed, or without Keep, the VSI ends. On a keep-alive, lldpad sends a De-Associate
 *    after a Keep error (TXMIT_DEASSOC/DEAWAIT); here Keep means what its name says.
 * 6. An unsolicited De-Associate from the bridge ends the VSI; no VDP reply (only the ECP ACK).
 * 7. Associate → Pre-Associate (deactivate) is allowed (RFC 8394 Req-8; lldpad refuses it).
 *
 * @module
 */
import type { Mac } from '../../shared/ethernet/mac.ts'
import type { ManagerId } from '../../shared/ids.ts'
import type { Us } from '../../shared/time.ts'
import type { VsiMode } from '../../shared/vdp/constants.ts'
import type { RequestStatus, VsiTlv } from '../../shared/vdp/types.ts'
import { INITIATOR_BY_REASON, type DeassociateReason } from './events.ts'
import {
  StateMachine,
  STATION_TRANSITIONS,
  type StationEvent,
  type StationState,
  type TransitionReason,
} from './transitions.ts'
import {
  isPreAssociate,
  migrationOf,
  responseMatchesRequest,
  sameVsiTlv,
  vsiRef,
  withMode,
  type VsiContext,
} from './vsi.ts'

export interface StationContext extends VsiContext {
  readonly respWaitDelayUs: Us
  readonly reinitKeepAliveUs: Us
  /** The bridge's MAC as far as known (for events); undefined before any frame from it. */
  readonly bridgeMac: Mac | undefined
}

/** A local request for this VSI: the TLV to send (mode and hints included). */
export interface StationRequest {
  managerId: ManagerId
  tlv: VsiTlv
}

const REASON_BY_TRANSITION: Partial<Record<TransitionReason, DeassociateReason>> = {
  'error-received': 'rejected',
  'response-mismatch': 'response-mismatch',
  'resp-wait-expired': 'response-timeout',
  'tx-error': 'tx-error',
  'deassoc-from-bridge': 'bridge-request',
}

export class StationVsi {
  readonly machine = new StateMachine(STATION_TRANSITIONS, 'INIT' as StationState)
  managerId: ManagerId
  /** The TLV in flight, or last sent (stored VIDs, hints). */
  request: VsiTlv
  /** The bridge's last success response (VIDs as assigned); its mode is the confirmed mode. */
  confirmed: VsiTlv | undefined
  /** Hints of the last command, repeated in every request incl. keep-alives (vdp-spec §2.6). */
  hints: RequestStatus
  /** 41.5.5: a command waiting for the request in flight to finish. */
  localChange: StationRequest | undefined
  /** Set when the VSI ended with a non-De-Associate command still pending (the port restarts it). */
  leftover: StationRequest | undefined
  readonly sinceUs: Us
  lastSeenUs: Us
  deadlineUs: Us | undefined

  constructor(
    readonly key: string,
    first: StationRequest,
    nowUs: Us,
  ) {
    this.managerId = first.managerId
    this.request = first.tlv
    this.hints = requestStatusOf(first.tlv)
    this.sinceUs = nowUs
    this.lastSeenUs = nowUs
  }

  get state(): StationState {
    return this.machine.state
  }

  get confirmedMode(): VsiMode | undefined {
    return this.confirmed?.mode
  }

  get ended(): boolean {
    return this.machine.state === 'END'
  }

  /** Whether a request is in flight. */
  get waiting(): boolean {
    return this.machine.state === 'PROCWAIT' || this.machine.state === 'TXMIT_KAWAIT'
  }

  /** A local command (associate, pre-associate[-rr], de-associate). */
  handleCommand(ctx: StationContext, nowUs: Us, command: StationRequest): void {
    this.machine.beginInput()
    if (this.waiting) {
      this.localChange = command
      this.machine.fire('local-change')
      return
    }
    this.#startRequest(ctx, nowUs, command)
  }

  /**
   * A response (Req/Rsp set) for this VSI. Returns false when nothing waited for it (the port
   * counts a protocol error).
   */
  handleResponse(ctx: StationContext, nowUs: Us, tlv: VsiTlv): boolean {
    this.machine.beginInput()
    const event = this.#classify(tlv)
    const cell = this.machine.fire(event)
    if (cell === 'protocol-error' || cell === 'ignore') return cell === 'ignore'
    this.lastSeenUs = nowUs
    const status = tlv.status
    switch (this.machine.state) {
      case 'ASSOC_NEW':
      case 'PREASSOC_NEW': {
        const previous = this.confirmed
        this.confirmed = withMode(tlv, tlv.mode, tlv.status)
        this.request = withMode(tlv, tlv.mode, this.hints)
        this.#emitConfirmed(ctx, nowUs, previous?.mode)
        if (this.machine.state === 'ASSOC_NEW') this.machine.fire('completed')
        this.machine.fire('completed')
        this.#enterWaitSyscmd(ctx, nowUs)
        return true
      }
      case 'WAIT_SYSCMD': {
        if (event === 'response-keep') {
          this.#emitRejected(ctx, nowUs, tlv)
          // Keep: the state before the request stays (41.2.4).
          this.request = withMode(this.confirmed!, this.confirmed!.mode, this.hints)
        } else {
          // Keep-alive answered: store the VIDs again (a bridge may re-assign on restart).
          const previous = this.confirmed
          // The usual answer repeats what is confirmed: then the stored TLVs stay (the request
          // just sent equals the one rebuilt from the answer), rather than two fresh copies per
          // keep-alive that live for a keep-alive period and fill the old generation.
          if (previous === undefined || !sameVsiTlv(previous, tlv)) {
            this.confirmed = withMode(tlv, tlv.mode, tlv.status)
            this.request = withMode(tlv, tlv.mode, this.hints)
          }
          if (previous?.mode !== tlv.mode) this.#emitConfirmed(ctx, nowUs, previous?.mode)
        }
        this.#enterWaitSyscmd(ctx, nowUs)
        return true
      }
      case 'END': {
        if (status.response && status.error !== 0) this.#emitRejected(ctx, nowUs, tlv)
        this.#end(ctx, nowUs)
        return true
      }
      default:
        return true
    }
  }

  /** Unsolicited De-Associate (Req/Rsp clear) from the bridge. */
  handleBridgeDeassociate(ctx: StationContext, nowUs: Us): void {
    this.machine.beginInput()
    this.machine.fire('bridge-deassoc')
    this.#end(ctx, nowUs)
  }

  /** The VSI's timer: respWaitDelay while waiting, reinitKeepAlive in WAIT_SYSCMD. */
  handleTimeout(ctx: StationContext, nowUs: Us): void {
    this.machine.beginInput()
    this.deadlineUs = undefined
    if (this.waiting) {
      this.machine.fire('resp-wait-expired')
      this.#end(ctx, nowUs)
      return
    }
    if (this.machine.state !== 'WAIT_SYSCMD') return
    this.machine.fire('keepalive-due')
    // TXMIT_KA: the current TLV again, stored VIDs, same hints.
    const confirmed = this.confirmed!
    this.request = withMode(confirmed, confirmed.mode, this.hints)
    ctx.counters.keepalivesTx++
    this.#send(ctx, nowUs)
  }

  /** ECP gave up on the ECPDU that carried this VSI's request. */
  handleTxError(ctx: StationContext, nowUs: Us): void {
    this.machine.beginInput()
    const cell = this.machine.fire('tx-error')
    if (typeof cell === 'object' && this.machine.state === 'END') this.#end(ctx, nowUs)
  }

  #startRequest(ctx: StationContext, nowUs: Us, command: StationRequest): void {
    this.managerId = command.managerId
    this.hints = requestStatusOf(command.tlv)
    this.request = this.#withStoredVids(command.tlv)
    this.machine.fire('local-change')
    this.#send(ctx, nowUs)
  }

  /** STATION_PROC / TXMIT_KA: queue the TLV, start respWaitDelay (41.5.5.9). */
  #send(ctx: StationContext, nowUs: Us): void {
    ctx.send(ctx.bridgeMac, this.managerId, this.request, this.key)
    this.machine.fire('request-sent')
    this.deadlineUs = nowUs + ctx.respWaitDelayUs
    ctx.setTimer(this.key, this.deadlineUs)
  }

  #enterWaitSyscmd(ctx: StationContext, nowUs: Us): void {
    // 41.5.5.5: WAIT_SYSCMD starts reinitKeepAlive.
    this.deadlineUs = nowUs + ctx.reinitKeepAliveUs
    ctx.setTimer(this.key, this.deadlineUs)
    const pending = this.localChange
    if (pending !== undefined) {
      this.localChange = undefined
      this.#startRequest(ctx, nowUs, pending)
    }
  }

  #end(ctx: StationContext, nowUs: Us): void {
    ctx.setTimer(this.key, undefined)
    this.deadlineUs = undefined
    const transition = this.machine.reason!
    const wasDeassociating = this.request.mode === 'de-associate'
    const reason: DeassociateReason =
      transition === 'deassoc-confirmed'
        ? wasDeassociating
          ? 'station-request'
          : 'rejected'
        : (REASON_BY_TRANSITION[transition] ?? 'rejected')
    const shown = this.confirmed ?? this.request
    ctx.emit({
      kind: 'vsi-de-associated',
      atUs: nowUs,
      role: 'station',
      vsi: vsiRef(
        ctx.bridgeMac ?? ('00:00:00:00:00:00' as Mac),
        this.managerId,
        shown,
        migrationOf(this.hints),
      ),
      reason,
      initiator: INITIATOR_BY_REASON[reason],
      transition,
    })
    if (this.localChange !== undefined && this.localChange.tlv.mode !== 'de-associate') {
      this.leftover = this.localChange
    }
    this.localChange = undefined
  }

  #classify(tlv: VsiTlv): StationEvent {
    const status = tlv.status
    if (!status.response) return 'bridge-deassoc'
    if (status.error !== 0) {
      // A reject may come as a De-Associate TLV (lldpad) or as the request's type: match on key.
      if (!sameKey(this.request, tlv)) return 'response-mismatch'
      return status.keep && this.confirmed !== undefined ? 'response-keep' : 'response-error'
    }
    if (tlv.mode === 'de-associate')
      return sameKey(this.request, tlv) ? 'response-de-associate' : 'response-mismatch'
    // A success of another kind cannot answer a De-Associate.
    if (this.request.mode === 'de-associate') return 'response-mismatch'
    if (!responseMatchesRequest(this.request, tlv)) return 'response-mismatch'
    return tlv.mode === 'associate' ? 'response-associate' : 'response-pre-associate'
  }

  /** Entries of a new command take the VIDs the bridge assigned earlier where they asked for VID 0. */
  #withStoredVids(tlv: VsiTlv): VsiTlv {
    const confirmed = this.confirmed
    if (confirmed === undefined || confirmed.filterFormat !== tlv.filterFormat) return tlv
    if (tlv.mode === 'de-associate') return withMode(confirmed, 'de-associate', tlv.status)
    if (confirmed.entries.length !== tlv.entries.length) return tlv
    return {
      ...tlv,
      entries: tlv.entries.map((e, i) => {
        const c = confirmed.entries[i]!
        return e.vid === 0 && e.mac === c.mac && e.groupId === c.groupId
          ? { ...e, vid: c.vid, ps: c.ps, pcp: c.pcp }
          : e
      }),
    }
  }

  #emitConfirmed(ctx: StationContext, nowUs: Us, previousMode: VsiMode | undefined): void {
    const confirmed = this.confirmed!
    const vsi = vsiRef(
      ctx.bridgeMac ?? ('00:00:00:00:00:00' as Mac),
      this.managerId,
      confirmed,
      migrationOf(this.hints),
    )
    const transition = this.machine.reason!
    if (confirmed.mode === 'associate') {
      ctx.emit({ kind: 'vsi-associated', atUs: nowUs, role: 'station', vsi, transition })
    } else if (isPreAssociate(confirmed.mode)) {
      const rr = confirmed.mode === 'pre-associate-rr'
      ctx.emit(
        previousMode === 'associate'
          ? {
              kind: 'vsi-deactivated',
              atUs: nowUs,
              role: 'station',
              vsi,
              rr,
              initiator: 'station',
              transition,
            }
          : { kind: 'vsi-pre-associated', atUs: nowUs, role: 'station', vsi, rr, transition },
      )
    }
  }

  #emitRejected(ctx: StationContext, nowUs: Us, tlv: VsiTlv): void {
    const status = tlv.status
    if (!status.response) return
    ctx.counters.rejects++
    ctx.emit({
      kind: 'vsi-rejected',
      atUs: nowUs,
      role: 'station',
      vsi: vsiRef(
        ctx.bridgeMac ?? ('00:00:00:00:00:00' as Mac),
        this.managerId,
        this.request,
        migrationOf(this.hints),
      ),
      requested: this.request.mode,
      error: status.error,
      keep: status.keep,
      hard: status.hard,
    })
  }
}

function requestStatusOf(tlv: VsiTlv): RequestStatus {
  const s = tlv.status
  return s.response
    ? { response: false, migratingFrom: false, migratingTo: false }
    : { response: false, migratingFrom: s.migratingFrom, migratingTo: s.migratingTo }
}

function sameKey(a: VsiTlv, b: VsiTlv): boolean {
  return (
    a.vsiId.format === b.vsiId.format &&
    a.vsiId.id === b.vsiId.id &&
    a.filterFormat === b.filterFormat
  )
}
