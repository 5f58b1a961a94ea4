/**
 * Linux driver on this machine's real kernel, inside a network namespace created for the test
 * (`dataplane-linux-<pid>`, deleted afterwards). What runs for real: the bridge check (JSON
 * from `ip -d -j link show`), VXLAN device creation / enslaving / deletion by `ip -force
 * -batch -`, reading `bridge -j vlan show` / `tunnelshow`, `-force` failure mapping with the
 * kernel's own error text, ownership, foreign devices, and a missing iproute2 binary.
 *
 * This kernel has no bridge VLAN filtering (CONFIG_BRIDGE_VLAN_FILTERING off) and no 802.1Q
 * devices: `bridge vlan add` answers "Operation not supported". The test probes that first
 * and asserts whichever behaviour the kernel has; on this machine that means VID membership
 * and tunnel_info are checked as failures here, and their exact batches are checked against
 * a model in test/agent/dataplane/linux.test.ts. Their outcome on a kernel with VLAN filtering
 * is checked in an emulated arm64 machine: dataplane-linux-vm.test.ts.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { execFileSync } from 'node:child_process'
import { DataplaneError } from '../../agent/dataplane/driver.ts'
import { openLinuxDriver, spawnRunner } from '../../agent/dataplane/linux.ts'
import { OwnershipRecord } from '../../agent/dataplane/ownership.ts'
import { portName } from '../../shared/ids.ts'

const NS = `dataplane-linux-${process.pid}`
const ip = (...args: string[]) => execFileSync('ip', ['-n', NS, ...args], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] })
const tryIp = (...args: string[]): boolean => {
  try {
    ip(...args)
    return true
  } catch {
    return false
  }
}
const links = (): Array<{ ifname: string; master?: string; operstate?: string; flags: string[]; linkinfo?: { info_kind?: string; info_data?: Record<string, unknown> } }> =>
  JSON.parse(ip('-d', '-j', 'link', 'show'))
const link = (name: string) => links().find((l) => l.ifname === name)

let kernelFiltersVlans = false

beforeAll(() => {
  if (process.getuid?.() !== 0) throw new Error('Cannot run the Linux data-plane test: it needs root (network namespaces)')
  execFileSync('ip', ['netns', 'add', NS])
  ip('link', 'set', 'lo', 'up')
  kernelFiltersVlans = tryIp('link', 'add', 'probe0', 'type', 'bridge', 'vlan_filtering', '1')
  if (kernelFiltersVlans) ip('link', 'del', 'probe0')
  ip('link', 'add', 'br0', 'type', 'bridge')
  if (kernelFiltersVlans) ip('link', 'set', 'br0', 'type', 'bridge', 'vlan_filtering', '1')
  ip('link', 'add', 'swp1', 'type', 'veth', 'peer', 'name', 'host1')
  ip('link', 'set', 'swp1', 'master', 'br0')
  ip('link', 'set', 'br0', 'up')
})

afterAll(() => {
  execFileSync('ip', ['netns', 'del', NS])
})

describe('Linux driver in a network namespace', () => {
  it('probes the kernel: without VLAN filtering, bridge vlan add fails with EOPNOTSUPP', () => {
    let error = ''
    try {
      execFileSync('bridge', ['-n', NS, 'vlan', 'add', 'dev', 'swp1', 'vid', '100'], { stdio: ['ignore', 'pipe', 'pipe'] })
    } catch (e) {
      error = String((e as { stderr?: Buffer }).stderr)
    }
    if (kernelFiltersVlans) expect(error).toBe('')
    else expect(error).toContain('Operation not supported')
  })

  it('checks the bridge for real: vlan_filtering off is refused unless allowed', async () => {
    const own = OwnershipRecord.inMemory('linux')
    const open = openLinuxDriver({ bridge: 'br0', vxlan: { mode: 'none' }, ownership: own, netns: NS })
    if (kernelFiltersVlans) await expect(open).resolves.toBeDefined()
    else await expect(open).rejects.toMatchObject({ code: 'bad-config' })
    await expect(openLinuxDriver({ bridge: 'nosuchbr', vxlan: { mode: 'none' }, ownership: own, netns: NS })).rejects.toMatchObject({ code: 'bad-config' })
    await expect(openLinuxDriver({ bridge: 'swp1', vxlan: { mode: 'none' }, ownership: own, netns: NS, requireVlanFiltering: false })).rejects.toMatchObject({ code: 'bad-config' })
  })

  it('per-VNI layout: creates, enslaves and deletes the VXLAN device for real; VID commands as the kernel allows', async () => {
    const own = OwnershipRecord.inMemory('linux')
    const dp = await openLinuxDriver({
      bridge: 'br0',
      vxlan: { mode: 'per-vni', local: '127.0.0.1', dstport: 4789 },
      ownership: own,
      netns: NS,
      requireVlanFiltering: false,
    })
    const ops = [
      { op: 'vlan-add' as const, vid: 100, vni: 5000 },
      { op: 'member-add' as const, vid: 100, port: portName('swp1') },
    ]
    const err = await dp.apply(ops).catch((e: unknown) => e)
    const vx = link('vxlan5000')
    expect(vx?.linkinfo?.info_kind).toBe('vxlan')
    expect(vx?.linkinfo?.info_data).toMatchObject({ id: 5000, local: '127.0.0.1', port: 4789, learning: false })
    expect(vx?.master).toBe('br0')
    expect(vx?.flags).toContain('UP')
    if (kernelFiltersVlans) {
      expect(err).toBeUndefined()
      expect(own.items()).toEqual(['member|swp1|100', 'vxdev|vxlan5000|5000', 'vxvid|vxlan5000|100|5000'])
    } else {
      expect(err).toBeInstanceOf(DataplaneError)
      expect((err as DataplaneError).code).toBe('command-failed')
      expect((err as DataplaneError).failures).toEqual([
        { item: 'vxvid|vxlan5000|100|5000', error: 'vlan add dev vxlan5000 vid 100 pvid untagged: RTNETLINK answers: Operation not supported' },
        { item: 'member|swp1|100', error: 'vlan add dev swp1 vid 100: RTNETLINK answers: Operation not supported' },
      ])
      // Only what was really created is owned.
      expect(own.items()).toEqual(['vxdev|vxlan5000|5000'])
    }

    // Reconcile reads the real kernel: the device is there and owned, so it is not re-created.
    const desired = { vlans: [{ vid: 100, vni: 5000 }], members: [{ vid: 100, port: portName('swp1') }] }
    const ifindex = JSON.parse(ip('-j', 'link', 'show', 'dev', 'vxlan5000'))[0].ifindex
    const r = await dp.reconcile(desired).catch((e: DataplaneError) => e)
    if (kernelFiltersVlans) expect(r).toMatchObject({ created: [], unchanged: ['vxdev|vxlan5000|5000', 'vxvid|vxlan5000|100|5000', 'member|swp1|100'] })
    else expect((r as DataplaneError).failures.map((f) => f.item)).toEqual(['vxvid|vxlan5000|100|5000', 'member|swp1|100'])
    expect(JSON.parse(ip('-j', 'link', 'show', 'dev', 'vxlan5000'))[0].ifindex).toBe(ifindex)

    // Nothing desired: the owned device is deleted for real.
    const gone = await dp.reconcile({ vlans: [], members: [] })
    expect(gone.deleted).toContain('vxdev|vxlan5000|5000')
    expect(link('vxlan5000')).toBeUndefined()
    expect(own.items()).toEqual([])
  })

  it('-force batches run past a failing line; the kernel error lands on the right item', async () => {
    ip('link', 'add', 'vxlan7000', 'type', 'veth', 'peer', 'name', 'other7000') // the operator's, same name
    const own = OwnershipRecord.inMemory('linux')
    const dp = await openLinuxDriver({ bridge: 'br0', vxlan: { mode: 'per-vni', local: '127.0.0.1' }, ownership: own, netns: NS, requireVlanFiltering: false })
    const err = (await dp.apply([{ op: 'vlan-add', vid: 300, vni: 7000 }, { op: 'vlan-add', vid: 301, vni: 7001 }]).catch((e) => e)) as DataplaneError
    expect(err.code).toBe('command-failed')
    expect(err.failures[0]).toEqual({
      item: 'vxdev|vxlan7000|7000',
      error: 'link add vxlan7000 type vxlan id 7000 local 127.0.0.1 dstport 4789 nolearning: RTNETLINK answers: File exists',
    })
    // The line after the failure still ran.
    expect(link('vxlan7001')?.master).toBe('br0')
    expect(own.has('vxdev|vxlan7001|7001')).toBe(true)
    expect(own.has('vxdev|vxlan7000|7000')).toBe(false)
    // The operator's interface is foreign: reconciling it away does not touch it.
    const r = await dp.reconcile({ vlans: [], members: [] })
    expect(r.deleted).toEqual(['vxdev|vxlan7001|7001'])
    expect(link('vxlan7000')).toBeDefined()
    expect(link('vxlan7001')).toBeUndefined()
  })

  it('leaves a VXLAN device the operator created for the same VNI alone', async () => {
    ip('link', 'add', 'vxlan8000', 'type', 'vxlan', 'id', '8000', 'dstport', '4789', 'local', '127.0.0.1', 'nolearning')
    ip('link', 'set', 'vxlan8000', 'master', 'br0')
    const own = OwnershipRecord.inMemory('linux')
    const dp = await openLinuxDriver({ bridge: 'br0', vxlan: { mode: 'per-vni', local: '127.0.0.1' }, ownership: own, netns: NS, requireVlanFiltering: false })
    const r = await dp.reconcile({ vlans: [{ vid: 400, vni: 8000 }], members: [] }).catch((e: DataplaneError) => e)
    if (!kernelFiltersVlans) expect((r as DataplaneError).failures.map((f) => f.item)).toEqual(['vxvid|vxlan8000|400|8000'])
    expect(own.has('vxdev|vxlan8000|8000')).toBe(false)
    await dp.reconcile({ vlans: [], members: [] })
    expect(link('vxlan8000')?.linkinfo?.info_kind).toBe('vxlan')
  })

  it('single-device layout: the external VXLAN device takes vlan_tunnel; VID/tunnel commands as the kernel allows', async () => {
    ip('link', 'add', 'vxlan0', 'type', 'vxlan', 'external', 'dstport', '4790', 'local', '127.0.0.1', 'nolearning')
    ip('link', 'set', 'vxlan0', 'master', 'br0')
    ip('link', 'set', 'vxlan0', 'type', 'bridge_slave', 'vlan_tunnel', 'on')
    const own = OwnershipRecord.inMemory('linux')
    const dp = await openLinuxDriver({ bridge: 'br0', vxlan: { mode: 'single', device: 'vxlan0' }, ownership: own, netns: NS, requireVlanFiltering: false })
    const err = await dp.apply([{ op: 'vlan-add', vid: 100, vni: 5000 }]).catch((e: unknown) => e)
    const tunnels = JSON.parse(execFileSync('bridge', ['-n', NS, '-j', 'vlan', 'tunnelshow'], { encoding: 'utf8' }) || '[]')
    if (kernelFiltersVlans) {
      expect(err).toBeUndefined()
      expect(tunnels).toEqual([{ ifname: 'vxlan0', tunnels: [{ vlan: 100, tunid: 5000 }] }])
    } else {
      expect((err as DataplaneError).failures).toEqual([
        { item: 'vxvid|vxlan0|100|5000', error: 'vlan add dev vxlan0 vid 100: RTNETLINK answers: Operation not supported' },
      ])
      expect(tunnels).toEqual([])
      expect(own.items()).toEqual([])
    }
  })

  it('reports a missing iproute2 as unavailable', async () => {
    const e = await openLinuxDriver({ bridge: 'br0', vxlan: { mode: 'none' }, ownership: OwnershipRecord.inMemory('linux'), ipPath: '/nonexistent/ip' }).catch((x) => x)
    expect(e).toBeInstanceOf(DataplaneError)
    expect(e.code).toBe('bad-config')
    expect(e.message).toMatch(/Cannot run \/nonexistent\/ip/)
    const r = await spawnRunner.run(['/nonexistent/ip']).catch((x: DataplaneError) => x.code)
    expect(r).toBe('unavailable')
  })
})
