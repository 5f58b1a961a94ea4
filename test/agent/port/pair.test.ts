import { describe, expect, it } from 'vitest'
import { decodeEcpdu } from '../../../shared/ecp/codec.ts'
import { ETHERTYPE_ECP } from '../../../shared/ecp/constants.ts'
import { decodeEthernetFrame } from '../../../shared/ethernet/frame.ts'
import { VdpError } from '../../../shared/vdp/constants.ts'
import type { PortCore } from '../../../agent/port/port-core.ts'
import {
  BridgeStationPair,
  BRIDGE_MAC,
  FakeResourceManager,
  stationMac,
} from '../../support/pair.ts'
import { decodeFrame } from '../../support/scenario.ts'
import { associate, groupCommand, preAssociate, vsiIdOf } from './fixtures.ts'

const isEcpRequest = (bytes: Uint8Array): boolean => {
  const f = decodeEthernetFrame(bytes)
  return f.ethertype === ETHERTYPE_ECP && decodeEcpdu(f.payload).header.operation === 0
}

/** Steps until both ends heard each other's EVB TLV. */
function negotiated(pair: BridgeStationPair): void {
  pair.driveUntil(() =>
    pair.cores.every(
      (c) => pair.eventsOf(c, 'evb-negotiated').length > 0 || c.operational().groupIdEnabled,
    ),
  )
  pair.settle()
}

const modes = (core: PortCore) =>
  Object.fromEntries(
    core
      .vsiSnapshot()
      .map((v) => [
        v.vsi.vsiId.id,
        `${v.confirmedMode}:${v.vsi.entries.map((e) => e.vid).join(',')}`,
      ]),
  )

describe('BridgeStationPair', () => {
  it('negotiates R/RTE/RWD/RKA as the max of both ends and GroupID as BGID and SGID', () => {
    const pair = new BridgeStationPair({
      bridge: { evb: { rte: 8, rka: 22 } },
      station: { evb: { rte: 10, rka: 20, retries: 5 } },
    })
    expect(pair.station.operational().groupIdEnabled).toBe(false)
    negotiated(pair)
    for (const core of pair.cores) {
      expect(core.operational()).toMatchObject({
        rte: 10,
        rka: 22,
        retries: 5,
        groupIdEnabled: true,
        ackTimerUs: 10_240,
      })
    }
    expect(pair.eventsOf(pair.bridge, 'peer-up')[0]).toMatchObject({
      peer: stationMac(0),
      via: 'lldp',
    })
    expect(pair.eventsOf(pair.station, 'peer-up')[0]).toMatchObject({ peer: BRIDGE_MAC })
    expect(pair.bridge.evbTlv()).toMatchObject({
      bridge: { bgid: true },
      station: { sgid: true },
      rte: 10,
    })
  })

  it('refuses GroupID formats locally before the bridge advertised BGID', () => {
    const pair = new BridgeStationPair()
    expect(() => pair.command(pair.station, groupCommand('associate', 1, 7001))).toThrow(
      expect.objectContaining({ code: 'group-id-not-negotiated' }),
    )
  })

  it('maps a GroupID to the same VID for every VSI of the group', () => {
    const pair = new BridgeStationPair()
    negotiated(pair)
    pair.command(pair.station, groupCommand('associate', 1, 7001))
    pair.command(pair.station, groupCommand('associate', 2, 7001))
    pair.command(pair.station, groupCommand('associate', 3, 7002))
    pair.settle()
    expect(modes(pair.station)).toEqual({
      [vsiIdOf(1).id]: 'associate:100',
      [vsiIdOf(2).id]: 'associate:100',
      [vsiIdOf(3).id]: 'associate:101',
    })
    expect(modes(pair.bridge)).toEqual(modes(pair.station))
  })

  it('pre-associates, then associates with the VID assigned at pre-association', () => {
    const pair = new BridgeStationPair()
    pair.command(pair.station, preAssociate(1))
    pair.settle()
    expect(pair.eventsOf(pair.station, 'vsi-pre-associated')).toHaveLength(1)
    expect(pair.eventsOf(pair.bridge, 'vsi-pre-associated')[0]!.vsi.entries[0]!.vid).toBe(100)
    pair.command(pair.station, associate(1))
    const sent = pair.frames.filter((f) => f.from === 'station0' && isEcpRequest(f.bytes)).at(-1)!
    expect(decodeFrame(sent.bytes).vdp!.tlvs[0]).toMatchObject({
      mode: 'associate',
      entries: [{ vid: 100 }],
    })
    pair.settle()
    expect(pair.eventsOf(pair.station, 'vsi-associated')).toHaveLength(1)
    expect(pair.eventsOf(pair.bridge, 'vsi-associated')).toHaveLength(1)
    expect(modes(pair.bridge)).toEqual({ [vsiIdOf(1).id]: 'associate:100' })
    expect(modes(pair.station)).toEqual(modes(pair.bridge))
  })

  it('moves associate -> pre-associate (deactivate) on both ends', () => {
    const pair = new BridgeStationPair()
    pair.command(pair.station, associate(1))
    pair.settle()
    pair.command(pair.station, preAssociate(1))
    pair.settle()
    for (const core of pair.cores) {
      expect(pair.eventsOf(core, 'vsi-deactivated')).toHaveLength(1)
      expect(core.vsiSnapshot()[0]!.confirmedMode).toBe('pre-associate')
    }
  })

  it('keeps a VSI alive with keep-alives, answered as ALIVE without re-processing', () => {
    const rm = new FakeResourceManager()
    const pair = new BridgeStationPair({ resources: rm })
    pair.command(pair.station, associate(1))
    pair.settle()
    pair.advanceBy(10 * pair.station.operational().reinitKeepAliveUs)
    expect(pair.station.counters().keepalivesTx).toBeGreaterThanOrEqual(9)
    expect(pair.bridge.counters().keepalivesRx).toBe(pair.station.counters().keepalivesTx)
    expect(rm.requests).toBe(1)
    for (const core of pair.cores) {
      expect(pair.eventsOf(core, 'vsi-de-associated')).toEqual([])
      expect(core.vsiSnapshot()[0]!.confirmedMode).toBe('associate')
    }
  })

  it('de-associates on the bridge after toutKeepAlive without keep-alives; the station drops the VSI', () => {
    const rm = new FakeResourceManager()
    // No LLDP, so no negotiation: the bridge supervises with RKA 12 (~62 ms), the station
    // sends keep-alives with RKA 20 (~10.5 s).
    const pair = new BridgeStationPair({
      resources: rm,
      bridge: { lldp: { enabled: false }, evb: { rka: 12 } },
      station: { lldp: { enabled: false }, evb: { rka: 20 } },
    })
    pair.command(pair.station, associate(1))
    pair.settle()
    const startUs = pair.nowUs - 100
    pair.driveUntil(() => pair.eventsOf(pair.bridge, 'vsi-de-associated').length > 0)
    const tout = pair.bridge.operational().toutKeepAliveUs
    expect(pair.nowUs - startUs).toBeGreaterThan(tout - 1000)
    expect(pair.nowUs - startUs).toBeLessThanOrEqual(tout)
    expect(pair.eventsOf(pair.bridge, 'vsi-de-associated')[0]!.reason).toBe('keepalive-timeout')
    pair.settle()
    expect(pair.eventsOf(pair.station, 'vsi-de-associated')[0]!.reason).toBe('bridge-request')
    expect(pair.station.vsiSnapshot()).toEqual([])
    expect(pair.bridge.vsiSnapshot()).toEqual([])
    expect(rm.held.size).toBe(0)
  })

  it('ends a station VSI after respWaitDelay when responses are lost but ACKs arrive', () => {
    const pair = new BridgeStationPair()
    pair.dropIf = (bytes, from) => from === pair.bridge && isEcpRequest(bytes)
    pair.command(pair.station, associate(1))
    pair.driveUntil(() => pair.eventsOf(pair.station, 'vsi-de-associated').length > 0)
    expect(pair.eventsOf(pair.station, 'vsi-de-associated')[0]!.reason).toBe('response-timeout')
    expect(pair.nowUs).toBeGreaterThanOrEqual(pair.station.operational().respWaitDelayUs)
    expect(pair.eventsOf(pair.bridge, 'ecp-tx-error').length).toBeGreaterThan(0)
    expect(pair.station.counters().txErrors).toBe(0)
  })

  it('queues a response again in a fresh ECPDU when ECP gave up on it (bridge)', () => {
    const pair = new BridgeStationPair()
    pair.settle()
    let lost = 0
    const r = pair.bridge.operational().retries
    // The first 1 + R sends of the bridge's answer are lost: ECP gives up on that ECPDU.
    pair.dropIf = (bytes, from) => from === pair.bridge && isEcpRequest(bytes) && lost++ < 1 + r
    pair.command(pair.station, associate(1))
    pair.settle()
    expect(pair.eventsOf(pair.bridge, 'ecp-tx-error')).toHaveLength(1)
    expect(pair.bridge.counters()).toMatchObject({ txErrors: 1, txResends: 1 })
    expect(pair.eventsOf(pair.station, 'vsi-associated')).toHaveLength(1)
    expect(modes(pair.station)).toEqual(modes(pair.bridge))
  })

  it('reports refused and Keep rejects with their reason codes on both ends', () => {
    const rm = new FakeResourceManager()
    rm.rules.set(66, { outcome: 'refused', error: VdpError.InsufficientResources, hard: false })
    const pair = new BridgeStationPair({ resources: rm })
    pair.command(pair.station, associate(1, { typeId: 66 }))
    pair.command(pair.station, associate(2))
    pair.settle()
    expect(pair.eventsOf(pair.station, 'vsi-rejected')).toMatchObject([
      { error: 2, keep: false, vsi: { vsiId: vsiIdOf(1) } },
    ])
    expect(pair.eventsOf(pair.station, 'vsi-de-associated')).toMatchObject([
      { reason: 'rejected', vsi: { vsiId: vsiIdOf(1) } },
    ])
    expect(pair.eventsOf(pair.bridge, 'vsi-rejected')).toMatchObject([{ error: 2 }])
    rm.rules.set(5, { outcome: 'keep', error: VdpError.OtherFailure })
    pair.command(pair.station, preAssociate(2))
    pair.settle()
    expect(pair.eventsOf(pair.station, 'vsi-rejected')[1]).toMatchObject({
      error: 4,
      keep: true,
      requested: 'pre-associate',
    })
    expect(modes(pair.station)).toEqual({ [vsiIdOf(2).id]: 'associate:100' })
    expect(modes(pair.bridge)).toEqual(modes(pair.station))
  })

  it('de-associates from the bridge on a local command; the station ends the VSI', () => {
    const pair = new BridgeStationPair()
    pair.command(pair.station, associate(1))
    pair.command(pair.station, associate(2))
    pair.settle()
    pair.command(pair.bridge, { kind: 'de-associate', vsiId: vsiIdOf(1) })
    pair.settle()
    expect(pair.eventsOf(pair.bridge, 'vsi-de-associated')).toMatchObject([
      { reason: 'local-command' },
    ])
    expect(pair.eventsOf(pair.station, 'vsi-de-associated')).toMatchObject([
      { reason: 'bridge-request', vsi: { vsiId: vsiIdOf(1) } },
    ])
    expect(Object.keys(modes(pair.station))).toEqual([vsiIdOf(2).id])
    expect(modes(pair.bridge)).toEqual(modes(pair.station))
  })

  it('de-associates from the station with the stored VID; both ends delete the VSI', () => {
    const rm = new FakeResourceManager()
    const pair = new BridgeStationPair({ resources: rm })
    pair.command(pair.station, associate(1))
    pair.settle()
    pair.command(pair.station, { kind: 'de-associate', vsiId: vsiIdOf(1) })
    const sent = pair.frames.filter((f) => f.from === 'station0' && isEcpRequest(f.bytes)).at(-1)!
    expect(decodeFrame(sent.bytes).vdp!.tlvs[0]).toMatchObject({
      mode: 'de-associate',
      entries: [{ vid: 100 }],
    })
    pair.settle()
    for (const core of pair.cores) {
      expect(pair.eventsOf(core, 'vsi-de-associated')).toMatchObject([
        { reason: 'station-request' },
      ])
      expect(core.vsiSnapshot()).toEqual([])
    }
    expect(rm.held.size).toBe(0)
    // lldpad's bridge would send an unsolicited De-Associate 15.76 s later; this one does not.
    pair.advanceBy(2 * pair.bridge.operational().toutKeepAliveUs)
    expect(pair.eventsOf(pair.station, 'frame-dropped')).toEqual([])
    expect(pair.eventsOf(pair.bridge, 'vsi-de-associated')).toHaveLength(1)
  })

  it('carries the migration hint and the initiator in VSI events', () => {
    const pair = new BridgeStationPair()
    pair.command(pair.station, { ...preAssociate(1), hints: { migratingTo: true } })
    pair.settle()
    pair.command(pair.station, { ...associate(1), hints: { migratingFrom: true } })
    pair.settle()
    expect(pair.eventsOf(pair.bridge, 'vsi-pre-associated')[0]!.vsi.migration).toBe('to')
    expect(pair.eventsOf(pair.station, 'vsi-pre-associated')[0]!.vsi.migration).toBe('to')
    expect(pair.eventsOf(pair.bridge, 'vsi-associated')[0]!.vsi.migration).toBe('from')
    expect(pair.bridge.vsiSnapshot()[0]!.vsi.migration).toBe('from')
    pair.command(pair.bridge, { kind: 'de-associate', vsiId: vsiIdOf(1) })
    pair.settle()
    for (const core of pair.cores)
      expect(pair.eventsOf(core, 'vsi-de-associated')[0]!.initiator).toBe('bridge')
  })

  it('retransmits a lost ECPDU after ackTimer and still associates', () => {
    const pair = new BridgeStationPair()
    pair.settle()
    pair.dropNext(1)
    const t0 = pair.nowUs
    pair.command(pair.station, associate(1))
    pair.settle()
    expect(pair.station.counters().txRetransmits).toBe(1)
    expect(pair.eventsOf(pair.station, 'vsi-associated')).toHaveLength(1)
    const requests = pair.frames.filter((f) => f.from === 'station0' && isEcpRequest(f.bytes))
    expect(requests.map((r) => r.fate)).toEqual(['dropped-by-test', 'delivered'])
    expect(requests[1]!.sentUs - t0).toBe(pair.station.operational().ackTimerUs)
    expect(requests[1]!.bytes).toEqual(requests[0]!.bytes)
  })

  it('gives up on an ECPDU after 1 + R sends, re-queues its TLV twice, then ends the VSI', () => {
    const pair = new BridgeStationPair()
    pair.settle()
    pair.dropIf = (bytes, from) => from === pair.station && isEcpRequest(bytes)
    pair.command(pair.station, associate(1))
    pair.settle()
    const r = pair.station.operational().retries
    expect(pair.frames.filter((f) => f.from === 'station0' && isEcpRequest(f.bytes))).toHaveLength(
      3 * (1 + r),
    )
    expect(pair.eventsOf(pair.station, 'ecp-tx-error')).toMatchObject([
      { sequence: 1, tlvCount: 1 },
      { sequence: 2, tlvCount: 1 },
      { sequence: 3, tlvCount: 1 },
    ])
    expect(pair.eventsOf(pair.station, 'vsi-de-associated')).toMatchObject([{ reason: 'tx-error' }])
    expect(pair.bridge.vsiSnapshot()).toEqual([])
  })

  it('ACKs duplicated ECPDUs but delivers each once', () => {
    const rm = new FakeResourceManager()
    const pair = new BridgeStationPair({ resources: rm, duplicateRate: 1 })
    for (let n = 1; n <= 5; n++) pair.command(pair.station, associate(n))
    pair.settle()
    expect(rm.requests).toBe(5)
    expect(pair.bridge.counters().rxDuplicates).toBeGreaterThan(0)
    expect(pair.station.counters().rxDuplicates).toBeGreaterThan(0)
    expect(pair.bridge.counters().txAcks).toBe(2 * pair.station.counters().txEcpdus)
    expect(pair.eventsOf(pair.station, 'vsi-associated')).toHaveLength(5)
  })

  it('sends the next ECPDU as soon as the ACK arrives, packing what queued meanwhile', () => {
    const pair = new BridgeStationPair({ delayUs: { min: 100, max: 100 } })
    pair.settle()
    const t0 = pair.nowUs
    for (let n = 1; n <= 10; n++) pair.command(pair.station, associate(n))
    pair.settle()
    const requests = pair.frames.filter((f) => f.from === 'station0' && isEcpRequest(f.bytes))
    expect(requests.map((r) => decodeFrame(r.bytes).vdp!.tlvs.length)).toEqual([1, 9])
    // Request out at t0, ACK back at t0 + 200 µs: far sooner than the ack timer.
    expect(requests[1]!.sentUs - t0).toBe(200)
    expect(pair.station.operational().ackTimerUs).toBeGreaterThan(100_000)
    expect(pair.eventsOf(pair.station, 'vsi-associated')).toHaveLength(10)
  })

  it('serves several stations on one port, told apart by source MAC', () => {
    const unicast = { ecpDestination: 'peer-unicast' } as const
    const pair = new BridgeStationPair({ stations: 3, bridge: unicast, station: unicast })
    pair.settle()
    // The same VSIID from two stations (a migration) is two VSIs on the bridge.
    pair.stations.forEach((s, i) => pair.command(s, associate(i + 1)))
    pair.command(pair.stations[2]!, preAssociate(1))
    pair.settle()
    const peers = pair.bridge
      .vsiSnapshot()
      .map((v) => `${v.vsi.peer}/${v.vsi.vsiId.id.slice(-1)}/${v.confirmedMode}`)
    expect(peers.sort()).toEqual(
      [
        `${stationMac(0)}/1/associate`,
        `${stationMac(1)}/2/associate`,
        `${stationMac(2)}/3/associate`,
        `${stationMac(2)}/1/pre-associate`,
      ].sort(),
    )
    expect(
      pair.bridge
        .peers()
        .map((p) => p.peer)
        .sort(),
    ).toEqual([stationMac(0), stationMac(1), stationMac(2)])
    expect(pair.eventsOf(pair.bridge, 'peer-up')).toHaveLength(3)
    for (const [i, s] of pair.stations.entries()) {
      expect(pair.eventsOf(s, 'frame-dropped')).toEqual([])
      expect(s.vsiCount).toBe(i === 2 ? 2 : 1)
    }
  })

  it('serves several stations on one port in group-address mode too (one sequence space)', () => {
    const pair = new BridgeStationPair({ stations: 3 })
    negotiated(pair)
    for (let round = 0; round < 3; round++) {
      pair.stations.forEach((s, i) => pair.command(s, associate(10 * i + round)))
    }
    pair.settle()
    expect(pair.bridge.vsiCount).toBe(9)
    for (const s of pair.stations) {
      expect(s.vsiSnapshot().every((v) => v.confirmedMode === 'associate')).toBe(true)
      expect(s.vsiCount).toBe(3)
      // Every station sees the others' answers: not its VSIs, reported and dropped.
      expect(s.counters().rxDuplicates).toBe(0)
    }
    pair.advanceBy(3 * pair.bridge.operational().reinitKeepAliveUs)
    expect(pair.bridge.vsiCount).toBe(9)
    expect(pair.eventsOf(pair.bridge, 'vsi-de-associated')).toEqual([])
  })

  it('reports peer-down when the station LLDP TTL expires', () => {
    const pair = new BridgeStationPair()
    negotiated(pair)
    expect(pair.bridge.operational().groupIdEnabled).toBe(true)
    pair.dropIf = (_bytes, from) => from === pair.station
    pair.driveUntil(() => pair.eventsOf(pair.bridge, 'peer-down').length > 0)
    expect(pair.eventsOf(pair.bridge, 'peer-down')).toMatchObject([
      { peer: stationMac(0), reason: 'lldp-ttl-expired' },
    ])
    // Back to the local EVB values: GroupID formats off again.
    expect(pair.bridge.operational().groupIdEnabled).toBe(false)
  })

  it('ends 1,000 VSIs over a lossy, duplicating, delaying link in the same state on both sides', () => {
    const rm = new FakeResourceManager()
    const pair = new BridgeStationPair({
      seed: 7,
      resources: rm,
      lossRate: 0.03,
      duplicateRate: 0.05,
      delayUs: { min: 20, max: 400 },
    })
    pair.recordFrames = false
    negotiated(pair)
    for (let n = 1; n <= 1000; n++)
      pair.command(pair.station, n % 3 === 0 ? preAssociate(n) : associate(n))
    pair.settle()
    for (let n = 1; n <= 1000; n += 4)
      pair.command(pair.station, { kind: 'de-associate', vsiId: vsiIdOf(n) })
    for (let n = 2; n <= 1000; n += 4)
      pair.command(pair.station, n % 3 === 0 ? associate(n) : preAssociate(n))
    pair.settle()
    // Let keep-alives run and orphans (answers lost for good) time out on the bridge.
    pair.advanceBy(2 * pair.bridge.operational().toutKeepAliveUs)
    pair.settle()
    const station = modes(pair.station)
    const bridge = modes(pair.bridge)
    expect(bridge).toEqual(station)
    expect(Object.keys(station).length).toBeGreaterThan(700)
    expect(
      pair.bridge.counters().rxDuplicates + pair.station.counters().rxDuplicates,
    ).toBeGreaterThan(0)
    expect(
      pair.station.counters().txRetransmits + pair.bridge.counters().txRetransmits,
    ).toBeGreaterThan(0)
    // Resources held by the manager match the VSIs the bridge holds.
    expect(rm.held.size).toBe(Object.keys(bridge).length)
  })
})

describe('link down and up', () => {
  it('drops queued ECPDUs on link-down and re-sends keep-alives at once on link-up', () => {
    const pair = new BridgeStationPair()
    for (let n = 1; n <= 3; n++) pair.command(pair.station, associate(n))
    pair.settle()
    const keepalives = pair.station.counters().keepalivesTx
    // Two local de-associations: the first ECPDU is on the wire, the second still queued when
    // the bridge port goes down.
    pair.command(pair.bridge, { kind: 'de-associate', vsiId: vsiIdOf(1) })
    pair.command(pair.bridge, { kind: 'de-associate', vsiId: vsiIdOf(2) })
    pair.command(pair.bridge, { kind: 'link-down' })
    expect(pair.bridge.counters().queueDrops).toBe(2)
    expect(pair.bridge.hasPendingWork()).toBe(false)
    pair.settle()
    const upUs = pair.nowUs
    pair.command(pair.bridge, { kind: 'link-up' })
    pair.command(pair.station, { kind: 'link-up' })
    pair.advanceBy(1000)
    pair.settle()
    // VSI 1's De-Associate was on the wire and arrived; VSI 2's was lost with the queue, so
    // the station still holds it and its immediate keep-alive makes the bridge take it anew.
    expect(pair.eventsOf(pair.station, 'vsi-de-associated').map((e) => e.vsi.vsiId)).toEqual([
      vsiIdOf(1),
    ])
    expect(pair.station.counters().keepalivesTx).toBe(keepalives + 2)
    expect(pair.bridge.counters().rxDuplicates).toBe(0)
    expect(Object.keys(modes(pair.station)).sort()).toEqual([vsiIdOf(2).id, vsiIdOf(3).id].sort())
    expect(modes(pair.bridge)).toEqual(modes(pair.station))
    // LLDP fast start again at link-up.
    const lldpAt = pair.frames
      .filter((f) => f.from === 'bridge' && decodeFrame(f.bytes).ethertype === 0x88cc)
      .map((f) => f.sentUs)
    expect(lldpAt).toContain(upUs)
  })
})
