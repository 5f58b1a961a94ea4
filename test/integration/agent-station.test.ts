// The agent in station role (the hypervisor side) driven by vdpctl, against our bridge and
// against lldpad's bridge; NVE-initiated disconnect from the bridge side.
import { execFile } from 'node:child_process'
import { promisify } from 'node:util'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { startAgentProcess, type AgentProcess } from '../support/agent-process.ts'
import { startLldpadLab, type LldpadLab } from '../support/lldpad-lab.ts'
import { NetnsLab, REPO_ROOT } from '../support/netns.ts'
import { sleep } from '../support/lldpad.ts'

const run = promisify(execFile)
const UUID = '5644504c-4142-4000-8000-00000000a001'
const VM_MAC = '02:76:64:71:00:a1'

async function vdpctl(socket: string, args: string[]): Promise<{ code: number; out: string; err: string }> {
  try {
    const { stdout, stderr } = await run(process.execPath, ['bin/vdpctl.mjs', ...args, '--socket', socket], { cwd: REPO_ROOT })
    return { code: 0, out: stdout, err: stderr }
  } catch (e) {
    const x = e as { code: number; stdout: string; stderr: string }
    return { code: x.code, out: x.stdout, err: x.stderr }
  }
}

const EVB = { retries: 3, rte: 8, rwd: 20, rka: 20, groupId: true, reflectiveRelay: true }

/** A veth pair sw0 (bridge agent) <-> h0 (station agent) in two namespaces of lab `name`. */
async function startAgentPair(
  name: string,
  evb: typeof EVB,
  n: number,
): Promise<{ lab: NetnsLab; bridge: AgentProcess; station: AgentProcess }> {
  const lab = await NetnsLab.create(name)
  const sw = await lab.addNamespace('sw')
  const host = await lab.addNamespace('host')
  await lab.addVethPair({ ns: host, ifname: 'h0', mac: `02:76:64:70:0${n}:01` }, { ns: sw, ifname: 'sw0', mac: `02:76:64:70:0${n}:02` })
  const bridge = await startAgentProcess({ netns: sw, args: ['--port', 'sw0', '--vid-pool', '300-309', '--switch-id', `leaf${n + 1}`], config: { evb, lldpTxIntervalS: 1 } })
  const station = await startAgentProcess({ netns: host, args: ['--role', 'station', '--port', 'h0', '--switch-id', `hv${2 * n - 1}`], config: { evb, lldpTxIntervalS: 1 } })
  await station.waitForLog('evb-negotiated', () => true, 10_000)
  return { lab, bridge, station }
}

describe('station agent against bridge agent', () => {
  let lab: NetnsLab
  let bridge: AgentProcess
  let station: AgentProcess
  beforeAll(async () => {
    ;({ lab, bridge, station } = await startAgentPair('agst', EVB, 1))
  }, 60_000)
  afterAll(async () => {
    await station?.stop()
    await bridge?.stop()
    await lab?.cleanup()
  })

  it('associates with VID 0 and stores the VID the bridge chose', async () => {
    const r = await vdpctl(station.socket, ['associate', '--uuid', UUID, '--mgrid', 'hv1', '--typeid', '5', '--typeidver', '1', '--filter', `0-${VM_MAC}`, '--json'])
    expect(r.err).toBe('')
    expect(r.code).toBe(0)
    const outcome = JSON.parse(r.out) as { outcome: string; vsi: { entries: Array<{ vid: number }> } }
    expect(outcome.outcome).toBe('associated')
    expect(outcome.vsi.entries[0]!.vid).toBe(300)
    const table = await vdpctl(bridge.socket, ['vsis'])
    expect(table.out).toMatch(/sw0\s+02:76:64:70:01:01\s+5644504c-4142-4000-8000-00000000a001\s+5\/1\s+associate/)
    expect(table.out).toContain('300')
    const metrics = await vdpctl(bridge.socket, ['metrics'])
    expect(metrics.code).toBe(0)
    expect(metrics.out).toMatch(/^vdp_port_vsis\{port="sw0"\} 1$/m)
    expect(metrics.out).toContain('# TYPE vdp_agent_dataplane_commit_seconds histogram')
    // The bridge's own share of the response time: the Associate, answered in its step.
    const count = Number(/^vdp_agent_vdp_response_seconds_count\{port="sw0"\} (\d+)$/m.exec(metrics.out)?.[1])
    const sum = Number(/^vdp_agent_vdp_response_seconds_sum\{port="sw0"\} (\S+)$/m.exec(metrics.out)?.[1])
    expect(count).toBeGreaterThanOrEqual(1)
    expect(sum).toBeGreaterThan(0)
    expect(sum / count).toBeLessThan(0.1)
    // A station answers nothing: no series of it there.
    expect((await vdpctl(station.socket, ['metrics'])).out).not.toMatch(/^vdp_agent_vdp_response_seconds_count/m)
  })

  it('goes associate -> pre-associate (deactivate) and back', async () => {
    const p = await vdpctl(station.socket, ['pre-associate', '--uuid', UUID, '--mgrid', 'hv1', '--typeid', '5', '--typeidver', '1', '--filter', `300-${VM_MAC}`, '--json'])
    expect(JSON.parse(p.out).outcome).toMatch(/pre-associated|deactivated/)
    const rows = JSON.parse((await vdpctl(bridge.socket, ['vsis', '--json'])).out) as Array<{ mode: string }>
    expect(rows[0]!.mode).toBe('pre-associate')
    const a = await vdpctl(station.socket, ['associate', '--uuid', UUID, '--mgrid', 'hv1', '--typeid', '5', '--typeidver', '1', '--filter', `300-${VM_MAC}`, '--json'])
    expect(JSON.parse(a.out).outcome).toBe('associated')
  })

  it('the bridge disconnects the VSI (NVE-initiated) and the station forgets it', async () => {
    const d = await vdpctl(bridge.socket, ['disconnect', '--vsi', UUID])
    expect(d.code).toBe(0)
    await station.waitForLog('vsi-de-associated', (e) => e.reason === 'bridge-request', 5000)
    expect(JSON.parse((await vdpctl(station.socket, ['vsis', '--json'])).out)).toEqual([])
    expect(JSON.parse((await vdpctl(bridge.socket, ['vlans', '--json'])).out)).toEqual([])
  })

  it('station de-associate ends the VSI on both sides', async () => {
    await vdpctl(station.socket, ['associate', '--uuid', UUID, '--mgrid', 'hv1', '--typeid', '5', '--typeidver', '1', '--filter', `0-${VM_MAC}`])
    const d = await vdpctl(station.socket, ['de-associate', '--uuid', UUID, '--json'])
    expect(JSON.parse(d.out).outcome).toBe('de-associated')
    expect(JSON.parse((await vdpctl(bridge.socket, ['vsis', '--json'])).out)).toEqual([])
  })

  it('acknowledges ECP requests in the addon on both sides once the peer is known', async () => {
    // By now each side has sent the other several requests (associate, pre-associate,
    // de-associate; the bridge's responses and its disconnect): the bridge's addon ACKs the
    // station's from the second on, the station's addon the bridge's once LLDP named it.
    const offloaded = async (a: AgentProcess, port: string) =>
      Number(new RegExp(`^vdp_link_ecp_acks_offloaded_total\\{port="${port}"\\} (\\d+)$`, 'm').exec((await vdpctl(a.socket, ['metrics'])).out)?.[1])
    expect(await offloaded(bridge, 'sw0')).toBeGreaterThan(0)
    expect(await offloaded(station, 'h0')).toBeGreaterThan(0)
  })

  it('takes the peer\'s ACKs in with the eBPF filter on both sides, and the cores count every one', async () => {
    // Every ECPDU so far was alone in its queue: from the second exchange on, each side's
    // filter took the other's ACK in and the agent handed it to the core, with no retransmission.
    const metric = async (a: AgentProcess, name: string, port: string) =>
      Number(new RegExp(`^${name}\\{port="${port}"\\} (\\d+)$`, 'm').exec((await vdpctl(a.socket, ['metrics'])).out)?.[1])
    for (const [agent, port] of [[bridge, 'sw0'], [station, 'h0']] as const) {
      const absorbed = await metric(agent, 'vdp_link_ecp_acks_absorbed_total', port)
      expect(absorbed).toBeGreaterThan(0)
      const counters = (JSON.parse((await vdpctl(agent.socket, ['counters', '--json'])).out) as Array<{ port: string; counters: Record<string, number> }>).find((c) => c.port === port)!.counters
      // The core counts what was handed over (the last one at the next step), the link what it took in.
      expect(counters.rxAcksAbsorbed).toBeGreaterThan(0)
      expect(counters.rxAcksAbsorbed).toBeLessThanOrEqual(absorbed)
      expect(counters.txRetransmits).toBe(0)
    }
  })

  it('reports bad arguments and a missing agent clearly', async () => {
    const bad = await vdpctl(station.socket, ['associate', '--uuid', UUID, '--filter', '0-zz:zz'])
    expect(bad.code).toBe(2)
    expect(bad.err).toMatch(/MAC/)
    const none = await vdpctl('/tmp/no-agent-here.sock', ['vsis'])
    expect(none.code).toBe(1)
    expect(none.err).toMatch(/unreachable/)
  })
})

describe('bridge agent answering keep-alives in the raw socket', () => {
  // RKA 14: a keep-alive every 164 ms; RTE 12 leaves a loaded machine room (toutKeepAlive 676 ms).
  const FAST = { ...EVB, rka: 14, rte: 12 }
  let lab: NetnsLab
  let bridge: AgentProcess
  let station: AgentProcess
  const uuid = (i: number) => `5644504c-4142-4000-8000-0000000ca00${i}`
  const mac = (i: number) => `02:76:64:71:0a:0${i}`
  /** A VSIID as the agent's logs and tables carry it (the UUID's 32 hex digits). */
  const idOf = (i: number) => uuid(i).replace(/-/g, '')
  const bridgeCounters = async () =>
    (JSON.parse((await vdpctl(bridge.socket, ['counters', '--json'])).out) as Array<{ port: string; counters: Record<string, number> }>).find((c) => c.port === 'sw0')!.counters
  beforeAll(async () => {
    ;({ lab, bridge, station } = await startAgentPair('agka', FAST, 2))
  }, 60_000)
  afterAll(async () => {
    await station?.stop()
    await bridge?.stop()
    await lab?.cleanup()
  })

  it('answers the keep-alives of confirmed VSIs without the port core, and keeps every VSI', async () => {
    for (const i of [1, 2, 3]) {
      const r = await vdpctl(station.socket, ['associate', '--uuid', uuid(i), '--mgrid', 'hv3', '--typeid', '5', '--typeidver', '1', '--filter', `0-${mac(i)}`, '--json'])
      expect(JSON.parse(r.out).outcome).toBe('associated')
    }
    const c0 = await bridgeCounters()
    await sleep(2000) // ~12 keep-alives per VSI
    const c1 = await bridgeCounters()
    const keepalives = c1.keepalivesRx! - c0.keepalivesRx!
    const answered = c1.keepalivesAnswered! - c0.keepalivesAnswered!
    expect(keepalives).toBeGreaterThanOrEqual(20)
    // Most answered by the socket. The core gets each VSI's first keep-alive (its VIDs now
    // filled in: other octets than the request it confirmed) and those that come within the
    // pacing gap (ecpTxGapUs, 5 ms) of the port's previous ECPDU or meet one in flight.
    expect(answered).toBeGreaterThanOrEqual(keepalives * 0.6)
    expect(c1.txRetransmits).toBe(0)
    const metrics = (await vdpctl(bridge.socket, ['metrics'])).out
    expect(Number(/^vdp_port_keepalives_answered_total\{port="sw0"\} (\d+)$/m.exec(metrics)?.[1])).toBeGreaterThanOrEqual(c1.keepalivesAnswered!)
    // The tables on both sides: every VSI held, the bridge's last keep-alive recent.
    const rows = JSON.parse((await vdpctl(bridge.socket, ['vsis', '--json'])).out) as Array<{ mode: string; lastSeenAgoMs: number }>
    expect(rows).toHaveLength(3)
    for (const r of rows) {
      expect(r.mode).toBe('associate')
      expect(r.lastSeenAgoMs).toBeLessThan(500)
    }
    expect(bridge.log().filter((e) => e.event === 'vsi-de-associated')).toHaveLength(0)
    // vdpctl ports: the answers the socket holds, whether it may answer now, and the offers
    // the grants left (one kind of VSI here: type, format and VN alike).
    const ports = JSON.parse((await vdpctl(bridge.socket, ['ports', '--json'])).out) as Array<{ name: string; keepAliveAnswers: { held: number; lent: boolean; offers: number } }>
    expect(ports.find((p) => p.name === 'sw0')?.keepAliveAnswers).toMatchObject({ held: 3, offers: 1 })
    const table = (await vdpctl(bridge.socket, ['ports'])).out
    expect(table.split('\n')[0]).toMatch(/ANSWERS\s+OFFERS\s*$/)
    expect(table).toMatch(/^sw0 .* 3( lent)?\s+1\s*$/m)
  })

  it('leaves a mode change to the port core, then answers the new mode\'s keep-alives', async () => {
    const p = await vdpctl(station.socket, ['pre-associate', '--uuid', uuid(1), '--mgrid', 'hv3', '--typeid', '5', '--typeidver', '1', '--filter', `300-${mac(1)}`, '--json'])
    expect(JSON.parse(p.out).outcome).toMatch(/pre-associated|deactivated/)
    const rows = JSON.parse((await vdpctl(bridge.socket, ['vsis', '--json'])).out) as Array<{ vsiId: { id: string }; mode: string }>
    expect(rows.find((r) => r.vsiId.id === idOf(1))?.mode).toBe('pre-associate')
    const c0 = await bridgeCounters()
    await sleep(1000)
    const c1 = await bridgeCounters()
    expect(c1.keepalivesAnswered! - c0.keepalivesAnswered!).toBeGreaterThanOrEqual(12)
    const after = JSON.parse((await vdpctl(bridge.socket, ['vsis', '--json'])).out) as Array<{ vsiId: { id: string }; mode: string }>
    expect(after.find((r) => r.vsiId.id === idOf(1))?.mode).toBe('pre-associate')
  })

  it('times the VSIs out once the station is gone, toutKeepAlive after its last keep-alive', async () => {
    const tout = 1.5 * (2 ** 14 * 10 + 4 * 2 ** 12 * 10) / 1000 // ms: 1.5 × (RKA + (R + 1) × RTE)
    const goneAt = Date.now()
    await station.kill()
    for (const i of [1, 2, 3]) await bridge.waitForLog('vsi-de-associated', (e) => e.vsiId === idOf(i), 10_000)
    const elapsed = Date.now() - goneAt
    const reasons = bridge.log().filter((e) => e.event === 'vsi-de-associated').map((e) => e.reason)
    expect(reasons).toEqual(['keepalive-timeout', 'keepalive-timeout', 'keepalive-timeout'])
    // At most one keep-alive period early (the last one came before the kill), at most a sweep
    // period (toutKeepAlive / 16) and the machine's delays late.
    expect(elapsed).toBeGreaterThan(tout - 200)
    expect(elapsed).toBeLessThan(tout + tout / 16 + 1500)
    expect(JSON.parse((await vdpctl(bridge.socket, ['vsis', '--json'])).out)).toEqual([])
  })
})

describe('station agent against the lldpad bridge', () => {
  let lab: LldpadLab
  let station: AgentProcess
  beforeAll(async () => {
    lab = await startLldpadLab({ name: 'agsl', bridge: 'lldpad', waitForEvb: false })
    await lab.station.stop()
    station = await startAgentProcess({ netns: lab.hostNs, args: ['--role', 'station', '--port', lab.hostIf, '--switch-id', 'hv2'], config: { evb: EVB, lldpTxIntervalS: 1 } })
    await station.waitForLog('evb-negotiated', () => true, 10_000)
    await sleep(1500) // lldpad's bridge takes VDP requests only after its EVB tick (gotcha 5)
  }, 60_000)
  afterAll(async () => {
    await station?.stop()
    await lab?.stop()
  })

  it('associates; lldpad echoes the request (it never assigns VIDs)', async () => {
    const r = await vdpctl(station.socket, ['associate', '--uuid', UUID, '--mgrid', 'hv2', '--typeid', '5', '--typeidver', '1', '--filter', `0-${VM_MAC}`, '--json'])
    expect(r.code).toBe(0)
    const o = JSON.parse(r.out) as { outcome: string; vsi: { entries: Array<{ vid: number }> } }
    expect(o.outcome).toBe('associated')
    expect(o.vsi.entries[0]!.vid).toBe(0)
    const groupId = await vdpctl(station.socket, ['associate', '--uuid', UUID.replace('a001', 'a002'), '--mgrid', 'hv2', '--typeid', '5', '--typeidver', '1', '--filter', `0--7001`, '--json'])
    expect(JSON.parse(groupId.out).outcome).toBe('associated')
  })
})
