/**
 * ECP ACK absorption as the port core sees it (`ecpAckAbsorb`, `handleAbsorbedAck`): a link
 * takes in the ACKs the core names and reports them later. Here the pair harness plays that
 * link: an ACK the receiving core awaits (by its `ecpAckAbsorb()` at the moment the frame is
 * sent) is taken off the wire and handed over at the next step of the pair, as the agent's
 * collector does at the next step of any port. The raw socket's own filter is tested on veth
 * pairs in test/integration/af-packet.test.ts.
 */
import { describe, expect, it } from 'vitest'
import { macFromBytes, type Mac } from '../../../shared/ethernet/mac.ts'
import type { PortCore } from '../../../agent/port/port-core.ts'
import { BridgeStationPair, BRIDGE_MAC, stationMac } from '../../support/pair.ts'
import { associate } from './fixtures.ts'

interface Absorbed {
  to: PortCore
  peer: Mac
  sequence: number
  atUs: number
}

/** A pair whose ACKs are absorbed where the receiver awaits them; `run` drives it. */
function absorbingPair(options: ConstructorParameters<typeof BridgeStationPair>[0] = {}) {
  const pair = new BridgeStationPair(options)
  const pending: Absorbed[] = []
  let absorbed = 0
  let asFrames = 0
  /** Longest an ACK waited between its arrival and its collection. */
  let waitedMaxUs = 0
  pair.dropIf = (bytes, _from, to) => {
    const isAck = bytes[12] === 0x89 && bytes[13] === 0x40 && bytes[14] === 0x14 && bytes[15] === 0x01
    if (!isAck) return false
    const peer = macFromBytes(bytes.subarray(6, 12))
    const sequence = (bytes[16]! << 8) | bytes[17]!
    if (!to.ecpAckAbsorb().awaited.some((a) => a.peer === peer && a.sequence === sequence)) {
      asFrames++
      return false
    }
    absorbed++
    pending.push({ to, peer, sequence, atUs: pair.nowUs + 50 })
    return true
  }
  /** Hands over what arrived by now, as the agent does before each step. */
  const collect = () => {
    for (let i = 0; i < pending.length; ) {
      const a = pending[i]!
      if (a.atUs > pair.nowUs) {
        i++
        continue
      }
      pending.splice(i, 1)
      waitedMaxUs = Math.max(waitedMaxUs, pair.nowUs - a.atUs)
      pair.apply(a.to, (core, nowUs) => core.handleAbsorbedAck(nowUs, a.peer, a.sequence))
    }
  }
  const run = (untilUs: number) => {
    for (let i = 0; i < 1_000_000; i++) {
      const t = pair.nextEventUs()
      const nextAck = Math.min(...pending.map((p) => p.atUs))
      if ((t === undefined || t > untilUs) && !(nextAck <= untilUs)) break
      // Nothing else runs before the ACK is due: the next step is the one that collects it
      // (an ack timer's, at the latest).
      pair.nowUs = Math.max(pair.nowUs, Math.min(t ?? Infinity, untilUs))
      collect()
      pair.step()
    }
    pair.nowUs = Math.max(pair.nowUs, untilUs)
    collect()
  }
  return { pair, run, stats: () => ({ absorbed, asFrames, pending: pending.length, waitedMaxUs }) }
}

describe('ECP ACK absorption in the port core', () => {
  it('names the ECPDU in flight when nothing is queued behind it, for a bridge and a station', () => {
    const pair = new BridgeStationPair()
    expect(pair.bridge.ecpAckAbsorb()).toEqual({ own: BRIDGE_MAC, awaited: [] })
    expect(pair.station.ecpAckAbsorb()).toEqual({ own: stationMac(0), awaited: [] })
    const v0 = pair.station.ecpTxVersion
    pair.command(pair.station, associate(1))
    // The station's request is in flight; its bridge is not known yet, so nothing is named.
    expect(pair.station.ecpTxVersion).not.toBe(v0)
    expect(pair.station.ecpAckAbsorb().awaited).toEqual([])
    pair.settle()
    // Both sides know each other now; nothing is in flight.
    expect(pair.bridge.ecpAckAbsorb().awaited).toEqual([])
    pair.command(pair.station, associate(2))
    const seq = pair.station.counters().txEcpdus
    expect(pair.station.ecpAckAbsorb().awaited).toEqual([{ peer: BRIDGE_MAC, sequence: seq }])
  })

  it('runs associations and keep-alives on absorbed ACKs alone: no retransmission, every ACK counted', () => {
    const { pair, run, stats } = absorbingPair({ bridge: { evb: { rka: 14 } }, station: { evb: { rka: 14 } } })
    pair.command(pair.station, associate(1))
    run(pair.nowUs + 20_000)
    pair.command(pair.station, associate(2))
    run(pair.nowUs + 2_000_000) // ~12 keep-alives each at RKA 14 (164 ms)
    expect(pair.bridge.vsiSnapshot()).toHaveLength(2)
    expect(pair.eventsOf(pair.station, 'vsi-associated')).toHaveLength(2)
    const b = pair.bridge.counters()
    const s = pair.station.counters()
    expect(b.keepalivesRx).toBeGreaterThan(10)
    expect(b.txRetransmits + s.txRetransmits).toBe(0)
    expect(b.rxAcksAbsorbed).toBe(b.txEcpdus)
    expect(b.rxAcks).toBe(b.txEcpdus)
    // The station's first request went out before it knew its bridge: that ACK was a frame.
    expect(s.rxAcksAbsorbed).toBe(s.txEcpdus - 1)
    expect(stats()).toMatchObject({ absorbed: b.rxAcksAbsorbed + s.rxAcksAbsorbed, asFrames: 1, pending: 0 })
    expect(pair.bridge.peerCounters(stationMac(0))).toMatchObject({ rxAcks: b.rxAcks })
  })

  it('leaves a peer out while ECPDUs queue behind the one in flight: its ACK comes as a frame and releases the next at once', () => {
    const { pair, run, stats } = absorbingPair({ bridge: { ecpTxGapUs: 0 }, station: { ecpTxGapUs: 0 } })
    pair.command(pair.station, associate(1))
    run(pair.nowUs + 20_000)
    for (let i = 2; i <= 20; i++) pair.command(pair.station, associate(i))
    // The station's requests queue behind the first: its ACKs come as frames until the last.
    expect(pair.station.ecpAckAbsorb().awaited).toEqual([])
    run(pair.nowUs + 200_000)
    expect(pair.bridge.vsiSnapshot()).toHaveLength(20)
    expect(pair.station.counters().txRetransmits + pair.bridge.counters().txRetransmits).toBe(0)
    expect(stats().asFrames).toBeGreaterThan(1)
    expect(stats().absorbed).toBeGreaterThan(0)
  })

  it('an ACK collected only when the ack timer is due stops the timer instead of a retransmission', () => {
    const { pair, run, stats } = absorbingPair()
    pair.command(pair.station, associate(1))
    run(pair.nowUs + 20_000)
    pair.command(pair.station, associate(2))
    // Nothing else happens until the ack timers: the collection runs in their steps.
    const ackTimerUs = pair.bridge.operational().ackTimerUs
    run(pair.nowUs + 3 * ackTimerUs)
    expect(stats().waitedMaxUs).toBeGreaterThanOrEqual(ackTimerUs - 100)
    expect(pair.bridge.counters().txRetransmits + pair.station.counters().txRetransmits).toBe(0)
    expect(pair.bridge.counters().rxAcksAbsorbed).toBeGreaterThan(0)
  })

  it('counts an absorbed ACK for a peer the core does not hold, and adds no peer for it', () => {
    const pair = new BridgeStationPair()
    const v = pair.bridge.peersVersion
    pair.apply(pair.bridge, (core, nowUs) => core.handleAbsorbedAck(nowUs, stationMac(5), 7))
    expect(pair.bridge.peersVersion).toBe(v)
    expect(pair.bridge.ecpAckOffload().peers).toEqual([])
    expect(pair.bridge.counters()).toMatchObject({ rxAcks: 1, rxAcksAbsorbed: 1 })
    pair.apply(pair.station, (core, nowUs) => core.handleAbsorbedAck(nowUs, BRIDGE_MAC, 7))
    expect(pair.station.counters()).toMatchObject({ rxAcks: 1, rxAcksAbsorbed: 1 })
    expect(pair.station.ecpAckOffload().peers).toEqual([])
  })

  it('treats an absorbed ACK with a stale sequence as the frame would be: ignored, nothing released', () => {
    const pair = new BridgeStationPair()
    pair.command(pair.station, associate(1))
    pair.settle()
    pair.command(pair.station, associate(2))
    const inFlight = pair.station.ecpAckAbsorb().awaited[0]!
    pair.apply(pair.station, (core, nowUs) => core.handleAbsorbedAck(nowUs, BRIDGE_MAC, inFlight.sequence - 1))
    expect(pair.station.ecpAckAbsorb().awaited).toEqual([inFlight])
    pair.apply(pair.station, (core, nowUs) => core.handleAbsorbedAck(nowUs, BRIDGE_MAC, inFlight.sequence))
    expect(pair.station.ecpAckAbsorb().awaited).toEqual([])
  })
})
