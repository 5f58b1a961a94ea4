// vdp-agent in bridge role on a real veth port (AF_PACKET) against an unmodified lldpad
// station driven by vdptool, in network namespaces created for the test.
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { startAgentProcess, type AgentProcess } from '../support/agent-process.ts'
import { startLldpadLab, type LldpadLab } from '../support/lldpad-lab.ts'
import { sleep } from '../support/lldpad.ts'
import { execFileSync } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { requireRoot, REPO_ROOT } from '../support/netns.ts'
import { tsharkFields } from '../support/tshark.ts'
import { measureWire, startCapture } from '../support/wire-timing.ts'

interface Row { port: string; station: string; vsiId: { id: string }; entries: Array<{ vid: number; groupId?: number; vni?: number; mac?: string }>; mode: string | null; state: string; lastSeenAgoMs: number }
interface Vlan { vid: number; vni?: number; vsiCount: number; ports: Array<{ port: string; vsiCount: number }> }

/** VN 5005 takes VSI type 5 on MAC/VID and VID formats; VNs 7001/7002 take any type by GroupID. */
const POLICY = {
  revision: 1,
  vns: [
    { vni: 5005, name: 'web', vsiTypes: [{ typeId: 5 }] },
    { vni: 7001, name: 'db', vsiTypes: 'any' },
    { vni: 7002, name: 'app', vsiTypes: 'any' },
  ],
  openVnis: false,
  openVsiTypes: false,
}

const vsiSpec = (lab: LldpadLab, n: number, filters: Array<{ vid: number; mac?: string; groupId?: number }>, typeId = 5) => ({
  mgrid2: 'vdplab', typeId, typeVersion: 1, uuid: lab.uuid(n), filters,
})

/**
 * `rte` sets the ECP ack timer on both ends (10 us * 2^rte). It also widens toutKeepAlive, the
 * margin a late keep-alive has: with RKA 14, RTE 8 gives 272 ms for a 164 ms keep-alive period,
 * so a station stalled ~110 ms on a loaded machine loses its VSIs; RTE 12 gives 676 ms.
 */
async function startLab(name: string, rka: number, policy?: unknown, rte = 8): Promise<{ lab: LldpadLab; agent: AgentProcess }> {
  requireRoot(`${name} integration test`)
  const lab = await startLldpadLab({ name, bridge: 'none', waitForEvb: false, evb: { vdpRka: rka, ecpRte: rte } })
  try {
    const agent = await startAgentProcess({
      netns: lab.switchNs,
      args: ['--port', lab.switchIf, '--vid-pool', '100-199', '--switch-id', 'leaf1', '--dataplane', 'dry-run'],
      config: { evb: { retries: 3, rte, rwd: 20, rka, groupId: true, reflectiveRelay: true }, lldpTxIntervalS: 1, ...(policy ? { policy } : {}) },
    })
    await lab.waitForBridgeEvb((t) => t.bridgeStatus.bgid && t.rka === rka && t.rte === rte, 20_000)
    return { lab, agent }
  } catch (e) {
    await lab.stop()
    throw e
  }
}

describe('vdp-agent bridge with an lldpad station (fast keep-alives)', () => {
  let lab: LldpadLab
  let agent: AgentProcess
  beforeAll(async () => ({ lab, agent } = await startLab('agtl', 14, POLICY, 12)), 90_000)
  afterAll(async () => {
    await agent?.stop()
    await lab?.stop()
  })

  const rows = async () => (await agent.call('vsis')) as Row[]
  const row = async (n: number) => (await rows()).find((r) => r.vsiId.id === lab.uuid(n).replace(/-/g, ''))

  it('answers an Associate with VID 0 (MAC/VID) with the VN\'s VID from the pool', async () => {
    const r = await lab.vdptool.associate(vsiSpec(lab, 1, [{ vid: 0, mac: lab.vsiMac(1) }]), { wait: true })
    expect(r.kind).toBe('response')
    if (r.kind !== 'response') return
    expect(r.event.mode).toBe('assoc')
    expect(r.event.outcome.success).toBe(true)
    expect(r.event.filters[0]!.vid).toBe(100)
    expect((await row(1))?.entries[0]?.vid).toBe(100)
    expect((await row(1))?.mode).toBe('associate')
  })

  it('gives the same VID to every VSI of one VN (GroupID/VID) and another VID to another VN', async () => {
    const a = await lab.vdptool.associate(vsiSpec(lab, 2, [{ vid: 0, groupId: 7001 }]), { wait: true })
    const b = await lab.vdptool.associate(vsiSpec(lab, 3, [{ vid: 0, groupId: 7001 }]), { wait: true })
    const c = await lab.vdptool.associate(vsiSpec(lab, 4, [{ vid: 0, mac: lab.vsiMac(4), groupId: 7002 }]), { wait: true })
    for (const r of [a, b, c]) expect(r.kind).toBe('response')
    expect((await row(2))?.entries[0]).toMatchObject({ vid: 101, groupId: 7001, vni: 7001 })
    expect((await row(3))?.entries[0]).toMatchObject({ vid: 101, groupId: 7001 })
    expect((await row(4))?.entries[0]).toMatchObject({ vid: 102, groupId: 7002, mac: lab.vsiMac(4) })
    const q = await lab.vdptool.query(lab.uuid(3))
    expect(q?.filters[0]?.vid).toBe(101)
    const vlans = (await agent.call('vlans')) as Vlan[]
    expect(vlans.map((v) => [v.vid, v.vni, v.vsiCount])).toEqual([[100, 5005, 1], [101, 7001, 2], [102, 7002, 1]])
  })

  it('accepts the VID format with the VN\'s own VID', async () => {
    const r = await lab.vdptool.associate(vsiSpec(lab, 5, [{ vid: 100 }]), { wait: true })
    expect(r.kind === 'response' && r.event.outcome.success).toBe(true)
    expect((await row(5))?.entries[0]?.vid).toBe(100)
  })

  it('rejects an unknown VSI type with reason code 4 and keeps no state', async () => {
    const r = await lab.vdptool.associate(vsiSpec(lab, 6, [{ vid: 0, mac: lab.vsiMac(6) }], 66), { wait: true })
    expect(r.kind === 'response' || r.kind === 'refused').toBe(true)
    const ev = await lab.station.waitForVsiEvent(lab.uuid(6), (e) => (e.hints & 0x0f) !== 0, 5000)
    expect(ev.hints & 0x0f).toBe(4)
    expect(await row(6)).toBeUndefined()
    const log = await agent.waitForLog('vsi-rejected', (e) => e.error === 4)
    expect(log.vsiId).toBe(lab.uuid(6).replace(/-/g, ''))
  })

  it('pre-associates, then associates the same VSI', async () => {
    const p = await lab.vdptool.preAssociate(vsiSpec(lab, 7, [{ vid: 0, mac: lab.vsiMac(7) }]), { wait: true })
    expect(p.kind === 'response' && p.event.outcome.success).toBe(true)
    expect((await row(7))?.mode).toBe('pre-associate')
    const a = await lab.vdptool.associate(vsiSpec(lab, 7, [{ vid: 100, mac: lab.vsiMac(7) }]), { wait: true })
    expect(a.kind === 'response' && a.event.outcome.success).toBe(true)
    expect((await row(7))?.mode).toBe('associate')
  })

  it('keeps VSIs alive on the station\'s keep-alives well past toutKeepAlive, answered by the raw socket', async () => {
    // RKA 14, RTE 12: keep-alive every 164 ms, toutKeepAlive 676 ms.
    const counters = async () => ((await agent.call('counters')) as Array<{ counters: Record<string, number> }>)[0]!.counters
    const c0 = await counters()
    await sleep(1500)
    const c1 = await counters()
    const all = await rows()
    expect(all.map((x) => x.vsiId.id.slice(-2)).sort()).toEqual(['01', '02', '03', '04', '05', '07'])
    for (const r of all) {
      expect(r.mode).toBe('associate')
      expect(r.lastSeenAgoMs).toBeLessThan(400)
    }
    // lldpad repeats its request octet for octet: after the first one per VSI (its VIDs then
    // filled in), the addon answers the keep-alives itself (docs/protocol.md §2).
    const keepalives = c1.keepalivesRx! - c0.keepalivesRx!
    expect(keepalives).toBeGreaterThanOrEqual(30)
    expect(c1.keepalivesAnswered! - c0.keepalivesAnswered!).toBeGreaterThanOrEqual(keepalives / 2)
  })

  it('de-associates a VSI named with its assigned VID and releases its VLAN when it was the last', async () => {
    // -W may print another VSI's event while keep-alives run (gotcha 6): watch the bridge instead.
    await lab.vdptool.deAssociate(vsiSpec(lab, 4, [{ vid: 102, mac: lab.vsiMac(4), groupId: 7002 }]))
    const end = Date.now() + 5000
    while ((await row(4)) !== undefined && Date.now() < end) await sleep(20)
    expect(await row(4)).toBeUndefined()
    const vlans = (await agent.call('vlans')) as Vlan[]
    expect(vlans.map((v) => v.vid)).not.toContain(102)
    await agent.waitForLog('vsi-de-associated', (e) => e.reason === 'station-request')
  })

  it('sends frames that tshark\'s ecp21 dissector and vdpctl decode', async () => {
    const capDir = mkdtempSync(join(tmpdir(), 'agtl-cap-'))
    const file = join(capDir, 'sw.pcap')
    try {
      const cap = await startCapture({ netns: lab.switchNs, ifname: lab.switchIf, file, keep: true })
      const r = await lab.vdptool.associate(vsiSpec(lab, 8, [{ vid: 0, groupId: 7002 }]), { wait: true })
      expect(r.kind).toBe('response')
      await sleep(1200) // one LLDPDU from the agent (txInterval 1 s)
      await cap.stop()
      const tshark = tsharkFields(file, ['eth.src', 'ecp.ver', 'ecp.op', 'ecp.subtype', 'ecp.seqno'], 'ecp21')
      const ours = tshark.filter((f) => f[0] === lab.switchMac)
      expect(ours.some((f) => f[1] === '1' && f[2] === '0x0001' && f[3] === '0x0001')).toBe(true) // an ACK
      expect(ours.some((f) => f[1] === '1' && f[2] === '0x0000' && f[3] === '0x0001')).toBe(true) // a VDP request (the response TLV)
      const decoded = JSON.parse(execFileSync(process.execPath, ['bin/vdpctl.mjs', 'decode', file], { cwd: REPO_ROOT, encoding: 'utf8' })) as Array<Record<string, any>>
      const fromAgent = decoded.filter((f) => f.source === lab.switchMac)
      const resp = fromAgent.flatMap((f) => f.ecp?.vdp?.tlvs ?? []).find((t: any) => t.vsiId?.id === lab.uuid(8).replace(/-/g, ''))
      expect(resp).toMatchObject({ mode: 'associate', status: { response: true, error: 0 }, entries: [{ vid: 102, groupId: 7002 }] })
      const lldp = fromAgent.find((f) => f.lldp)
      expect(lldp?.lldp.evb).toMatchObject({ mode: 1, bridge: { bgid: true }, rka: 14 })
    } finally {
      rmSync(capDir, { recursive: true, force: true })
    }
  })

  it('times out and de-associates the VSIs of a station that falls silent', async () => {
    expect((await rows()).length).toBeGreaterThan(0)
    await lab.station.stop()
    const end = Date.now() + 5000
    while ((await rows()).length > 0 && Date.now() < end) await sleep(50)
    expect(await rows()).toEqual([])
    await agent.waitForLog('vsi-de-associated', (e) => e.reason === 'keepalive-timeout')
    expect((await agent.call('vlans')) as Vlan[]).toEqual([])
  })
})

describe('vdp-agent bridge under a burst of 200 associations from two parallel vdptool issuers', () => {
  let lab: LldpadLab
  let agent: AgentProcess
  beforeAll(async () => ({ lab, agent } = await startLab('agtb', 20)), 90_000)
  afterAll(async () => {
    await agent?.stop()
    await lab?.stop()
  })

  it('answers further VSIs of a VN from the raw socket\'s offers, with the VID the core gives, and hands them to the core', async () => {
    const counters = async () => ((await agent.call('counters')) as Array<{ counters: Record<string, number> }>)[0]!.counters
    const c0 = await counters()
    for (let n = 1; n <= 6; n++) {
      const r = await lab.vdptool.associate(vsiSpec(lab, 900 + n, [{ vid: 0, mac: lab.vsiMac(900 + n) }]), { wait: true })
      expect(r.kind === 'response' && r.event.outcome.success && r.event.filters[0]!.vid).toBe(100)
      // Past one ack timer (RTE 8: 2.56 ms): the core has the ACK of its own last response and
      // lends the socket its transmit side again.
      await sleep(20)
    }
    const c1 = await counters()
    // The first VSI's grant left the offer (the VN already had VID 100 from earlier tests or
    // not): at least the later ones were answered by the socket, none against the core.
    expect(c1.offersAnswered! - c0.offersAnswered!).toBeGreaterThanOrEqual(4)
    expect(c1.offerMismatches).toBe(0)
    // The core holds them as its own: state, VID, keep-alives from then on.
    const ids = new Set([1, 2, 3, 4, 5, 6].map((n) => lab.uuid(900 + n).replace(/-/g, '')))
    const ours = async () => ((await agent.call('vsis')) as Row[]).filter((r) => ids.has(r.vsiId.id))
    expect((await ours()).map((r) => [r.mode, r.entries[0]?.vid])).toEqual(Array(6).fill(['associate', 100]))
    for (let n = 1; n <= 6; n++) await lab.vdptool.deAssociate(vsiSpec(lab, 900 + n, [{ vid: 100, mac: lab.vsiMac(900 + n) }]), { wait: true })
    const c2 = await counters()
    // De-Associates are echoed by the socket too.
    expect(c2.offersAnswered! - c1.offersAnswered!).toBeGreaterThanOrEqual(4)
    expect(c2.offerMismatches).toBe(0)
    expect(await ours()).toEqual([])
  })

  it('answers all 200 and loses none', async () => {
    const issue = async (from: number) => {
      for (let n = from; n < from + 100; n++) {
        const r = await lab.vdptool.associate(vsiSpec(lab, 1000 + n, [{ vid: 0, mac: lab.vsiMac(1000 + n) }]))
        expect(r.kind).toBe('sent')
      }
    }
    let held: Row[] = []
    // The switch port is captured meanwhile: what the agent answered is checked on the wire.
    const { timing } = await measureWire(lab, async () => {
      await Promise.all([issue(0), issue(100)])
      const end = Date.now() + 20_000
      while (Date.now() < end) {
        held = (await agent.call('vsis')) as Row[]
        if (held.length === 200 && held.every((r) => r.mode === 'associate')) break
        await sleep(100)
      }
    }, { settleMs: 300 })
    expect(held.length).toBe(200)
    const uuids = Array.from({ length: 200 }, (_, i) => lab.uuid(1000 + i))
    // On the wire: every Associate got a successful response with the VN's VID.
    const answered = new Map(timing.exchanges.filter((x) => x.requestType === 3 && (x.responseStatus & 0x0f) === 0).map((x) => [x.vsiid, x.responseVids]))
    expect(uuids.filter((u) => answered.get(u)?.[0] !== 100)).toEqual([])
    expect(timing.unanswered.filter((u) => uuids.includes(u.vsiid))).toEqual([])
    // At the station: every VSI holds the bridge-assigned VID. lldpad parses received VDP into
    // one buffer per port 2 ms after the frame, so under load it can drop an answer that is
    // on the wire (above); such a VSI must then be made good by asking again.
    const stationVid = async (n: number) => (await lab.vdptool.query(lab.uuid(n)))?.filters[0]?.vid
    const missing: number[] = []
    for (let n = 1000; n < 1200; n += 4) {
      const got = await Promise.all([0, 1, 2, 3].map(async (k) => [n + k, await stationVid(n + k)] as const))
      for (const [m, vid] of got) if (vid !== 100) missing.push(m)
    }
    if (missing.length > 0) console.warn(`lldpad dropped answers that are on the wire for VSIs ${missing.join(', ')}; asking again`)
    // One or two such drops in a run have been seen; more would point at our frames.
    expect(missing.length).toBeLessThanOrEqual(2)
    for (const n of missing) {
      const r = await lab.vdptool.associate(vsiSpec(lab, n, [{ vid: 0, mac: lab.vsiMac(n) }]), { wait: true })
      expect(r.kind).toBe('response')
      expect(await stationVid(n)).toBe(100)
    }
  }, 120_000)
})
