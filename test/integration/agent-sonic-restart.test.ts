// vdp-agent with the SONiC data plane (CONFIG_DB/STATE_DB in a real redis-server) against an
// lldpad station: the keys SONiC's own tools write, an operator's VLAN left alone, release on
// de-associate, and a SIGKILL + restart that resumes the VSIs without touching the data plane.
import { spawn, type ChildProcess } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Redis } from 'ioredis'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { startAgentProcess, type AgentProcess } from '../support/agent-process.ts'
import { startLldpadLab, type LldpadLab } from '../support/lldpad-lab.ts'
import { sleep } from '../support/lldpad.ts'

/** The redis socket and data, and the agent's state dir: made in beforeAll, deleted in afterAll. */
let dir = ''
let SOCK = ''
let STATE = ''

async function startRedisOnSocket(): Promise<ChildProcess> {
  const child = spawn('/usr/bin/redis-server', ['--port', '0', '--unixsocket', SOCK, '--unixsocketperm', '700', '--save', '', '--appendonly', 'no', '--dir', dir], { stdio: ['ignore', 'pipe', 'pipe'] })
  await new Promise<void>((resolve, reject) => {
    let out = ''
    const t = setTimeout(() => reject(new Error(`redis-server not ready: ${out}`)), 10_000)
    child.stdout!.on('data', (d: Buffer) => { out += d; if (/ready to accept/i.test(out)) { clearTimeout(t); resolve() } })
    child.once('exit', (c) => reject(new Error(`redis-server exited ${c}: ${out}`)))
  })
  return child
}

const vsi = (lab: LldpadLab, n: number, filters: Array<{ vid: number; mac?: string; groupId?: number }>) => ({ mgrid2: 'vdplab', typeId: 5, typeVersion: 1, uuid: lab.uuid(n), filters })

describe('vdp-agent with the SONiC data plane, killed and restarted', () => {
  let redisProc: ChildProcess
  let cfg: Redis
  let state: Redis
  let lab: LldpadLab
  let agent: AgentProcess
  const agentArgs = () => ['--port', lab.switchIf, '--vid-pool', '100-199', '--switch-id', 'leaf3', '--dataplane', 'sonic']
  const agentConfig = () => ({ sonic: { redisUrl: SOCK, vxlanTunnel: 'vtep' }, evb: { retries: 3, rte: 12, rwd: 20, rka: 14, groupId: true, reflectiveRelay: true }, lldpTxIntervalS: 1 })

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'vdp-sonic-'))
    SOCK = join(dir, 'redis.sock')
    STATE = join(dir, 'state')
    redisProc = await startRedisOnSocket()
    cfg = new Redis({ path: SOCK, db: 4 })
    state = new Redis({ path: SOCK, db: 6 })
    // What the operator configured before the agent came: a VLAN and the VXLAN tunnel.
    await cfg.hset('VLAN|Vlan999', 'vlanid', '999')
    await cfg.hset('VXLAN_TUNNEL|vtep', 'src_ip', '10.0.0.1')
    // RTE 12 widens toutKeepAlive to 676 ms (272 ms with RTE 8) for a station stalled on a loaded machine
    lab = await startLldpadLab({ name: 'agsn', bridge: 'none', waitForEvb: false, evb: { vdpRka: 14, ecpRte: 12 } })
    agent = await startAgentProcess({ netns: lab.switchNs, stateDir: STATE, args: agentArgs(), config: agentConfig() })
    await lab.waitForBridgeEvb((t) => t.bridgeStatus.bgid && t.rte === 12, 20_000)
  }, 90_000)
  afterAll(async () => {
    await agent?.stop()
    await lab?.stop()
    cfg?.disconnect()
    state?.disconnect()
    redisProc?.kill('SIGKILL')
    if (dir !== '') rmSync(dir, { recursive: true, force: true })
  })

  const configKeys = async () => (await cfg.keys('*')).sort()
  /** Retries `check` until it passes (the agent writes Redis after answering), or rethrows. */
  const eventually = async (check: () => Promise<void>, timeoutMs = 5000): Promise<void> => {
    const end = Date.now() + timeoutMs
    for (;;) {
      try {
        return await check()
      } catch (e) {
        if (Date.now() > end) throw e
        await sleep(50)
      }
    }
  }

  it('writes VLAN, VLAN_MEMBER and VXLAN_TUNNEL_MAP as SONiC\'s tools do, and STATE_DB rows', async () => {
    for (const [n, f] of [[1, { vid: 0, groupId: 7001 }], [2, { vid: 0, groupId: 7001 }], [3, { vid: 0, mac: lab.vsiMac(3), groupId: 7002 }]] as const) {
      const r = await lab.vdptool.associate(vsi(lab, n, [f]), { wait: true })
      expect(r.kind === 'response' && r.event.outcome.success).toBe(true)
    }
    await eventually(async () => expect(await state.keys('VDP_VSI_TABLE|*')).toHaveLength(3))
    await eventually(async () => expect(await configKeys()).toEqual([
      'VLAN_MEMBER|Vlan100|' + lab.switchIf, 'VLAN_MEMBER|Vlan101|' + lab.switchIf, 'VLAN|Vlan100', 'VLAN|Vlan101', 'VLAN|Vlan999',
      'VXLAN_TUNNEL_MAP|vtep|map_7001_Vlan100', 'VXLAN_TUNNEL_MAP|vtep|map_7002_Vlan101', 'VXLAN_TUNNEL|vtep',
    ].sort()))
    expect(await cfg.hgetall('VLAN|Vlan100')).toEqual({ vlanid: '100' })
    expect(await cfg.hgetall(`VLAN_MEMBER|Vlan100|${lab.switchIf}`)).toEqual({ tagging_mode: 'tagged' })
    expect(await cfg.hgetall('VXLAN_TUNNEL_MAP|vtep|map_7001_Vlan100')).toEqual({ vni: '7001', vlan: 'Vlan100' })
    const rows = await state.keys('VDP_VSI_TABLE|*')
    expect(rows).toHaveLength(3)
    const row = await state.hgetall(`VDP_VSI_TABLE|${lab.switchIf}|${lab.uuid(3).replace(/-/g, '')}`)
    expect(row).toMatchObject({ state: 'associated' })
    expect(JSON.stringify(row)).toContain('101')
    // Each association that changed CONFIG_DB was one timed commit (the second VSI of VN 7001
    // changed nothing), reported apart from the VDP response time.
    let metrics = ''
    await eventually(async () => {
      metrics = String(await agent.call('metrics'))
      expect(metrics).toContain('vdp_agent_dataplane_commit_seconds_count{dataplane="sonic"} 2\n')
    })
    const sum = Number(/vdp_agent_dataplane_commit_seconds_sum\{dataplane="sonic"\} (\S+)/.exec(metrics)?.[1])
    expect(sum).toBeGreaterThan(0)
    expect(sum).toBeLessThan(5)
  })

  it('survives SIGKILL: the restarted agent resumes every VSI with the same VID and writes nothing', async () => {
    const before = await configKeys()
    // The state file is written shortly after each change (coalesced): kill once it holds all
    // three VSIs, which is what this test is about (resume from the file, write nothing).
    await eventually(async () => {
      const saved = JSON.parse(readFileSync(join(STATE, 'resources.json'), 'utf8')) as { vsis: unknown[] }
      expect(saved.vsis).toHaveLength(3)
    })
    await agent.kill()
    // monitor() returns the monitoring connection: the events come from it, not from the
    // client it was called on (both are closed below).
    const monitorBase = new Redis({ path: SOCK })
    const monitor = await monitorBase.monitor()
    const writes: string[] = []
    let seen = 0
    monitor.on('monitor', (_t: string, args: string[]) => {
      seen++
      const cmd = String(args[0]).toLowerCase()
      if (['hset', 'hdel', 'del', 'hmset', 'unlink'].includes(cmd) && !String(args[1]).startsWith('VDP_VSI_TABLE')) writes.push(args.join(' '))
    })
    agent = await startAgentProcess({ netns: lab.switchNs, stateDir: STATE, args: agentArgs(), config: agentConfig() })
    const end = Date.now() + 10_000
    let rows: Array<{ vsiId: { id: string }; entries: Array<{ vid: number }>; mode: string }> = []
    while (Date.now() < end) {
      rows = (await agent.call('vsis')) as typeof rows
      if (rows.length === 3 && rows.every((r) => r.mode === 'associate')) break
      await sleep(100)
    }
    expect(rows.map((r) => r.entries[0]!.vid).sort()).toEqual([100, 100, 101])
    await sleep(1500) // past the unconfirmed-release grace period
    expect(await configKeys()).toEqual(before)
    expect(seen).toBeGreaterThan(0) // the restarted agent's reads were seen: the monitor works
    expect(writes).toEqual([])
    monitor.disconnect()
    monitorBase.disconnect()
    await agent.waitForLog('resources-restored', (e) => e.restored === 3)
  })

  it('releases the member, VLAN and tunnel map when the last VSI of a VN leaves, and its STATE_DB row', async () => {
    const r = await lab.vdptool.deAssociate(vsi(lab, 3, [{ vid: 101, mac: lab.vsiMac(3), groupId: 7002 }]), { wait: true })
    expect(r.kind).toBe('response')
    await eventually(async () => expect(await state.keys('VDP_VSI_TABLE|*')).toHaveLength(2))
    await eventually(async () => expect(await configKeys()).not.toContain('VLAN|Vlan101'))
    const keys = await configKeys()
    expect(keys).not.toContain('VLAN|Vlan101')
    expect(keys).not.toContain('VXLAN_TUNNEL_MAP|vtep|map_7002_Vlan101')
    expect(keys).toContain('VLAN|Vlan100')
    expect(keys).toContain('VLAN|Vlan999')
    expect(await state.keys('VDP_VSI_TABLE|*')).toHaveLength(2)
  })

  it('a VSI associated just before a SIGKILL, not yet in the state file, is resumed from the journal', async () => {
    // A save delay far longer than the test: after the association only the journal has it.
    await agent.stop()
    agent = await startAgentProcess({ netns: lab.switchNs, stateDir: STATE, args: agentArgs(), config: { ...agentConfig(), stateSaveDelayMs: 600_000 } })
    await agent.waitForLog('resources-restored', (e) => e.restored === 2)
    const r = await lab.vdptool.associate(vsi(lab, 4, [{ vid: 0, groupId: 7003 }]), { wait: true })
    expect(r.kind === 'response' && r.event.outcome.success).toBe(true)
    const vid = r.kind === 'response' ? r.event.filters[0]!.vid : 0
    expect(vid).toBeGreaterThanOrEqual(100)
    const hex = (id: string) => id.replace(/[^0-9a-f]/gi, '').toLowerCase()
    const saved = JSON.parse(readFileSync(join(STATE, 'resources.json'), 'utf8')) as { vsis: Array<{ vsiId: string }> }
    expect(saved.vsis.map((v) => hex(v.vsiId))).not.toContain(hex(lab.uuid(4)))
    await agent.kill()

    agent = await startAgentProcess({ netns: lab.switchNs, stateDir: STATE, args: agentArgs(), config: agentConfig() })
    await agent.waitForLog('resources-restored', (e) => e.restored === 3 && Number(e.journalRecords) >= 1)
    // Answered at restart, then kept alive by lldpad past the unconfirmed-release grace period
    // (RKA 14: a keep-alive every ~0.16 s).
    await sleep(3000)
    const rows = (await agent.call('vsis')) as Array<{ vsiId: { id: string }; entries: Array<{ vid: number }>; mode: string }>
    const row = rows.find((x) => hex(x.vsiId.id) === hex(lab.uuid(4)))
    expect(row?.mode).toBe('associate')
    expect(row?.entries[0]!.vid).toBe(vid)
    const record = await lab.vdptool.query(lab.uuid(4))
    expect(record?.mode).toBe('assoc')
    expect(record?.filters[0]?.vid).toBe(vid)
    expect(await configKeys()).toContain(`VXLAN_TUNNEL_MAP|vtep|map_7003_Vlan${vid}`)
  })

  it('after a kill with the station gone, the restarted agent removes what nobody confirms', async () => {
    await agent.kill()
    await lab.station.stop()
    agent = await startAgentProcess({ netns: lab.switchNs, stateDir: STATE, args: agentArgs(), config: agentConfig() })
    const end = Date.now() + 10_000
    while (Date.now() < end && (await configKeys()).includes('VLAN|Vlan100')) await sleep(100)
    expect(await configKeys()).toEqual(['VLAN|Vlan999', 'VXLAN_TUNNEL|vtep'])
    expect(await state.keys('VDP_VSI_TABLE|*')).toEqual([])
  })
})
