/**
 * Linux driver against a model of a NOS kernel with bridge VLAN filtering (this machine's
 * kernel has none, see test/integration/dataplane-linux.test.ts): the exact iproute2 batches
 * for both VXLAN layouts, failure mapping, ownership and reconciliation. The outcomes on a
 * real VLAN-filtering kernel are checked in test/integration/dataplane-linux-vm.test.ts.
 */
import { describe, expect, it } from 'vitest'
import { DataplaneError } from '../../../agent/dataplane/driver.ts'
import { openLinuxDriver, parseBatchErrors } from '../../../agent/dataplane/linux.ts'
import { OwnershipRecord } from '../../../agent/dataplane/ownership.ts'
import { portName } from '../../../shared/ids.ts'
import { FakeNosKernel } from './fake-nos-kernel.ts'

const p = portName
const addOps = [
  { op: 'vlan-add' as const, vid: 100, vni: 5000 },
  { op: 'member-add' as const, vid: 100, port: p('swp1') },
  { op: 'member-add' as const, vid: 100, port: p('swp2') },
]

describe('openLinuxDriver() on a VLAN-filtering NOS kernel (model)', () => {
  it('single VXLAN device: emits exactly these bridge batches', async () => {
    const k = new FakeNosKernel('br0', ['swp1', 'swp2', 'vxlan0'])
    const own = OwnershipRecord.inMemory('linux')
    const dp = await openLinuxDriver({ bridge: 'br0', vxlan: { mode: 'single', device: 'vxlan0' }, ownership: own, runner: k, netns: 'lab' })
    await dp.apply(addOps)
    expect(k.batches('ip')).toEqual([])
    expect(k.batches('bridge')).toEqual([
      'vlan add dev vxlan0 vid 100\nvlan add dev vxlan0 vid 100 tunnel_info id 5000\nvlan add dev swp1 vid 100\nvlan add dev swp2 vid 100\n',
    ])
    expect(k.calls.at(-1)!.argv).toEqual(['bridge', '-n', 'lab', '-force', '-batch', '-'])
    expect(own.items()).toEqual(['member|swp1|100', 'member|swp2|100', 'vxvid|vxlan0|100|5000'])
    await dp.apply([
      { op: 'member-del', vid: 100, port: p('swp1') },
      { op: 'member-del', vid: 100, port: p('swp2') },
      { op: 'vlan-del', vid: 100, vni: 5000 },
    ])
    expect(k.batches('bridge')[1]).toBe(
      'vlan del dev swp1 vid 100\nvlan del dev swp2 vid 100\nvlan del dev vxlan0 vid 100 tunnel_info id 5000\nvlan del dev vxlan0 vid 100\n',
    )
    expect(own.items()).toEqual([])
    expect([...k.tunnels]).toEqual([])
  })

  it('one VXLAN device per VNI: ip batch creates and enslaves it, bridge batch sets VIDs', async () => {
    const k = new FakeNosKernel('br0', ['swp1', 'swp2'])
    const own = OwnershipRecord.inMemory('linux')
    const dp = await openLinuxDriver({ bridge: 'br0', vxlan: { mode: 'per-vni', local: '10.0.0.1' }, ownership: own, runner: k })
    await dp.apply(addOps)
    expect(k.batches('ip')).toEqual([
      'link add vxlan5000 type vxlan id 5000 local 10.0.0.1 dstport 4789 nolearning\nlink set vxlan5000 master br0\nlink set vxlan5000 up\n',
    ])
    expect(k.batches('bridge')).toEqual([
      'vlan add dev vxlan5000 vid 100 pvid untagged\nvlan del dev vxlan5000 vid 1\nvlan add dev swp1 vid 100\nvlan add dev swp2 vid 100\n',
    ])
    expect(k.calls[k.calls.length - 1]!.argv).toEqual(['bridge', '-force', '-batch', '-'])
    await dp.apply([{ op: 'member-del', vid: 100, port: p('swp1') }, { op: 'member-del', vid: 100, port: p('swp2') }, { op: 'vlan-del', vid: 100, vni: 5000 }])
    expect(k.batches('bridge')[1]).toBe('vlan del dev swp1 vid 100\nvlan del dev swp2 vid 100\n')
    expect(k.batches('ip')[1]).toBe('link del vxlan5000\n')
    expect(own.items()).toEqual([])
    expect(k.links.has('vxlan5000')).toBe(false)
  })

  it('maps "Command failed -:N" back to items, keeps the successes, and throws command-failed', async () => {
    const k = new FakeNosKernel('br0', ['swp1'])
    const own = OwnershipRecord.inMemory('linux')
    const dp = await openLinuxDriver({ bridge: 'br0', vxlan: { mode: 'none' }, ownership: own, runner: k })
    const err = await dp.apply([
      { op: 'vlan-add', vid: 100 },
      { op: 'member-add', vid: 100, port: p('swp1') },
      { op: 'member-add', vid: 100, port: p('swp9') },
    ]).catch((e) => e)
    expect(err).toBeInstanceOf(DataplaneError)
    expect(err.code).toBe('command-failed')
    expect(err.failures).toEqual([{ item: 'member|swp9|100', error: 'vlan add dev swp9 vid 100: Cannot find device "swp9"' }])
    expect(own.items()).toEqual(['member|swp1|100'])
  })

  it('does not delete what it does not own', async () => {
    const k = new FakeNosKernel('br0', ['swp1'])
    k.vlans.set('swp1|200', [])
    const dp = await openLinuxDriver({ bridge: 'br0', vxlan: { mode: 'none' }, ownership: OwnershipRecord.inMemory('linux'), runner: k })
    await dp.apply([{ op: 'member-del', vid: 200, port: p('swp1') }, { op: 'vlan-del', vid: 200 }])
    expect(k.batches('bridge')).toEqual([])
    expect(k.vlans.has('swp1|200')).toBe(true)
  })

  it('apply() leaves a membership the operator already has as it is and reports it foreign', async () => {
    const k = new FakeNosKernel('br0', ['swp1', 'vxlan0'])
    k.vlans.set('swp1|300', ['PVID', 'Egress Untagged']) // the operator's
    const own = OwnershipRecord.inMemory('linux')
    const dp = await openLinuxDriver({ bridge: 'br0', vxlan: { mode: 'single', device: 'vxlan0' }, ownership: own, runner: k })
    const r = await dp.apply([{ op: 'vlan-add', vid: 300, vni: 6000 }, { op: 'member-add', vid: 300, port: p('swp1') }])
    expect(r).toEqual({ changed: ['vxvid|vxlan0|300|6000'], foreign: ['member|swp1|300'], conflicts: [] })
    // A second `bridge vlan add dev swp1 vid 300` would have cleared PVID and untagged.
    expect(k.batches('bridge')).toEqual(['vlan add dev vxlan0 vid 300\nvlan add dev vxlan0 vid 300 tunnel_info id 6000\n'])
    expect(k.vlans.get('swp1|300')).toEqual(['PVID', 'Egress Untagged'])
    // Owned and already there: not written again. Released in the same batch: re-added.
    await dp.apply([{ op: 'member-add', vid: 300, port: p('swp1') }, { op: 'vlan-add', vid: 300, vni: 6000 }])
    expect(k.batches('bridge')).toHaveLength(1)
    await dp.apply([{ op: 'vlan-del', vid: 300, vni: 6000 }, { op: 'vlan-add', vid: 300, vni: 6000 }])
    expect(k.batches('bridge').slice(1)).toEqual([
      'vlan del dev vxlan0 vid 300 tunnel_info id 6000\nvlan del dev vxlan0 vid 300\n',
      'vlan add dev vxlan0 vid 300\nvlan add dev vxlan0 vid 300 tunnel_info id 6000\n',
    ])
    expect(own.items()).toEqual(['vxvid|vxlan0|300|6000'])
  })

  it('apply() deletes a per-VNI device again when a later step of its creation fails, and skips its VID steps', async () => {
    const k = new FakeNosKernel('br0', ['swp1'])
    // The real kernel's answer when another VXLAN socket holds the UDP port (arm64 VM test).
    k.refuse.set('link set vxlan5000 up', 'RTNETLINK answers: Address already in use')
    k.links.set('vxlan5001', { ifname: 'vxlan5001', kind: 'port' }) // the operator's, same name
    const own = OwnershipRecord.inMemory('linux')
    const dp = await openLinuxDriver({ bridge: 'br0', vxlan: { mode: 'per-vni', local: '10.0.0.1' }, ownership: own, runner: k })
    const err = (await dp.apply([{ op: 'vlan-add', vid: 100, vni: 5000 }, { op: 'vlan-add', vid: 101, vni: 5001 }]).catch((e: unknown) => e)) as DataplaneError
    expect(err.failures).toEqual([
      { item: 'vxdev|vxlan5000|5000', error: 'link set vxlan5000 up: RTNETLINK answers: Address already in use' },
      { item: 'vxvid|vxlan5000|100|5000', error: 'not run: device vxlan5000 was not created (link set vxlan5000 up: RTNETLINK answers: Address already in use)' },
      { item: 'vxdev|vxlan5001|5001', error: 'link add vxlan5001 type vxlan id 5001 local 10.0.0.1 dstport 4789 nolearning: RTNETLINK answers: File exists' },
      { item: 'vxvid|vxlan5001|101|5001', error: 'not run: device vxlan5001 was not created (link add vxlan5001 type vxlan id 5001 local 10.0.0.1 dstport 4789 nolearning: RTNETLINK answers: File exists)' },
    ])
    // Only the device this batch created is deleted; the operator's is not touched.
    expect(k.batches('ip').at(-1)).toBe('link del vxlan5000\n')
    expect(k.batches('bridge')).toEqual([])
    expect([k.links.has('vxlan5000'), k.links.has('vxlan5001')]).toEqual([false, true])
    expect(own.items()).toEqual([])
  })

  it('apply() and reconcile() report a VID or VNI the operator already maps on the VXLAN device as a conflict', async () => {
    const k = new FakeNosKernel('br0', ['swp1', 'vxlan0'])
    k.vlans.set('vxlan0|555', [])
    k.tunnels.set('vxlan0|555', 9555) // the operator's
    k.vlans.set('vxlan0|556', []) // the operator's, no map
    const own = OwnershipRecord.inMemory('linux')
    const dp = await openLinuxDriver({ bridge: 'br0', vxlan: { mode: 'single', device: 'vxlan0' }, ownership: own, runner: k })
    const r = await dp.apply([
      { op: 'vlan-add', vid: 555, vni: 6555 },
      { op: 'vlan-add', vid: 130, vni: 9555 },
      { op: 'vlan-add', vid: 556, vni: 6556 },
    ])
    expect(r.conflicts).toEqual([
      'vxvid|vxlan0|555|6555 <- vxlan0 vid 555 tunnel_info id 9555',
      'vxvid|vxlan0|130|9555 <- vxlan0 vid 555 tunnel_info id 9555',
      'vxvid|vxlan0|556|6556 <- vxlan0 vid 556',
    ])
    const rec = await dp.reconcile({ vlans: [{ vid: 555, vni: 6555 }], members: [] })
    expect(rec.conflicts).toEqual(['vxvid|vxlan0|555|6555 <- vxlan0 vid 555 tunnel_info id 9555'])
    expect(k.batches('bridge')).toEqual([])
    expect(own.items()).toEqual([])
  })

  it('apply() deletes a VID again when the kernel refuses its tunnel_info', async () => {
    const k = new FakeNosKernel('br0', ['vxlan0'])
    // The real kernel's answer when the port has vlan_tunnel off (arm64 VM test).
    k.refuse.set('vlan add dev vxlan0 vid 140 tunnel_info id 5140', 'RTNETLINK answers: Invalid argument')
    const own = OwnershipRecord.inMemory('linux')
    const dp = await openLinuxDriver({ bridge: 'br0', vxlan: { mode: 'single', device: 'vxlan0' }, ownership: own, runner: k })
    const err = (await dp.apply([{ op: 'vlan-add', vid: 140, vni: 5140 }]).catch((e: unknown) => e)) as DataplaneError
    expect(err.failures).toEqual([{ item: 'vxvid|vxlan0|140|5140', error: 'vlan add dev vxlan0 vid 140 tunnel_info id 5140: RTNETLINK answers: Invalid argument' }])
    expect(k.batches('bridge')).toEqual(['vlan add dev vxlan0 vid 140\nvlan add dev vxlan0 vid 140 tunnel_info id 5140\n', 'vlan del dev vxlan0 vid 140\n'])
    expect(k.vlans.has('vxlan0|140')).toBe(false)
    expect(own.items()).toEqual([])
  })

  it('reconcile(): creates missing, deletes stale owned, leaves right and foreign items alone', async () => {
    const k = new FakeNosKernel('br0', ['swp1', 'swp2', 'vxlan0'])
    const own = OwnershipRecord.inMemory('linux', '', ['member|swp2|300', 'member|swp2|301', 'vxvid|vxlan0|100|5000'])
    k.vlans.set('vxlan0|100', [])
    k.tunnels.set('vxlan0|100', 5000)
    k.vlans.set('swp2|300', []) // ours and stale
    k.vlans.set('swp1|100', []) // the operator's
    const dp = await openLinuxDriver({ bridge: 'br0', vxlan: { mode: 'single', device: 'vxlan0' }, ownership: own, runner: k })
    const r = await dp.reconcile({ vlans: [{ vid: 100, vni: 5000 }], members: [{ vid: 100, port: p('swp1') }, { vid: 100, port: p('swp2') }] })
    expect(r).toEqual({
      created: ['member|swp2|100'],
      deleted: ['member|swp2|300'],
      repaired: [],
      unchanged: ['vxvid|vxlan0|100|5000'],
      foreign: ['member|swp1|100'],
      forgotten: ['member|swp2|301'],
      conflicts: [],
    })
    expect(k.batches('bridge')).toEqual(['vlan del dev swp2 vid 300\n', 'vlan add dev swp2 vid 100\n'])
    expect(own.items()).toEqual(['member|swp2|100', 'vxvid|vxlan0|100|5000'])
    const again = await dp.reconcile({ vlans: [{ vid: 100, vni: 5000 }], members: [{ vid: 100, port: p('swp1') }, { vid: 100, port: p('swp2') }] })
    expect([again.created, again.deleted]).toEqual([[], []])
    expect(k.batches('bridge')).toHaveLength(2)
  })

  it('refuses a bridge without vlan_filtering, a missing bridge and bad names', async () => {
    const codeOf = (p: Promise<unknown>) => p.then(() => 'ok', (e: DataplaneError) => e.code)
    const own = OwnershipRecord.inMemory('linux')
    expect(await codeOf(openLinuxDriver({ bridge: 'br0', vxlan: { mode: 'none' }, ownership: own, runner: new FakeNosKernel('br0', [], 0) }))).toBe('bad-config')
    expect(await codeOf(openLinuxDriver({ bridge: 'br9', vxlan: { mode: 'none' }, ownership: own, runner: new FakeNosKernel() }))).toBe('bad-config')
    expect(await codeOf(openLinuxDriver({ bridge: 'br0; reboot', vxlan: { mode: 'none' }, ownership: own, runner: new FakeNosKernel() }))).toBe('bad-config')
    expect(await codeOf(openLinuxDriver({ bridge: 'br0', vxlan: { mode: 'per-vni', local: 'x y' }, ownership: own, runner: new FakeNosKernel() }))).toBe('bad-config')
  })
})

describe('parseBatchErrors()', () => {
  it('pairs each failed line with the words before it', () => {
    expect(parseBatchErrors('RTNETLINK answers: Operation not supported\nCommand failed -:1\nError: Unknown device type.\nCommand failed -:3\n')).toEqual(
      new Map([
        [1, 'RTNETLINK answers: Operation not supported'],
        [3, 'Error: Unknown device type.'],
      ]),
    )
  })
})

describe('openLinuxDriver() per-VNI reconcile (model)', () => {
  it('re-creates a missing device, keeps a present one, deletes a stale one', async () => {
    const k = new FakeNosKernel('br0', ['swp1'])
    const own = OwnershipRecord.inMemory('linux')
    const dp = await openLinuxDriver({ bridge: 'br0', vxlan: { mode: 'per-vni', local: '10.0.0.1', prefix: 'vx' }, ownership: own, runner: k })
    await dp.apply([{ op: 'vlan-add', vid: 100, vni: 5000 }, { op: 'vlan-add', vid: 101, vni: 5001 }])
    k.links.delete('vx5001') // someone deleted it
    for (const key of [...k.vlans.keys()]) if (key.startsWith('vx5001|')) k.vlans.delete(key)
    const before = k.calls.length
    const r = await dp.reconcile({ vlans: [{ vid: 101, vni: 5001 }, { vid: 102, vni: 5002 }], members: [] })
    expect(r.created).toEqual(['vxdev|vx5001|5001', 'vxvid|vx5001|101|5001', 'vxdev|vx5002|5002', 'vxvid|vx5002|102|5002'])
    // The device's VID goes with the device: one `ip link del`, no bridge command.
    expect(r.deleted).toEqual(['vxdev|vx5000|5000', 'vxvid|vx5000|100|5000'])
    expect(r.forgotten).toEqual([])
    expect(k.calls.slice(before).filter((c) => c.argv.includes('-batch')).map((c) => [c.argv[0], c.stdin])).toEqual([
      ['ip', 'link del vx5000\n'],
      ['ip', 'link add vx5001 type vxlan id 5001 local 10.0.0.1 dstport 4789 nolearning\nlink set vx5001 master br0\nlink set vx5001 up\n' +
        'link add vx5002 type vxlan id 5002 local 10.0.0.1 dstport 4789 nolearning\nlink set vx5002 master br0\nlink set vx5002 up\n'],
      ['bridge', 'vlan add dev vx5001 vid 101 pvid untagged\nvlan del dev vx5001 vid 1\nvlan add dev vx5002 vid 102 pvid untagged\nvlan del dev vx5002 vid 1\n'],
    ])
    expect(own.items()).toEqual(['vxdev|vx5001|5001', 'vxdev|vx5002|5002', 'vxvid|vx5001|101|5001', 'vxvid|vx5002|102|5002'])
  })
})
