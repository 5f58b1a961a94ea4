// Two hypervisors behind one switch port: two lldpad stations in their own namespaces joined
// to the switch port through a Linux bridge (a bridged access network, RFC 8394 Req-1/2).
// The agent keeps one ECP peer per station MAC and answers each station its own VSIs.
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { startAgentProcess, type AgentProcess } from '../support/agent-process.ts'
import { startLldpad, type LldpadHandle } from '../support/lldpad.ts'
import { NetnsLab } from '../support/netns.ts'

const MAC1 = '02:76:64:70:03:01'
const MAC2 = '02:76:64:70:03:02'

describe('two stations behind one bridge port', () => {
  let lab: NetnsLab
  let agent: AgentProcess
  let s1: LldpadHandle
  let s2: LldpadHandle
  let port: string
  beforeAll(async () => {
    lab = await NetnsLab.create('agsh')
    const sw = await lab.addNamespace('sw')
    const lan = await lab.addNamespace('lan')
    const h1 = await lab.addNamespace('h1')
    const h2 = await lab.addNamespace('h2')
    const [up, p1, p2, e1, e2, sw0, br] = ['up', 'p1', 'p2', 'e1', 'e2', 'sw0', 'br'].map((x) => lab.ifname(x)) as [string, string, string, string, string, string, string]
    await lab.addVethPair({ ns: lan, ifname: up }, { ns: sw, ifname: sw0, mac: '02:76:64:70:03:ff' })
    await lab.addVethPair({ ns: lan, ifname: p1 }, { ns: h1, ifname: e1, mac: MAC1 })
    await lab.addVethPair({ ns: lan, ifname: p2 }, { ns: h2, ifname: e2, mac: MAC2 })
    await lab.addBridge(lan, br, [up, p1, p2])
    port = sw0
    agent = await startAgentProcess({
      netns: sw,
      args: ['--vid-pool', '400-499', '--switch-id', 'leaf4'],
      config: { lldpTxIntervalS: 1, evb: { retries: 3, rte: 8, rwd: 20, rka: 20, groupId: true, reflectiveRelay: false }, ports: [{ name: sw0 }] },
    })
    ;[s1, s2] = await Promise.all([
      startLldpad({ netns: h1, ifname: e1, role: 'station', evb: { gpid: true } }),
      startLldpad({ netns: h2, ifname: e2, role: 'station', evb: { gpid: true } }),
    ])
    // Each station also hears the other's LLDPDUs on this segment, so lldpad's neighbour view
    // flips between the bridge and the other station: watch the bridge side instead, then give
    // the stations' EVB-to-VDP push its tick (lldpad-interop.md gotcha 5).
    for (const mac of [MAC1, MAC2]) await agent.waitForLog('peer-up', (e) => e.peer === mac, 20_000)
    await Promise.all([s1.waitForVdpParams(() => true, 20_000), s2.waitForVdpParams(() => true, 20_000)])
    await new Promise((r) => setTimeout(r, 2000))
  }, 90_000)
  afterAll(async () => {
    await s1?.stop()
    await s2?.stop()
    await agent?.stop()
    await lab?.cleanup()
  })

  it('answers each station its own VSIs, one VLAN per VSI type across both', async () => {
    const uuid = (n: number) => `5644504c-4142-4000-8000-0000000003${n.toString().padStart(2, '0')}`
    // One after the other: lldpad parses every ECPDU on the segment into one buffer 2 ms
    // later, so a neighbour's request landing next to our response can overwrite it there.
    // MAC/VID filters: lldpad decides whether GroupID formats are on from its neighbour's last
    // EVB TLV, which here may be the other station's. The VSI type names the local VLAN.
    const a = await s1.vdptool.associate({ mgrid2: 'h1', typeId: 5, typeVersion: 1, uuid: uuid(1), filters: [{ vid: 0, mac: '02:76:64:71:03:01' }] }, { wait: true })
    const b = await s2.vdptool.associate({ mgrid2: 'h2', typeId: 5, typeVersion: 1, uuid: uuid(2), filters: [{ vid: 0, mac: '02:76:64:71:03:02' }] }, { wait: true })
    expect(a.kind === 'response' && a.event.filters[0]!.vid).toBe(400)
    expect(b.kind === 'response' && b.event.filters[0]!.vid).toBe(400)
    const c = await s2.vdptool.associate({ mgrid2: 'h2', typeId: 6, typeVersion: 1, uuid: uuid(3), filters: [{ vid: 0, mac: '02:76:64:71:03:03' }] }, { wait: true })
    expect(c.kind === 'response' && c.event.filters[0]!.vid).toBe(401)
    const rows = (await agent.call('vsis')) as Array<{ station: string; vsiId: { id: string } }>
    expect(rows.map((r) => r.station).sort()).toEqual([MAC1, MAC2, MAC2])
    const peers = (await agent.call('peers')) as Array<{ peers: Array<{ peer: string }> }>
    expect(peers[0]!.peers.map((p) => p.peer).sort()).toEqual([MAC1, MAC2])
    const vlans = (await agent.call('vlans')) as Array<{ vid: number; vsiCount: number }>
    expect(vlans.map((v) => [v.vid, v.vsiCount])).toEqual([[400, 2], [401, 1]])
  })
})
