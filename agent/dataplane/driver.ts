/**
 * The data-plane driver interface (DESIGN §3 "Data plane"): the shell hands it the ops the
 * resource manager drained (`pollDataplaneChanges()`), reconciles it with the desired state at
 * start and after a failed apply, and may publish live VSI state. Two real drivers (SONiC
 * CONFIG_DB/STATE_DB in Redis, Linux bridge through iproute2) and a dry-run one.
 *
 * Contract every driver keeps:
 *
 * 1. It records what it creates in an ownership record (ownership.ts) and deletes only what
 *    that record holds. Something it finds already there (an operator's VLAN) is "foreign": it
 *    is used as it is, never rewritten, never deleted.
 * 2. `apply(ops)` applies transitions in the order given (the resource manager orders them:
 *    members leave, VLANs go, VLANs come, members join). Ops are idempotent: re-applying a
 *    batch after an error converges.
 * 3. `reconcile(desired)` makes the data plane hold `desired` with the fewest writes: owned
 *    items not desired are deleted, missing desired items are created, items already right are
 *    not touched (no flap of a live VLAN when the agent restarts).
 * 4. Failures throw `DataplaneError` with a `code`; the driver stays usable. The shell's retry
 *    policy: keep the VSIs as granted, call `reconcile(rm.dataplaneState())` with exponential
 *    backoff (0.5 s doubling to 30 s) until it succeeds, and count the failures.
 *
 * @module
 */
import type { Mac } from '../../shared/ethernet/mac.ts'
import type { ManagerId, PortName, VsiIdHex } from '../../shared/ids.ts'
import type { DataplaneOp, DataplaneState } from '../resources/dataplane-ops.ts'
import type { HeldVsi } from '../resources/resource-manager.ts'

export type { DataplaneOp, DataplaneState } from '../resources/dataplane-ops.ts'

/** Injected logger (the agent's structured logger; tests pass a recorder). */
export interface DataplaneLogger {
  debug(msg: string, fields?: Record<string, unknown>): void
  info(msg: string, fields?: Record<string, unknown>): void
  warn(msg: string, fields?: Record<string, unknown>): void
}

export const silentLogger: DataplaneLogger = { debug() {}, info() {}, warn() {} }

export interface ApplyReport {
  /** Items written or deleted (keys in SONiC, commands in Linux). */
  changed: string[]
  /** Items left alone because the agent does not own them (an operator's VLAN, …). */
  foreign: string[]
  /**
   * Desired items not created because a foreign item claims the same resource (SONiC: another
   * `VXLAN_TUNNEL_MAP` entry already maps this VNI or this VLAN), as `ours <- theirs`.
   */
  conflicts: string[]
}

export interface ReconcileReport {
  /** Desired items that were missing and are now created (and owned). */
  created: string[]
  /** Owned items that were no longer desired and are now deleted. */
  deleted: string[]
  /** Owned items that were present but wrong and are now rewritten in place. */
  repaired: string[]
  /** Desired, owned and already right: not written. */
  unchanged: string[]
  /** Desired but present and not owned: left alone. */
  foreign: string[]
  /** Owned but already gone: dropped from the record. */
  forgotten: string[]
  /** As in `ApplyReport`. */
  conflicts: string[]
}

/** Live state of one VSI, for STATE_DB (SONiC) or logs. */
export interface VsiStateRow {
  port: PortName
  vsiId: VsiIdHex
  state: 'pre-associated' | 'pre-associated-rr' | 'associated'
  /** Filter entries as granted: VID, and VNI / MAC where the format has them. */
  entries: Array<{ vid: number; vni?: number; mac?: Mac }>
  /** Source MAC of the station (ECP peer). */
  station: Mac
  managerId: ManagerId
  typeId: number
  typeVersion: number
  /** Wall-clock time of the last change, ms since the epoch (shell time, not core time). */
  updatedMs: number
}

export type VsiStateChange = { kind: 'set'; row: VsiStateRow } | { kind: 'del'; port: PortName; vsiId: VsiIdHex }

export interface DataplaneDriver {
  readonly kind: 'sonic' | 'linux' | 'dry-run'
  apply(ops: readonly DataplaneOp[]): Promise<ApplyReport>
  reconcile(desired: DataplaneState): Promise<ReconcileReport>
  /**
   * Publishes live VSI rows. `replaceAll`: the changes are the complete set (after a restart),
   * rows not in it are removed.
   */
  publishVsiState?(changes: readonly VsiStateChange[], options?: { replaceAll?: boolean }): Promise<void>
  close(): Promise<void>
}

export type DataplaneErrorCode =
  /** The backend cannot be reached (Redis down, iproute2 missing). Transient: retry. */
  | 'unavailable'
  /** The backend refused some of the batch; `failures` says which. */
  | 'command-failed'
  /** Concurrent writers kept changing the watched keys; retry. */
  | 'conflict'
  /** The ownership record cannot be read or written. */
  | 'ownership-io'
  /** The driver's configuration is wrong (bad tunnel name, bridge missing…). */
  | 'bad-config'

export class DataplaneError extends Error {
  override readonly name = 'DataplaneError'
  constructor(
    readonly code: DataplaneErrorCode,
    message: string,
    /** Items or commands that failed, with the backend's words. */
    readonly failures: ReadonlyArray<{ item: string; error: string }> = [],
    options?: { cause?: unknown },
  ) {
    super(message, options)
  }
}

export const emptyReconcileReport = (): ReconcileReport => ({
  created: [],
  deleted: [],
  repaired: [],
  unchanged: [],
  foreign: [],
  forgotten: [],
  conflicts: [],
})

/**
 * The STATE_DB row of a VSI the resource manager holds (`rm.heldVsis()`), stamped with the
 * shell's wall clock. The VNI of a GroupID entry is its low 24 bits (802.1Qcy).
 * @example
 * ```ts
 * await dp.publishVsiState?.(rm.heldVsis().map((h) => ({ kind: 'set', row: vsiStateRowOf(h, Date.now()) })), { replaceAll: true })
 * ```
 */
export function vsiStateRowOf(held: HeldVsi, updatedMs: number): VsiStateRow {
  const state = held.mode === 'associate' ? 'associated' : held.mode === 'pre-associate-rr' ? 'pre-associated-rr' : 'pre-associated'
  return {
    port: held.port,
    vsiId: held.vsiId,
    state,
    entries: held.entries.map((e) => ({
      vid: e.vid,
      ...(e.groupId === undefined ? {} : { vni: e.groupId & 0xffffff }),
      ...(e.mac === undefined ? {} : { mac: e.mac }),
    })),
    station: held.station,
    managerId: held.managerId,
    typeId: held.typeId,
    typeVersion: held.typeVersion,
    updatedMs,
  }
}
