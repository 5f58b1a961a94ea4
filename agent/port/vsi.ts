/**
 * Helpers shared by the two VDP machines: the VSI key, filter comparison rules and the
 * context through which a machine talks to its port (queue a TLV, emit an event, arm its
 * timer). Kept apart so neither machine imports the other.
 *
 * @module
 */
import type { Mac } from '../../shared/ethernet/mac.ts'
import type { ManagerId, PortName } from '../../shared/ids.ts'
import type { Us } from '../../shared/time.ts'
import type { VsiMode } from '../../shared/vdp/constants.ts'
import type { FilterEntry, VsiId, VsiTlv } from '../../shared/vdp/types.ts'
import type { PortRole } from './config.ts'
import type { PortCounters, PortEvent, VsiRef } from './events.ts'

/**
 * VSI table key. The standard's identity is the VSIID (the MIB indexes by VSIID type and
 * VSIID, vdp-spec §3.7); a bridge also keys by station MAC because several stations share a
 * port and a migrating VSI is pre-associated on the destination while associated on the source.
 */
export const vsiKey = (peer: Mac | undefined, vsiId: VsiId): string =>
  `${peer ?? '-'}|${vsiId.format}:${vsiId.id}`

/** What a VSI machine needs from its port. */
export interface VsiContext {
  readonly port: PortName
  readonly role: PortRole
  readonly counters: PortCounters
  /** Queues a VDP TLV to `peer` under `managerId` (ECP packs and sends it). */
  send(peer: Mac | undefined, managerId: ManagerId, tlv: VsiTlv, owner: string): void
  emit(event: PortEvent): void
  /** Arms (or with undefined stops) the VSI's single timer. */
  setTimer(key: string, atUs: Us | undefined): void
}

/** Migration hint of a request's status octet (vdp-spec §3.6): M bit = to, S bit = from. */
export function migrationOf(status: VsiTlv['status']): VsiRef['migration'] {
  if (status.response) return 'none'
  return status.migratingTo ? 'to' : status.migratingFrom ? 'from' : 'none'
}

/**
 * @param migration the hint of the request behind this state (a response carries none).
 */
export function vsiRef(
  peer: Mac,
  managerId: ManagerId,
  tlv: VsiTlv,
  migration: VsiRef['migration'] = migrationOf(tlv.status),
): VsiRef {
  return {
    peer,
    managerId,
    migration,
    vsiId: tlv.vsiId,
    typeId: tlv.typeId,
    typeVersion: tlv.typeVersion,
    filterFormat: tlv.filterFormat,
    entries: tlv.entries.map((e) => ({ ...e })),
  }
}

const sameIdentity = (a: FilterEntry, b: FilterEntry): boolean =>
  a.mac === b.mac && a.groupId === b.groupId

/**
 * 41.2.9 / lldpad `cmp_fdata1`: a response matches its request when the entry count is equal,
 * MAC and GroupID are equal entry by entry, and each VID is equal unless the request carried
 * VID 0 (the bridge picks it); with PS set in the request the whole PS/PCP/VID word must match.
 */
export function responseMatchesRequest(request: VsiTlv, response: VsiTlv): boolean {
  if (request.filterFormat !== response.filterFormat) return false
  if (request.entries.length !== response.entries.length) return false
  for (let i = 0; i < request.entries.length; i++) {
    const q = request.entries[i]!
    const r = response.entries[i]!
    if (!sameIdentity(q, r)) return false
    if (q.vid !== 0 && q.vid !== r.vid) return false
    if (q.ps && (!r.ps || r.pcp !== q.pcp || r.vid !== q.vid)) return false
  }
  return (
    request.typeId === response.typeId &&
    request.typeVersion === response.typeVersion &&
    request.vsiId.format === response.vsiId.format &&
    request.vsiId.id === response.vsiId.id
  )
}

/**
 * Bridge side: whether a station request names the same VSI data as the confirmed TLV
 * (a keep-alive carries the assigned VIDs; VID 0 still means "any").
 */
export function requestMatchesConfirmed(request: VsiTlv, confirmed: VsiTlv): boolean {
  if (request.typeId !== confirmed.typeId || request.typeVersion !== confirmed.typeVersion)
    return false
  if (request.filterFormat !== confirmed.filterFormat) return false
  if (request.entries.length !== confirmed.entries.length) return false
  for (let i = 0; i < request.entries.length; i++) {
    const q = request.entries[i]!
    const c = confirmed.entries[i]!
    if (!sameIdentity(q, c)) return false
    if (q.vid !== 0 && q.vid !== c.vid) return false
  }
  return true
}

/** Same mode, status octet, identity, filter format and entries (every field of each). */
export function sameVsiTlv(a: VsiTlv, b: VsiTlv): boolean {
  if (a.mode !== b.mode || a.typeId !== b.typeId || a.typeVersion !== b.typeVersion) return false
  if (a.vsiId.format !== b.vsiId.format || a.vsiId.id !== b.vsiId.id) return false
  if (a.filterFormat !== b.filterFormat || !sameFilterEntries(a.entries, b.entries)) return false
  const s = a.status
  const t = b.status
  if (s.response !== t.response) return false
  if (s.response && t.response) {
    if (s.keep !== t.keep || s.hard !== t.hard || s.error !== t.error) return false
  } else if (!s.response && !t.response) {
    if (s.migratingTo !== t.migratingTo || s.migratingFrom !== t.migratingFrom) return false
  }
  return true
}

/** Same filter entries, every field of each, in the same order. */
export function sameFilterEntries(a: readonly FilterEntry[], b: readonly FilterEntry[]): boolean {
  if (a.length !== b.length) return false
  for (let i = 0; i < a.length; i++) {
    const e = a[i]!
    const f = b[i]!
    if (e.vid !== f.vid || e.ps !== f.ps || e.pcp !== f.pcp || e.mac !== f.mac || e.groupId !== f.groupId) return false
  }
  return true
}

export const isPreAssociate = (mode: VsiMode | undefined): boolean =>
  mode === 'pre-associate' || mode === 'pre-associate-rr'

/** A TLV with a new mode/status, keeping everything else (entries copied). */
export function withMode(tlv: VsiTlv, mode: VsiMode, status: VsiTlv['status']): VsiTlv {
  return {
    ...tlv,
    mode,
    status,
    vsiId: { ...tlv.vsiId },
    entries: tlv.entries.map((e) => ({ ...e })),
  }
}

export const RESPONSE_OK: VsiTlv['status'] = { response: true, keep: false, hard: false, error: 0 }
