/**
 * The bridge's pluggable resource decision (802.1Q 41.5.5 "resource manager"): the VDP bridge
 * machine asks it whether a Pre-Associate / Associate can be granted and with which VIDs, and
 * tells it when a VSI leaves. It is synchronous and pure (part of the core): VID pools and
 * policy are in memory; the shell programs the data plane from the port core's events.
 *
 * @module
 */
import type { Mac } from '../../shared/ethernet/mac.ts'
import type { ManagerId, PortName } from '../../shared/ids.ts'
import type { Us } from '../../shared/time.ts'
import type { FilterEntry, VsiTlv } from '../../shared/vdp/types.ts'

export interface ResourceRequest {
  port: PortName
  /** Source MAC of the station that sent the request (its ECP peer). */
  station: Mac
  managerId: ManagerId
  /** The request as received (mode pre-associate, pre-associate-rr or associate). */
  tlv: VsiTlv
  /** What the bridge currently holds for this VSI, if anything. */
  current?: VsiTlv
}

export type ResourceDecision =
  /** Grant: `entries` is the request's entries with VIDs (and PS/PCP) filled in, same order. */
  | { outcome: 'granted'; entries: FilterEntry[] }
  /** Reject and keep the state before the request (Keep bit set in the response). */
  | { outcome: 'keep'; error: number; reason?: string }
  /** Reject; the VSI is removed (response carries the error, Hard when not transient). */
  | { outcome: 'refused'; error: number; hard: boolean; reason?: string }

export interface VsiRelease {
  port: PortName
  station: Mac
  managerId: ManagerId
  /** The VSI as the bridge last confirmed it (VIDs filled). */
  tlv: VsiTlv
  reason: string
}

export interface ResourceManager {
  request(req: ResourceRequest, nowUs: Us): ResourceDecision
  release(rel: VsiRelease, nowUs: Us): void
  /**
   * Optional, for answers from offers (port-core rule 6): [epoch, headroom]. The epoch moves
   * whenever a decision taken for a new VSI may no longer hold (a VN's VID may go, the policy
   * changed); headroom is how many more VSIs `request` would take. Links read it directly.
   */
  readonly offerState?: Int32Array
}
