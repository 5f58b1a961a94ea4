/**
 * `EventIngestor`, the broker-independent core of the MQTT ingest: validation, batching,
 * acknowledgement only after the store committed, in order, and retry on store failure.
 */
import { describe, expect, it } from 'vitest'
import { encodeCbor } from '../../shared/api/cbor.ts'
import { encodeCommandReply } from '../../shared/api/commands.ts'
import { encodeEvent, type FleetEvent } from '../../shared/api/events.ts'
import { encodeSwitchStatus } from '../../shared/api/topics.ts'
import type { SwitchId } from '../../shared/ids.ts'
import { EventIngestor } from '../../edge/mqtt/ingest.ts'
import { MemoryFleetStore } from '../../edge/store/memory-fleet-store.ts'

const tick = () => new Promise((r) => setImmediate(r))

const event = (sw: string, seq: number): Uint8Array =>
  encodeEvent({
    v: 1,
    kind: 'peer-up',
    switchId: sw as SwitchId,
    bootId: 'boot-0001',
    bootTime: 1_700_000_000_000,
    seq,
    time: 1_700_000_000_000 + seq,
    port: 'Ethernet0' as never,
    stationMac: '02:00:00:00:00:01' as never,
    reason: 'test',
  } as FleetEvent)

describe('EventIngestor', () => {
  it('EventIngestor commits one batch per event-loop turn and acknowledges only after the commit, in order', async () => {
    const store = new MemoryFleetStore()
    const commits: number[] = []
    const ingestor = new EventIngestor({}, { store, onCommitted: (evs) => commits.push(evs.length) })
    const acks: string[] = []
    ingestor.submit('vdp/switch/tor1/events', event('tor1', 0), () => acks.push('e0'))
    ingestor.submit('vdp/switch/tor1/events', new Uint8Array([0xff]), () => acks.push('bad'))
    ingestor.submit('vdp/switch/tor1/events', event('tor1', 1), () => acks.push('e1'))
    expect(acks).toEqual([]) // nothing before the commit, not even the invalid one (order)
    await tick()
    expect(commits).toEqual([2])
    expect(acks).toEqual(['e0', 'bad', 'e1'])
    expect(store.counts().events).toBe(2)
    expect(ingestor.metrics().ingest_rejected_total['malformed-cbor']).toBe(1)
  })

  it('EventIngestor splits at batchMax and drops duplicates through the store', async () => {
    const store = new MemoryFleetStore()
    const commits: number[] = []
    const ingestor = new EventIngestor({ batchMax: 4 }, { store, onCommitted: (evs) => commits.push(evs.length) })
    let acked = 0
    for (let i = 0; i < 10; i++) ingestor.submit('vdp/switch/tor1/events', event('tor1', i % 7), () => acked++)
    await tick()
    expect(commits).toEqual([4, 4, 2])
    expect(acked).toBe(10)
    const m = ingestor.metrics()
    expect(m.ingest_events_applied_total).toBe(7)
    expect(m.ingest_events_duplicate_total).toBe(3)
  })

  it('EventIngestor rejects an event whose switchId is not its topic switch, a bad topic, another schema version, and too large payloads', async () => {
    const store = new MemoryFleetStore()
    const rejected: string[] = []
    const ingestor = new EventIngestor({}, { store, onRejected: (r) => rejected.push(r) })
    let acked = 0
    ingestor.submit('vdp/switch/tor2/events', event('tor1', 0), () => acked++)
    ingestor.submit('vdp/switch/tor1/bogus', event('tor1', 0), () => acked++)
    ingestor.submit('other/topic', event('tor1', 0), () => acked++)
    ingestor.submit('vdp/switch/tor1/events', encodeCbor({ v: 2, kind: 'peer-up' }), () => acked++)
    ingestor.submit('vdp/switch/tor1/events', new Uint8Array(17 * 1024), () => acked++)
    ingestor.submit('vdp/switch/tor1/events', new Uint8Array(0), () => acked++)
    await tick()
    expect(acked).toBe(6)
    expect(rejected).toEqual(['switch-mismatch', 'bad-topic', 'bad-topic', 'unsupported-version', 'too-large', 'malformed-cbor'])
    expect(store.counts().events).toBe(0)
  })

  it('EventIngestor applies status and replies and refuses them for another switch', async () => {
    const store = new MemoryFleetStore()
    const ingestor = new EventIngestor({}, { store })
    const status = encodeSwitchStatus({ v: 1, switchId: 'tor1' as SwitchId, state: 'online', bootId: 'boot-0001', time: 5 })
    ingestor.submit('vdp/switch/tor1/status', status, () => {})
    ingestor.submit('vdp/switch/tor2/status', status, () => {})
    const reply = encodeCommandReply({ v: 1, commandId: 'c1', switchId: 'tor1' as SwitchId, time: 1, status: 'done', affected: 0 })
    ingestor.submit('vdp/switch/tor1/replies', reply, () => {})
    await tick()
    expect(store.getSwitch('tor1' as SwitchId)?.status).toBe('online')
    expect(store.getSwitch('tor2' as SwitchId)).toBeUndefined()
    const m = ingestor.metrics()
    expect(m.ingest_status_total).toBe(1)
    expect(m.ingest_replies_total).toBe(1)
    expect(m.ingest_rejected_total['switch-mismatch']).toBe(1)
  })

  it('EventIngestor retries a batch the store failed to commit and acknowledges nothing until it succeeds', async () => {
    const store = new MemoryFleetStore()
    let failures = 2
    const apply = store.applyEvents.bind(store)
    store.applyEvents = (events, options) => {
      if (failures-- > 0) throw new Error('database is locked')
      return apply(events, options)
    }
    const ingestor = new EventIngestor({}, { store })
    const acks: number[] = []
    ingestor.submit('vdp/switch/tor1/events', event('tor1', 0), () => acks.push(0))
    await tick()
    expect(acks).toEqual([])
    expect(ingestor.metrics().ingest_commit_errors_total).toBe(1)
    // Messages that arrive meanwhile wait behind the failed batch.
    ingestor.submit('vdp/switch/tor1/events', event('tor1', 1), () => acks.push(1))
    await tick()
    expect(acks).toEqual([])
    const until = Date.now() + 5000
    while (acks.length < 2 && Date.now() < until) await new Promise((r) => setTimeout(r, 20))
    expect(acks).toEqual([0, 1])
    expect(store.counts().events).toBe(2)
    expect(ingestor.metrics().ingest_commit_errors_total).toBe(2)
    ingestor.stop()
  })
})
