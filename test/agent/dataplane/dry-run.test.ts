import { describe, expect, it } from 'vitest'
import { createDryRunDriver } from '../../../agent/dataplane/dry-run.ts'
import { portName } from '../../../shared/ids.ts'

describe('createDryRunDriver()', () => {
  it('logs and records ops, and reconciles by diff', async () => {
    const lines: string[] = []
    const logger = { debug() {}, info: (m: string) => void lines.push(m), warn() {} }
    const dp = createDryRunDriver({ logger })
    await dp.apply([{ op: 'vlan-add', vid: 100, vni: 5000 }, { op: 'member-add', vid: 100, port: portName('Ethernet0') }])
    expect(lines).toEqual(['dry-run: add VLAN 100 mapped to VNI 5000', 'dry-run: add Ethernet0 to VLAN 100 (tagged)'])
    const r = await dp.reconcile({ vlans: [{ vid: 200 }], members: [] })
    expect(r.created).toEqual(['add VLAN 200'])
    expect(r.deleted).toEqual(['remove Ethernet0 from VLAN 100', 'delete VLAN 100 and its map to VNI 5000'])
    expect(dp.state()).toEqual({ vlans: [{ vid: 200 }], members: [] })
    expect(dp.ops).toHaveLength(5)
  })
})

describe('vsiStateRowOf()', () => {
  it('turns a held VSI into a STATE_DB row', async () => {
    const { vsiStateRowOf } = await import('../../../agent/dataplane/driver.ts')
    const { createResourceManager } = await import('../../../agent/resources/resource-manager.ts')
    const { defaultPolicy } = await import('../../../agent/resources/policy.ts')
    const { VidPool } = await import('../../../agent/resources/vid-pool.ts')
    const { req } = await import('../resources/requests.ts')
    const rm = createResourceManager(defaultPolicy, VidPool.parse('100-199'))
    rm.request(req({ vsi: 1, mode: 'pre-associate-rr', entries: [{ groupId: 5000 }] }), 0)
    const row = vsiStateRowOf(rm.heldVsis()[0]!, 1234)
    expect(row).toMatchObject({ port: 'Ethernet0', state: 'pre-associated-rr', entries: [{ vid: 100, vni: 5000, mac: '02:00:00:00:01:00' }], typeId: 1, updatedMs: 1234 })
  })
})
