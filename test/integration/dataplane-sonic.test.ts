/**
 * SONiC driver against a real redis-server (private, loopback, no persistence): exact CONFIG_DB
 * keys and fields, operator-owned entries left alone, release, reconciliation after a
 * simulated kill (checked with MONITOR: unchanged keys get no writes), STATE_DB rows, and
 * Redis being unreachable.
 */
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest'
import { spawn } from 'node:child_process'
import { mkdtemp, readFile, rm } from 'node:fs/promises'
import { fileURLToPath } from 'node:url'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Redis } from 'ioredis'
import fc from 'fast-check'
import { DataplaneError } from '../../agent/dataplane/driver.ts'
import { OwnershipRecord } from '../../agent/dataplane/ownership.ts'
import { configDbEntries, openSonicDriver, vsiStateKey, type SonicDriver } from '../../agent/dataplane/sonic.ts'
import { validatePolicy } from '../../agent/resources/policy.ts'
import { createResourceManager } from '../../agent/resources/resource-manager.ts'
import { VidPool } from '../../agent/resources/vid-pool.ts'
import { freeLoopbackPort, startRedis, type RedisServer } from '../support/redis.ts'
import { rel, req } from '../agent/resources/requests.ts'
import { BridgeStationPair } from '../support/pair.ts'
import { groupCommand, vsiIdOf } from '../agent/port/fixtures.ts'
import { createDataplaneSync } from '../../agent/dataplane/sync.ts'
import type { VsiIdHex } from '../../shared/ids.ts'
import type { Mac } from '../../shared/ethernet/mac.ts'

const policy = validatePolicy({
  vns: [
    { vni: 5000, vsiTypes: 'any' },
    { vni: 6000, vid: 300, vsiTypes: 'any' },
    { vni: 7000, vsiTypes: 'any' },
  ],
})

let server: RedisServer
let cfg: Redis
let st: Redis
let dir: string
const drivers: SonicDriver[] = []

async function dump(db: Redis): Promise<Record<string, Record<string, string>>> {
  const out: Record<string, Record<string, string>> = {}
  for (const k of (await db.keys('*')).sort()) out[k] = await db.hgetall(k)
  return out
}

async function open(ownership: OwnershipRecord): Promise<SonicDriver> {
  const d = await openSonicDriver({ redis: server.url, vxlanTunnel: 'vtep', ownership })
  drivers.push(d)
  return d
}

beforeAll(async () => {
  server = await startRedis()
  cfg = new Redis(server.url, { db: 4 })
  st = new Redis(server.url, { db: 6 })
})

afterAll(async () => {
  await cfg.quit()
  await st.quit()
  await server.stop()
})

beforeEach(async () => {
  await cfg.flushall()
  dir = await mkdtemp(join(tmpdir(), 'dataplane-sonic-'))
})

afterEach(async () => {
  while (drivers.length > 0) await drivers.pop()!.close()
  await rm(dir, { recursive: true, force: true })
})

describe('SONiC driver on redis-server', () => {
  it('writes exactly the keys and fields SONiC tools write, and removes them on release', async () => {
    const ownership = await OwnershipRecord.load(join(dir, 'owned.json'), 'sonic', server.url)
    const dp = await open(ownership)
    const rm = createResourceManager(policy, VidPool.parse('100-199'))
    rm.request(req({ vsi: 1, port: 'Ethernet0', entries: [{ groupId: 5000 }] }), 0)
    rm.request(req({ vsi: 2, port: 'Ethernet4', entries: [{ groupId: 5000 }] }), 0)
    // Refused (type 9 is bound to no VN, the policy is closed): nothing for the data plane.
    expect(rm.request(req({ vsi: 3, port: 'Ethernet4', format: 1, entries: [{ vid: 0 }], typeId: 9 }), 0)).toMatchObject({ outcome: 'refused', error: 4 })
    const report = await dp.apply(rm.pollDataplaneChanges())
    expect(report.foreign).toEqual([])
    expect(await dump(cfg)).toEqual({
      'VLAN_MEMBER|Vlan100|Ethernet0': { tagging_mode: 'tagged' },
      'VLAN_MEMBER|Vlan100|Ethernet4': { tagging_mode: 'tagged' },
      'VLAN|Vlan100': { vlanid: '100' },
      'VXLAN_TUNNEL_MAP|vtep|map_5000_Vlan100': { vni: '5000', vlan: 'Vlan100' },
    })
    // The ownership record is on disk, written atomically, and lists exactly these keys.
    const file = JSON.parse(await readFile(join(dir, 'owned.json'), 'utf8'))
    expect(file).toEqual({
      version: 1,
      driver: 'sonic',
      scope: server.url,
      items: ['VLAN_MEMBER|Vlan100|Ethernet0', 'VLAN_MEMBER|Vlan100|Ethernet4', 'VLAN|Vlan100', 'VXLAN_TUNNEL_MAP|vtep|map_5000_Vlan100'],
    })

    rm.release(rel({ vsi: 1, port: 'Ethernet0', entries: [{ groupId: 5000, vid: 100 }] }), 0)
    await dp.apply(rm.pollDataplaneChanges())
    expect(Object.keys(await dump(cfg))).toEqual(['VLAN_MEMBER|Vlan100|Ethernet4', 'VLAN|Vlan100', 'VXLAN_TUNNEL_MAP|vtep|map_5000_Vlan100'])
    rm.release(rel({ vsi: 2, port: 'Ethernet4', entries: [{ groupId: 5000, vid: 100 }] }), 0)
    await dp.apply(rm.pollDataplaneChanges())
    expect(await dump(cfg)).toEqual({})
    expect(ownership.items()).toEqual([])
  })

  it('leaves an operator-created VLAN and member alone, and never deletes them', async () => {
    await cfg.hset('VLAN|Vlan300', { vlanid: '300', mtu: '9100' })
    await cfg.hset('VLAN_MEMBER|Vlan300|Ethernet8', { tagging_mode: 'untagged' })
    await cfg.hset('VLAN_MEMBER|Vlan300|Ethernet0', { tagging_mode: 'tagged' })
    const dp = await open(OwnershipRecord.inMemory('sonic'))
    const rm = createResourceManager(policy, VidPool.parse('100-199'))
    rm.request(req({ vsi: 1, port: 'Ethernet0', entries: [{ groupId: 6000 }] }), 0)
    rm.request(req({ vsi: 2, port: 'Ethernet12', entries: [{ groupId: 6000 }] }), 0)
    const r = await dp.apply(rm.pollDataplaneChanges())
    expect(r.foreign.sort()).toEqual(['VLAN_MEMBER|Vlan300|Ethernet0', 'VLAN|Vlan300'])
    expect(r.changed.sort()).toEqual(['VLAN_MEMBER|Vlan300|Ethernet12', 'VXLAN_TUNNEL_MAP|vtep|map_6000_Vlan300'])
    rm.release(rel({ vsi: 1, port: 'Ethernet0', entries: [{ groupId: 6000, vid: 300 }] }), 0)
    rm.release(rel({ vsi: 2, port: 'Ethernet12', entries: [{ groupId: 6000, vid: 300 }] }), 0)
    const ops = rm.pollDataplaneChanges()
    expect(ops.map((o) => o.op)).toEqual(['member-del', 'member-del', 'vlan-del'])
    await dp.apply(ops)
    expect(await dump(cfg)).toEqual({
      'VLAN_MEMBER|Vlan300|Ethernet0': { tagging_mode: 'tagged' },
      'VLAN_MEMBER|Vlan300|Ethernet8': { tagging_mode: 'untagged' },
      'VLAN|Vlan300': { mtu: '9100', vlanid: '300' },
    })
  })

  it('reconciles after a simulated kill: stale owned keys go, missing ones come back, unchanged ones are not written', async () => {
    const path = join(dir, 'owned.json')
    const rm = createResourceManager(policy, VidPool.parse('100-199'))
    const dp = await open(await OwnershipRecord.load(path, 'sonic', server.url))
    rm.request(req({ vsi: 1, port: 'Ethernet0', entries: [{ groupId: 5000 }] }), 0)
    rm.request(req({ vsi: 2, port: 'Ethernet4', entries: [{ groupId: 7000 }] }), 0)
    rm.request(req({ vsi: 3, port: 'Ethernet8', entries: [{ groupId: 7000 }] }), 0)
    await dp.apply(rm.pollDataplaneChanges())
    await cfg.hset('VLAN|Vlan555', { vlanid: '555' }) // the operator's
    // The agent persisted its snapshot, then VSI 3 left while the agent was being killed:
    // the data plane still has Ethernet8 in Vlan101, the snapshot does not.
    rm.release(rel({ vsi: 3, port: 'Ethernet8', entries: [{ groupId: 7000, vid: 101 }] }), 0)
    const snapshot = JSON.parse(JSON.stringify(rm.exportSnapshot()))
    // ... and someone deleted one of our keys while we were down.
    await cfg.del('VLAN_MEMBER|Vlan100|Ethernet0')
    // (the old process is gone: no close, no cleanup; a new one starts from the files)
    const rm2 = createResourceManager(policy, VidPool.parse('100-199'))
    expect(rm2.importSnapshot(snapshot).restored).toBe(2)
    const dp2 = await open(await OwnershipRecord.load(path, 'sonic', server.url))

    // monitor() opens its own connection: the client it came from is closed too, or it
    // would reconnect (and report errors) forever once this file's server stops.
    const monBase = new Redis(server.url)
    const mon = await monBase.monitor()
    const writes: string[][] = []
    mon.on('monitor', (_time: string, args: string[]) => {
      if (!['hgetall', 'watch', 'unwatch', 'multi', 'exec', 'select', 'info', 'client', 'ping'].includes(args[0]!.toLowerCase())) writes.push(args)
    })
    await new Promise((r) => setTimeout(r, 50))
    const report = await dp2.reconcile(rm2.dataplaneState())
    await new Promise((r) => setTimeout(r, 100))
    mon.disconnect()
    monBase.disconnect()

    expect(report.created).toEqual(['VLAN_MEMBER|Vlan100|Ethernet0'])
    expect(report.deleted).toEqual(['VLAN_MEMBER|Vlan101|Ethernet8'])
    expect(report.unchanged.sort()).toEqual([
      'VLAN_MEMBER|Vlan101|Ethernet4',
      'VLAN|Vlan100',
      'VLAN|Vlan101',
      'VXLAN_TUNNEL_MAP|vtep|map_5000_Vlan100',
      'VXLAN_TUNNEL_MAP|vtep|map_7000_Vlan101',
    ])
    expect(report.foreign).toEqual([])
    // Exactly two writes reached Redis: the stale member deleted, the missing one re-created.
    expect(writes).toEqual([
      ['del', 'VLAN_MEMBER|Vlan101|Ethernet8'],
      ['hset', 'VLAN_MEMBER|Vlan100|Ethernet0', 'tagging_mode', 'tagged'],
    ])
    expect(await cfg.hgetall('VLAN|Vlan555')).toEqual({ vlanid: '555' })
    // A second reconcile is a no-op.
    const again = await dp2.reconcile(rm2.dataplaneState())
    expect([again.created, again.deleted, again.repaired]).toEqual([[], [], []])
  })

  it('re-plans a batch when another writer touches a watched key, and gives up after the retries', async () => {
    const ownership = OwnershipRecord.inMemory('sonic')
    const operator = new Redis(server.url, { db: 4 })
    const dp = await openSonicDriver({
      redis: server.url,
      vxlanTunnel: 'vtep',
      ownership,
      // The operator creates Vlan100 between our read and our EXEC, once.
      beforeExec: async (attempt) => {
        if (attempt === 0) await operator.hset('VLAN|Vlan100', { vlanid: '100' })
      },
    })
    drivers.push(dp)
    const r = await dp.apply([{ op: 'vlan-add', vid: 100, vni: 5000 }, { op: 'member-add', vid: 100, port: 'Ethernet0' as never }])
    // Second attempt: Vlan100 is the operator's now, so it is foreign and not owned.
    expect(r.foreign).toEqual(['VLAN|Vlan100'])
    expect(r.changed.sort()).toEqual(['VLAN_MEMBER|Vlan100|Ethernet0', 'VXLAN_TUNNEL_MAP|vtep|map_5000_Vlan100'])
    expect(ownership.has('VLAN|Vlan100')).toBe(false)

    const stubborn = await openSonicDriver({
      redis: server.url,
      // Ours, and someone keeps rewriting it under every attempt.
      ownership: OwnershipRecord.inMemory('sonic', '', ['VLAN|Vlan200']),
      watchRetriesMax: 2,
      beforeExec: async (attempt) => void (await operator.hset('VLAN|Vlan200', { vlanid: `x${attempt}` })),
    })
    drivers.push(stubborn)
    const e = await stubborn.apply([{ op: 'vlan-add', vid: 200 }]).catch((x) => x)
    expect(e).toBeInstanceOf(DataplaneError)
    expect(e.code).toBe('conflict')
    expect(await cfg.hgetall('VLAN|Vlan200')).toEqual({ vlanid: 'x2' })
    await operator.quit()
  })

  it('repairs an owned key whose fields were changed, in place, and forgets owned keys already gone', async () => {
    const ownership = OwnershipRecord.inMemory('sonic', '', ['VLAN|Vlan100', 'VLAN|Vlan150'])
    await cfg.hset('VLAN|Vlan100', { vlanid: '999', stray: 'x' })
    const dp = await open(ownership)
    const r = await dp.reconcile({ vlans: [{ vid: 100 }], members: [] })
    expect(r.repaired).toEqual(['VLAN|Vlan100'])
    expect(r.forgotten).toEqual(['VLAN|Vlan150'])
    expect(await cfg.hgetall('VLAN|Vlan100')).toEqual({ vlanid: '100' })
    expect(ownership.items()).toEqual(['VLAN|Vlan100'])
  })

  it('publishes live VSI rows to STATE_DB and replaces the table after a restart', async () => {
    await st.flushdb()
    const dp = await open(OwnershipRecord.inMemory('sonic'))
    const row = {
      port: 'Ethernet0' as never,
      vsiId: '2bb0e9d34e8a4f0a9a3e5d2c1f0b7a61' as VsiIdHex,
      state: 'associated' as const,
      entries: [{ vid: 100, vni: 5000, mac: '52:54:00:12:34:56' as Mac }],
      station: '02:00:00:00:00:01' as Mac,
      managerId: '7664706c616200000000000000000000' as never,
      typeId: 1,
      typeVersion: 1,
      updatedMs: 1764064800000,
    }
    await dp.publishVsiState([{ kind: 'set', row }, { kind: 'set', row: { ...row, vsiId: 'ab'.repeat(16) as VsiIdHex, state: 'pre-associated' } }])
    expect(await st.hgetall(vsiStateKey('Ethernet0', row.vsiId))).toEqual({
      state: 'associated',
      'vn@': '5000',
      'vid@': '100',
      'macs@': '52:54:00:12:34:56',
      station: '02:00:00:00:00:01',
      manager_id: '7664706c616200000000000000000000',
      vsi_type: '1',
      vsi_type_version: '1',
      updated: '1764064800000',
    })
    expect((await st.keys('VDP_VSI_TABLE|*')).length).toBe(2)
    await dp.publishVsiState([{ kind: 'del', port: row.port, vsiId: row.vsiId }])
    expect(await st.keys('VDP_VSI_TABLE|*')).toEqual([`VDP_VSI_TABLE|Ethernet0|${'ab'.repeat(16)}`])
    await dp.publishVsiState([{ kind: 'set', row }], { replaceAll: true })
    expect(await st.keys('VDP_VSI_TABLE|*')).toEqual([vsiStateKey('Ethernet0', row.vsiId)])
    expect(await cfg.dbsize()).toBe(0)
  })
})

describe('VDP to CONFIG_DB: port cores, resource manager, sync and the SONiC driver', () => {
  it('a station associates over VDP with VID 0; the switch answers the VN VID and programs CONFIG_DB', async () => {
    const rm = createResourceManager(validatePolicy({ vns: [{ vni: 7001 }, { vni: 7002 }] }), VidPool.parse('100-199'))
    const pair = new BridgeStationPair({ resources: rm })
    const dp = await open(OwnershipRecord.inMemory('sonic'))
    const sync = createDataplaneSync(rm, dp)
    pair.driveUntil(() => pair.cores.every((c) => c.operational().groupIdEnabled))
    pair.settle()
    pair.command(pair.station, groupCommand('associate', 1, 7001))
    pair.command(pair.station, groupCommand('associate', 2, 7001))
    pair.command(pair.station, groupCommand('associate', 3, 7009)) // not in the policy: error 5
    pair.settle()
    await sync.flush()
    const vids = Object.fromEntries(pair.station.vsiSnapshot().map((v) => [v.vsi.vsiId.id, v.vsi.entries[0]!.vid]))
    expect(vids).toEqual({ [vsiIdOf(1).id]: 100, [vsiIdOf(2).id]: 100 })
    expect(pair.eventsOf(pair.station, 'vsi-rejected')).toMatchObject([{ error: 5 }])
    expect(await dump(cfg)).toEqual({
      'VLAN_MEMBER|Vlan100|sw0': { tagging_mode: 'tagged' },
      'VLAN|Vlan100': { vlanid: '100' },
      'VXLAN_TUNNEL_MAP|vtep|map_7001_Vlan100': { vni: '7001', vlan: 'Vlan100' },
    })
    pair.command(pair.station, { kind: 'de-associate', vsiId: vsiIdOf(1) })
    pair.command(pair.station, { kind: 'de-associate', vsiId: vsiIdOf(2) })
    pair.settle()
    await sync.flush()
    expect(await dump(cfg)).toEqual({})
    expect(sync.healthy).toBe(true)
    await sync.close()
  })
})

describe('SONiC driver property: CONFIG_DB always equals the desired state', () => {
  it('after any sequence of requests and releases, flushed through the sync', async () => {
    const cmd = fc.record({
      release: fc.boolean(),
      vsi: fc.integer({ min: 1, max: 8 }),
      port: fc.constantFrom('Ethernet0', 'Ethernet4', 'Ethernet8'),
      vn: fc.constantFrom(5000, 5001, 5002, 5003),
      mode: fc.constantFrom('associate' as const, 'pre-associate' as const),
    })
    await fc.assert(
      fc.asyncProperty(fc.array(cmd, { maxLength: 25 }), async (cmds) => {
        await cfg.flushdb()
        await cfg.hset('VLAN|Vlan101', { vlanid: '101' }) // the operator's, inside the pool
        const rm = createResourceManager(validatePolicy({ openVnis: true }), VidPool.parse('100-102'))
        const dp = await open(OwnershipRecord.inMemory('sonic'))
        const sync = createDataplaneSync(rm, dp)
        for (const c of cmds) {
          const spec = { vsi: c.vsi, port: c.port, mode: c.mode, entries: [{ groupId: c.vn }] }
          if (c.release) {
            const held = rm.heldVsis().find((h) => h.port === c.port && h.vsiId === req(spec).tlv.vsiId.id)
            if (held) rm.release(rel(spec, held.entries), 0)
          } else {
            rm.request(req(spec), 0)
          }
          await sync.flush()
        }
        expect(sync.healthy).toBe(true)
        const want = Object.fromEntries(configDbEntries(rm.dataplaneState(), 'vtep'))
        want['VLAN|Vlan101'] = { vlanid: '101' }
        expect(await dump(cfg)).toEqual(want)
        await sync.close()
        await drivers.pop()!.close()
      }),
      { numRuns: 40 },
    )
  })
})

describe('SONiC driver killed with SIGKILL mid-stream', () => {
  it('never leaks an owned key: the record stays a readable superset, and reconcile cleans up', async () => {
    const child = fileURLToPath(new URL('../agent/dataplane/sonic-writer.child.ts', import.meta.url))
    const path = join(dir, 'owned.json')
    await cfg.hset('VLAN|Vlan105', { vlanid: '105' }) // the operator's, inside the range the child uses
    for (let round = 0; round < 5; round++) {
      const proc = spawn(process.execPath, ['--import', 'tsx', child, server.url, path, String(round + 1)], { stdio: ['ignore', 'pipe', 'pipe'] })
      let out = ''
      let err = ''
      proc.stdout.on('data', (b: Buffer) => (out += b.toString()))
      proc.stderr.on('data', (b: Buffer) => (err += b.toString()))
      const exited = new Promise((r) => proc.once('exit', r))
      // Let it run a random number of batches, then kill it without warning.
      const target = 5 + round * 7
      const deadline = Date.now() + 20_000
      while (!out.includes(`batch ${target}\n`) && Date.now() < deadline && proc.exitCode === null) await new Promise((r) => setTimeout(r, 5))
      proc.kill('SIGKILL')
      await exited
      expect(err).toBe('')
      expect(out).toContain(`batch ${target}`)
      // The record is whole (atomic rename) and covers every key the child created.
      const record = await OwnershipRecord.load(path, 'sonic', server.url)
      const agentKeys = (await cfg.keys('*')).filter((k) => k !== 'VLAN|Vlan105')
      for (const k of agentKeys) expect(record.has(k), `${k} is in CONFIG_DB but not owned`).toBe(true)
    }
    // A new process with nothing desired removes exactly what the old ones created.
    const dp = await open(await OwnershipRecord.load(path, 'sonic', server.url))
    await dp.reconcile({ vlans: [], members: [] })
    expect(await dump(cfg)).toEqual({ 'VLAN|Vlan105': { vlanid: '105' } })
  })
})

describe('SONiC driver: tunnel maps and the factory', () => {
  it('does not map a VNI or VLAN that an operator map already uses, and says so', async () => {
    await cfg.hset('VXLAN_TUNNEL|vtep', { src_ip: '10.0.0.1' })
    await cfg.hset('VXLAN_TUNNEL_MAP|vtep|map_5000_Vlan900', { vni: '5000', vlan: 'Vlan900' })
    const dp = await open(OwnershipRecord.inMemory('sonic'))
    const r = await dp.apply([{ op: 'vlan-add', vid: 100, vni: 5000 }, { op: 'vlan-add', vid: 101, vni: 5001 }])
    expect(r.conflicts).toEqual(['VXLAN_TUNNEL_MAP|vtep|map_5000_Vlan100 <- VXLAN_TUNNEL_MAP|vtep|map_5000_Vlan900'])
    expect((await cfg.keys('VXLAN_TUNNEL_MAP|*')).sort()).toEqual(['VXLAN_TUNNEL_MAP|vtep|map_5000_Vlan900', 'VXLAN_TUNNEL_MAP|vtep|map_5001_Vlan101'])
    expect(await cfg.hgetall('VLAN|Vlan100')).toEqual({ vlanid: '100' })
  })

  it('warns when the VXLAN tunnel is missing, and still writes maps', async () => {
    const warnings: string[] = []
    const logger = { debug() {}, info() {}, warn: (m: string) => void warnings.push(m) }
    const dp = await openSonicDriver({ redis: server.url, vxlanTunnel: 'vtep', ownership: OwnershipRecord.inMemory('sonic'), logger })
    drivers.push(dp)
    expect(warnings).toEqual(['VXLAN tunnel missing in CONFIG_DB: VLAN-to-VNI maps will wait for it'])
  })

  it('openDataplane() keeps the ownership record in the state directory', async () => {
    const { openDataplane, OWNERSHIP_FILE } = await import('../../agent/dataplane/open.ts')
    const dp = await openDataplane({ dataplane: 'sonic', stateDir: dir, sonic: { redisUrl: server.url, vxlanTunnel: '' } })
    drivers.push(dp as SonicDriver)
    expect(dp.kind).toBe('sonic')
    await dp.reconcile({ vlans: [{ vid: 42, vni: 42 }], members: [{ vid: 42, port: 'Ethernet0' as never }] })
    expect(Object.keys(await dump(cfg))).toEqual(['VLAN_MEMBER|Vlan42|Ethernet0', 'VLAN|Vlan42'])
    expect(JSON.parse(await readFile(join(dir, OWNERSHIP_FILE), 'utf8')).items).toEqual(['VLAN_MEMBER|Vlan42|Ethernet0', 'VLAN|Vlan42'])
  })
})

describe('SONiC driver when Redis is unreachable', () => {
  it('openSonicDriver() rejects with "unavailable" and leaves no reconnect timer behind', async () => {
    const port = await freeLoopbackPort()
    const t0 = Date.now()
    const err = await openSonicDriver({ redis: `redis://127.0.0.1:${port}`, ownership: OwnershipRecord.inMemory('sonic'), connectTimeoutMs: 500 }).catch((e) => e)
    expect(err).toBeInstanceOf(DataplaneError)
    expect((err as DataplaneError).code).toBe('unavailable')
    expect(Date.now() - t0).toBeLessThan(3000)
  })

  it('fails fast while Redis is down, does not crash, and converges by reconcile once it is back', async () => {
    const own = await freeLoopbackPort()
    const local = await startRedis({ port: own })
    const dp = await openSonicDriver({ redis: local.url, vxlanTunnel: 'vtep', ownership: OwnershipRecord.inMemory('sonic') })
    try {
      await local.stop({ kill: true })
      await new Promise((r) => setTimeout(r, 100))
      const ops = [{ op: 'vlan-add' as const, vid: 10, vni: 10 }]
      const err = await dp.apply(ops).catch((e) => e)
      expect(err).toBeInstanceOf(DataplaneError)
      expect((err as DataplaneError).code).toBe('unavailable')
      const err2 = await dp.publishVsiState([]).catch((e) => e)
      expect((err2 as DataplaneError).code).toBe('unavailable')
      // Redis comes back on the same port; ioredis reconnects with backoff (≤ 5 s).
      const back = await startRedis({ port: own })
      try {
        const deadline = Date.now() + 15_000
        let report
        while (!report) {
          report = await dp.reconcile({ vlans: [{ vid: 10, vni: 10 }], members: [] }).catch((e: DataplaneError) => {
            if (e.code !== 'unavailable' || Date.now() > deadline) throw e
            return new Promise<undefined>((r) => setTimeout(() => r(undefined), 200))
          })
        }
        expect(report.created.sort()).toEqual(['VLAN|Vlan10', 'VXLAN_TUNNEL_MAP|vtep|map_10_Vlan10'])
      } finally {
        await dp.close()
        await back.stop()
      }
    } finally {
      await local.stop()
    }
  })
})
