/**
 * The NCB LLDP agent of the port core: LLDPDU content (chassis ID / port ID = port MAC, TTL,
 * EVB TLV, End), fast start then txInterval, an immediate LLDPDU when the negotiated TLV
 * changes, TTL supervision; checked byte for byte against lldpad's frames in
 * ../shared/captures/lldpad-evb-lldp.pcap.
 */
import { describe, expect, it } from 'vitest'
import { ETHERTYPE_LLDP } from '../../../shared/ethernet/frame.ts'
import { NCB_GROUP_MAC, parseMac } from '../../../shared/ethernet/mac.ts'
import { portName } from '../../../shared/ids.ts'
import { decodeLldpdu, encodeLldpdu } from '../../../shared/lldp/codec.ts'
import { resolvePortConfig, validatePortConfig } from '../../../agent/port/config.ts'
import type { PortEvent } from '../../../agent/port/events.ts'
import { PortCore } from '../../../agent/port/port-core.ts'
import { readCapture } from '../../support/captures.ts'
import { FakeResourceManager } from '../../support/pair.ts'
import { decodeFrame } from '../../support/scenario.ts'
import { encodeEthernetFrame } from '../../../shared/ethernet/frame.ts'

const STATION = parseMac('02:76:64:70:00:01')
const BRIDGE = parseMac('02:76:64:70:00:02')
const LLDPAD_EVB = { retries: 3, rte: 8, rwd: 20, rka: 20, groupId: true, reflectiveRelay: true }

function bridge(): PortCore {
  return new PortCore(
    { port: portName('sw0'), mac: BRIDGE, role: 'bridge', countersIntervalUs: 0, evb: LLDPAD_EVB },
    new FakeResourceManager(),
    0,
  )
}

function station(): PortCore {
  return new PortCore(
    { port: portName('h0'), mac: STATION, role: 'station', countersIntervalUs: 0, evb: LLDPAD_EVB },
    undefined,
    0,
  )
}

function run(core: PortCore, untilUs: number): { atUs: number; bytes: Uint8Array }[] {
  const out: { atUs: number; bytes: Uint8Array }[] = []
  for (let d = core.nextDeadlineUs(); d !== undefined && d <= untilUs; d = core.nextDeadlineUs()) {
    core.handleTimeout(d)
    for (let f = core.pollTransmit(); f !== undefined; f = core.pollTransmit())
      out.push({ atUs: d, bytes: f })
  }
  return out
}

/** Record `index` (0-based) of the capture, without the Ethernet padding lldpad's NIC added. */
function captured(index: number): Uint8Array {
  const bytes = readCapture('lldpad-evb-lldp')[index]!.data
  const f = decodeFrame(bytes)
  const pdu = decodeLldpdu(bytes.subarray(14))
  return encodeEthernetFrame({
    destination: f.destination,
    source: f.source,
    ethertype: f.ethertype,
    payload: encodeLldpdu(pdu),
  })
}

describe('LLDP NCB agent', () => {
  it('sends 4 LLDPDUs 1 s apart at start, then one every 30 s', () => {
    const frames = run(bridge(), 64_000_000)
    expect(frames.map((f) => f.atUs)).toEqual([
      0, 1_000_000, 2_000_000, 3_000_000, 33_000_000, 63_000_000,
    ])
    const f = decodeFrame(frames[0]!.bytes)
    expect(f).toMatchObject({
      destination: NCB_GROUP_MAC,
      source: BRIDGE,
      ethertype: ETHERTYPE_LLDP,
    })
    const pdu = decodeLldpdu(frames[0]!.bytes.subarray(14))
    expect(pdu).toMatchObject({ chassisId: { subtype: 4 }, portId: { subtype: 3 }, ttlS: 120 })
    expect([...pdu.chassisId.value]).toEqual([2, 0x76, 0x64, 0x70, 0, 2])
  })

  it('sends the same bytes as the lldpad bridge before hearing the station', () => {
    expect(run(bridge(), 0)[0]!.bytes).toEqual(captured(0))
  })

  it('station: answers the bridge TLV at once with the bytes lldpad sent (records 0 -> 2)', () => {
    const core = station()
    expect(decodeLldpdu(run(core, 0)[0]!.bytes.subarray(14)).tlvs[0]!.body.slice(4)).toEqual(
      Uint8Array.from([0x00, 0x0f, 0x68, 0x94, 0x14]),
    )
    core.handleFrame(500_000, readCapture('lldpad-evb-lldp')[0]!.data)
    expect(run(core, 500_000).map((f) => f.bytes)).toEqual([captured(2)])
    expect(core.operational()).toMatchObject({ groupIdEnabled: true })
  })

  it('bridge: answers a changed EVB TLV at once with the negotiated one (records 2 -> 3)', () => {
    const core = bridge()
    run(core, 1_500_000)
    core.handleFrame(2_000_000, readCapture('lldpad-evb-lldp')[2]!.data)
    const out: Uint8Array[] = []
    for (let f = core.pollTransmit(); f !== undefined; f = core.pollTransmit()) out.push(f)
    expect(out).toEqual([])
    const now = run(core, 2_000_000)
    expect(now.map((f) => f.bytes)).toEqual([captured(3)])
    const events: PortEvent[] = []
    for (let e = core.pollEvent(); e !== undefined; e = core.pollEvent()) events.push(e)
    expect(events.map((e) => e.kind)).toEqual(['peer-up', 'evb-negotiated'])
    expect(core.operational()).toMatchObject({ groupIdEnabled: true, rte: 8 })
  })

  it('reports peer-down on an LLDPDU with TTL 0 (shutdown)', () => {
    const core = bridge()
    core.handleFrame(10, readCapture('lldpad-evb-lldp')[2]!.data)
    const shutdown = readCapture('lldpad-evb-lldp')[2]!.data.slice()
    shutdown[35] = 0 // TTL low octet: 120 -> 0
    expect(decodeLldpdu(shutdown.subarray(14)).ttlS).toBe(0)
    core.handleFrame(20, shutdown)
    const events: PortEvent[] = []
    for (let e = core.pollEvent(); e !== undefined; e = core.pollEvent()) events.push(e)
    expect(events).toMatchObject([
      { kind: 'peer-up', peer: STATION, via: 'lldp' },
      { kind: 'evb-negotiated' },
      { kind: 'peer-down', peer: STATION, reason: 'lldp-shutdown' },
      { kind: 'evb-negotiated', operational: { groupIdEnabled: false } },
    ])
  })
})

describe('ECP ACK offload (what a link may acknowledge for the core)', () => {
  it('names the peers a bridge holds and follows them as they come and go', () => {
    const core = bridge()
    expect(core.ecpAckOffload()).toEqual({ source: BRIDGE, unicast: false, peers: [] })
    const v0 = core.peersVersion
    core.handleFrame(10, readCapture('lldpad-evb-lldp')[2]!.data)
    expect(core.ecpAckOffload().peers).toEqual([STATION])
    expect(core.peersVersion).not.toBe(v0)
    const v1 = core.peersVersion
    const shutdown = readCapture('lldpad-evb-lldp')[2]!.data.slice()
    shutdown[35] = 0 // TTL 0: the station left, and held no VSI
    core.handleFrame(20, shutdown)
    expect(core.ecpAckOffload().peers).toEqual([])
    expect(core.peersVersion).not.toBe(v1)
  })

  it('names a station\'s bridge once it is known, and nobody before', () => {
    const core = station()
    expect(core.ecpAckOffload()).toEqual({ source: STATION, unicast: false, peers: [] })
    const v0 = core.peersVersion
    // The bridge's LLDPDU with its EVB TLV in bridge mode makes it known.
    const bridgeLldp = readCapture('lldpad-evb-lldp').map((f) => f.data).find((f) => decodeFrame(f).source === BRIDGE)!
    core.handleFrame(10, bridgeLldp)
    expect(core.ecpAckOffload().peers).toEqual([BRIDGE])
    expect(core.peersVersion).not.toBe(v0)
  })

  // ECP operation 1 (ACK) frames among what the core sent.
  const acks = (core: PortCore): number => {
    let n = 0
    for (let f = core.pollTransmit(); f !== undefined; f = core.pollTransmit()) if (f[12] === 0x89 && f[14] === 0x14) n++
    return n
  }

  it.each([
    ['bridge', bridge, 0], // a station's request
    ['station', station, 2], // the bridge's response
  ] as const)('%s: acknowledges a request itself unless told the link did', (_role, make, index) => {
    const frame = readCapture('lldpad-assoc')[index]!.data
    const plain = make()
    plain.handleFrame(10, frame)
    expect(acks(plain)).toBe(1)
    const offloaded = make()
    offloaded.handleFrame(10, frame, true)
    expect(acks(offloaded)).toBe(0)
    expect(offloaded.counters()).toMatchObject({ txAcks: 1, rxEcpdus: 1 })
  })
})

describe('PortConfig', () => {
  it('fills defaults and validates', () => {
    const c = resolvePortConfig({ port: portName('eth0'), mac: STATION })
    expect(c).toMatchObject({
      role: 'bridge',
      evb: { retries: 3, rwd: 20, rka: 20 },
      ecpDestination: 'ncb-group',
    })
    expect(() => validatePortConfig(c)).not.toThrow()
  })

  it.each([
    [{ mac: '01:80:c2:00:00:00' }, /mac/],
    [{ evb: { rte: 32 } }, /evb.rte/],
    [{ evb: { retries: 8 } }, /evb.retries/],
    [{ vsiCountMax: 0 }, /vsiCountMax/],
    [{ role: 'switch' }, /role/],
    [{ lldp: { txHold: 0 } }, /lldp.txHold/],
  ])('rejects %o', (patch, message) => {
    expect(() =>
      resolvePortConfig({ port: portName('eth0'), mac: STATION, ...(patch as object) }),
    ).toThrow(message)
  })
})
