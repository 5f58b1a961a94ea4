// Bad input on the wire against a running vdp-agent with two ports: random, truncated,
// oversized, wrong-version, duplicate-Manager-ID, malformed-TLV frames and a flood on one
// port are counted (and answered where the standard says so) while the other port keeps
// serving a station normally.
import { fileURLToPath } from 'node:url'
import fc from 'fast-check'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { decodeEcpdu, encodeEcpdu } from '../../shared/ecp/codec.ts'
import { decodeEthernetFrame, encodeEthernetFrame } from '../../shared/ethernet/frame.ts'
import { NCB_GROUP_MAC, parseMac } from '../../shared/ethernet/mac.ts'
import { decodeVdpPdu } from '../../shared/vdp/codec.ts'
import { hex, toHex } from '../../shared/wire/hex.ts'
import { startAgentProcess, type AgentProcess } from '../support/agent-process.ts'
import { readCapture } from '../support/captures.ts'
import { NetnsLab, type NsChild } from '../support/netns.ts'

const LINK_CHILD = fileURLToPath(new URL('../support/ns-child-link.ts', import.meta.url))
const H0 = parseMac('02:76:64:70:02:01')
const H1 = parseMac('02:76:64:70:02:11')
const SW0 = parseMac('02:76:64:70:02:02')

/** The lldpad station's captured Associate request, from `source`, with ECP sequence `seq`. */
function associateFrom(source: string, seq: number, payloadEdit?: (ulpdu: Uint8Array) => Uint8Array): string {
  const eth = decodeEthernetFrame(readCapture('lldpad-assoc')[0]!.data)
  const ecp = decodeEcpdu(eth.payload)
  const ulpdu = payloadEdit ? payloadEdit(ecp.ulpdu) : ecp.ulpdu
  return toHex(encodeEthernetFrame({ ...eth, source: parseMac(source), payload: encodeEcpdu({ header: { ...ecp.header, sequence: seq }, ulpdu }) }))
}

const ecpFrame = (source: string, ecpHex: string) => toHex(encodeEthernetFrame({ destination: NCB_GROUP_MAC, source: parseMac(source), ethertype: 0x8940, payload: hex`${ecpHex}` }))

type Ecp = ReturnType<typeof decodeEcpdu>

/** ECP frames the child received, decoded, polled until `done` holds (or 5 s pass). */
async function collect(child: NsChild, done: (frames: Ecp[]) => boolean, timeoutMs = 5000): Promise<Ecp[]> {
  const got: Ecp[] = []
  const end = Date.now() + timeoutMs
  while (Date.now() < end) {
    const { frames } = (await child.request('received')) as { frames: string[] }
    for (const h of frames) {
      // The agent's LLDPDUs (every 30 s, more often after a change) arrive here too.
      const eth = decodeEthernetFrame(hex`${h}`)
      if (eth.ethertype === 0x8940) got.push(decodeEcpdu(eth.payload))
    }
    if (done(got)) break
    await new Promise((r) => setTimeout(r, 20))
  }
  return got
}

/** Association TLVs of a VDP response, tolerating the entry-less "invalid format" reply. */
function responseStatuses(e: Ecp): number[] {
  const out: number[] = []
  const u = e.ulpdu
  for (let at = 18; at + 3 <= u.length; ) {
    const type = u[at]! >> 1
    const len = ((u[at]! & 1) << 8) | u[at + 1]!
    if (type === 0) break
    if (type >= 1 && type <= 4 && u[at + 2]! & 0x40) out.push(u[at + 2]! & 0x0f)
    at += 2 + len
  }
  return out
}

interface Counters { decodeErrors: number; protocolErrors: number; rxFrames: number; rxDuplicates: number; txAcks: number; framesDropped: number }

describe('vdp-agent under hostile input', () => {
  let lab: NetnsLab
  let agent: AgentProcess
  let bad: NsChild
  let good: NsChild
  beforeAll(async () => {
    lab = await NetnsLab.create('agbad')
    const sw = await lab.addNamespace('sw')
    const host = await lab.addNamespace('host')
    await lab.addVethPair({ ns: host, ifname: 'h0', mac: H0 }, { ns: sw, ifname: 'sw0', mac: SW0 })
    await lab.addVethPair({ ns: host, ifname: 'h1', mac: H1 }, { ns: sw, ifname: 'sw1', mac: '02:76:64:70:02:12' })
    agent = await startAgentProcess({ netns: sw, args: ['--port', 'sw0', '--port', 'sw1', '--vid-pool', '100-199', '--switch-id', 'leafx'] })
    bad = await lab.spawnNode(host, LINK_CHILD)
    good = await lab.spawnNode(host, LINK_CHILD)
    await bad.request('open', { ifname: 'h0' })
    await good.request('open', { ifname: 'h1' })
    await bad.request('listen', { mode: 'collect' })
    await good.request('listen', { mode: 'collect' })
  }, 60_000)
  afterAll(async () => {
    await agent?.stop()
    await lab?.cleanup()
  })

  const counters = async (port: string) => ((await agent.call('counters')) as Array<{ port: string; counters: Counters }>).find((c) => c.port === port)!.counters

  it('counts random and mutated frames without crashing', async () => {
    const frames = fc.sample(fc.uint8Array({ minLength: 0, maxLength: 200 }), { numRuns: 500, seed: 42 })
      .map((b) => ecpFrame(H0, toHex(b)))
    const base = associateFrom(H0, 1)
    for (let cut = 14; cut < base.length / 2; cut += 1) frames.push(base.slice(0, cut * 2))
    for (const f of frames) await bad.request('send', { hex: f })
    await bad.request('waitQuiet', { ms: 300 })
    const c = await counters('sw0')
    expect(c.rxFrames).toBeGreaterThanOrEqual(frames.length - 10)
    expect(c.decodeErrors + c.framesDropped).toBeGreaterThan(100)
    expect(agent.child.exitCode).toBeNull()
  })

  it('drops a wrong ECP version without an ACK, and ACKs but drops a duplicate Manager ID', async () => {
    await bad.request('received')
    const before = await counters('sw0')
    await bad.request('send', { hex: ecpFrame(H0, '20 01 00 07') + '' })
    const dupMgr = associateFrom(H0, 0x77, (u) => new Uint8Array([...u.subarray(0, 18), ...u.subarray(0, 18), ...u.subarray(18)]))
    await bad.request('send', { hex: dupMgr })
    const got = await collect(bad, (fs) => fs.some((e) => e.header.operation === 1 && e.header.sequence === 0x77))
    expect(got.some((e) => e.header.operation === 1 && e.header.sequence === 7)).toBe(false)
    expect(got.some((e) => e.header.operation === 1 && e.header.sequence === 0x77)).toBe(true)
    expect(got.some((e) => e.header.operation === 0)).toBe(false)
    const after = await counters('sw0')
    expect(after.decodeErrors + after.framesDropped).toBeGreaterThanOrEqual(before.decodeErrors + before.framesDropped + 2)
  })

  it('answers a malformed association TLV that names its VSI with "invalid format"', async () => {
    await bad.request('received')
    // entry count 2 where the TLV holds one entry
    const broken = associateFrom(H0, 0x78, (u) => { const c = u.slice(); c[18 + 2 + 23] = 0; c[18 + 2 + 24] = 2; return c })
    await bad.request('send', { hex: broken })
    const frames = await collect(bad, (fs) => fs.some((e) => e.header.operation === 0 && e.ulpdu.length > 0))
    const statuses = frames.filter((e) => e.header.operation === 0).flatMap(responseStatuses)
    expect(statuses).toContain(1)
    expect(frames.some((e) => e.header.operation === 1 && e.header.sequence === 0x78)).toBe(true)
  })

  it('ACKs every copy of a flood of one request, processes it once, and serves the other port meanwhile', async () => {
    await good.request('received')
    const flood = associateFrom(H0, 0x100)
    const floodDone = bad.request('send', { hex: flood, count: 5000 })
    await good.request('send', { hex: associateFrom(H1, 1) })
    await floodDone
    const goodFrames = await collect(good, (fs) => fs.some((e) => e.header.operation === 0))
    await bad.request('waitQuiet', { ms: 300 })
    expect(goodFrames.some((e) => e.header.operation === 1 && e.header.sequence === 1)).toBe(true)
    const resp = goodFrames.filter((e) => e.header.operation === 0).map((e) => decodeVdpPdu(e.ulpdu)).flatMap((p) => p.tlvs)
    expect(resp.some((t) => t.kind === 'vsi' && t.status.response && t.status.error === 0 && t.entries[0]!.vid === 100)).toBe(true)
    // Every copy that reached the agent is a duplicate (ACKed, not processed); the rest were
    // dropped by the kernel's socket buffer and counted there.
    const c = await counters('sw0')
    const port = ((await agent.call('ports')) as Array<{ name: string; link: { rxFrames: number; drops: number } }>).find((p) => p.name === 'sw0')!
    expect(c.rxDuplicates).toBeGreaterThan(1000)
    expect(c.rxDuplicates + 1 + port.link.drops).toBeGreaterThanOrEqual(5000 - 5)
    const rows = (await agent.call('vsis')) as Array<{ port: string }>
    expect(rows.filter((r) => r.port === 'sw1')).toHaveLength(1)
    expect(rows.filter((r) => r.port === 'sw0').length).toBeLessThanOrEqual(1)
    expect(agent.child.exitCode).toBeNull()
  }, 60_000)

  it('exits cleanly on SIGTERM', async () => {
    expect(await agent.stop()).toBe(0)
    expect(agent.log().some((e) => e.event === 'agent-stopped')).toBe(true)
  })
})
