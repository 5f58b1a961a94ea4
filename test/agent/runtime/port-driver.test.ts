// The port driver hands frames to the link as the core builds them: the ECP ACK of a station's
// ECPDU is on the link before the bridge's VDP processing of that ECPDU starts (the resource
// decision runs), and the VDP response follows in the same step.
import { describe, expect, it } from 'vitest'
import { decodeEcpdu } from '../../../shared/ecp/codec.ts'
import { decodeEthernetFrame } from '../../../shared/ethernet/frame.ts'
import { parseMac } from '../../../shared/ethernet/mac.ts'
import { portName } from '../../../shared/ids.ts'
import { decodeVdpPdu } from '../../../shared/vdp/codec.ts'
import type { ResourceRequest } from '../../../agent/port/resources.ts'
import { PortCore } from '../../../agent/port/port-core.ts'
import { PortDriver } from '../../../agent/runtime/port-driver.ts'
import { silentLogger } from '../../../agent/runtime/logger.ts'
import { AbsorbedAckCollector } from '../../../agent/runtime/absorbed-acks.ts'
import type { AbsorbedEcpAck, EcpAckAbsorb, EcpAckOffload, FrameLink, FrameLinkStats } from '../../../agent/transport/frame-link.ts'
import { FrameLinkError } from '../../../agent/transport/frame-link.ts'
import { readCapture } from '../../support/captures.ts'
import { FakeResourceManager } from '../../support/pair.ts'

const SWITCH_MAC = parseMac('02:76:64:70:00:02')

class RecordingLink implements FrameLink {
  readonly name = 'sw0'
  readonly mac = SWITCH_MAC
  readonly sent: Uint8Array[] = []
  handler: ((frame: Uint8Array, acked: boolean) => void) | undefined
  send(frame: Uint8Array): void {
    this.sent.push(frame)
  }
  onFrame(handler: (frame: Uint8Array, acked: boolean) => void): void {
    this.handler = handler
  }
  stats(): FrameLinkStats {
    return { rxFrames: 0, txFrames: this.sent.length, drops: 0, txErrors: 0, errors: 0 }
  }
  close(): void {}
}

/** Resource manager that notes how many frames had left when each decision was asked for. */
class ObservingResources extends FakeResourceManager {
  readonly sentAtRequest: number[] = []
  constructor(readonly link: RecordingLink) {
    super()
  }
  override request(req: ResourceRequest): ReturnType<FakeResourceManager['request']> {
    this.sentAtRequest.push(this.link.sent.length)
    return super.request(req)
  }
}

const ecpOf = (frame: Uint8Array) => decodeEcpdu(decodeEthernetFrame(frame).payload)

/** A started driver of a bridge core on `link`; the test moves the virtual time (`clock.us`). */
function startBridgeDriver(link: FrameLink, resources: FakeResourceManager, more: { absorbedAcks?: AbsorbedAckCollector; log?: typeof silentLogger } = {}): { driver: PortDriver; clock: { us: number } } {
  const clock = { us: 1_000_000 }
  const driver = new PortDriver({
    link,
    ...(more.absorbedAcks ? { absorbedAcks: more.absorbedAcks } : {}),
    clock: { nowUs: () => clock.us, wallMs: () => 0 },
    makeCore: () =>
      new PortCore({ port: portName('sw0'), mac: SWITCH_MAC, role: 'bridge', lldp: { enabled: false } }, resources, clock.us),
    onEvent: () => {},
    log: more.log ?? silentLogger,
  })
  driver.start()
  return { driver, clock }
}

describe('PortDriver', () => {
  it('sends the ECP ACK before the VDP work of the same ECPDU, the response right after', () => {
    const link = new RecordingLink()
    const resources = new ObservingResources(link)
    const { driver, clock } = startBridgeDriver(link, resources)
    const request = readCapture('lldpad-assoc')[0]!.data
    const requestSeq = ecpOf(request).header.sequence
    clock.us += 10
    link.handler!(request, false)

    expect(resources.sentAtRequest).toEqual([1])
    expect(link.sent).toHaveLength(2)
    const ack = ecpOf(link.sent[0]!)
    expect(ack.header.operation).toBe(1)
    expect(ack.header.sequence).toBe(requestSeq)
    const response = ecpOf(link.sent[1]!)
    expect(response.header.operation).toBe(0)
    const tlv = decodeVdpPdu(response.ulpdu).tlvs[0]!
    expect(tlv.kind === 'vsi' && tlv.status.response).toBe(true)
    driver.close()
  })

  it('keeps a link that acknowledges ECP requests itself told which peers the bridge core holds', () => {
    class OffloadingLink extends RecordingLink {
      readonly offloads: Array<EcpAckOffload | undefined> = []
      ackEcp(offload: EcpAckOffload | undefined): void {
        this.offloads.push(offload)
      }
    }
    const link = new OffloadingLink()
    const resources = new ObservingResources(link)
    const { driver, clock } = startBridgeDriver(link, resources)
    // A fresh core holds no peer: the link acknowledges nothing yet.
    expect(link.offloads).toEqual([{ source: SWITCH_MAC, unicast: false, peers: [] }])

    const [first, , , , second] = readCapture('lldpad-assoc').map((f) => f.data)
    clock.us += 10
    link.handler!(first!, false) // the station's first frame: the core acknowledges it
    expect(link.offloads.at(-1)).toEqual({ source: SWITCH_MAC, unicast: false, peers: ['02:76:64:70:00:01'] })
    expect(ecpOf(link.sent[0]!).header.operation).toBe(1)

    // Acknowledged by the link already: the core takes the ECPDU, counts the ACK, builds none.
    const sentBefore = link.sent.length
    const offloadsBefore = link.offloads.length
    link.handler!(second!, true)
    expect(link.sent.slice(sentBefore).map(ecpOf).filter((e) => e.header.operation === 1)).toEqual([])
    expect(driver.core.counters()).toMatchObject({ rxEcpdus: 2, txAcks: 2, rxVdpTlvs: 2 })
    expect(link.offloads).toHaveLength(offloadsBefore) // same peers: not set again

    driver.close()
    expect(link.offloads.at(-1)).toBeUndefined()
  })

  it('arms ACK absorption before the response leaves, and gives collected ACKs to the core before the next step', () => {
    const calls: string[] = []
    class AbsorbingLink extends RecordingLink {
      readonly absorbs: Array<EcpAckAbsorb | undefined> = []
      override send(frame: Uint8Array): void {
        calls.push(`send ${ecpOf(frame).header.operation === 1 ? 'ack' : 'ecpdu'}`)
        super.send(frame)
      }
      absorbEcpAcks(absorb: EcpAckAbsorb | undefined): void {
        calls.push(`absorb [${absorb?.awaited.map((a) => a.sequence).join(',') ?? '-'}]`)
        this.absorbs.push(absorb)
      }
    }
    const link = new AbsorbingLink()
    let taken: AbsorbedEcpAck[] = []
    const collector = new AbsorbedAckCollector(() => {
      const out = taken
      taken = []
      return out
    })
    const { driver, clock } = startBridgeDriver(link, new ObservingResources(link), { absorbedAcks: collector })
    calls.length = 0
    const request = readCapture('lldpad-assoc')[0]!.data
    clock.us += 10
    link.handler!(request, false)
    const response = ecpOf(link.sent[1]!).header.sequence
    // A new peer (nothing awaited yet), its ACK, then the awaited set with the response's
    // sequence, then the response itself.
    expect(calls).toEqual(['absorb []', 'send ack', `absorb [${response}]`, 'send ecpdu'])
    expect(link.absorbs.at(-1)).toEqual({ own: SWITCH_MAC, awaited: [{ peer: '02:76:64:70:00:01', sequence: response }] })

    // The link took the station's ACK in; the next step of any port hands it to the core.
    taken = [{ link, peer: parseMac('02:76:64:70:00:01'), sequence: response }]
    calls.length = 0
    clock.us += 100
    driver.command({ kind: 'report-counters' })
    expect(driver.core.counters()).toMatchObject({ rxAcks: 1, rxAcksAbsorbed: 1 })
    expect(driver.core.ecpAckAbsorb().awaited).toEqual([])
    expect(calls[0]).toBe('absorb []')
    expect(collector.delivered).toBe(1)
    driver.close()
    // ACKs of a closed driver's link have nobody to go to.
    taken = [{ link, peer: parseMac('02:76:64:70:00:01'), sequence: 1 }]
    collector.collect()
    expect(collector.orphaned).toBe(1)
  })

  it('logs once and stops asking when the link cannot take ACKs in', () => {
    let tries = 0
    class RefusingLink extends RecordingLink {
      absorbEcpAcks(): void {
        tries++
        throw new FrameLinkError('EPERM', false, 'Cannot absorb ECP ACKs on sw0: bpf(BPF_PROG_LOAD) failed: Operation not permitted', 'bpf(BPF_PROG_LOAD)')
      }
    }
    const link = new RefusingLink()
    const warnings: string[] = []
    const log = { ...silentLogger, warn: (event: string) => void warnings.push(event), child: () => log }
    const collector = new AbsorbedAckCollector(() => [])
    const { driver, clock } = startBridgeDriver(link, new ObservingResources(link), { absorbedAcks: collector, log: log as typeof silentLogger })
    for (const f of readCapture('lldpad-assoc').map((c) => c.data).slice(0, 5)) {
      clock.us += 1000
      link.handler!(f, false)
    }
    expect(tries).toBe(1)
    expect(warnings).toEqual(['ecp-ack-absorb-off'])
    expect(driver.core.counters().rxVdpTlvs).toBeGreaterThan(0)
    driver.close()
  })

  it('hands frames queued before the sink was set to the sink, in order', () => {
    const make = () => new PortCore({ port: portName('sw0'), mac: SWITCH_MAC, role: 'bridge' }, new FakeResourceManager(), 0)
    // With LLDP on, the first timer sends an LLDPDU.
    const reference = make()
    reference.handleTimeout(reference.nextDeadlineUs()!)
    const queued: Uint8Array[] = []
    for (let f = reference.pollTransmit(); f !== undefined; f = reference.pollTransmit()) queued.push(f)
    expect(queued.length).toBeGreaterThan(0)

    const core = make()
    core.handleTimeout(core.nextDeadlineUs()!)
    const link = new RecordingLink()
    core.setTransmitSink((f) => link.send(f))
    expect(link.sent).toEqual(queued)
    expect(core.pollTransmit()).toBeUndefined()
  })
})
