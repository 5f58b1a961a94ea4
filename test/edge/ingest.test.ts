import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { ApiDecodeError, encodeCbor } from '../../shared/api/cbor.ts'
import { decodeCommand, encodeCommandReply } from '../../shared/api/commands.ts'
import { encodeEventBatch, type FleetEvent } from '../../shared/api/events.ts'
import { decodePolicy, type SwitchPolicy } from '../../shared/api/policy.ts'
import { encodeSwitchStatus } from '../../shared/api/topics.ts'
import { switchId } from '../../shared/ids.ts'
import { ingestEventBytes, ingestReplyBytes, ingestStatusBytes } from '../../edge/ingest.ts'
import { createEdgeMetrics } from '../../edge/metrics.ts'
import { topicPublisher } from '../../edge/publisher.ts'
import { createSecretBox } from '../../edge/secrets.ts'
import { MemoryFleetStore } from '../../edge/store/memory-fleet-store.ts'
import { SqliteFleetStore } from '../../edge/store/sqlite-fleet-store.ts'
import type { FleetStore } from '../../edge/store/fleet-store.ts'
import { agentStarted, T0, vsiEvent, vsiIdOf, macOf, ipOf } from './support/events.ts'

const clock = { nowMs: () => T0 }

/** Stores whose audit log throws on one event, to check that a failed batch leaves nothing. */
class FailingMemoryStore extends MemoryFleetStore {
  failSeq = -1
  protected override appendEvent(e: FleetEvent, receivedAt: number): boolean {
    if (e.seq === this.failSeq) throw new Error('disk full')
    return super.appendEvent(e, receivedAt)
  }
}
class FailingSqliteStore extends SqliteFleetStore {
  failSeq = -1
  protected override appendEvent(e: FleetEvent, receivedAt: number): boolean {
    if (e.seq === this.failSeq) throw new Error('disk full')
    return super.appendEvent(e, receivedAt)
  }
}

describe.each([
  ['MemoryFleetStore', () => new FailingMemoryStore()],
  ['SqliteFleetStore', () => new FailingSqliteStore({ path: ':memory:' })],
] as const)('%s batches', (_name, make) => {
  it('applyEvents() applies all of a batch or, when it fails half way, none of it', () => {
    const store = make()
    store.applyEvents([agentStarted({}), vsiEvent({ seq: 1 })], { nowMs: T0, migrationGraceMs: 1000 })
    const before = { counts: store.counts(), vsi: store.getVsi(vsiIdOf(1)), sw: store.getSwitch(switchId('tor1')) }
    store.failSeq = 4
    const batch = [vsiEvent({ seq: 2, kind: 'vsi-de-associated' }), vsiEvent({ seq: 3, vsi: 2, sw: 'tor2' }), vsiEvent({ seq: 4, vsi: 3 })]
    expect(() => store.applyEvents(batch, { nowMs: T0, migrationGraceMs: 1000 })).toThrow('disk full')
    expect({ counts: store.counts(), vsi: store.getVsi(vsiIdOf(1)), sw: store.getSwitch(switchId('tor1')) }).toEqual(before)
    expect(store.findVsis({ limit: 10, mac: macOf(2) })).toEqual([])
    store.failSeq = -1
    expect(store.applyEvents(batch, { nowMs: T0, migrationGraceMs: 1000 })).toMatchObject({ applied: 3, duplicates: 0 })
    expect(store.getVsi(vsiIdOf(1))?.state).toBe('gone')
    store.close()
  })
})

describe('MemoryFleetStore and SqliteFleetStore', () => {
  it('give the same views, lookups and migrations for the same events', () => {
    fc.assert(
      fc.property(
        fc.array(
          fc.record({
            vsi: fc.integer({ min: 1, max: 4 }),
            sw: fc.integer({ min: 1, max: 3 }),
            port: fc.integer({ min: 0, max: 1 }),
            kind: fc.constantFrom('vsi-associated', 'vsi-pre-associated', 'vsi-de-associated', 'vsi-timeout', 'vsi-deactivated') as fc.Arbitrary<'vsi-associated'>,
            migration: fc.constantFrom('none', 'to', 'unknown') as fc.Arbitrary<'none'>,
          }),
          { minLength: 1, maxLength: 30 },
        ),
        (ops) => {
          const seqs = new Map<number, number>()
          const events = ops.map((o, i) => {
            const seq = (seqs.get(o.sw) ?? 0) + 1
            seqs.set(o.sw, seq)
            return vsiEvent({ seq, sw: `tor${o.sw}`, port: `Ethernet${o.port}`, vsi: o.vsi, kind: o.kind, migration: o.migration, time: T0 + i * 10 })
          })
          const stores: FleetStore[] = [new MemoryFleetStore(), new SqliteFleetStore({ path: ':memory:' })]
          const seen = stores.map((s) => {
            for (let i = 0; i < events.length; i += 3) s.applyEvents(events.slice(i, i + 3), { nowMs: T0 + i * 10, migrationGraceMs: 25 })
            const out = {
              views: [1, 2, 3, 4].map((v) => s.getVsi(vsiIdOf(v))),
              byMac: [1, 2, 3, 4].map((v) => s.findVsis({ limit: 10, mac: macOf(v) }).map((x) => x.vsiId)),
              byIp: [1, 2, 3, 4].map((v) => s.findVsis({ limit: 10, ip: ipOf(v) }).map((x) => x.vsiId)),
              bySwitch: [1, 2, 3].map((w) => s.findVsis({ limit: 10, switchId: switchId(`tor${w}`), port: 'Ethernet1' as never }).map((x) => x.vsiId)),
              byState: s.findVsis({ limit: 10, state: 'pre-associated', vni: 5000 }).map((x) => x.vsiId),
              migrations: s.recentMigrations(100).length,
              commands: s.listCommands({ limit: 100 }).map((c) => c.command.commandId).sort(),
            }
            s.close()
            return out
          })
          expect(seen[1]).toEqual(seen[0])
        },
      ),
      { numRuns: 60 },
    )
  })
})

describe('ingest helpers', () => {
  it('ingestEventBytes() refuses an event of another switch than the topic’s and counts it', () => {
    const store = new MemoryFleetStore()
    const metrics = createEdgeMetrics()
    const bytes = encodeEventBatch([vsiEvent({ seq: 1, sw: 'tor1' }), vsiEvent({ seq: 1, sw: 'tor2' })])
    try {
      ingestEventBytes(store, bytes, clock, { metrics, expectedSwitchId: switchId('tor1') })
      expect.unreachable()
    } catch (err) {
      expect(err).toBeInstanceOf(ApiDecodeError)
      expect((err as ApiDecodeError).path).toBe('[1].switchId')
    }
    expect(metrics.eventsRejected.get('schema')).toBe(1)
    expect(store.counts().events).toBe(0)
    expect(ingestEventBytes(store, bytes, clock, { metrics })).toMatchObject({ applied: 2 })
    expect(metrics.eventsApplied).toBe(2)
  })

  it('ingestStatusBytes() sets the switch status; ingestReplyBytes() records replies to known commands only', () => {
    const store = new MemoryFleetStore()
    ingestStatusBytes(store, encodeSwitchStatus({ v: 1, switchId: switchId('tor1'), state: 'offline' }), clock)
    expect(store.getSwitch(switchId('tor1'))).toMatchObject({ status: 'offline', statusTime: T0 })
    const reply = { v: 1 as const, commandId: 'op-1', switchId: switchId('tor1'), time: T0, status: 'done' as const, affected: 2 }
    expect(ingestReplyBytes(store, encodeCommandReply(reply))).toBe(false)
    store.recordCommand({
      origin: 'operator',
      command: { v: 1, kind: 'disconnect-vn', commandId: 'op-1', switchId: switchId('tor1'), issuedAt: T0, reason: 'x', vni: 5, port: 'Ethernet8' as never },
    })
    expect(ingestReplyBytes(store, encodeCommandReply({ ...reply, switchId: switchId('tor9') }))).toBe(false)
    expect(ingestReplyBytes(store, encodeCommandReply(reply))).toBe(true)
    expect(store.getCommand('op-1')?.reply).toMatchObject({ affected: 2 })
    const metrics = createEdgeMetrics()
    expect(() => ingestReplyBytes(store, encodeCbor({ ...reply, v: 9 }), { metrics })).toThrow(ApiDecodeError)
    expect(metrics.eventsRejected.get('unsupported-version')).toBe(1)
  })

  it('topicPublisher() encodes policy retained and commands not retained on the switch’s topics', async () => {
    const sent: { topic: string; payload: Uint8Array; retain: boolean }[] = []
    const p = topicPublisher(async (topic, payload, o) => void sent.push({ topic, payload, retain: o.retain }), 'dc1/vdp')
    const policy: SwitchPolicy = { v: 1, switchId: switchId('tor1'), revision: 1, issuedAt: T0, vns: [], vidPool: [], hosts: [], lagGroups: [], unknownHosts: 'allow' }
    await p.policy(policy)
    await p.command({ v: 1, kind: 'disconnect-vsi', commandId: 'c1', switchId: switchId('tor1'), issuedAt: T0, reason: 'r', vsiId: vsiIdOf(1), mode: 'deactivate' })
    expect(sent.map((s) => [s.topic, s.retain])).toEqual([
      ['dc1/vdp/switch/tor1/policy', true],
      ['dc1/vdp/switch/tor1/commands', false],
    ])
    expect(decodePolicy(sent[0]!.payload)).toEqual(policy)
    expect(decodeCommand(sent[1]!.payload)).toMatchObject({ mode: 'deactivate' })
  })
})

describe('createSecretBox()', () => {
  it('opens what it sealed, only under the same context and key', async () => {
    const box = createSecretBox(new Uint8Array(32).fill(1))
    const secret = new Uint8Array([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16])
    const sealed = await box.seal(secret, 'hv1/1')
    expect(sealed).toMatch(/^v1\.[A-Za-z0-9_-]+$/)
    expect(sealed).not.toContain('AQIDBAUGBwgJCgsMDQ4PEA')
    expect(await box.open(sealed, 'hv1/1')).toEqual(secret)
    await expect(box.open(sealed, 'hv2/1')).rejects.toThrow()
    await expect(createSecretBox(new Uint8Array(32).fill(2)).open(sealed, 'hv1/1')).rejects.toThrow()
    expect(await box.seal(secret, 'hv1/1')).not.toBe(sealed)
    expect(() => createSecretBox(new Uint8Array(16))).toThrow()
  })
})
