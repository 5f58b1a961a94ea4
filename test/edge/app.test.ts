import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { encodeCbor } from '../../shared/api/cbor.ts'
import type { Command } from '../../shared/api/commands.ts'
import { encodeEvent, encodeEventBatch, EVENT_BYTES_MAX, type FleetEvent } from '../../shared/api/events.ts'
import { uuidFromVsiId } from '../../shared/ids.ts'
import { MemoryFleetStore } from '../../edge/store/memory-fleet-store.ts'
import { SqliteFleetStore } from '../../edge/store/sqlite-fleet-store.ts'
import type { FleetStore } from '../../edge/store/fleet-store.ts'
import { ingestEvents, sweepMigrations } from '../../edge/ingest.ts'
import { ADMIN_TOKEN, admin, cbor, json, read, READ_TOKEN, testEdge } from './support/app.ts'
import { agentStarted, ipOf, macOf, T0, vsiEvent, vsiIdOf } from './support/events.ts'
import { latestState } from './support/fold.ts'

const stores: [string, () => FleetStore][] = [
  ['MemoryFleetStore', () => new MemoryFleetStore()],
  ['SqliteFleetStore', () => new SqliteFleetStore({ path: ':memory:' })],
]

const metric = async (t: ReturnType<typeof testEdge>, line: string): Promise<number> => {
  const text = await (await t.app.request('/metrics', { headers: read })).text()
  const m = text.split('\n').find((l) => l.startsWith(line + ' '))
  return m ? Number(m.slice(line.length + 1)) : 0
}

describe.each(stores)('edge app on %s', (_name, makeStore) => {
  const ingest = async (t: ReturnType<typeof testEdge>, events: FleetEvent[]) => {
    const r = await t.app.request('/api/v1/ingest/events', cbor(encodeEventBatch(events)))
    expect(r.status).toBe(200)
    return (await r.json()) as { applied: number; duplicates: number; stale: number; migrations: string[]; commands: string[] }
  }

  it('POST /api/v1/ingest/events applies a batch once and counts the duplicates of a redelivery', async () => {
    const t = testEdge(makeStore())
    const batch = [agentStarted({}), vsiEvent({ seq: 1 }), vsiEvent({ seq: 2, vsi: 2 })]
    expect(await ingest(t, batch)).toMatchObject({ applied: 3, duplicates: 0 })
    expect(t.policies.map((p) => p.switchId)).toEqual(['tor1']) // a (re)started switch gets its policy
    expect(await ingest(t, batch)).toMatchObject({ applied: 0, duplicates: 3 })
    const single = await t.app.request('/api/v1/ingest/events', cbor(encodeEvent(vsiEvent({ seq: 3, vsi: 3 }))))
    expect(await single.json()).toMatchObject({ applied: 1 })
    expect(await metric(t, 'vdp_edge_events_applied_total')).toBe(4)
    expect(await metric(t, 'vdp_edge_events_duplicate_total')).toBe(3)
    expect(t.store.counts()).toMatchObject({ vsis: 3, events: 4, switches: 1 })
  })

  it('GET /api/v1/vsis finds a VSI by MAC, IP, VNI, switch and port; GET /vsis/:id takes a UUID', async () => {
    const t = testEdge(makeStore())
    await ingest(t, [
      vsiEvent({ seq: 1, vsi: 1, vni: 5000 }),
      vsiEvent({ seq: 2, vsi: 2, vni: 6000, port: 'Ethernet12', ipv4: ['10.9.9.9'] }),
      vsiEvent({ seq: 3, vsi: 3, vni: 5000 }),
      vsiEvent({ seq: 4, vsi: 3, vni: 5000, kind: 'vsi-de-associated' }),
    ])
    const find = async (q: string) => {
      const r = await t.app.request(`/api/v1/vsis?${q}`, { headers: read })
      expect(r.status).toBe(200)
      return ((await r.json()) as { vsis: { vsiId: string }[] }).vsis.map((v) => v.vsiId)
    }
    expect(await find(`mac=${macOf(2).toUpperCase()}`)).toEqual([vsiIdOf(2)])
    expect(await find('ip=10.9.9.9')).toEqual([vsiIdOf(2)])
    expect(await find(`ip=${ipOf(1)}`)).toEqual([vsiIdOf(1)])
    expect(await find('vni=5000')).toEqual([vsiIdOf(1), vsiIdOf(3)])
    expect(await find('vni=5000&state=associated')).toEqual([vsiIdOf(1)])
    expect(await find('switch=tor1')).toEqual([vsiIdOf(1), vsiIdOf(2)])
    expect(await find('switch=tor1&port=Ethernet12')).toEqual([vsiIdOf(2)])
    expect(await find('switch=tor9')).toEqual([])
    expect(await find('state=gone')).toEqual([vsiIdOf(3)])
    expect(await find(`limit=1&after=${vsiIdOf(1)}`)).toEqual([vsiIdOf(2)])
    const one = await t.app.request(`/api/v1/vsis/${uuidFromVsiId(vsiIdOf(3))}`, { headers: read })
    expect(await one.json()).toMatchObject({ vsiId: vsiIdOf(3), state: 'gone', current: { lastKind: 'vsi-de-associated' } })
    expect((await t.app.request(`/api/v1/vsis/${vsiIdOf(9)}`, { headers: read })).status).toBe(404)
    const bad = await t.app.request('/api/v1/vsis?mac=zz', { headers: read })
    expect(bad.status).toBe(400)
    expect(await bad.json()).toMatchObject({ error: { code: 'validation', path: 'mac' } })
  })

  it('reconstructs a migration, keeps the history, and sends one cleanup command when the source holds on', async () => {
    const t = testEdge(makeStore(), { migrationGraceMs: 5000 })
    await ingest(t, [vsiEvent({ seq: 1, sw: 'tor1', port: 'Ethernet8', time: T0 })])
    const moved = await ingest(t, [vsiEvent({ seq: 1, sw: 'tor2', port: 'Ethernet4', time: T0 + 100, migration: 'to', migrationId: 'mig-1' })])
    expect(moved.migrations).toEqual(['mig-1'])
    expect(moved.commands).toEqual([])
    const v = await (await t.app.request(`/api/v1/vsis/${vsiIdOf(1)}`, { headers: read })).json()
    expect(v).toMatchObject({ state: 'associated', current: { switchId: 'tor2' }, migrations: [{ migrationId: 'mig-1', state: 'in-progress' }] })
    expect(v.history).toHaveLength(2)
    t.clock.now = T0 + 100 + 5000
    const commands = sweepMigrations(t.store, t.clock, { migrationGraceMs: 5000 })
    expect(commands).toEqual([expect.objectContaining({ kind: 'disconnect-vsi', switchId: 'tor1', port: 'Ethernet8' })])
    expect(sweepMigrations(t.store, t.clock, { migrationGraceMs: 5000 })).toEqual([])
    const listed = await (await t.app.request('/api/v1/commands', { headers: read })).json()
    expect(listed.commands[0]).toMatchObject({ origin: 'migration-cleanup', command: { commandId: commands[0]!.commandId } })
    const recent = await (await t.app.request('/api/v1/migrations', { headers: read })).json()
    expect(recent.migrations[0]).toMatchObject({ vsiId: vsiIdOf(1), migration: { cleanupCommandId: commands[0]!.commandId } })
  })

  it('ingest publishes cleanup commands that fall due, without a separate sweep', async () => {
    const t = testEdge(makeStore(), { migrationGraceMs: 1000 })
    await ingest(t, [vsiEvent({ seq: 1, sw: 'tor1' }), vsiEvent({ seq: 1, sw: 'tor2', time: T0 + 500 })])
    t.clock.now = T0 + 10_000
    const r = await ingest(t, [vsiEvent({ seq: 2, sw: 'tor2', vsi: 2 })])
    expect(r.commands).toHaveLength(1)
    expect(t.commands).toEqual([expect.objectContaining({ switchId: 'tor1', kind: 'disconnect-vsi', expiresAt: T0 + 10_000 + 3_600_000 })])
    expect(t.store.getCommand(t.commands[0]!.commandId)).toMatchObject({ origin: 'migration-cleanup', state: 'pending' })
  })

  it('shuffled and duplicated batches through the store give the same latest state as in order', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(fc.record({ vsi: fc.integer({ min: 1, max: 3 }), sw: fc.integer({ min: 1, max: 2 }), kind: fc.constantFrom('vsi-associated', 'vsi-de-associated', 'vsi-deactivated') as fc.Arbitrary<'vsi-associated'> }), { minLength: 1, maxLength: 25 }),
        fc.integer({ min: 0, max: 1_000_000 }),
        async (ops, seed) => {
          const seqs = new Map<number, number>()
          const events = ops.map((o, i) => {
            const seq = (seqs.get(o.sw) ?? 0) + 1
            seqs.set(o.sw, seq)
            return vsiEvent({ seq, sw: `tor${o.sw}`, vsi: o.vsi, kind: o.kind, time: T0 + i })
          })
          const shuffled = [...events, ...events.slice(0, seed % (events.length + 1))]
          for (let i = shuffled.length - 1; i > 0; i--) {
            const j = (seed * 31 + i * 17) % (i + 1)
            ;[shuffled[i], shuffled[j]] = [shuffled[j]!, shuffled[i]!]
          }
          const a = makeStore()
          const b = makeStore()
          const opts = { nowMs: T0, migrationGraceMs: 1e9 }
          a.applyEvents(events, opts)
          for (let i = 0; i < shuffled.length; i += 4) b.applyEvents(shuffled.slice(i, i + 4), opts)
          for (let v = 1; v <= 3; v++) {
            const va = a.getVsi(vsiIdOf(v))
            const vb = b.getVsi(vsiIdOf(v))
            expect(vb && latestState(vb)).toEqual(va && latestState(va))
          }
          expect(b.findVsis({ limit: 10, state: 'associated' }).map((x) => x.vsiId)).toEqual(
            a.findVsis({ limit: 10, state: 'associated' }).map((x) => x.vsiId),
          )
          a.close()
          b.close()
        },
      ),
      { numRuns: 60 },
    )
  })

  it('rejects bad ingest bodies with clear 4xx errors, counts them and changes nothing', async () => {
    const t = testEdge(makeStore())
    await ingest(t, [vsiEvent({ seq: 1 })])
    const before = t.store.counts()
    const cases: [RequestInit, number, string][] = [
      [cbor(new Uint8Array([0xff, 0x00])), 400, 'malformed-cbor'],
      [cbor(encodeCbor({ ...vsiEvent({ seq: 2 }), v: 2 })), 422, 'unsupported-version'],
      [cbor(encodeCbor({ ...vsiEvent({ seq: 2 }), vid: 9999 })), 422, 'schema'],
      [cbor(encodeCbor([vsiEvent({ seq: 2 }), { ...vsiEvent({ seq: 3 }), macs: 'x' }])), 422, 'schema'],
      [cbor(new Uint8Array(EVENT_BYTES_MAX * 64 + 1)), 413, 'too-large'],
      [{ ...cbor(encodeEvent(vsiEvent({ seq: 2 }))), headers: { Authorization: `Bearer ${ADMIN_TOKEN}`, 'Content-Type': 'application/json' } }, 415, 'unsupported-media-type'],
      [{ ...cbor(encodeEvent(vsiEvent({ seq: 2 }))), headers: { 'Content-Type': 'application/cbor' } }, 401, 'unauthorized'],
      [cbor(encodeEvent(vsiEvent({ seq: 2 })), 'wrong-token-0123456789'), 401, 'unauthorized'],
      [cbor(encodeEvent(vsiEvent({ seq: 2 })), READ_TOKEN), 403, 'forbidden'],
    ]
    for (const [init, status, code] of cases) {
      const r = await t.app.request('/api/v1/ingest/events', init)
      expect([r.status, ((await r.json()) as { error: { code: string } }).error.code]).toEqual([status, code])
    }
    expect(t.store.counts()).toEqual(before)
    expect(await metric(t, 'vdp_edge_events_rejected_total{reason="malformed-cbor"}')).toBe(1)
    expect(await metric(t, 'vdp_edge_events_rejected_total{reason="unsupported-version"}')).toBe(1)
    expect(await metric(t, 'vdp_edge_events_rejected_total{reason="schema"}')).toBe(2)
    expect(await metric(t, 'vdp_edge_events_rejected_total{reason="too-large"}')).toBe(1)
    expect(await metric(t, 'vdp_edge_http_requests_total{status="401"}')).toBe(2)
    expect(await metric(t, 'vdp_edge_http_requests_total{status="403"}')).toBe(1)
  })

  it('VN CRUD validates bodies, refuses a VNI clash and pushes policy to known switches', async () => {
    const t = testEdge(makeStore())
    await ingest(t, [agentStarted({ sw: 'tor1' }), agentStarted({ sw: 'tor2' })])
    expect(t.policies.map((p) => p.switchId).sort()).toEqual(['tor1', 'tor2'])
    t.policies.length = 0
    const create = await t.app.request('/api/v1/vns', { method: 'POST', ...json({ name: 'blue', vni: 5000, tenant: 'acme', allowedVsiTypes: [{ typeId: 100 }] }) })
    expect(create.status).toBe(201)
    expect(t.policies.map((p) => p.switchId).sort()).toEqual(['tor1', 'tor2'])
    expect(t.policies[0]!.vns).toEqual([{ name: 'blue', vni: 5000, tenant: 'acme', allowedVsiTypes: [{ typeId: 100 }] }])
    const dup = await t.app.request('/api/v1/vns', { method: 'POST', ...json({ name: 'blue', vni: 5001, tenant: 'acme' }) })
    expect(dup.status).toBe(409)
    const clash = await t.app.request('/api/v1/vns/red', { method: 'PUT', ...json({ vni: 5000, tenant: 'acme' }) })
    expect([clash.status, (await clash.json()).error.code]).toEqual([409, 'conflict'])
    const bad = await t.app.request('/api/v1/vns', { method: 'POST', ...json({ name: 'x', vni: 1 << 24, tenant: 'acme' }) })
    expect(await bad.json()).toMatchObject({ error: { code: 'validation', path: 'vni' } })
    const zero = await t.app.request('/api/v1/vns', { method: 'POST', ...json({ name: 'x', vni: 0, tenant: 'acme' }) })
    expect(await zero.json()).toMatchObject({ error: { code: 'validation', path: 'vni' } })
    await t.app.request('/api/v1/vns/green', { method: 'PUT', ...json({ vni: 7000, tenant: 'acme', vid: 300 }) })
    const vidClash = await t.app.request('/api/v1/vns/pink', { method: 'PUT', ...json({ vni: 7001, tenant: 'acme', vid: 300 }) })
    expect([vidClash.status, (await vidClash.json()).error.code]).toEqual([409, 'conflict'])
    expect((await t.app.request('/api/v1/vns/green', { method: 'DELETE', headers: admin })).status).toBe(204)
    const malformed = await t.app.request('/api/v1/vns', { method: 'POST', headers: { ...admin, 'Content-Type': 'application/json' }, body: '{' })
    expect([malformed.status, (await malformed.json()).error.code]).toEqual([400, 'malformed-json'])
    const asReader = await t.app.request('/api/v1/vns', { method: 'POST', ...json({ name: 'g', vni: 7, tenant: 'a' }, READ_TOKEN) })
    expect(asReader.status).toBe(403)
    const upd = await t.app.request('/api/v1/vns/blue', { method: 'PUT', ...json({ vni: 5000, tenant: 'other' }) })
    expect(await upd.json()).toMatchObject({ tenant: 'other' })
    expect((await (await t.app.request('/api/v1/vns/blue', { headers: read })).json()).tenant).toBe('other')
    expect((await t.app.request('/api/v1/vns/blue', { method: 'DELETE', headers: admin })).status).toBe(204)
    expect((await t.app.request('/api/v1/vns/blue', { headers: read })).status).toBe(404)
    expect((await (await t.app.request('/api/v1/vns', { headers: read })).json()).vns).toEqual([])
    const revisions = t.policies.map((p) => p.revision)
    expect(revisions).toEqual([...revisions].sort((a, b) => a - b))
  })

  it('host keys are write-only: never returned, never logged, only in the pushed policy', async () => {
    const t = testEdge(makeStore())
    await ingest(t, [agentStarted({ sw: 'tor1' })])
    const secret = new Uint8Array(32).map((_, i) => 200 - i)
    const b64 = btoa(String.fromCharCode(...secret))
    expect((await t.app.request('/api/v1/hosts/hv1', { method: 'PUT', ...json({ stationMacs: ['02:aa:00:00:00:01'] }) })).status).toBe(201)
    const added = await t.app.request('/api/v1/hosts/hv1/keys', { method: 'POST', ...json({ keyId: 1, key: b64 }) })
    expect(added.status).toBe(201)
    const texts = [
      await added.text(),
      await (await t.app.request('/api/v1/hosts/hv1', { headers: read })).text(),
      await (await t.app.request('/api/v1/hosts', { headers: read })).text(),
      await (await t.app.request('/api/v1/switches/tor1/policy', { headers: read })).text(),
      JSON.stringify(t.logs),
    ]
    for (const text of texts) {
      expect(text).not.toContain(b64)
      expect(text).not.toContain(Array.from(secret).join(','))
    }
    expect(JSON.parse(texts[1]!)).toMatchObject({ hostId: 'hv1', keys: [{ keyId: 1 }] })
    const pushed = t.policies.at(-1)!
    expect(pushed.hosts[0]!.keys[0]!.key).toEqual(secret)
    const again = await t.app.request('/api/v1/hosts/hv1/keys', { method: 'POST', ...json({ keyId: 1, key: b64 }) })
    expect(again.status).toBe(409)
    const short = await t.app.request('/api/v1/hosts/hv1/keys', { method: 'POST', ...json({ keyId: 2, key: 'AAAA' }) })
    expect(await short.json()).toMatchObject({ error: { code: 'validation', path: 'key' } })
    expect((await t.app.request('/api/v1/hosts/hv1/keys/1', { method: 'DELETE', headers: admin })).status).toBe(204)
    expect(t.policies.at(-1)!.hosts[0]!.keys).toEqual([])
  })

  it('switches show status, peers and VLAN use of the current boot, and take a config', async () => {
    const t = testEdge(makeStore())
    const h = { v: 1 as const, switchId: 'tor1' as never, bootId: 'boot-0001', bootTime: T0 }
    await ingest(t, [
      agentStarted({}),
      { ...h, kind: 'peer-up', seq: 1, time: T0 + 1, port: 'Ethernet8' as never, stationMac: '02:aa:00:00:00:01' as never, reason: 'lldp' },
      { ...h, kind: 'vlan-allocated', seq: 2, time: T0 + 2, vid: 100, vni: 5000, reason: 'first-vsi' },
      { ...h, kind: 'vlan-allocated', seq: 3, time: T0 + 3, vid: 101, vni: 5001, reason: 'first-vsi' },
      { ...h, kind: 'vlan-released', seq: 4, time: T0 + 4, vid: 101, reason: 'last-vsi' },
    ])
    t.store.setSwitchStatus({ v: 1, switchId: 'tor1' as never, state: 'online', time: T0 + 5 }, T0 + 5)
    const sw = await (await t.app.request('/api/v1/switches/tor1', { headers: read })).json()
    expect(sw).toMatchObject({ switchId: 'tor1', status: 'online', peers: [{ port: 'Ethernet8', up: true }], vlans: [{ vid: 100, vni: 5000 }], config: null })
    const cfg = await t.app.request('/api/v1/switches/tor1/config', { method: 'PUT', ...json({ vidPool: [{ first: 100, last: 199 }] }) })
    expect(cfg.status).toBe(200)
    expect(t.policies.at(-1)).toMatchObject({ switchId: 'tor1', vidPool: [{ first: 100, last: 199 }] })
    const badCfg = await t.app.request('/api/v1/switches/tor1/config', { method: 'PUT', ...json({ vidPool: [{ first: 300, last: 100 }] }) })
    expect(await badCfg.json()).toMatchObject({ error: { code: 'validation', path: 'vidPool[0]' } })
    const overlap = await t.app.request('/api/v1/switches/tor1/config', { method: 'PUT', ...json({ vidPool: [{ first: 100, last: 199 }, { first: 150, last: 250 }] }) })
    expect(await overlap.json()).toMatchObject({ error: { code: 'validation', path: 'vidPool' } })
    expect((await t.app.request('/api/v1/switches/nope', { headers: read })).status).toBe(404)
    expect((await (await t.app.request('/api/v1/switches', { headers: read })).json()).switches).toHaveLength(1)
  })

  it('POST /commands/disconnect-vsi and disconnect-vn publish commands through deps', async () => {
    const t = testEdge(makeStore())
    await ingest(t, [vsiEvent({ seq: 1 })])
    await t.app.request('/api/v1/vns', { method: 'POST', ...json({ name: 'blue', vni: 5000, tenant: 'acme' }) })
    const r = await t.app.request('/api/v1/commands/disconnect-vsi', { method: 'POST', ...json({ vsiId: uuidFromVsiId(vsiIdOf(1)) }) })
    expect(r.status).toBe(202)
    expect(t.commands).toEqual([expect.objectContaining({ kind: 'disconnect-vsi', switchId: 'tor1', port: 'Ethernet8', vsiId: vsiIdOf(1), mode: 'de-associate' })])
    const vn = await t.app.request('/api/v1/commands/disconnect-vn', { method: 'POST', ...json({ switchId: 'tor1', port: 'Ethernet8', vn: 'blue' }) })
    expect(vn.status).toBe(202)
    expect(t.commands[1]).toMatchObject({ kind: 'disconnect-vn', vni: 5000, port: 'Ethernet8' })
    const unknown = await t.app.request('/api/v1/commands/disconnect-vsi', { method: 'POST', ...json({ vsiId: vsiIdOf(7) }) })
    expect(unknown.status).toBe(404)
    const neither = await t.app.request('/api/v1/commands/disconnect-vn', { method: 'POST', ...json({ switchId: 'tor1', port: 'Ethernet8' }) })
    expect(await neither.json()).toMatchObject({ error: { code: 'validation', path: 'vni' } })
    const failing = testEdge(t.store)
    failing.commands.push = () => {
      throw new Error('broker down')
    }
    // The broker does not take it: recorded all the same, pending, sent when tor1 comes online.
    const down = await failing.app.request('/api/v1/commands/disconnect-vsi', { method: 'POST', ...json({ vsiId: vsiIdOf(1), switchId: 'tor1' }) })
    expect(down.status).toBe(202)
    const [kept] = (await down.json()).commands
    expect(kept).toMatchObject({ state: 'pending', expiresAt: failing.clock.now + 3_600_000 })
    expect(t.store.openCommands('tor1' as never).map((r) => r.command.commandId)).toContain(kept.commandId)
    const id = t.commands[0]!.commandId
    expect(await (await t.app.request(`/api/v1/commands/${id}`, { headers: read })).json()).toMatchObject({ origin: 'operator', command: { commandId: id } })
    expect(t.store.recordReply({ v: 1, commandId: id, switchId: 'tor1' as never, time: T0, status: 'done', affected: 1 })).toBe(true)
    expect(await (await t.app.request(`/api/v1/commands/${id}`, { headers: read })).json()).toMatchObject({ reply: { status: 'done' }, state: 'answered' })
    const answered = await (await t.app.request('/api/v1/commands?state=answered&switch=tor1', { headers: read })).json()
    expect(answered.commands.map((r: { command: Command }) => r.command.commandId)).toEqual([id])
    expect((await t.app.request('/api/v1/commands?state=lost', { headers: read })).status).toBe(400)
  })

  it('GET /api/v1/events pages the audit log by cursor and filters', async () => {
    const t = testEdge(makeStore())
    ingestEvents(t.store, Array.from({ length: 25 }, (_, i) => vsiEvent({ seq: i + 1, vsi: (i % 3) + 1 })), t.clock)
    const seen: number[] = []
    let after = 0
    for (let page = 0; page < 10; page++) {
      const body = await (await t.app.request(`/api/v1/events?limit=10&after=${after}`, { headers: read })).json()
      seen.push(...body.events.map((e: { event: { seq: number } }) => e.event.seq))
      if (body.next === null) break
      after = body.next
    }
    expect(seen).toEqual(Array.from({ length: 25 }, (_, i) => i + 1))
    const byVsi = await (await t.app.request(`/api/v1/events?vsi=${vsiIdOf(2)}`, { headers: read })).json()
    expect(byVsi.events.map((e: { event: { seq: number } }) => e.event.seq)).toEqual([2, 5, 8, 11, 14, 17, 20, 23])
    const bad = await t.app.request('/api/v1/events?kind=nope', { headers: read })
    expect(bad.status).toBe(400)
  })

  it('GET /api/v1/stream sends each event applied after it opened as a fleet-event, resuming by Last-Event-ID', async () => {
    const t = testEdge(makeStore())
    await ingest(t, [vsiEvent({ seq: 1 })])
    const readUntil = async (res: Response, needle: string): Promise<string> => {
      const reader = res.body!.getReader()
      const decoder = new TextDecoder()
      let text = ''
      for (let i = 0; i < 100 && !text.includes(needle); i++) text += decoder.decode((await reader.read()).value)
      await reader.cancel()
      return text
    }
    const res = await t.app.request('/api/v1/stream', { headers: read })
    expect(res.headers.get('Content-Type')).toContain('text/event-stream')
    await ingest(t, [vsiEvent({ seq: 2, vsi: 2 })])
    const text = await readUntil(res, '"seq":2')
    expect(text).toContain('event: ready')
    expect(text).not.toContain('"seq":1,')
    expect(text).toMatch(/event: fleet-event\ndata: \{"cursor":2,.*"seq":2.*\}\nid: 2\n/)
    const resumed = await t.app.request('/api/v1/stream', { headers: { ...read, 'Last-Event-ID': '0' } })
    expect(await readUntil(resumed, '"seq":2')).toContain('"seq":1,')
    expect((await t.app.request('/api/v1/stream')).status).toBe(401)
  })

  it('/api/v1/tokens issues a token once, stores only its hash, and revokes it', async () => {
    const t = testEdge(makeStore())
    const created = await t.app.request('/api/v1/tokens', { method: 'POST', ...json({ name: 'grafana', scope: 'read' }) })
    expect(created.status).toBe(201)
    const { id, token } = (await created.json()) as { id: string; token: string }
    expect(token).toMatch(/^vdp_[A-Za-z0-9_-]{43}$/)
    const asIssued = { Authorization: `Bearer ${token}` }
    expect((await t.app.request('/api/v1/vns', { headers: asIssued })).status).toBe(200)
    expect((await t.app.request('/api/v1/tokens', { headers: asIssued })).status).toBe(403)
    const listed = await (await t.app.request('/api/v1/tokens', { headers: admin })).text()
    expect(JSON.parse(listed)).toEqual({ tokens: [expect.objectContaining({ id, name: 'grafana', scope: 'read' })] })
    expect(listed).not.toContain(token.slice(4))
    expect(listed).not.toContain('hash')
    expect(JSON.stringify(t.logs)).not.toContain(token.slice(4))
    expect((await t.app.request(`/api/v1/tokens/${id}`, { method: 'DELETE', headers: admin })).status).toBe(204)
    expect((await t.app.request('/api/v1/vns', { headers: asIssued })).status).toBe(401)
    expect((await t.app.request(`/api/v1/tokens/${id}`, { method: 'DELETE', headers: admin })).status).toBe(404)
    const bad = await t.app.request('/api/v1/tokens', { method: 'POST', ...json({ name: 'x', scope: 'root' }) })
    expect(await bad.json()).toMatchObject({ error: { code: 'validation', path: 'scope' } })
  })

  it('serves /healthz without a token, /metrics and /api/v1/fleet with one, and JSON 404s', async () => {
    const t = testEdge(makeStore())
    expect(await (await t.app.request('/healthz')).json()).toMatchObject({ status: 'ok', vsis: 0 })
    expect((await t.app.request('/metrics')).status).toBe(401)
    const m = await t.app.request('/metrics', { headers: read })
    expect(m.headers.get('Content-Type')).toContain('text/plain')
    expect(await m.text()).toContain('# TYPE vdp_edge_events_applied_total counter')
    expect((await t.app.request('/api/v1/fleet?token=' + READ_TOKEN)).status).toBe(200)
    const nf = await t.app.request('/api/v1/nothing', { headers: read })
    expect([nf.status, (await nf.json()).error.code]).toEqual([404, 'not-found'])
    expect((await t.app.request('/api/v1/vns', { headers: { Authorization: 'Basic abc' } })).status).toBe(401)
  })
})
