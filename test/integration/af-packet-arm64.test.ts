/**
 * The committed arm64 addon (prebuilds/linux-arm64/af_packet.node) on an arm64 kernel: an
 * emulated arm64 machine (qemu-system-aarch64, Debian 12's arm64 kernel and nodejs, see
 * test/support/arm64-vm.ts) runs the link child, bundled with esbuild as the agent bundle is
 * shipped (the addon beside the script), and exchanges frames with the x86 addon over a veth
 * pair. Root required; a missing qemu or sysroot fails the tests, it does not skip them.
 *
 * Lab: [arm64 VM eth0] ─ tap ─ bridge ─ veth <p>a <──> <p>b ─ x86 link child, the tap, bridge
 * and <p>a in afparm64-<id>-a, <p>b in afparm64-<id>-b; everything is deleted in afterAll.
 * The bridge is a plain wire here: STP is off, so it forwards 01-80-C2-00-00-00.
 */
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { build } from 'esbuild'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { LINK_CHILD, NetnsLab, exec, requireRoot, type NsChild } from '../support/netns.ts'
import {
  buildArm64Initrd,
  prepareArm64Sysroot,
  startArm64Vm,
  stopArm64Vm,
  type Arm64Sysroot,
} from '../support/arm64-vm.ts'

const ARM64_ADDON = 'prebuilds/linux-arm64/af_packet.node'
const MAC_VM = '02:61:72:6d:00:0a'
const MAC_B = '02:61:72:6d:00:0b'
const macHex = (mac: string): string => mac.replace(/:/g, '')

// An ECP VDP Associate request as lldpad 1.1 sends it (71 bytes, as in af-packet.test.ts).
const ECP_ASSOCIATE =
  '0180c2000000' + macHex(MAC_B) + '8940' + '10010001' + // dst, src, 0x8940, ECP v1 request VDP, seq 1
  '0a107664706c61620000000000000000000006210000000501055644504c4142400080000000000000010200010276647100010000'
/** The 18-byte ECP ACK of seq 1 from the arm64 side. */
const ECP_ACK_FROM_VM = '0180c2000000' + macHex(MAC_VM) + '8940' + '14010001'
/** An ECP ACK behind an 802.1Q tag (VID 100): the addon puts the tag back from PACKET_AUXDATA. */
const ECP_ACK_TAGGED = '0180c2000000' + macHex(MAC_B) + '81000064' + '8940' + '14010002'
const MARKER = '0180c2000000' + macHex(MAC_B) + '8940' + '1401beef'

describe('arm64 AF_PACKET addon in an emulated arm64 machine', () => {
  let lab: NetnsLab | undefined
  let vm: NsChild | undefined
  let b: NsChild
  let sysroot: Arm64Sysroot
  let work: string | undefined
  let bootMs = 0

  beforeAll(async () => {
    requireRoot('the arm64 AF_PACKET integration test')
    const t0 = performance.now()
    sysroot = await prepareArm64Sysroot()
    const prepareMs = performance.now() - t0
    lab = await NetnsLab.create('afparm64')
    const nsA = await lab.addNamespace('a')
    const nsB = await lab.addNamespace('b')
    const [ifA, ifB, tap, br] = [lab.ifname('a'), lab.ifname('b'), lab.ifname('t'), lab.ifname('br')]
    await lab.addVethPair({ ns: nsA, ifname: ifA }, { ns: nsB, ifname: ifB, mac: MAC_B })
    await exec('ip', ['-n', nsA, 'tuntap', 'add', 'dev', tap, 'mode', 'tap'])
    await lab.disableIpv6(nsA, tap)
    await lab.setUp(nsA, tap)
    await lab.addBridge(nsA, br, [ifA, tap])

    work = mkdtempSync(join(tmpdir(), 'afparm64-'))
    const child = join(work, 'link-child.mjs')
    await build({ entryPoints: [LINK_CHILD], bundle: true, platform: 'node', format: 'esm', target: 'node18', outfile: child, logLevel: 'silent' })
    const initrd = await buildArm64Initrd(sysroot, work, {
      'link-child.mjs': { from: child },
      'af_packet.node': { from: ARM64_ADDON },
      run: 'exec /usr/bin/node /app/link-child.mjs\n',
    })
    const t1 = performance.now()
    vm = await startArm64Vm({ ns: nsA, tap, mac: MAC_VM, sysroot, initrd })
    bootMs = performance.now() - t1
    b = await lab.spawnNode(nsB, LINK_CHILD)
    await b.request('open', { ifname: ifB })
    await b.request('listen', { mode: 'events' })
    console.info(`arm64 VM: sysroot ready in ${Math.round(prepareMs)} ms, booted to the child in ${Math.round(bootMs)} ms`)
  })

  afterAll(async () => {
    if (vm) await stopArm64Vm(vm)
    await lab?.cleanup()
    if (work) rmSync(work, { recursive: true, force: true })
  })

  /** Sends `frames` from the x86 side, then a marker; returns what the VM got before it. */
  async function toVm(frames: string[]): Promise<string[]> {
    const start = vm!.events.length
    for (const f of frames) await b.request('send', { hex: f })
    await b.request('send', { hex: MARKER })
    await vm!.waitForEvent((e) => e.event === 'frame' && e.hex === MARKER, 20_000, start)
    return vm!.events.slice(start).filter((e) => e.event === 'frame' && e.hex !== MARKER).map((e) => String(e.hex))
  }

  it('loads prebuilds/linux-arm64/af_packet.node in arm64 Node.js and opens the socket', async () => {
    const runtime = await vm!.request<{ arch: string; node: string; napi: string; addon: string }>('runtime', {}, 20_000)
    expect(runtime).toMatchObject({ arch: 'arm64', addon: '/app/af_packet.node' })
    const opened = await vm!.request('open', { ifname: 'eth0' }, 20_000)
    expect(opened).toMatchObject({ mac: MAC_VM, mtu: 1500 })
    await vm!.request('listen', { mode: 'events' }, 20_000)
    const node = sysroot.versions.find((v) => v.startsWith('nodejs ')) ?? 'nodejs ?'
    const kernel = sysroot.versions.find((v) => v.startsWith('linux-image-')) ?? 'linux-image ?'
    console.info(`arm64 VM: ${runtime.node} (N-API ${runtime.napi}, Debian ${node}), ${kernel}`)
  })

  it('receives an ECP frame sent by the x86 addon, byte for byte', async () => {
    expect(await toVm([ECP_ASSOCIATE])).toEqual([ECP_ASSOCIATE])
  })

  it('receives an 802.1Q-tagged ECP frame with its tag back in place', async () => {
    expect(await toVm([ECP_ACK_TAGGED])).toEqual([ECP_ACK_TAGGED])
  })

  it('sends an ECP frame that the x86 addon receives byte for byte', async () => {
    const start = b.events.length
    await vm!.request('send', { hex: ECP_ACK_FROM_VM }, 20_000)
    const got = await b.waitForEvent((e) => e.event === 'frame', 20_000, start)
    expect(got.hex).toBe(ECP_ACK_FROM_VM)
  })

  it('drops frames of other Ethertypes in the kernel (BPF filter)', async () => {
    const before = await vm!.request<{ rxFrames: number; kernel: { packets: number } }>('stats', {}, 20_000)
    const bcast = 'ffffffffffff' + macHex(MAC_B)
    const ipv4 = bcast + '0800' + '45000014000000004001' + '0000' + '0a000001' + '0a000002'
    const arp = bcast + '0806' + '0001080006040001' + macHex(MAC_B) + '0a000001' + '000000000000' + '0a000002'
    const nearMiss = '0180c2000000' + macHex(MAC_B) + '8941' + '10010001'
    expect(await toVm([ipv4, arp, nearMiss])).toEqual([])
    const after = await vm!.request<{ rxFrames: number; kernel: { packets: number } }>('stats', {}, 20_000)
    // Only the marker passed the filter: the socket never queued the other three.
    expect(after.rxFrames - before.rxFrames).toBe(1)
    expect(after.kernel.packets - before.kernel.packets).toBe(1)
  })

  it('takes an awaited ECP ACK in with the eBPF filter on the arm64 kernel, and hands the rest over', async () => {
    await vm!.request('absorbEcpAcks', { absorb: { own: MAC_VM, awaited: [{ peer: MAC_B, sequence: 5 }] } }, 20_000)
    const ack = (seq: number) => '0180c2000000' + macHex(MAC_B) + '8940' + '1401' + seq.toString(16).padStart(4, '0')
    expect(await toVm([ack(5), ack(6)])).toEqual([ack(6)])
    const taken = await vm!.request<{ acks: Array<{ own: boolean; peer: string; sequence: number }> }>('takeAbsorbed', {}, 20_000)
    expect(taken.acks).toEqual([{ own: true, peer: MAC_B, sequence: 5 }])
    await vm!.request('absorbEcpAcks', { absorb: undefined }, 20_000)
    expect(await toVm([ack(5)])).toEqual([ack(5)])
  })

  it('closes the link with no handler call after close', async () => {
    const atClose = await vm!.request<{ rx: number }>('close', {}, 20_000)
    await b.request('send', { hex: ECP_ASSOCIATE })
    await new Promise((r) => setTimeout(r, 500))
    const after = await vm!.request<{ rx: number; handlerCallsAfterClose: number }>('stats', {}, 20_000)
    expect(after).toMatchObject({ rx: atClose.rx, handlerCallsAfterClose: 0 })
  })
})
