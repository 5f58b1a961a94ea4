/**
 * The Linux data-plane driver (agent/dataplane/linux.ts) on a real kernel with bridge VLAN
 * filtering and VXLAN: Debian 12's arm64 kernel 6.1 and iproute2 6.1 in an emulated arm64
 * machine (qemu-system-aarch64, test/support/arm64-vm.ts; the development kernel has neither
 * VLAN filtering nor 802.1Q, see dataplane-linux.test.ts). The driver runs in the guest,
 * bundled with esbuild for its Node.js 18 (test/support/ns-child-dataplane-linux.ts); the ops
 * come from the resource manager on the host; every outcome is checked with the guest
 * kernel's own `bridge -j vlan show` and `bridge -j vlan tunnelshow`.
 *
 * Guest lab (built by the test through the child, gone with the VM):
 * - br0 (`vlan_filtering 1`): swp1 and swp5 (veths whose peers host1 and host5 sit in
 *   namespaces h1 and h5 with an 802.1Q device in VID 150 each, 192.0.2.1 and .5), swp2
 *   (dummy), vxlan0 (`external`, `vlan_tunnel on`) for the `single` layout; the operator's
 *   own VLANs: swp1 VID 555 tagged, swp2 VID 300 PVID untagged, vxlan0 VID 555 mapped to
 *   VNI 9555;
 * - br1 (`vlan_filtering 1`): swp3 (veth), swp4 (dummy) for the `per-vni` layout.
 *
 * Root, qemu-system-aarch64 and the sysroot (firmware-scripts/arm64-sysroot.sh) are required:
 * without them the tests fail, they do not skip. The VM runs without a NIC, so the host gets
 * no namespace or tap device.
 */
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { build } from 'esbuild'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { ApplyReport, ReconcileReport } from '../../agent/dataplane/driver.ts'
import { diffDataplane, emptyDataplaneState, type DataplaneOp, type DataplaneState } from '../../agent/resources/dataplane-ops.ts'
import { validatePolicy } from '../../agent/resources/policy.ts'
import { createResourceManager } from '../../agent/resources/resource-manager.ts'
import { VidPool } from '../../agent/resources/vid-pool.ts'
import { portName } from '../../shared/ids.ts'
import { rel, req } from '../agent/resources/requests.ts'
import { buildArm64Initrd, prepareArm64Sysroot, startArm64Vm, stopArm64Vm, type Arm64Sysroot } from '../support/arm64-vm.ts'
import { requireRoot, type NsChild } from '../support/netns.ts'

const CHILD = join(dirname(fileURLToPath(import.meta.url)), '..', 'support', 'ns-child-dataplane-linux.ts')
const REQUEST_TIMEOUT_MS = 60_000

interface RunResult {
  code: number
  stdout: string
  stderr: string
}
interface DriverAnswer<T> {
  report?: T
  error?: { code: string; message: string; failures: Array<{ item: string; error: string }> }
  ms: number
}

let vm: NsChild | undefined
let sysroot: Arm64Sysroot
let work: string | undefined
const timings: string[] = []

/** Runs a program in the guest; throws with its stderr unless `allowFailure`. */
async function guest(argv: string[], allowFailure = false): Promise<RunResult> {
  const r = await vm!.request<RunResult>('run', { argv }, REQUEST_TIMEOUT_MS)
  if (r.code !== 0 && !allowFailure) throw new Error(`Cannot run "${argv.join(' ')}" in the arm64 VM: exit ${r.code}: ${r.stderr.trim()}`)
  return r
}
const ip = (...args: string[]) => guest(['ip', ...args])
const bridgeCmd = (...args: string[]) => guest(['bridge', ...args])

/** `bridge -j vlan show`, ranges expanded: ifname -> ["1 PVID Egress Untagged", "100", …]. */
async function kernelVlans(): Promise<Record<string, string[]>> {
  const rows = JSON.parse((await bridgeCmd('-j', 'vlan', 'show')).stdout || '[]') as Array<{
    ifname: string
    vlans?: Array<{ vlan: number; vlanEnd?: number; flags?: string[] }>
  }>
  const out: Record<string, string[]> = {}
  for (const r of rows) {
    const list: string[] = []
    for (const v of r.vlans ?? []) {
      for (let vid = v.vlan; vid <= (v.vlanEnd ?? v.vlan); vid++) list.push([String(vid), ...(v.flags ?? [])].join(' '))
    }
    out[r.ifname] = list
  }
  return out
}

/** `bridge -j vlan tunnelshow`, ranges expanded: ifname -> ["100=5000", …]. */
async function kernelTunnels(): Promise<Record<string, string[]>> {
  const rows = JSON.parse((await bridgeCmd('-j', 'vlan', 'tunnelshow')).stdout || '[]') as Array<{
    ifname: string
    tunnels?: Array<{ vlan: number; vlanEnd?: number; tunid: number; tunidEnd?: number }>
  }>
  const out: Record<string, string[]> = {}
  for (const r of rows) {
    out[r.ifname] = (r.tunnels ?? []).flatMap((t) =>
      Array.from({ length: (t.vlanEnd ?? t.vlan) - t.vlan + 1 }, (_, i) => `${t.vlan + i}=${t.tunid + i}`),
    )
  }
  return out
}

async function open(options: Record<string, unknown>, ownershipPath: string): Promise<string[]> {
  const r = await vm!.request<{ owned: string[] }>('open', { options, ownershipPath }, REQUEST_TIMEOUT_MS)
  return r.owned
}

async function apply(what: string, ops: DataplaneOp[]): Promise<DriverAnswer<ApplyReport>> {
  const r = await vm!.request<DriverAnswer<ApplyReport>>('apply', { ops }, REQUEST_TIMEOUT_MS)
  timings.push(`${what}: ${ops.length} ops in ${r.ms} ms`)
  return r
}

async function reconcile(what: string, desired: DataplaneState): Promise<DriverAnswer<ReconcileReport>> {
  const r = await vm!.request<DriverAnswer<ReconcileReport>>('reconcile', { desired }, REQUEST_TIMEOUT_MS)
  timings.push(`${what}: reconcile in ${r.ms} ms`)
  return r
}

const owned = (): Promise<string[]> => vm!.request<string[]>('owned', {}, REQUEST_TIMEOUT_MS)

// The operator's own configuration, which no step may change.
// (swp2's PVID moved to 300: a port has one PVID, VID 1 keeps only Egress Untagged.)
const OPERATOR_VLANS = { swp1: ['555'], swp2: ['300 PVID Egress Untagged'], vxlan0: ['555'] }
const OPERATOR_TUNNELS = ['555=9555']

beforeAll(async () => {
  requireRoot('the Linux data-plane test in the arm64 VM')
  const t0 = performance.now()
  sysroot = await prepareArm64Sysroot()
  work = mkdtempSync(join(tmpdir(), 'dataplane-linux-vm-'))
  const child = join(work, 'dataplane-child.mjs')
  await build({ entryPoints: [CHILD], bundle: true, platform: 'node', format: 'esm', target: 'node18', outfile: child, logLevel: 'silent' })
  const initrd = await buildArm64Initrd(sysroot, work, {
    'dataplane-child.mjs': { from: child },
    run: 'exec /usr/bin/node /app/dataplane-child.mjs\n',
  })
  const t1 = performance.now()
  vm = await startArm64Vm({ sysroot, initrd })
  const bootMs = performance.now() - t1

  const missing: string[] = []
  for (const tool of [['ip', '-V'], ['bridge', '-V']]) if ((await guest(tool, true)).code !== 0) missing.push(tool[0]!)
  if (missing.length > 0) throw new Error(`Cannot test the Linux driver in the arm64 VM: ${missing.join(', ')} missing from the sysroot (${sysroot.dir})`)

  for (const br of ['br0', 'br1']) await ip('link', 'add', br, 'type', 'bridge', 'vlan_filtering', '1')
  await ip('link', 'add', 'swp1', 'type', 'veth', 'peer', 'name', 'host1')
  await ip('link', 'add', 'swp2', 'type', 'dummy')
  await ip('link', 'add', 'swp5', 'type', 'veth', 'peer', 'name', 'host5')
  await ip('link', 'add', 'swp3', 'type', 'veth', 'peer', 'name', 'host3')
  await ip('link', 'add', 'swp4', 'type', 'dummy')
  await ip('link', 'add', 'vxlan0', 'type', 'vxlan', 'external', 'dstport', '4789', 'local', '10.0.0.1', 'nolearning')
  for (const [port, br] of [['swp1', 'br0'], ['swp2', 'br0'], ['swp5', 'br0'], ['vxlan0', 'br0'], ['swp3', 'br1'], ['swp4', 'br1']] as const) {
    await ip('link', 'set', port, 'master', br)
    await ip('link', 'set', port, 'up')
  }
  await ip('link', 'set', 'vxlan0', 'type', 'bridge_slave', 'vlan_tunnel', 'on')
  for (const br of ['br0', 'br1']) await ip('link', 'set', br, 'up')
  // Two hosts behind swp1 and swp5, each with an 802.1Q device in VID 150 (`ip netns` needs
  // /run on a tmpfs: the initramfs root cannot be a shared mount).
  await guest(['mkdir', '-p', '/run'])
  await guest(['mount', '-t', 'tmpfs', 'tmpfs', '/run'])
  for (const [h, addr] of [['1', '192.0.2.1/24'], ['5', '192.0.2.5/24']] as const) {
    await ip('netns', 'add', `h${h}`)
    await ip('link', 'set', `host${h}`, 'netns', `h${h}`)
    await ip('-n', `h${h}`, 'link', 'add', 'link', `host${h}`, 'name', `host${h}.150`, 'type', 'vlan', 'id', '150')
    await ip('-n', `h${h}`, 'addr', 'add', addr, 'dev', `host${h}.150`)
    for (const dev of [`host${h}`, `host${h}.150`]) await ip('-n', `h${h}`, 'link', 'set', dev, 'up')
  }
  await bridgeCmd('vlan', 'add', 'dev', 'swp1', 'vid', '555')
  await bridgeCmd('vlan', 'add', 'dev', 'swp2', 'vid', '300', 'pvid', 'untagged')
  await bridgeCmd('vlan', 'add', 'dev', 'vxlan0', 'vid', '555')
  await bridgeCmd('vlan', 'add', 'dev', 'vxlan0', 'vid', '555', 'tunnel_info', 'id', '9555')
  const kernel = sysroot.versions.find((v) => v.startsWith('linux-image-')) ?? 'linux-image ?'
  const iproute = sysroot.versions.find((v) => v.startsWith('iproute2 ')) ?? 'iproute2 ?'
  console.info(
    `arm64 VM (${kernel}, ${iproute}): sysroot ready in ${Math.round(t1 - t0)} ms, booted to the child in ` +
      `${Math.round(bootMs)} ms, lab built in ${Math.round(performance.now() - t1 - bootMs)} ms`,
  )
})

afterAll(async () => {
  if (timings.length > 0) console.info(`arm64 VM driver calls: ${timings.join('; ')}`)
  if (vm) await stopArm64Vm(vm)
  if (work) rmSync(work, { recursive: true, force: true })
})

describe('Linux driver on a VLAN-filtering kernel (arm64 VM)', () => {
  const policy = validatePolicy({ vns: [{ vni: 5000, vsiTypes: 'any' }, { vni: 5001, vsiTypes: 'any' }, { vni: 6000, vid: 300, vsiTypes: 'any' }] })
  const RECORD = '/tmp/owned-br0.json'
  const rm = createResourceManager(policy, VidPool.parse('100-199'))
  const single = { bridge: 'br0', vxlan: { mode: 'single', device: 'vxlan0' } }

  it('has the lab as built: the operator\'s VLANs and tunnel map, nothing else', async () => {
    expect(await open(single, RECORD)).toEqual([])
    expect(await kernelVlans()).toEqual({
      br0: ['1 PVID Egress Untagged'],
      br1: ['1 PVID Egress Untagged'],
      swp1: ['1 PVID Egress Untagged', ...OPERATOR_VLANS.swp1],
      swp2: ['1 Egress Untagged', ...OPERATOR_VLANS.swp2],
      swp3: ['1 PVID Egress Untagged'],
      swp4: ['1 PVID Egress Untagged'],
      swp5: ['1 PVID Egress Untagged'],
      vxlan0: ['1 PVID Egress Untagged', ...OPERATOR_VLANS.vxlan0],
    })
    expect(await kernelTunnels()).toEqual({ vxlan0: OPERATOR_TUNNELS })
  })

  it('single layout: VLAN add with VNI and member adds give exactly these memberships and VID/VNI map', async () => {
    rm.request(req({ vsi: 1, port: 'swp1', entries: [{ groupId: 5000 }] }), 0)
    rm.request(req({ vsi: 2, port: 'swp2', entries: [{ groupId: 5000 }] }), 0)
    rm.request(req({ vsi: 3, port: 'swp1', entries: [{ groupId: 5001 }] }), 0)
    const ops = rm.pollDataplaneChanges()
    expect(ops).toEqual([
      { op: 'vlan-add', vid: 100, vni: 5000 },
      { op: 'vlan-add', vid: 101, vni: 5001 },
      { op: 'member-add', vid: 100, port: 'swp1' },
      { op: 'member-add', vid: 100, port: 'swp2' },
      { op: 'member-add', vid: 101, port: 'swp1' },
    ])
    const r = await apply('single: 2 VLANs with VNI, 3 members', ops)
    expect(r.error).toBeUndefined()
    expect(await kernelVlans()).toMatchObject({
      br0: ['1 PVID Egress Untagged'],
      swp1: ['1 PVID Egress Untagged', '100', '101', '555'],
      swp2: ['1 Egress Untagged', '100', '300 PVID Egress Untagged'],
      vxlan0: ['1 PVID Egress Untagged', '100', '101', '555'],
    })
    expect(await kernelTunnels()).toEqual({ vxlan0: ['100=5000', '101=5001', ...OPERATOR_TUNNELS] })
    // The kernel prints consecutive VID/VNI pairs as one range: the driver's parser must read it.
    expect((await bridgeCmd('-j', 'vlan', 'tunnelshow')).stdout).toContain('{"vlan":100,"vlanEnd":101,"tunid":5000,"tunidEnd":5001}')
    expect(await owned()).toEqual(['member|swp1|100', 'member|swp1|101', 'member|swp2|100', 'vxvid|vxlan0|100|5000', 'vxvid|vxlan0|101|5001'])
  })

  it('single layout: member del and VLAN del remove exactly the ports\' VIDs and the VID/VNI map', async () => {
    rm.release(rel({ vsi: 2, port: 'swp2', entries: [{ groupId: 5000, vid: 100 }] }), 0)
    rm.release(rel({ vsi: 3, port: 'swp1', entries: [{ groupId: 5001, vid: 101 }] }), 0)
    const ops = rm.pollDataplaneChanges()
    expect(ops).toEqual([
      { op: 'member-del', vid: 100, port: 'swp2' },
      { op: 'member-del', vid: 101, port: 'swp1' },
      { op: 'vlan-del', vid: 101, vni: 5001 },
    ])
    const r = await apply('single: 2 member dels, 1 VLAN del', ops)
    expect(r.error).toBeUndefined()
    expect(await kernelVlans()).toMatchObject({
      swp1: ['1 PVID Egress Untagged', '100', '555'],
      swp2: ['1 Egress Untagged', '300 PVID Egress Untagged'],
      vxlan0: ['1 PVID Egress Untagged', '100', '555'],
    })
    expect(await kernelTunnels()).toEqual({ vxlan0: ['100=5000', ...OPERATOR_TUNNELS] })
    expect(await owned()).toEqual(['member|swp1|100', 'vxvid|vxlan0|100|5000'])
  })

  it('single layout: a VN whose static VID the operator already has on a port leaves that membership as it is', async () => {
    rm.request(req({ vsi: 4, port: 'swp2', entries: [{ groupId: 6000 }] }), 0)
    const ops = rm.pollDataplaneChanges()
    expect(ops).toEqual([{ op: 'vlan-add', vid: 300, vni: 6000 }, { op: 'member-add', vid: 300, port: 'swp2' }])
    const r = await apply('single: VLAN on an operator\'s VID', ops)
    expect(r.error).toBeUndefined()
    expect(r.report?.foreign).toEqual(['member|swp2|300'])
    // Still PVID and untagged: a plain `bridge vlan add` would have made it tagged, no PVID.
    expect((await kernelVlans()).swp2).toEqual(['1 Egress Untagged', '300 PVID Egress Untagged'])
    expect((await kernelTunnels()).vxlan0).toEqual(['100=5000', '300=6000', ...OPERATOR_TUNNELS])
    expect(await owned()).not.toContain('member|swp2|300')

    rm.release(rel({ vsi: 4, port: 'swp2', entries: [{ groupId: 6000, vid: 300 }] }), 0)
    const back = await apply('single: release on an operator\'s VID', rm.pollDataplaneChanges())
    expect(back.error).toBeUndefined()
    expect((await kernelVlans()).swp2).toEqual(['1 Egress Untagged', '300 PVID Egress Untagged'])
    expect((await kernelTunnels()).vxlan0).toEqual(['100=5000', ...OPERATOR_TUNNELS])
  })

  it('reconcile after a restart from the ownership record: nothing stale, nothing missing, the operator\'s VLANs untouched', async () => {
    rm.request(req({ vsi: 5, port: 'swp2', entries: [{ groupId: 5001 }] }), 0)
    expect(await apply('single: before the kill', rm.pollDataplaneChanges())).not.toHaveProperty('error')
    // The agent saved its snapshot; then, while it was down, VSI 1 left (swp1 stays in VID
    // 100 in the kernel) and someone removed swp2 from VID 101.
    const rm2 = createResourceManager(policy, VidPool.parse('100-199'))
    rm.release(rel({ vsi: 1, port: 'swp1', entries: [{ groupId: 5000, vid: 100 }] }), 0)
    expect(rm2.importSnapshot(JSON.parse(JSON.stringify(rm.exportSnapshot()))).restored).toBe(1)
    await bridgeCmd('vlan', 'del', 'dev', 'swp2', 'vid', '101')

    // The new process: a driver opened on the record file only.
    expect(await open(single, RECORD)).toEqual(['member|swp1|100', 'member|swp2|101', 'vxvid|vxlan0|100|5000', 'vxvid|vxlan0|101|5001'])
    const r = await reconcile('single: after the restart', rm2.dataplaneState())
    expect(r.error).toBeUndefined()
    expect(r.report).toEqual({
      created: ['member|swp2|101'],
      deleted: ['member|swp1|100', 'vxvid|vxlan0|100|5000'],
      repaired: [],
      unchanged: ['vxvid|vxlan0|101|5001'],
      foreign: [],
      forgotten: [],
      conflicts: [],
    })
    expect(await kernelVlans()).toMatchObject({
      br0: ['1 PVID Egress Untagged'],
      swp1: ['1 PVID Egress Untagged', ...OPERATOR_VLANS.swp1],
      swp2: ['1 Egress Untagged', '101', ...OPERATOR_VLANS.swp2],
      vxlan0: ['1 PVID Egress Untagged', '101', ...OPERATOR_VLANS.vxlan0],
    })
    expect(await kernelTunnels()).toEqual({ vxlan0: ['101=5001', ...OPERATOR_TUNNELS] })
    expect(await owned()).toEqual(['member|swp2|101', 'vxvid|vxlan0|101|5001'])

    // A second reconcile finds everything right and changes nothing.
    const again = await reconcile('single: again', rm2.dataplaneState())
    expect(again.report).toMatchObject({ created: [], deleted: [], unchanged: ['vxvid|vxlan0|101|5001', 'member|swp2|101'] })

    // Everything released: only the operator's configuration is left.
    rm2.release(rel({ vsi: 5, port: 'swp2', entries: [{ groupId: 5001, vid: 101 }] }), 0)
    expect(await apply('single: release all', rm2.pollDataplaneChanges())).not.toHaveProperty('error')
    expect(await kernelVlans()).toMatchObject({
      swp1: ['1 PVID Egress Untagged', ...OPERATOR_VLANS.swp1],
      swp2: ['1 Egress Untagged', ...OPERATOR_VLANS.swp2],
      vxlan0: ['1 PVID Egress Untagged', ...OPERATOR_VLANS.vxlan0],
    })
    expect(await kernelTunnels()).toEqual({ vxlan0: OPERATOR_TUNNELS })
    expect(await owned()).toEqual([])
  })

  it('the memberships the driver adds carry tagged traffic between two ports; removing one stops it', async () => {
    expect(await open(single, '/tmp/owned-traffic.json')).toEqual([])
    // Neighbour entries flushed first: an ARP entry left FAILED by the previous ping made the
    // next ping fail. `waitS`: 3 s where a reply is expected, 1 s where none is.
    const ping = async (waitS: number) => {
      for (const h of ['h1', 'h5']) await ip('-n', h, 'neigh', 'flush', 'all')
      return (await guest(['ip', 'netns', 'exec', 'h1', 'ping', '-c', '1', '-W', String(waitS), '192.0.2.5'], true)).code
    }
    expect(await ping(1)).not.toBe(0) // VID 150 is on no port yet
    const both = { vlans: [{ vid: 150 }], members: [{ vid: 150, port: portName('swp1') }, { vid: 150, port: portName('swp5') }] }
    const one = { vlans: [{ vid: 150 }], members: [{ vid: 150, port: portName('swp1') }] }
    expect(await apply('traffic: VID 150 on swp1 and swp5', diffDataplane(emptyDataplaneState(), both))).not.toHaveProperty('error')
    expect(await ping(3)).toBe(0)
    expect(await apply('traffic: swp5 leaves', diffDataplane(both, one))).not.toHaveProperty('error')
    expect(await ping(1)).not.toBe(0)
    expect(await apply('traffic: all gone', diffDataplane(one, emptyDataplaneState()))).not.toHaveProperty('error')
    expect(await owned()).toEqual([])
  })

  it('single layout: a VLAN moved to another VNI (delete and re-add in one batch) keeps its members and maps the new VNI', async () => {
    expect(await open(single, '/tmp/owned-vni.json')).toEqual([])
    const members = [{ vid: 120, port: portName('swp1') }, { vid: 120, port: portName('swp2') }]
    const before = { vlans: [{ vid: 120, vni: 5020 }], members }
    const after = { vlans: [{ vid: 120, vni: 5021 }], members }
    expect(await apply('single: VLAN 120', diffDataplane(emptyDataplaneState(), before))).not.toHaveProperty('error')
    expect((await kernelTunnels()).vxlan0).toEqual(['120=5020', ...OPERATOR_TUNNELS])
    const ops = diffDataplane(before, after)
    expect(ops.map((o) => o.op)).toEqual(['member-del', 'member-del', 'vlan-del', 'vlan-add', 'member-add', 'member-add'])
    expect(await apply('single: VNI change', ops)).not.toHaveProperty('error')
    expect(await kernelTunnels()).toEqual({ vxlan0: ['120=5021', ...OPERATOR_TUNNELS] })
    expect(await kernelVlans()).toMatchObject({
      swp1: ['1 PVID Egress Untagged', '120', ...OPERATOR_VLANS.swp1],
      swp2: ['1 Egress Untagged', '120', ...OPERATOR_VLANS.swp2],
      vxlan0: ['1 PVID Egress Untagged', '120', ...OPERATOR_VLANS.vxlan0],
    })
    expect(await owned()).toEqual(['member|swp1|120', 'member|swp2|120', 'vxvid|vxlan0|120|5021'])
    expect(await apply('single: VLAN 120 gone', diffDataplane(after, emptyDataplaneState()))).not.toHaveProperty('error')
    expect(await kernelTunnels()).toEqual({ vxlan0: OPERATOR_TUNNELS })
    expect(await owned()).toEqual([])
  })

  it('single layout: a VN whose VID or VNI the operator already uses on the VXLAN device is a conflict, not a rewrite', async () => {
    expect(await open(single, '/tmp/owned-conflict.json')).toEqual([])
    const r = await apply('single: conflicting maps', [
      { op: 'vlan-add', vid: 555, vni: 6555 }, // the operator maps VID 555 to VNI 9555
      { op: 'vlan-add', vid: 130, vni: 9555 }, // ... and VNI 9555 to VID 555
    ])
    expect(r.error).toBeUndefined()
    expect(r.report?.conflicts).toEqual([
      'vxvid|vxlan0|555|6555 <- vxlan0 vid 555 tunnel_info id 9555',
      'vxvid|vxlan0|130|9555 <- vxlan0 vid 555 tunnel_info id 9555',
    ])
    expect(await kernelTunnels()).toEqual({ vxlan0: OPERATOR_TUNNELS })
    expect((await kernelVlans()).vxlan0).toEqual(['1 PVID Egress Untagged', ...OPERATOR_VLANS.vxlan0])
    expect(await owned()).toEqual([])
  })

  it('single layout: a VID whose tunnel_info the kernel refuses is deleted again, not left unowned', async () => {
    // The operator forgot `vlan_tunnel on`: the kernel takes the VID, refuses the map.
    await ip('link', 'add', 'vxlan1', 'type', 'vxlan', 'external', 'dstport', '4791', 'local', '10.0.0.1', 'nolearning')
    await ip('link', 'set', 'vxlan1', 'master', 'br1')
    expect(await open({ bridge: 'br1', vxlan: { mode: 'single', device: 'vxlan1' } }, '/tmp/owned-notunnel.json')).toEqual([])
    const r = await apply('single: tunnel_info refused', [{ op: 'vlan-add', vid: 140, vni: 5140 }])
    expect(r.error?.failures).toEqual([{ item: 'vxvid|vxlan1|140|5140', error: 'vlan add dev vxlan1 vid 140 tunnel_info id 5140: RTNETLINK answers: Invalid argument' }])
    expect((await kernelVlans()).vxlan1).toEqual(['1 PVID Egress Untagged'])
    expect(await owned()).toEqual([])
    await ip('link', 'del', 'vxlan1')
  })

  it('per-VNI layout: a device the kernel will not bring up is deleted again, not left unowned', async () => {
    // vxlan0 (external) holds UDP 4789 on 10.0.0.1: a second VXLAN socket on the same port
    // and address is refused when the device goes up.
    expect(await open({ bridge: 'br1', vxlan: { mode: 'per-vni', local: '10.0.0.1' } }, '/tmp/owned-br1.json')).toEqual([])
    const r = await apply('per-vni: device refused', [{ op: 'vlan-add', vid: 250, vni: 7500 }])
    expect(r.error?.failures).toEqual([
      { item: 'vxdev|vxlan7500|7500', error: 'link set vxlan7500 up: RTNETLINK answers: Address already in use' },
      { item: 'vxvid|vxlan7500|250|7500', error: expect.stringMatching(/^not run: device vxlan7500 was not created/) },
    ])
    expect((await guest(['ip', 'link', 'show', 'dev', 'vxlan7500'], true)).code).not.toBe(0)
    expect(await owned()).toEqual([])
  })

  it('per-VNI layout: the VXLAN device gets the VN\'s VID as its only, untagged PVID; deletes remove it all', async () => {
    const perVni = { bridge: 'br1', vxlan: { mode: 'per-vni', local: '10.0.0.1', dstport: 4790 } }
    expect(await open(perVni, '/tmp/owned-br1.json')).toEqual([])
    const rm3 = createResourceManager(validatePolicy({ vns: [{ vni: 7000, vsiTypes: 'any' }] }), VidPool.parse('200-299'))
    rm3.request(req({ vsi: 1, port: 'swp3', entries: [{ groupId: 7000 }] }), 0)
    rm3.request(req({ vsi: 2, port: 'swp4', entries: [{ groupId: 7000 }] }), 0)
    const r = await apply('per-vni: 1 VLAN with VNI, 2 members', rm3.pollDataplaneChanges())
    expect(r.error).toBeUndefined()
    const link = JSON.parse((await ip('-d', '-j', 'link', 'show', 'dev', 'vxlan7000')).stdout)[0]
    expect(link).toMatchObject({ master: 'br1', linkinfo: { info_kind: 'vxlan', info_data: { id: 7000, local: '10.0.0.1', port: 4790, learning: false } } })
    expect(link.flags).toContain('UP')
    expect(await kernelVlans()).toMatchObject({
      br1: ['1 PVID Egress Untagged'],
      swp3: ['1 PVID Egress Untagged', '200'],
      swp4: ['1 PVID Egress Untagged', '200'],
      vxlan7000: ['200 PVID Egress Untagged'],
    })
    expect(await owned()).toEqual(['member|swp3|200', 'member|swp4|200', 'vxdev|vxlan7000|7000', 'vxvid|vxlan7000|200|7000'])

    // Restart, then reconcile: all present and owned, nothing written.
    expect(await open(perVni, '/tmp/owned-br1.json')).toHaveLength(4)
    const ifindex = link.ifindex
    const same = await reconcile('per-vni: after a restart', rm3.dataplaneState())
    expect(same.report).toMatchObject({ created: [], deleted: [], foreign: [] })
    expect(JSON.parse((await ip('-j', 'link', 'show', 'dev', 'vxlan7000')).stdout)[0].ifindex).toBe(ifindex)

    rm3.release(rel({ vsi: 1, port: 'swp3', entries: [{ groupId: 7000, vid: 200 }] }), 0)
    rm3.release(rel({ vsi: 2, port: 'swp4', entries: [{ groupId: 7000, vid: 200 }] }), 0)
    const gone = await apply('per-vni: release all', rm3.pollDataplaneChanges())
    expect(gone.error).toBeUndefined()
    expect((await guest(['ip', 'link', 'show', 'dev', 'vxlan7000'], true)).code).not.toBe(0)
    const vlans = await kernelVlans()
    expect([vlans.swp3, vlans.swp4, vlans.vxlan7000]).toEqual([['1 PVID Egress Untagged'], ['1 PVID Egress Untagged'], undefined])
    expect(await owned()).toEqual([])
  })
})
