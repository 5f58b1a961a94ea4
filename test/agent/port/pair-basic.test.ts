import { describe, expect, it } from 'vitest'
import { decodePcap } from '../../../shared/pcap/pcap.ts'
import { BridgeStationPair, FakeResourceManager } from '../../support/pair.ts'
import { associate, MGR, vsiIdOf } from './fixtures.ts'

describe('PortCore pair', () => {
  it('associate with VID 0 gets the VID the resource manager picks', () => {
    const pair = new BridgeStationPair()
    pair.command(pair.station, associate(1))
    pair.settle()
    const stationVsis = pair.station.vsiSnapshot()
    const bridgeVsis = pair.bridge.vsiSnapshot()
    expect(stationVsis).toHaveLength(1)
    expect(bridgeVsis).toHaveLength(1)
    expect(bridgeVsis[0]!.state).toBe('WAITCMD')
    expect(bridgeVsis[0]!.confirmedMode).toBe('associate')
    expect(stationVsis[0]!.state).toBe('WAIT_SYSCMD')
    expect(stationVsis[0]!.vsi.entries[0]!.vid).toBe(100)
    const assoc = pair.eventsOf(pair.station, 'vsi-associated')
    expect(assoc).toHaveLength(1)
    expect(assoc[0]!.vsi.vsiId).toEqual(vsiIdOf(1))
    expect(assoc[0]!.vsi.managerId).toBe(MGR)
    expect((pair.resources as FakeResourceManager).requests).toBe(1)
  })
  it('dumps the link as text and as a pcap file', () => {
    const pair = new BridgeStationPair()
    pair.command(pair.station, associate(1))
    pair.settle()
    const sent = new Set(pair.frames.map((f) => f.bytes)).size
    const pcap = decodePcap(pair.pcap())
    expect(pcap.records).toHaveLength(sent)
    expect(pcap.records.map((r) => r.timeUs)).toEqual(
      [...pcap.records.map((r) => r.timeUs)].sort((a, b) => a - b),
    )
    expect(pair.dumpFrames()).toMatch(/ECP REQ seq 1 \[associate:0001\]/)
    expect(pair.dumpFrames()).toMatch(/ECP ACK seq 1/)
  })
})
