// The port driver hands frames to the link as the core builds them: the ECP ACK of a station's
// ECPDU is on the link before the bridge's VDP processing of that ECPDU starts (the resource
// decision runs), and the VDP response follows in the same step.
import { describe, expect, it } from 'vitest'
import { decodeEcpdu } from '../../../shared/ecp/codec.ts'
import { decodeEthernetFrame, encodeEthernetFrame } from '../../../shared/ethernet/frame.ts'
import { parseMac } from '../../../shared/ethernet/mac.ts'
import { portName } from '../../../shared/ids.ts'
import { decodeVdpPdu } from '../../../shared/vdp/codec.ts'
import type { ResourceRequest } from '../../../agent/port/resources.ts'
import { PortCore } from '../../../agent/port/port-core.ts'
import { isVdpEcpdu, PortDriver } from '../../../agent/runtime/port-driver.ts'
import { silentLogger } from '../../../agent/runtime/logger.ts'
import { AbsorbedAckCollector } from '../../../agent/runtime/absorbed-acks.ts'
import type { AbsorbedEcpAck, AnswerLoanReturn, EcpAckAbsorb, EcpAckOffload, FrameLink, FrameLinkStats, KeepAliveAnswers } from '../../../agent/transport/frame-link.ts'
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
function startBridgeDriver(
  link: FrameLink,
  resources: FakeResourceManager,
  more: { absorbedAcks?: AbsorbedAckCollector; log?: typeof silentLogger; onResponse?: (seconds: number) => void; clock?: { us: number } } = {},
): { driver: PortDriver; clock: { us: number } } {
  const clock = more.clock ?? { us: 1_000_000 }
  const driver = new PortDriver({
    link,
    ...(more.absorbedAcks ? { absorbedAcks: more.absorbedAcks } : {}),
    ...(more.onResponse ? { onResponse: more.onResponse } : {}),
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

  it('reports the time from reading a VDP request to its response leaving, only for responses sent in that step', () => {
    const clock = { us: 1_000_000 }
    const link = new RecordingLink()
    // The decision takes 40 µs of the virtual clock.
    class SlowResources extends FakeResourceManager {
      override request(req: ResourceRequest): ReturnType<FakeResourceManager['request']> {
        clock.us += 40
        return super.request(req)
      }
    }
    const seconds: number[] = []
    const { driver } = startBridgeDriver(link, new SlowResources(), { clock, onResponse: (s) => seconds.push(s) })
    const frames = readCapture('lldpad-assoc').map((f) => f.data)
    clock.us += 10
    link.handler!(frames[0]!, false)
    expect(seconds).toHaveLength(1)
    expect(seconds[0]).toBeCloseTo(40e-6, 12)
    const firstResponse = ecpOf(link.sent[1]!).header.sequence

    // The next request's response waits behind the unacknowledged first one: none in its step.
    clock.us += 1000
    link.handler!(frames[4]!, false)
    expect(link.sent.map(ecpOf).filter((e) => e.header.operation === 0)).toHaveLength(1)
    expect(seconds).toHaveLength(1)

    // The station's ACK releases it: it leaves in the ACK's step, which is not a request's.
    const ack = Uint8Array.from(frames[3]!)
    ack[16] = firstResponse >> 8
    ack[17] = firstResponse & 0xff
    clock.us += 1000
    link.handler!(ack, false)
    expect(link.sent.map(ecpOf).filter((e) => e.header.operation === 0)).toHaveLength(2)
    expect(seconds).toHaveLength(1)
    driver.close()
  })

  it('tells VDP ECPDUs (untagged, C- or S-tagged) from ACKs, other ECP subtypes, LLDP and short frames', () => {
    const [request, ack] = readCapture('lldpad-assoc').map((f) => f.data)
    expect(isVdpEcpdu(request!)).toBe(true)
    expect(isVdpEcpdu(ack!)).toBe(false)
    const tagged = new Uint8Array(request!.length + 4)
    tagged.set(request!.subarray(0, 12))
    tagged.set([0x81, 0x00, 0x00, 0x64], 12)
    tagged.set(request!.subarray(12), 16)
    expect(isVdpEcpdu(tagged)).toBe(true)
    tagged[12] = 0x88
    tagged[13] = 0xa8 // an S-tag (S-channel)
    expect(isVdpEcpdu(tagged)).toBe(true)
    const peCsp = Uint8Array.from(request!)
    peCsp[15] = 2
    expect(isVdpEcpdu(peCsp)).toBe(false)
    const lldp = Uint8Array.from(request!)
    lldp[12] = 0x88
    lldp[13] = 0xcc
    expect(isVdpEcpdu(lldp)).toBe(false)
    expect(isVdpEcpdu(request!.subarray(0, 17))).toBe(false)
    expect(isVdpEcpdu(new Uint8Array(0))).toBe(false)
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

  it('lends the link the ECP transmit side only between steps and takes it back before each one', () => {
    const calls: string[] = []
    let onReturn: (() => void) | undefined
    let back: AnswerLoanReturn = { sequence: 0, holdUntilUs: 0, outstanding: [] }
    class AnsweringLink extends RecordingLink {
      readonly answers: KeepAliveAnswers = {
        start: (capacity, _nowUs, ret) => {
          calls.push(`start ${capacity}`)
          onReturn = ret
          return new Float64Array(2 * capacity)
        },
        stop: () => void calls.push('stop'),
        set: (id) => void calls.push(`set ${id}`),
        remove: (id) => void calls.push(`remove ${id}`),
        lend: (loan) => void calls.push(`lend ${loan.lastSequence}`),
        takeBack: () => {
          calls.push('takeBack')
          return back
        },
        forget: () => {},
        peerStats: () => [],
      }
    }
    const link = new AnsweringLink()
    const { driver, clock } = startBridgeDriver(link, new FakeResourceManager())
    expect(calls).toEqual(['start 4096'])
    const request = readCapture('lldpad-assoc')[0]!.data
    const station = decodeEthernetFrame(request).source
    clock.us += 10
    link.handler!(request, false)
    const response = link.sent[1]!
    const seq = ecpOf(response).header.sequence
    // The pair is stored; the response awaits its ACK: nothing lent yet.
    expect(calls).toEqual(['start 4096', 'set 0'])
    const ack = encodeEthernetFrame({ destination: parseMac('01:80:c2:00:00:00'), source: station, ethertype: 0x8940, payload: Uint8Array.of(0x14, 0x01, seq >> 8, seq & 0xff) })
    clock.us += 100
    link.handler!(ack, false)
    expect(calls.at(-1)).toBe(`lend ${seq}`)
    // Any step takes the side back first (here a command), and lends it again after.
    calls.length = 0
    back = { sequence: seq + 5, holdUntilUs: 0, outstanding: [] }
    driver.command({ kind: 'report-counters' })
    expect(calls).toEqual(['takeBack', `lend ${seq + 5}`])
    // An answer the link sent ran out of its ack timer: the link calls back; the core adopts
    // it and retransmits it with its own sequence number.
    const answer = Uint8Array.from(response)
    answer[16] = (seq + 6) >> 8
    answer[17] = (seq + 6) & 0xff
    back = { sequence: seq + 6, holdUntilUs: 0, outstanding: [{ peer: station, sequence: seq + 6, frame: answer, deadlineUs: clock.us }] }
    calls.length = 0
    const sentBefore = link.sent.length
    clock.us += 1000
    onReturn!()
    expect(calls[0]).toBe('takeBack')
    // Retransmitted in the timeout step the callback ran (the deadline had passed).
    expect(link.sent.slice(sentBefore).map((f) => ecpOf(f).header.sequence)).toEqual([seq + 6])
    expect(driver.core.counters().txRetransmits).toBe(1)
    // Nothing lent while the adopted ECPDU awaits its ACK.
    expect(calls.filter((c) => c.startsWith('lend'))).toEqual([])
    driver.close()
  })
})

