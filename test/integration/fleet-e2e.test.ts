// End to end across every part on real components: unmodified lldpad stations (vdptool) in
// host namespaces, two `vdp-agent` processes (bin/vdp-agent.mjs) as leaf switches on the
// root-side ends of the stations' veth pairs, and a `vdp-edge` process (bin/vdp-edge.mjs)
// with its embedded broker or with an external mosquitto, queried over its HTTP API.
//
// Networking: the edge and the broker listen on 127.0.0.1 of the root namespace, so the
// agents run there too; each agent's port is the switch end of its lab's veth pair, moved into
// the root namespace (test/support/fleet.ts). Nothing leaves loopback or the test's veths.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { hashBrokerPassword } from '../../edge/broker/embedded-broker.ts'
import { startAgentProcess, removeDir, type AgentProcess } from '../support/agent-process.ts'
import { EdgeApi, eventually, moveSwitchPortToRoot, startEdgeProcess, type EdgeProcess, type RootPort } from '../support/fleet.ts'
import { startLldpadLab, type LldpadLab } from '../support/lldpad-lab.ts'
import type { VdpFilter, VdpHints } from '../support/lldpad.ts'
import { Mosquitto } from '../support/mosquitto.ts'
import { requireRoot } from '../support/netns.ts'

const ADMIN_TOKEN = 'fleet-e2e-admin-token-0123456789'
const READ_TOKEN = 'fleet-e2e-read-token-0123456789'
const PASSWORDS: Record<string, string> = { leaf1: 'leaf1-mqtt-secret', leaf2: 'leaf2-mqtt-secret', 'vdp-edge': 'edge-mqtt-secret' }
/** Keep-alive every 10 us * 2^16 = 655 ms. */
const RKA = 16
const VNI = 7001
const GRACE_MS = 2000

interface Place {
  switchId: string
  port: string
  stationMac: string
  state: string
  vni?: number
  groupId?: number
  vid: number
  macs: string[]
  migration: string
}
interface Migration {
  migrationId: string
  from: { switchId: string; port: string; stationMac: string }
  to: { switchId: string; port: string; stationMac: string }
  state: 'in-progress' | 'completed' | 'aborted'
  overlapped: boolean
  indicated: boolean
  cleanupCommandId?: string
}
interface VsiView {
  vsiId: string
  state: 'associated' | 'pre-associated' | 'gone'
  current?: Place
  holding: Place[]
  history: Place[]
  migrations: Migration[]
}
interface AgentRow { port: string; vsiId: { id: string }; entries: Array<{ vid: number; vni?: number; mac?: string }>; mode: string | null }
interface CommandRecord { command: { commandId: string; switchId: string; kind: string }; origin: string; reply?: { status: string; affected: number } }

interface Leaf {
  switchId: string
  lab: LldpadLab
  port: RootPort
  agent: AgentProcess
}

const hex = (uuid: string) => uuid.replace(/-/g, '')

const spec = (leaf: Leaf, n: number, filters: VdpFilter[], hints: VdpHints = 'none') => ({
  mgrid2: 'fleete2e', typeId: 5, typeVersion: 1, uuid: leaf.lab.uuid(n), filters, hints,
})

/** The VSI's filter as the station asks for it (VID 0: the switch picks) and as it then holds it. */
const asked = (leaf: Leaf, n: number): VdpFilter[] => [{ vid: 0, mac: leaf.lab.vsiMac(n), groupId: VNI }]
const held = (leaf: Leaf, n: number, vid: number): VdpFilter[] => [{ vid, mac: leaf.lab.vsiMac(n), groupId: VNI }]

async function startLeaf(name: string, switchId: string, index: number, mqttUrl: string, cleanups: Array<() => Promise<unknown>>): Promise<Leaf> {
  const lab = await startLldpadLab({
    name,
    bridge: 'none',
    waitForEvb: false,
    evb: { vdpRka: RKA },
    stationMac: `02:76:64:70:0${index}:01`,
    switchMac: `02:76:64:70:0${index}:02`,
  })
  cleanups.push(() => lab.stop())
  const port = await moveSwitchPortToRoot(lab)
  cleanups.push(() => port.remove())
  const agent = await startAgentProcess({
    args: ['--port', port.ifname, '--vid-pool', '100-199', '--switch-id', switchId, '--dataplane', 'dry-run', '--mqtt', mqttUrl],
    config: {
      evb: { retries: 3, rte: 8, rwd: 20, rka: RKA, groupId: true, reflectiveRelay: true },
      lldpTxIntervalS: 1,
      mqtt: { username: switchId, password: PASSWORDS[switchId] },
    },
  })
  cleanups.push(async () => {
    await agent.stop()
    removeDir(dirname(agent.socket))
  })
  // The edge's policy (VN 7001 only) replaces the agent's open lab policy after agent-started.
  await agent.waitForLog('policy-applied', (e) => e.source === 'broker' && e.vns === 1, 20_000)
  await lab.waitForBridgeEvb((t) => t.bridgeStatus.bgid && t.rka === RKA, 20_000)
  return { switchId, lab, port, agent }
}

type BrokerKind = 'embedded' | 'mosquitto'

describe.each<BrokerKind>(['embedded', 'mosquitto'])('fleet end to end with the %s broker', (broker) => {
  const cleanups: Array<() => Promise<unknown>> = []
  let edge: EdgeProcess
  let api: EdgeApi
  let readApi: EdgeApi
  let leaf1: Leaf
  let leaf2: Leaf

  beforeAll(async () => {
    requireRoot('the fleet end-to-end test')
    const dir = mkdtempSync(join(tmpdir(), 'vdp-fleet-e2e-'))
    cleanups.push(async () => rmSync(dir, { recursive: true, force: true }))
    writeFileSync(join(dir, 'tokens.json'), JSON.stringify([
      { name: 'ops', token: ADMIN_TOKEN, scope: 'admin' },
      { name: 'dashboard', token: READ_TOKEN, scope: 'read' },
    ]), { mode: 0o600 })
    const common = ['--http', '127.0.0.1:0', '--tokens', join(dir, 'tokens.json'), '--db', ':memory:', '--migration-grace-ms', String(GRACE_MS)]
    if (broker === 'embedded') {
      writeFileSync(join(dir, 'users.json'), JSON.stringify(['leaf1', 'leaf2'].map((u) => ({ username: u, passwordHash: hashBrokerPassword(PASSWORDS[u]!) }))))
      edge = await startEdgeProcess([...common, '--mqtt-listen', '127.0.0.1:0', '--mqtt-users', join(dir, 'users.json')])
    } else {
      const mosq = await Mosquitto.start({ users: PASSWORDS, serviceUsers: ['vdp-edge'] })
      cleanups.push(() => mosq.close())
      writeFileSync(join(dir, 'mqtt-password'), `${PASSWORDS['vdp-edge']}\n`, { mode: 0o600 })
      edge = await startEdgeProcess([...common, '--mqtt', mosq.url, '--mqtt-username', 'vdp-edge', '--mqtt-password-file', join(dir, 'mqtt-password'), '--mqtt-client-id', 'vdp-edge-e2e'])
    }
    cleanups.push(() => edge.stop())
    api = new EdgeApi(edge.httpUrl, ADMIN_TOKEN)
    readApi = new EdgeApi(edge.httpUrl, READ_TOKEN)
    const vn = await api.request('PUT', '/vns/db', { vni: VNI, tenant: 'e2e' })
    expect([200, 201]).toContain(vn.status)
    const tag = broker === 'embedded' ? 'e' : 'm'
    // allSettled: a leaf still starting when the other fails must have registered its cleanups.
    const leaves = await Promise.allSettled([
      startLeaf(`fe2e${tag}a`, 'leaf1', 1, edge.mqttUrl, cleanups),
      startLeaf(`fe2e${tag}b`, 'leaf2', 2, edge.mqttUrl, cleanups),
    ])
    for (const l of leaves) if (l.status === 'rejected') throw l.reason
    ;[leaf1, leaf2] = leaves.map((l) => (l as PromiseFulfilledResult<Leaf>).value) as [Leaf, Leaf]
  }, 60_000)

  afterAll(async () => {
    // Agents first (they say offline through the broker), then labs, ports, edge, broker, files.
    const errors: unknown[] = []
    for (const c of cleanups.reverse()) await c().catch((e: unknown) => errors.push(e))
    if (errors.length) throw new Error(`cleanup failed: ${errors.map(String).join('; ')}`)
  }, 30_000)

  const vsi = (uuid: string) => readApi.find<VsiView>(`/vsis/${uuid}`)
  const agentRow = async (leaf: Leaf, uuid: string) => ((await leaf.agent.call('vsis')) as AgentRow[]).find((r) => r.vsiId.id === hex(uuid))
  const associate = async (leaf: Leaf, n: number, hints: VdpHints = 'none') => {
    const r = await leaf.lab.vdptool.associate(spec(leaf, n, asked(leaf, n), hints), { wait: true })
    expect(r.kind).toBe('response')
    if (r.kind !== 'response') throw new Error('no response')
    expect(r.event.outcome.success).toBe(true)
    // The -W printout shows the GroupID as 0 (lldpad-interop.md gotcha 7); the station's table has it.
    expect(r.event.filters[0]).toMatchObject({ vid: 100, mac: leaf.lab.vsiMac(n) })
    expect((await leaf.lab.vdptool.query(leaf.lab.uuid(n)))?.filters[0]).toMatchObject({ vid: 100, mac: leaf.lab.vsiMac(n), groupId: VNI })
  }
  const waitAgentDropped = (leaf: Leaf, uuid: string) =>
    eventually(`${leaf.switchId} to drop ${uuid}`, async () => ((await agentRow(leaf, uuid)) === undefined ? true : undefined), 8000)
  const waitStationDropped = (leaf: Leaf, uuid: string) =>
    eventually(`${leaf.switchId}'s lldpad station to drop ${uuid}`, async () => ((await leaf.lab.vdptool.query(uuid)) === undefined ? true : undefined), 8000, 200)

  it('an lldpad association through leaf1 shows in the edge API within seconds, with switch, port, VN and VID', async () => {
    const uuid = leaf1.lab.uuid(1)
    const mac = leaf1.lab.vsiMac(1)
    const t0 = Date.now()
    await associate(leaf1, 1)
    expect((await agentRow(leaf1, uuid))?.entries[0]).toMatchObject({ vid: 100, vni: VNI, mac })
    const found = await eventually('the VSI in GET /vsis?mac=', async () => {
      const r = await readApi.get<{ vsis: VsiView[] }>(`/vsis?mac=${mac}`)
      return r.vsis.find((v) => v.state === 'associated')
    }, 5000, 50)
    expect(Date.now() - t0).toBeLessThan(5000)
    expect(found.vsiId).toBe(hex(uuid))
    expect(found.current).toMatchObject({
      switchId: 'leaf1', port: leaf1.port.ifname, stationMac: leaf1.lab.hostMac, state: 'associated', vni: VNI, groupId: VNI, vid: 100, macs: [mac],
    })
    const one = await vsi(uuid)
    expect(one?.holding.map((p) => [p.switchId, p.port, p.vid, p.vni])).toEqual([['leaf1', leaf1.port.ifname, 100, VNI]])
    // Other filters of the same lookup agree; the read token cannot write.
    expect((await readApi.get<{ vsis: VsiView[] }>(`/vsis?vni=${VNI}&switch=leaf1&port=${leaf1.port.ifname}`)).vsis.map((v) => v.vsiId)).toContain(hex(uuid))
    expect((await readApi.request('POST', '/commands/disconnect-vsi', { vsiId: uuid })).status).toBe(403)
    // Both switches are online (retained status topic), and no MQTT password reached the edge's log.
    for (const id of ['leaf1', 'leaf2']) {
      await eventually(`${id} online`, async () => ((await readApi.get<{ status: string }>(`/switches/${id}`)).status === 'online' ? true : undefined))
    }
    const edgeLog = JSON.stringify(edge.log())
    for (const pw of Object.values(PASSWORDS)) expect(edgeLog).not.toContain(pw)
  })

  it('a migration from leaf1 to leaf2 with overlap is one move, and the VSI is then at leaf2', async () => {
    const n = 2
    const uuid = leaf1.lab.uuid(n)
    await associate(leaf1, n)
    await eventually('the VSI at leaf1', async () => ((await vsi(uuid))?.current?.switchId === 'leaf1' ? true : undefined))
    // The destination station asks with the M bit ("to") while leaf1 still holds the VSI.
    await associate(leaf2, n, 'to')
    const during = await eventually('the overlap at the edge', async () => {
      const v = await vsi(uuid)
      return v?.holding.length === 2 ? v : undefined
    })
    expect(during.migrations).toHaveLength(1)
    expect(during.migrations[0]).toMatchObject({
      from: { switchId: 'leaf1', port: leaf1.port.ifname, stationMac: leaf1.lab.hostMac },
      to: { switchId: 'leaf2', port: leaf2.port.ifname, stationMac: leaf2.lab.hostMac },
      state: 'in-progress',
      overlapped: true,
      indicated: true,
    })
    expect(during.holding.find((p) => p.switchId === 'leaf2')?.migration).toBe('to')
    // The source station lets go (S bit, "from").
    const r = await leaf1.lab.vdptool.deAssociate(spec(leaf1, n, held(leaf1, n, 100), 'from'))
    expect(r.kind).toBe('sent')
    await waitAgentDropped(leaf1, uuid)
    const after = await eventually('the completed migration', async () => {
      const v = await vsi(uuid)
      return v?.migrations[0]?.state === 'completed' && v.holding.length === 1 ? v : undefined
    })
    expect(after.state).toBe('associated')
    expect(after.current).toMatchObject({ switchId: 'leaf2', port: leaf2.port.ifname, vni: VNI, vid: 100, state: 'associated' })
    expect(after.migrations).toHaveLength(1)
    expect(after.migrations[0]?.cleanupCommandId).toBeUndefined()
    expect(after.history.map((p) => [p.switchId, p.state])).toEqual([['leaf1', 'de-associated'], ['leaf2', 'associated']])
    const fleet = await readApi.get<{ migrations: Array<{ vsiId: string; migration: Migration }> }>('/migrations?limit=100')
    const ours = fleet.migrations.filter((m) => m.vsiId === hex(uuid))
    expect(ours).toHaveLength(1)
    expect(ours[0]?.migration).toMatchObject({ from: { switchId: 'leaf1' }, to: { switchId: 'leaf2' }, state: 'completed' })
    expect((await agentRow(leaf2, uuid))?.mode).toBe('associate')
  })

  it('when leaf1 does not let go, the edge sends it a cleanup disconnect-vsi after the grace period and leaf1 de-associates the VSI', async () => {
    const n = 3
    const uuid = leaf1.lab.uuid(n)
    await associate(leaf1, n)
    await eventually('the VSI at leaf1', async () => ((await vsi(uuid))?.current?.switchId === 'leaf1' ? true : undefined))
    const movedAt = Date.now()
    await associate(leaf2, n, 'to')
    const commandId = `cleanup-${hex(uuid)}-1`
    // Grace 2 s, then the edge's sweep (every 5 s) or the next ingested event issues it.
    const command = await eventually('the cleanup command and its reply', async () => {
      const c = await readApi.find<CommandRecord>(`/commands/${commandId}`)
      return c?.reply ? c : undefined
    }, GRACE_MS + 10_000, 100)
    expect(Date.now() - movedAt).toBeGreaterThanOrEqual(GRACE_MS)
    expect(command.origin).toBe('migration-cleanup')
    expect(command.command).toMatchObject({ kind: 'disconnect-vsi', switchId: 'leaf1' })
    expect(command.reply).toMatchObject({ status: 'done', affected: 1 })
    // leaf1's agent and its lldpad station no longer hold the VSI; leaf2 still does.
    await waitAgentDropped(leaf1, uuid)
    await leaf1.agent.waitForLog('vsi-de-associated', (e) => e.vsiId === hex(uuid))
    await waitStationDropped(leaf1, uuid)
    expect((await leaf2.lab.vdptool.query(uuid))?.filters[0]?.vid).toBe(100)
    expect((await agentRow(leaf2, uuid))?.mode).toBe('associate')
    const after = await eventually('the migration completed by the cleanup', async () => {
      const v = await vsi(uuid)
      return v?.migrations[0]?.state === 'completed' ? v : undefined
    })
    expect(after.migrations).toHaveLength(1)
    expect(after.migrations[0]).toMatchObject({ from: { switchId: 'leaf1' }, to: { switchId: 'leaf2' }, cleanupCommandId: commandId })
    expect(after.current).toMatchObject({ switchId: 'leaf2', state: 'associated' })
    expect(after.holding).toHaveLength(1)
  }, 30_000)

  it('a disconnect-vsi command from the API removes the VSI from the switch and from the lldpad station', async () => {
    const uuid = leaf1.lab.uuid(1)
    expect((await agentRow(leaf1, uuid))?.mode).toBe('associate')
    expect(await leaf1.lab.vdptool.query(uuid)).toBeDefined()
    const logOffset = leaf1.lab.station.logOffset()
    const r = await api.request<{ commands: Array<{ commandId: string; switchId: string; port?: string }> }>('POST', '/commands/disconnect-vsi', { vsiId: uuid, reason: 'e2e' })
    expect(r.status).toBe(202)
    expect(r.body.commands).toHaveLength(1)
    expect(r.body.commands[0]).toMatchObject({ switchId: 'leaf1', port: leaf1.port.ifname })
    await waitAgentDropped(leaf1, uuid)
    expect(await leaf1.agent.call('vsis', { vsiId: hex(uuid) })).toEqual([])
    // The bridge-initiated De-Associate reaches the station: lldpad reports it and forgets the VSI.
    const ev = await leaf1.lab.station.waitForVsiEvent(uuid, (e) => e.mode === 'deassoc', 8000, logOffset)
    expect(ev.mode).toBe('deassoc')
    await waitStationDropped(leaf1, uuid)
    const reply = await eventually('the reply to the operator command', async () => {
      const c = await readApi.find<CommandRecord>(`/commands/${r.body.commands[0]!.commandId}`)
      return c?.reply
    })
    expect(reply).toMatchObject({ status: 'done', affected: 1 })
    const gone = await eventually('the VSI gone at the edge', async () => {
      const v = await vsi(uuid)
      return v?.state === 'gone' ? v : undefined
    })
    expect(gone.holding).toEqual([])
    expect(gone.current).toMatchObject({ switchId: 'leaf1', state: 'de-associated' })
  })
})
