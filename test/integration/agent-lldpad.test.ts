// vdp-agent in bridge role on a real veth port (AF_PACKET) against an unmodified lldpad
// station driven by vdptool, in network namespaces created for the test.
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { startAgentProcess, type AgentProcess } from '../support/agent-process.ts'
import { startLldpadLab, type LldpadLab } from '../support/lldpad-lab.ts'
import { requireRoot } from '../support/netns.ts'

let lab: LldpadLab
let agent: AgentProcess

beforeAll(async () => {
  requireRoot('agent-lldpad integration test')
  lab = await startLldpadLab({ name: 'agtl', bridge: 'none', waitForEvb: false })
  agent = await startAgentProcess({
    netns: lab.switchNs,
    args: ['--port', lab.switchIf, '--vid-pool', '100-199', '--switch-id', 'leaf1', '--dataplane', 'dry-run'],
    config: { evb: { retries: 3, rte: 8, rwd: 20, rka: 20, groupId: true, reflectiveRelay: true }, lldpTxIntervalS: 1 },
  })
  await lab.waitForBridgeEvb((t) => t.bridgeStatus.bgid, 20_000)
}, 60_000)

afterAll(async () => {
  await agent?.stop()
  await lab?.stop()
})

const vsi = (n: number, filters: Array<{ vid: number; mac?: string; groupId?: number }>, typeId = 5) => ({
  mgrid2: 'vdplab', typeId, typeVersion: 1, uuid: lab.uuid(n), filters,
})

describe('vdp-agent bridge with an lldpad station', () => {
  it('answers an Associate with VID 0 with a VID from the pool', async () => {
    const r = await lab.vdptool.associate(vsi(1, [{ vid: 0, mac: lab.vsiMac(1) }]), { wait: true })
    expect(r.kind).toBe('response')
    if (r.kind !== 'response') return
    expect(r.event.mode).toBe('assoc')
    expect(r.event.outcome.success).toBe(true)
    expect(r.event.filters[0]!.vid).toBe(100)
    const rows = (await agent.call('vsis')) as Array<{ vsiId: { id: string }; entries: Array<{ vid: number }>; mode: string }>
    expect(rows).toHaveLength(1)
    expect(rows[0]!.entries[0]!.vid).toBe(100)
    expect(rows[0]!.mode).toBe('associate')
  })
})
