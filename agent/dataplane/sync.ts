/**
 * Keeps a data-plane driver in step with the resource manager: the shell's half of the
 * contract in driver.ts. After every core mutation the shell calls `flush()`, which drains
 * `rm.pollDataplaneChanges()` and applies the ops. When a batch fails (Redis down, a kernel
 * refusal) the sync goes degraded: later ops are not applied one by one (they are folded into
 * the next reconcile, which works from `rm.dataplaneState()`), and `reconcile()` is retried
 * with exponential backoff (`retryMinMs` doubling to `retryMaxMs`) until it succeeds. VDP keeps
 * running meanwhile: the VSIs stay granted, and the data plane catches up.
 *
 * @module
 */
import type { DataplaneOp, DataplaneState } from '../resources/dataplane-ops.ts'
import { silentLogger, type DataplaneDriver, type DataplaneLogger, type ReconcileReport } from './driver.ts'

/** What the sync needs from the resource manager. */
export interface DataplaneSource {
  pollDataplaneChanges(): DataplaneOp[]
  dataplaneState(): DataplaneState
}

export interface DataplaneSyncOptions {
  logger?: DataplaneLogger
  retryMinMs?: number
  retryMaxMs?: number
  /** Timer hooks (tests inject a fake clock). */
  setTimer?: (fn: () => void, ms: number) => unknown
  clearTimer?: (handle: unknown) => void
  /** Called on every failed apply or reconcile (metrics). */
  onFailure?: (error: unknown) => void
  /**
   * Called after every successful apply with the number of ops and the seconds from the
   * `flush()` call (right after the VDP responses of that step left) to the driver's commit,
   * waiting behind earlier commits included.
   */
  onCommit?: (ops: number, seconds: number) => void
  /** Monotonic seconds for `onCommit` (tests inject a fake clock). */
  nowS?: () => number
}

export interface DataplaneSync {
  /** Drains and applies pending ops; never throws (failures switch to retry mode). */
  flush(): Promise<void>
  /** Full reconcile now (start-up, or an operator's `vdpctl dataplane resync`). */
  reconcile(): Promise<ReconcileReport | undefined>
  /** False while a failure waits for its retry. */
  readonly healthy: boolean
  /** Delay of the pending retry, ms; undefined when healthy. */
  readonly retryInMs: number | undefined
  close(): Promise<void>
}

/**
 * @example
 * ```ts
 * const sync = createDataplaneSync(rm, driver, { logger })
 * await sync.reconcile()                           // at start, after rm.importSnapshot(…)
 * const d = rm.request(req, clock.nowUs()); await sync.flush()
 * ```
 */
export function createDataplaneSync(source: DataplaneSource, driver: DataplaneDriver, options: DataplaneSyncOptions = {}): DataplaneSync {
  const o = {
    logger: silentLogger,
    retryMinMs: 500,
    retryMaxMs: 30_000,
    setTimer: (fn: () => void, ms: number): unknown => setTimeout(fn, ms),
    clearTimer: (h: unknown) => clearTimeout(h as ReturnType<typeof setTimeout>),
    onFailure: () => {},
    nowS: () => performance.now() / 1000,
    ...options,
  }
  let degraded = false
  let closed = false
  let delayMs: number | undefined
  let timer: unknown
  let chain: Promise<unknown> = Promise.resolve()
  const serial = <T>(f: () => Promise<T>): Promise<T> => {
    const run = chain.then(f, f)
    chain = run.catch(() => {})
    return run
  }

  function scheduleRetry(error: unknown): void {
    o.onFailure(error)
    degraded = true
    delayMs = delayMs === undefined ? o.retryMinMs : Math.min(delayMs * 2, o.retryMaxMs)
    o.logger.warn('data plane out of step, will reconcile', { error: (error as Error).message, retryInMs: delayMs })
    if (closed) return
    if (timer !== undefined) o.clearTimer(timer)
    timer = o.setTimer(() => {
      timer = undefined
      void doReconcile()
    }, delayMs)
  }

  function doReconcile(): Promise<ReconcileReport | undefined> {
    return serial(async () => {
      if (closed) return undefined
      source.pollDataplaneChanges() // folded into the full state below
      try {
        const report = await driver.reconcile(source.dataplaneState())
        degraded = false
        delayMs = undefined
        if (timer !== undefined) o.clearTimer(timer)
        timer = undefined
        return report
      } catch (e) {
        scheduleRetry(e)
        return undefined
      }
    })
  }

  return {
    flush() {
      const calledS = o.onCommit ? o.nowS() : 0
      return serial(async () => {
        if (closed) return
        if (degraded) return // the pending reconcile will carry these ops
        const ops = source.pollDataplaneChanges()
        if (ops.length === 0) return
        try {
          await driver.apply(ops)
          o.onCommit?.(ops.length, o.nowS() - calledS)
        } catch (e) {
          scheduleRetry(e)
        }
      })
    },
    reconcile: doReconcile,
    get healthy() {
      return !degraded
    },
    get retryInMs() {
      return degraded ? delayMs : undefined
    },
    async close() {
      closed = true
      if (timer !== undefined) o.clearTimer(timer)
      timer = undefined
      await chain
    },
  }
}
