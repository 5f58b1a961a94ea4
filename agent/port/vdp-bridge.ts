/**
 * VDP bridge machine for one VSI (802.1Qbg-2012 41.5.5, the bridge state machine; vdp-spec
 * §3.4). State names follow the standard; openlldp (`qbg/vdp22sm.c`) spells them
 * VDP22_BR_INIT, _PROCESS, _SEND, _KEEP, _DEASSOC, _WAITCMD (+ _WAITCMD_2, folded here into the
 * WAITCMD event classification), _ALIVE, _DEASSOCIATED, _END.
 *
 * Local rules (where this bridge differs from lldpad's simulator, on purpose):
 * 1. The confirmed mode (`cc_vsi_mode` in openlldp, never updated there) is tracked: an
 *    identical keep-alive goes WAITCMD → ALIVE and is answered from the stored state without
 *    asking the resource manager again, and a station De-Associate really deletes the VSI.
 * 2. Resources come from the pluggable `ResourceManager`: granted → SEND (VIDs filled, VID 0
 *    replaced), keep → KEEP (Keep bit, prior state stays), refused → DEASSOC (De-Associate TLV
 *    with the error and Hard bit; the VSI is removed).
 * 3. Associate → Pre-Associate (deactivate) is processed like any mode change (RFC 8394 Req-8;
 *    lldpad refuses it).
 * 4. Keep-alive supervision: no request within toutKeepAlive (41.5.5.13) → DEASSOCIATED: an
 *    unsolicited De-Associate with status 0x00 (Req/Rsp clear, 41.2.4), resources released.
 *    A local command takes the same path.
 * 5. The resource manager answers synchronously, so resourceWaitDelay (41.5.5.7) cannot
 *    expire before PROCESS decides; it bounds nothing here.
 * 6. Keep-alive answers by the link (`FrameLink.answers`): whenever the bridge confirms a
 *    request (granted, or an identical keep-alive answered from the stored state), it hands
 *    the pair to the context (`answer`), which may let the link answer the same request
 *    octet for octet without this machine: the pair stays valid exactly as long as WAITCMD
 *    holds this confirmed state. Releasing the VSI withdraws it (`unanswer`). While the link
 *    holds the answer, the context supervises toutKeepAlive from the link's answers instead
 *    of the VSI's timer (port-core rule 5) and calls `handleTimeout` once it ran out.
 *
 * @module
 */
import { assert } from '../../shared/assert.ts'
import type { Mac } from '../../shared/ethernet/mac.ts'
import type { ManagerId } from '../../shared/ids.ts'
import type { Us } from '../../shared/time.ts'
import type { VsiMode } from '../../shared/vdp/constants.ts'
import type { VsiTlv } from '../../shared/vdp/types.ts'
import { INITIATOR_BY_REASON, type DeassociateReason } from './events.ts'
import type { ResourceManager } from './resources.ts'
import {
  BRIDGE_TRANSITIONS,
  StateMachine,
  type BridgeState,
  type TransitionReason,
} from './transitions.ts'
import {
  isPreAssociate,
  migrationOf,
  requestMatchesConfirmed,
  RESPONSE_OK,
  vsiRef,
  withMode,
  type VsiContext,
} from './vsi.ts'

/** Two request status octets with the same migration hints. */
const sameRequestStatus = (a: VsiTlv['status'], b: VsiTlv['status']): boolean =>
  !a.response && !b.response && a.migratingTo === b.migratingTo && a.migratingFrom === b.migratingFrom

export interface BridgeContext extends VsiContext {
  readonly resources: ResourceManager
  /** toutKeepAlive in µs, from the operational EVB values. */
  readonly toutKeepAliveUs: Us
  /** Rule 6: `request` was just confirmed with `vsi.confirmed` (the link may answer it). */
  answer?(vsi: BridgeVsi, request: VsiTlv): void
  /** Rule 6: the VSI's answer is no longer valid. */
  unanswer?(vsi: BridgeVsi): void
}

export class BridgeVsi {
  readonly machine = new StateMachine(BRIDGE_TRANSITIONS, 'INIT' as BridgeState)
  /** What the bridge confirmed last (VIDs filled, response status); its mode is the confirmed mode. */
  confirmed: VsiTlv | undefined
  managerId: ManagerId
  /** The request being (or last) processed. */
  request: VsiTlv
  readonly sinceUs: Us
  lastSeenUs: Us
  deadlineUs: Us | undefined
  /** Rule 6: the VSI's answer id at the link (-1: none). */
  answerId = -1

  constructor(
    readonly key: string,
    readonly peer: Mac,
    managerId: ManagerId,
    request: VsiTlv,
    nowUs: Us,
  ) {
    this.managerId = managerId
    this.request = request
    this.sinceUs = nowUs
    this.lastSeenUs = nowUs
  }

  get state(): BridgeState {
    return this.machine.state
  }

  get confirmedMode(): VsiMode | undefined {
    return this.confirmed?.mode
  }

  get ended(): boolean {
    return this.machine.state === 'END'
  }

  /** A station request (Pre-Associate, Pre-Associate-RR or Associate) for this VSI. */
  handleRequest(ctx: BridgeContext, nowUs: Us, managerId: ManagerId, tlv: VsiTlv): void {
    assert(
      tlv.mode !== 'de-associate',
      'Cannot process De-Associate as a request: use handleDeassociate',
    )
    this.machine.beginInput()
    this.lastSeenUs = nowUs
    if (this.machine.state === 'INIT') {
      this.managerId = managerId
      this.request = tlv
      this.machine.fire('new-request')
      this.#process(ctx, nowUs)
      return
    }
    if (this.machine.state !== 'WAITCMD')
      assert(false, `Cannot take a request: VSI is in ${this.machine.state}`)
    const confirmed = this.confirmed
    assert(confirmed !== undefined, 'Cannot be in WAITCMD without a confirmed TLV')
    if (
      tlv.mode === confirmed.mode &&
      managerId === this.managerId &&
      requestMatchesConfirmed(tlv, confirmed)
    ) {
      // In WAITCMD only the request's status (its migration hints) is read. A keep-alive that
      // repeats it leaves the stored request alone: keeping each decoded keep-alive for ~10 s
      // moved it to the old generation, and the GC then spent more time than the protocol.
      if (!sameRequestStatus(tlv.status, this.request.status)) this.request = tlv
      // 41.5.5: same mode as confirmed → ALIVE: answer from the stored state.
      this.machine.fire('request-same-mode')
      ctx.counters.keepalivesRx++
      // `confirmed` is the success response itself (status 0x40, VIDs filled) and is never
      // changed in place, only replaced: it goes out as it is, no copy per keep-alive.
      ctx.send(this.peer, this.managerId, confirmed, this.key)
      this.machine.fire('reply-sent')
      this.#armKeepAlive(ctx, nowUs)
      ctx.answer?.(this, tlv)
      return
    }
    this.request = tlv
    this.managerId = managerId
    this.machine.fire('request-new-mode')
    this.#process(ctx, nowUs)
  }

  /** Station De-Associate for this VSI: release, answer 0x40, delete. */
  handleDeassociate(ctx: BridgeContext, nowUs: Us, tlv: VsiTlv): void {
    this.machine.beginInput()
    this.lastSeenUs = nowUs
    this.machine.fire('deassoc-received')
    const confirmed = this.confirmed
    assert(confirmed !== undefined, 'Cannot de-associate in WAITCMD without a confirmed TLV')
    this.#release(ctx, nowUs, confirmed, 'station-request')
    // Answer with the request TLV echoed, status 0x40 (lldpad interop rule 3).
    ctx.send(this.peer, this.managerId, withMode(tlv, 'de-associate', RESPONSE_OK), this.key)
    this.#emitDeassociated(ctx, nowUs, confirmed, 'station-request')
    this.machine.fire('reply-sent')
    ctx.setTimer(this.key, undefined)
    this.deadlineUs = undefined
  }

  /** The VSI's timer fired: toutKeepAlive. */
  handleTimeout(ctx: BridgeContext, nowUs: Us): void {
    if (this.machine.state !== 'WAITCMD') return
    this.machine.beginInput()
    this.machine.fire('keepalive-timeout')
    this.#unsolicitedDeassociate(ctx, nowUs, 'keepalive-timeout')
  }

  /**
   * Local management removes the VSI; so does the port core when the link's answer from an
   * offer disagreed with this machine's decision (`answer-mismatch`, port-core rule 6).
   */
  handleLocalDeassociate(ctx: BridgeContext, nowUs: Us, reason: 'local-command' | 'answer-mismatch' = 'local-command'): void {
    this.machine.beginInput()
    this.machine.fire('local-deassoc')
    this.#unsolicitedDeassociate(ctx, nowUs, reason)
  }

  #unsolicitedDeassociate(ctx: BridgeContext, nowUs: Us, reason: DeassociateReason): void {
    const confirmed = this.confirmed
    assert(confirmed !== undefined, 'Cannot de-associate without a confirmed TLV')
    // 41.2.4 / vdp-spec §3.5: De-Associate with the Req/Rsp bit clear, status 0x00.
    const status = { response: false, migratingFrom: false, migratingTo: false } as const
    ctx.send(this.peer, this.managerId, withMode(confirmed, 'de-associate', status), this.key)
    this.#release(ctx, nowUs, confirmed, reason)
    this.#emitDeassociated(ctx, nowUs, confirmed, reason)
    this.machine.fire('reply-sent')
    ctx.setTimer(this.key, undefined)
    this.deadlineUs = undefined
  }

  #process(ctx: BridgeContext, nowUs: Us): void {
    const request = this.request
    const previous = this.confirmed
    const decision = ctx.resources.request(
      previous === undefined
        ? { port: ctx.port, station: this.peer, managerId: this.managerId, tlv: request }
        : {
            port: ctx.port,
            station: this.peer,
            managerId: this.managerId,
            tlv: request,
            current: previous,
          },
      nowUs,
    )
    switch (decision.outcome) {
      case 'granted': {
        if (decision.entries.length !== request.entries.length)
          assert(
            false,
            `Cannot grant VSI: resource manager returned ${decision.entries.length} entries for ${request.entries.length}`,
          )
        this.machine.fire('resources-granted')
        const confirmed: VsiTlv = {
          ...withMode(request, request.mode, RESPONSE_OK),
          entries: decision.entries.map((e) => ({ ...e })),
        }
        this.confirmed = confirmed
        ctx.send(this.peer, this.managerId, confirmed, this.key)
        this.#emitConfirmed(ctx, nowUs, previous?.mode, confirmed, this.machine.reason!)
        this.machine.fire('reply-sent')
        this.#armKeepAlive(ctx, nowUs)
        ctx.answer?.(this, request)
        return
      }
      case 'keep': {
        this.machine.fire('resources-keep')
        ctx.counters.rejects++
        const status = {
          response: true,
          keep: true,
          hard: false,
          error: decision.error & 0x0f,
        } as const
        ctx.send(this.peer, this.managerId, withMode(request, request.mode, status), this.key)
        ctx.emit({
          kind: 'vsi-rejected',
          atUs: nowUs,
          role: 'bridge',
          vsi: vsiRef(this.peer, this.managerId, request, migrationOf(request.status)),
          requested: request.mode,
          error: status.error,
          keep: true,
          hard: false,
          ...(decision.reason === undefined ? {} : { detail: decision.reason }),
        })
        if (previous === undefined) {
          this.machine.fire('no-prior-state')
          ctx.setTimer(this.key, undefined)
          return
        }
        this.machine.fire('reply-sent')
        this.#armKeepAlive(ctx, nowUs)
        return
      }
      case 'refused': {
        this.machine.fire('resources-refused')
        ctx.counters.rejects++
        // lldpad: a refused request is answered with a De-Associate TLV, 0x40 | error [| Hard].
        const status = {
          response: true,
          keep: false,
          hard: decision.hard,
          error: decision.error & 0x0f,
        } as const
        ctx.send(this.peer, this.managerId, withMode(request, 'de-associate', status), this.key)
        ctx.emit({
          kind: 'vsi-rejected',
          atUs: nowUs,
          role: 'bridge',
          vsi: vsiRef(this.peer, this.managerId, request, migrationOf(request.status)),
          requested: request.mode,
          error: status.error,
          keep: false,
          hard: decision.hard,
          ...(decision.reason === undefined ? {} : { detail: decision.reason }),
        })
        if (previous !== undefined) {
          this.#release(ctx, nowUs, previous, 'rejected')
          this.#emitDeassociated(ctx, nowUs, previous, 'rejected')
        }
        this.machine.fire('reply-sent')
        ctx.setTimer(this.key, undefined)
        this.deadlineUs = undefined
        return
      }
    }
  }

  #armKeepAlive(ctx: BridgeContext, nowUs: Us): void {
    // 41.5.5.13: WAITCMD starts toutKeepAlive.
    this.deadlineUs = nowUs + ctx.toutKeepAliveUs
    ctx.setTimer(this.key, this.deadlineUs)
  }

  #release(ctx: BridgeContext, nowUs: Us, confirmed: VsiTlv, reason: DeassociateReason): void {
    ctx.unanswer?.(this)
    ctx.resources.release(
      { port: ctx.port, station: this.peer, managerId: this.managerId, tlv: confirmed, reason },
      nowUs,
    )
  }

  #emitConfirmed(
    ctx: BridgeContext,
    nowUs: Us,
    previousMode: VsiMode | undefined,
    confirmed: VsiTlv,
    transition: TransitionReason,
  ): void {
    const vsi = vsiRef(this.peer, this.managerId, confirmed, migrationOf(this.request.status))
    if (confirmed.mode === 'associate') {
      ctx.emit({ kind: 'vsi-associated', atUs: nowUs, role: 'bridge', vsi, transition })
    } else if (isPreAssociate(confirmed.mode)) {
      const rr = confirmed.mode === 'pre-associate-rr'
      ctx.emit(
        previousMode === 'associate'
          ? {
              kind: 'vsi-deactivated',
              atUs: nowUs,
              role: 'bridge',
              vsi,
              rr,
              initiator: 'station',
              transition,
            }
          : { kind: 'vsi-pre-associated', atUs: nowUs, role: 'bridge', vsi, rr, transition },
      )
    }
  }

  #emitDeassociated(ctx: BridgeContext, nowUs: Us, tlv: VsiTlv, reason: DeassociateReason): void {
    ctx.emit({
      kind: 'vsi-de-associated',
      atUs: nowUs,
      role: 'bridge',
      vsi: vsiRef(this.peer, this.managerId, tlv, migrationOf(this.request.status)),
      reason,
      initiator: INITIATOR_BY_REASON[reason],
      transition: this.machine.reason!,
    })
  }
}
