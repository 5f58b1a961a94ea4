/**
 * Dry-run data-plane driver: logs every op through the injected logger and records what it
 * would hold, without touching any backend. For `--dataplane dry-run` on a lab machine, for
 * the station role, and for tests of the shell.
 *
 * @module
 */
import {
  applyDataplaneOps,
  diffDataplane,
  emptyDataplaneState,
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
  /** Every op applied, in order (reconcile's ops included). */
  readonly ops: readonly DataplaneOp[]
  /** VSI state changes published, in order. */
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

export function createDryRunDriver(options: { logger?: DataplaneLogger } = {}): DryRunDriver {
  const logger = options.logger ?? silentLogger
  const ops: DataplaneOp[] = []
  const vsiChanges: VsiStateChange[] = []
  let state = emptyDataplaneState()
  const record = (batch: readonly DataplaneOp[]) => {
    for (const op of batch) {
      logger.info(`dry-run: ${describeOp(op)}`, { ...op })
      ops.push(op)
    }
    state = applyDataplaneOps(state, batch)
  }
  return {
    kind: 'dry-run',
    ops,
    vsiChanges,
    state: () => state,
    async apply(batch): Promise<ApplyReport> {
      record(batch)
      return { changed: batch.map(describeOp), foreign: [], conflicts: [] }
    },
    async reconcile(desired): Promise<ReconcileReport> {
      const diff = diffDataplane(state, desired)
      record(diff)
      const report = emptyReconcileReport()
      for (const op of diff) (op.op.endsWith('-add') ? report.created : report.deleted).push(describeOp(op))
      return report
    },
    async publishVsiState(changes) {
      for (const c of changes) {
        logger.debug('dry-run: VSI state', c.kind === 'set' ? { ...c.row } : { del: `${c.port}|${c.vsiId}` })
        vsiChanges.push(c)
      }
    },
    async close() {},
  }
}
