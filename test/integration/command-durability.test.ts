// Commands survive an edge restart, on real processes: a `vdp-edge` with an SQLite store and
// its embedded broker (or mosquitto), a `vdp-agent` bridge (leaf1) on the root-side end of a
// veth pair and a `vdp-agent` station in a host namespace on the other end, holding one VSI.
//
// leaf1 is killed (offline), an operator disconnects the VSI (the command is pending), the
// edge is SIGKILLed and started again on the same database and ports, leaf1 comes back with
// its state directory: the edge publishes the pending command when leaf1 announces itself
// online, leaf1 de-associates the VSI once and answers, and the command is `answered`.
// With the embedded broker that copy is the only one (aedes died with the edge); with
// mosquitto, leaf1's persistent session also kept the first copy, and the edge's copies at
// its start and at leaf1's `online` come on top: leaf1 still executes it once.
// Also shown: the switch's status and the policy across the restart (docs/mqtt.md).
import { execFile, execFileSync } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { promisify } from 'node:util'
import mqtt from 'mqtt'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { decodeCommandReply } from '../../shared/api/commands.ts'
import { hashBrokerPassword } from '../../edge/broker/embedded-broker.ts'
import { startAgentProcess, type AgentProcess } from '../support/agent-process.ts'
import { EdgeApi, eventually, startEdgeProcess, type EdgeProcess } from '../support/fleet.ts'
import { freePort, Mosquitto } from '../support/mosquitto.ts'
import { exec, NetnsLab, REPO_ROOT } from '../support/netns.ts'

const run = promisify(execFile)
const ADMIN_TOKEN = 'cmd-durability-admin-token-0123'
const LEAF_PASSWORD = 'leaf1-mqtt-secret'
const EDGE_PASSWORD = 'edge-mqtt-secret'
const UUID = '5644504c-4142-4000-8000-00000000c001'
const VSI_ID = UUID.replace(/-/g, '')
const VM_MAC = '02:76:64:72:00:c1'
const VNI = 7002
/** Keep-alive every 10 us * 2^22 = 42 s: the station keeps its VSI through the bridge's outage. */
const EVB = { retries: 3, rte: 8, rwd: 20, rka: 22, groupId: true, reflectiveRelay: true }

interface CommandView {
  command: { commandId: string; switchId: string; expiresAt?: number }
  state: string
  resends: number
  reply?: { status: string; affected: number }
}

type BrokerKind = 'embedded' | 'mosquitto'

describe.each<BrokerKind>(['embedded', 'mosquitto'])('commands survive an edge restart (%s broker, SQLite store)', (broker) => {
  const cleanups: Array<() => Promise<unknown>> = []
  let lab: NetnsLab
  let bridgeIf: string
  let dir: string
  let edgeArgs: string[]
  let edge: EdgeProcess
  let station: AgentProcess
  let bridgeStateDir: string
  let mosquittoUrl: string | undefined

  const startBridge = () =>
    startAgentProcess({
      args: ['--port', bridgeIf, '--vid-pool', '100-199', '--switch-id', 'leaf1', '--dataplane', 'dry-run', '--mqtt', edge.mqttUrl],
      config: { evb: EVB, lldpTxIntervalS: 1, mqtt: { username: 'leaf1', password: LEAF_PASSWORD } },
      stateDir: bridgeStateDir,
    })

  beforeAll(async () => {
    lab = await NetnsLab.create(broker === 'embedded' ? 'cmddure' : 'cmddurm')
    cleanups.push(() => lab.cleanup())
    const host = await lab.addNamespace('host')
    const sw = await lab.addNamespace('sw')
    // The bridge end moves to the root namespace, where the edge listens on 127.0.0.1; deleting
    // the host namespace (lab cleanup) deletes the pair.
    bridgeIf = `cd${randomBytes(3).toString('hex')}`
    await lab.addVethPair({ ns: host, ifname: 'h0', mac: '02:76:64:72:01:01' }, { ns: sw, ifname: bridgeIf, mac: '02:76:64:72:01:02' })
    const removeIf = () => {
      try {
        execFileSync('ip', ['link', 'del', 'dev', bridgeIf], { stdio: 'ignore' })
      } catch {
        // gone with the namespace
      }
    }
    process.on('exit', removeIf)
    cleanups.push(async () => {
      process.off('exit', removeIf)
      removeIf()
    })
    await exec('ip', ['-n', sw, 'link', 'set', bridgeIf, 'netns', String(process.pid)])
    await exec('sysctl', ['-q', '-w', `net.ipv6.conf.${bridgeIf}.disable_ipv6=1`])
    await exec('ip', ['link', 'set', bridgeIf, 'up'])

    dir = mkdtempSync(join(tmpdir(), 'vdp-cmd-durability-'))
    cleanups.push(async () => rmSync(dir, { recursive: true, force: true }))
    // kept across the bridge's restarts (the helper deletes a state dir of its own at exit)
    bridgeStateDir = join(dir, 'bridge-state')
    writeFileSync(join(dir, 'tokens.json'), JSON.stringify([{ name: 'ops', token: ADMIN_TOKEN, scope: 'admin' }]), { mode: 0o600 })
    writeFileSync(join(dir, 'users.json'), JSON.stringify([{ username: 'leaf1', passwordHash: hashBrokerPassword(LEAF_PASSWORD) }]))
    // Fixed ports: the agent reconnects to the same URL after the edge restart.
    const httpPort = await freePort()
    edgeArgs = ['--http', `127.0.0.1:${httpPort}`, '--tokens', join(dir, 'tokens.json'), '--db', join(dir, 'fleet.sqlite')]
    if (broker === 'embedded') {
      edgeArgs.push('--mqtt-listen', `127.0.0.1:${await freePort()}`, '--mqtt-users', join(dir, 'users.json'))
    } else {
      const mosq = await Mosquitto.start({ users: { leaf1: LEAF_PASSWORD, 'vdp-edge': EDGE_PASSWORD }, serviceUsers: ['vdp-edge'] })
      cleanups.push(() => mosq.close())
      mosquittoUrl = mosq.url
      writeFileSync(join(dir, 'mqtt-password'), `${EDGE_PASSWORD}\n`, { mode: 0o600 })
      edgeArgs.push('--mqtt', mosq.url, '--mqtt-username', 'vdp-edge', '--mqtt-password-file', join(dir, 'mqtt-password'), '--mqtt-client-id', 'vdp-edge-cmddur')
    }
    edge = await startEdgeProcess(edgeArgs)
    cleanups.push(() => edge.stop())
    expect([200, 201]).toContain((await new EdgeApi(edge.httpUrl, ADMIN_TOKEN).request('PUT', `/vns/cmddur`, { vni: VNI, tenant: 't' })).status)

    const bridge = await startBridge()
    cleanups.push(() => bridge.stop())
    await bridge.waitForLog('policy-applied', (e) => e.source === 'broker' && e.vns === 1, 20_000)
    await bridge.stop()
    cleanups.pop()
    station = await startAgentProcess({ netns: host, args: ['--role', 'station', '--port', 'h0', '--switch-id', 'hv1'], config: { evb: EVB, lldpTxIntervalS: 1 } })
    cleanups.push(() => station.stop())
  }, 90_000)

  afterAll(async () => {
    const errors: unknown[] = []
    for (const c of cleanups.reverse()) await c().catch((e: unknown) => errors.push(e))
    if (errors.length) throw new Error(`cleanup failed: ${errors.map(String).join('; ')}`)
  }, 30_000)

  it('a disconnect issued while the switch is offline is executed once after an edge SIGKILL and restart', async () => {
    let api = new EdgeApi(edge.httpUrl, ADMIN_TOKEN)
    // leaf1 up with the VSI associated, as the edge sees it.
    let bridge = await startBridge()
    cleanups.push(() => bridge.stop())
    await station.waitForLog('evb-negotiated', () => true, 15_000)
    const assoc = await run(process.execPath, ['bin/vdpctl.mjs', 'associate', '--uuid', UUID, '--mgrid', 'hv1', '--typeid', '5', '--typeidver', '1',
      '--filter', `0-${VM_MAC}-${VNI}`, '--json', '--socket', station.socket], { cwd: REPO_ROOT })
    expect(JSON.parse(assoc.stdout)).toMatchObject({ outcome: 'associated' })
    await eventually('the VSI associated in the edge', async () =>
      (await api.find<{ state: string }>(`/vsis/${VSI_ID}`))?.state === 'associated' ? true : undefined, 10_000)

    // leaf1 dies once its state file holds the VSI (saves are coalesced, <= 1 s): its last will
    // says offline.
    await eventually('the VSI in leaf1\'s state file', async () => {
      const text = readFileSync(join(bridgeStateDir, 'resources.json'), 'utf8').toLowerCase()
      return text.includes(VSI_ID) || text.includes(UUID) ? true : undefined
    }, 5000)
    await bridge.kill()
    await eventually('leaf1 offline', async () => ((await api.get<{ status: string }>('/switches/leaf1')).status === 'offline' ? true : undefined))

    const posted = await api.request<{ commands: Array<{ commandId: string; state: string }> }>('POST', '/commands/disconnect-vsi', { vsiId: VSI_ID, switchId: 'leaf1' })
    expect(posted.status).toBe(202)
    const commandId = posted.body.commands[0]!.commandId
    expect(posted.body.commands[0]!.state).toBe('pending')

    // The edge dies without a chance to save anything, and starts again on the same files.
    edge.child.kill('SIGKILL')
    await edge.stop()
    edge = await startEdgeProcess(edgeArgs)
    api = new EdgeApi(edge.httpUrl, ADMIN_TOKEN)
    const kept = await api.get<CommandView>(`/commands/${commandId}`)
    expect(kept).toMatchObject({ state: 'pending', command: { switchId: 'leaf1' } })
    expect(kept.command.expiresAt).toBeGreaterThan(Date.now())
    // Status is kept in the store (aedes' retained copy is gone with the process).
    expect((await api.get<{ status: string }>('/switches/leaf1')).status).toBe('offline')

    // With mosquitto, count leaf1's replies: one per copy it received.
    let replies = 0
    const monitor = mosquittoUrl === undefined ? undefined
      : await mqtt.connectAsync(mosquittoUrl, { username: 'vdp-edge', password: EDGE_PASSWORD, clientId: 'cmddur-monitor' })
    if (monitor) {
      monitor.on('message', (_t, p) => (decodeCommandReply(p).commandId === commandId ? replies++ : undefined))
      await monitor.subscribeAsync('vdp/switch/leaf1/replies', { qos: 1 })
      cleanups.push(() => monitor.endAsync())
    }

    // leaf1 returns: it gets a fresh policy (re-published at start) and the command.
    bridge = await startBridge()
    await bridge.waitForLog('policy-applied', (e) => e.source === 'broker' && e.vns === 1, 20_000)
    const answered = await eventually('the command answered', async () => {
      const r = await api.get<CommandView>(`/commands/${commandId}`)
      return r.state === 'answered' ? r : undefined
    }, 20_000)
    expect(answered.reply).toMatchObject({ status: 'done', affected: 1 })
    const executions = (a: AgentProcess) => a.log().filter((e) => e.msg === 'Command executed' && e.commandId === commandId).length
    expect(executions(bridge)).toBe(1)
    if (monitor) {
      // The session's queued copy plus the edge's copy at its start (at least): answered alike.
      await eventually('a reply to every copy', async () => (replies >= 2 ? true : undefined), 5000)
    }
    expect(answered.resends).toBeGreaterThanOrEqual(1)
    await station.waitForLog('vsi-de-associated', (e) => e.reason === 'bridge-request', 10_000)
    await eventually('leaf1 online', async () => ((await api.get<{ status: string }>('/switches/leaf1')).status === 'online' ? true : undefined))
    await eventually('the VSI gone in the edge', async () =>
      (await api.find<{ state: string }>(`/vsis/${VSI_ID}`))?.state === 'gone' ? true : undefined, 10_000)

    // Once: one execution on leaf1, one de-associate at the station, even after another
    // reconnect of leaf1 (an answered command is not published again).
    await bridge.stop()
    bridge = await startBridge()
    await eventually('leaf1 online again', async () => ((await api.get<{ status: string }>('/switches/leaf1')).status === 'online' ? true : undefined))
    await new Promise((r) => setTimeout(r, 1000))
    expect(executions(bridge)).toBe(0)
    expect(station.log().filter((e) => e.event === 'vsi-de-associated' && e.reason === 'bridge-request')).toHaveLength(1)
    expect((await api.get<CommandView>(`/commands/${commandId}`)).state).toBe('answered')
    await bridge.stop()
  })
})
