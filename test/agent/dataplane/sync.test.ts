import { describe, expect, it } from 'vitest'
import { createDryRunDriver } from '../../../agent/dataplane/dry-run.ts'
import { DataplaneError, type DataplaneDriver } from '../../../agent/dataplane/driver.ts'
import { createDataplaneSync } from '../../../agent/dataplane/sync.ts'
import { validatePolicy } from '../../../agent/resources/policy.ts'
import { createResourceManager } from '../../../agent/resources/resource-manager.ts'
import { VidPool } from '../../../agent/resources/vid-pool.ts'
import { rel, req } from '../resources/requests.ts'

/** A dry-run driver that fails while `down` is true. */
function flaky() {
  const inner = createDryRunDriver()
  const state = { down: false, calls: [] as string[] }
  const fail = () => Promise.reject(new DataplaneError('unavailable', 'Cannot reach Redis: down'))
  const driver: DataplaneDriver = {
    kind: 'dry-run',
    apply: (ops) => (state.calls.push('apply'), state.down ? fail() : inner.apply(ops)),
    reconcile: (d) => (state.calls.push('reconcile'), state.down ? fail() : inner.reconcile(d)),
    close: () => inner.close(),
  }
  return { driver, inner, state }
}

function fakeTimers() {
  const pending: Array<{ fn: () => void; ms: number }> = []
  return {
    pending,
    setTimer: (fn: () => void, ms: number) => {
      const t = { fn, ms }
      pending.push(t)
      return t
    },
    clearTimer: (h: unknown) => {
      const i = pending.indexOf(h as never)
      if (i >= 0) pending.splice(i, 1)
    },
    async fire() {
      const t = pending.shift()!
      t.fn()
      await new Promise((r) => setTimeout(r, 0))
      return t.ms
    },
  }
}

describe('createDataplaneSync()', () => {
  it('applies drained ops, goes degraded on failure, retries reconcile with doubling backoff, converges', async () => {
    const rm = createResourceManager(validatePolicy({ vns: [{ vni: 5000 }] }), VidPool.parse('100-199'))
    const { driver, inner, state } = flaky()
    const timers = fakeTimers()
    const failures: unknown[] = []
    const sync = createDataplaneSync(rm, driver, { ...timers, retryMinMs: 500, retryMaxMs: 1500, onFailure: (e) => failures.push(e) })

    rm.request(req({ vsi: 1, entries: [{ groupId: 5000 }] }), 0)
    await sync.flush()
    expect(inner.state()).toEqual(rm.dataplaneState())
    expect(sync.healthy).toBe(true)

    state.down = true
    rm.request(req({ vsi: 2, port: 'Ethernet4', entries: [{ groupId: 5000 }] }), 0)
    await sync.flush()
    expect(sync.healthy).toBe(false)
    expect(sync.retryInMs).toBe(500)
    // While degraded, further changes wait for the reconcile.
    rm.release(rel({ vsi: 1, entries: [{ groupId: 5000, vid: 100 }] }), 0)
    await sync.flush()
    expect(state.calls).toEqual(['apply', 'apply'])
    expect(await timers.fire()).toBe(500)
    expect(await timers.fire()).toBe(1000)
    expect(await timers.fire()).toBe(1500)
    expect(sync.retryInMs).toBe(1500)
    state.down = false
    await timers.fire()
    expect(sync.healthy).toBe(true)
    expect(timers.pending).toEqual([])
    expect(inner.state()).toEqual(rm.dataplaneState())
    expect(inner.state().members).toEqual([{ vid: 100, port: 'Ethernet4' }])
    expect(failures).toHaveLength(4)
    expect(state.calls).toEqual(['apply', 'apply', 'reconcile', 'reconcile', 'reconcile', 'reconcile'])
    await sync.close()
  })

  it('reconcile() at start brings the driver to the restored state', async () => {
    const rm = createResourceManager(validatePolicy({ vns: [{ vni: 5000 }] }), VidPool.parse('100-199'))
    rm.request(req({ vsi: 1, entries: [{ groupId: 5000 }] }), 0)
    const rm2 = createResourceManager(validatePolicy({ vns: [{ vni: 5000 }] }), VidPool.parse('100-199'))
    rm2.importSnapshot(rm.exportSnapshot())
    const { driver, inner } = flaky()
    const sync = createDataplaneSync(rm2, driver)
    const r = await sync.reconcile()
    expect(r?.created).toHaveLength(2)
    expect(inner.state()).toEqual(rm.dataplaneState())
    await sync.close()
  })

  it('reports each successful commit with its op count and the time from flush() to the commit', async () => {
    const rm = createResourceManager(validatePolicy({ vns: [{ vni: 5000 }] }), VidPool.parse('100-199'))
    const { driver, state } = flaky()
    let nowS = 10
    const commits: Array<[number, number]> = []
    const sync = createDataplaneSync(rm, driver, { nowS: () => nowS, onCommit: (ops, s) => commits.push([ops, s]) })
    rm.request(req({ vsi: 1, entries: [{ groupId: 5000 }] }), 0)
    const done = sync.flush()
    nowS = 10.002 // the driver's commit takes 2 ms
    await done
    expect(commits).toEqual([[2, expect.closeTo(0.002, 9)]]) // VLAN with its VNI, member
    state.down = true
    rm.request(req({ vsi: 2, port: 'Ethernet4', entries: [{ groupId: 5000 }] }), 0)
    await sync.flush()
    expect(commits).toHaveLength(1) // a failed apply is not a commit
    await sync.close()
  })
})
