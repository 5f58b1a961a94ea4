/**
 * Dry-run data-plane driver: logs every op through the injected logger and records what it
 * would hold, without touching any backend. For `--dataplane dry-run` on a lab machine, for
 * the station role, and for tests of the shell.
 *
 * @module
 */
import {
  diffDataplane,
  emptyDataplaneState,
  sortDataplaneState,
  type DataplaneOp,
  type DataplaneState,
} from '../resources/dataplane-ops.ts'
import {
  emptyReconcileReport,
  silentLogger,
  type ApplyReport,
  type DataplaneDriver,
  type DataplaneLogger,
  type ReconcileReport,
  type VsiStateChange,
} from './driver.ts'

export interface DryRunDriver extends DataplaneDriver {
  readonly kind: 'dry-run'
  /** The most recent ops applied (at least `RECORDS_MAX`, at most twice that), in order, reconcile's included. */
  readonly ops: readonly DataplaneOp[]
  /** The most recent VSI state changes published (as many as `ops`), in order. */
  readonly vsiChanges: readonly VsiStateChange[]
  /** What the data plane would hold now. */
  state(): DataplaneState
}

const describeOp = (op: DataplaneOp): string => {
  switch (op.op) {
    case 'vlan-add':
      return `add VLAN ${op.vid}${op.vni === undefined ? '' : ` mapped to VNI ${op.vni}`}`
    case 'vlan-del':
      return `delete VLAN ${op.vid}${op.vni === undefined ? '' : ` and its map to VNI ${op.vni}`}`
    case 'member-add':
      return `add ${op.port} to VLAN ${op.vid} (tagged)`
    case 'member-del':
      return `remove ${op.port} from VLAN ${op.vid}`
  }
}

/**
 * How many ops and VSI state changes the driver keeps for inspection: a long-running agent on
 * the dry-run data plane (the default) must not grow with every association it ever saw.
 */
export const RECORDS_MAX = 1000

/** Appends, dropping the oldest half once the list is twice the bound (amortised O(1)). */
function keepRecent<T>(list: T[], item: T): void {
  list.push(item)
  if (list.length >= 2 * RECORDS_MAX) list.splice(0, list.length - RECORDS_MAX)
}

export function createDryRunDriver(options: { logger?: DataplaneLogger } = {}): DryRunDriver {
  const logger = options.logger ?? silentLogger
  const ops: DataplaneOp[] = []
  const vsiChanges: VsiStateChange[] = []
  // What it holds, changed op by op; the sorted `DataplaneState` is built when asked for
  // (rebuilding and sorting thousands of members for every association made set-up slow).
  const vlans = new Map<number, DataplaneOp & { op: 'vlan-add' }>()
  const members = new Map<string, DataplaneOp & { op: 'member-add' }>()
  let state: DataplaneState | undefined = emptyDataplaneState()
  const record = (batch: readonly DataplaneOp[]) => {
    for (const op of batch) {
      logger.info(`dry-run: ${describeOp(op)}`, { ...op })
      keepRecent(ops, op)
      if (op.op === 'vlan-add') vlans.set(op.vid, op)
      else if (op.op === 'vlan-del') vlans.delete(op.vid)
      else if (op.op === 'member-add') members.set(`${op.vid}|${op.port}`, op)
      else members.delete(`${op.vid}|${op.port}`)
    }
    if (batch.length > 0) state = undefined
  }
  const current = (): DataplaneState =>
    (state ??= sortDataplaneState({
      vlans: [...vlans.values()].map((v) => (v.vni === undefined ? { vid: v.vid } : { vid: v.vid, vni: v.vni })),
      members: [...members.values()].map((m) => ({ vid: m.vid, port: m.port })),
    }))
  return {
    kind: 'dry-run',
    ops,
    vsiChanges,
    state: current,
    async apply(batch): Promise<ApplyReport> {
      record(batch)
      return { changed: batch.map(describeOp), foreign: [], conflicts: [] }
    },
    async reconcile(desired): Promise<ReconcileReport> {
      const diff = diffDataplane(current(), desired)
      record(diff)
      const report = emptyReconcileReport()
      for (const op of diff) (op.op.endsWith('-add') ? report.created : report.deleted).push(describeOp(op))
      return report
    },
    async publishVsiState(changes) {
      for (const c of changes) {
        logger.debug('dry-run: VSI state', c.kind === 'set' ? { ...c.row } : { del: `${c.port}|${c.vsiId}` })
        keepRecent(vsiChanges, c)
      }
    },
    async close() {},
  }
}
