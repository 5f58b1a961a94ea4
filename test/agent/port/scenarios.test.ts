import { describe, expect, it } from 'vitest'
import { NCB_GROUP_MAC } from '../../../shared/ethernet/mac.ts'
import { managerIdFromText, portName } from '../../../shared/ids.ts'
import { VdpError } from '../../../shared/vdp/constants.ts'
import type { FilterEntry, VsiTlv } from '../../../shared/vdp/types.ts'
import { Writer } from '../../../shared/wire/writer.ts'
import { BRIDGE_FIRST_SEQUENCE, PortCore } from '../../../agent/port/port-core.ts'
import {
  ackTimerUs,
  reinitKeepAliveUs,
  respWaitDelayUs,
  toutKeepAliveUs,
} from '../../../agent/port/timers.ts'
import { BRIDGE_MAC, FakeResourceManager, stationMac } from '../../support/pair.ts'
import { at, ecpFrame, runScenario } from '../../support/scenario.ts'
import {
  associate,
  command,
  macVidEntry,
  MGR,
  preAssociate,
  requestTlv,
  vsiIdOf,
} from './fixtures.ts'

const EVB = { retries: 3, rte: 8, rwd: 20, rka: 20 }
const ACK_US = ackTimerUs(EVB.rte)
const RESP_WAIT_US = respWaitDelayUs(EVB)
const TOUT_KA_US = toutKeepAliveUs(EVB)
const REINIT_US = reinitKeepAliveUs(EVB.rka)
const STATION = stationMac(0)
/** Sequence number of the bridge's n-th ECPDU (bridge ports count from BRIDGE_FIRST_SEQUENCE). */
const bseq = (n: number): number => BRIDGE_FIRST_SEQUENCE + n - 1

const quiet = { lldp: { enabled: false }, countersIntervalUs: 0, evb: EVB } as const

function stationCore(): PortCore {
  return new PortCore(
    { port: portName('h0'), mac: STATION, role: 'station', ...quiet },
    undefined,
    0,
  )
}

function bridgeCore(resources = new FakeResourceManager()): PortCore {
  return new PortCore(
    { port: portName('sw0'), mac: BRIDGE_MAC, role: 'bridge', ...quiet },
    resources,
    0,
  )
}

const fromStation = (sequence: number, tlvs: VsiTlv[], managerId = MGR) =>
  ecpFrame({ source: STATION, sequence, vdp: { managerId, tlvs } })
const ackFromStation = (sequence: number) => ecpFrame({ source: STATION, sequence, ack: true })
const fromBridge = (sequence: number, tlvs: VsiTlv[]) =>
  ecpFrame({ source: BRIDGE_MAC, sequence, vdp: { managerId: MGR, tlvs } })
const ackFromBridge = (sequence: number) => ecpFrame({ source: BRIDGE_MAC, sequence, ack: true })

function response(
  request: VsiTlv,
  entries: FilterEntry[],
  status: Partial<{ keep: boolean; hard: boolean; error: number }> = {},
  mode = request.mode,
): VsiTlv {
  return {
    ...request,
    mode,
    entries,
    status: { response: true, keep: false, hard: false, error: 0, ...status },
  }
}

describe('timer formulas', () => {
  it('computes the lldpad defaults (R 3, RTE 8, RWD 20, RKA 20)', () => {
    expect(ACK_US).toBe(2560)
    expect(REINIT_US).toBe(10_485_760)
    // 1.5 * (10.48576 s + 7 * 2.56 ms) = 15.75552 s, the 15.76 s measured against lldpad.
    expect(RESP_WAIT_US).toBe(15_755_520)
    expect(TOUT_KA_US).toBe(15_755_520)
    expect(toutKeepAliveUs({ retries: 0, rte: 0, rka: 0 })).toBe(30)
  })
})

describe('ECP transmit (station core)', () => {
  it('resends an unacknowledged ECPDU retriesMax times with the same bytes, re-queues its TLV twice, then reports tx-error', () => {
    const rows = [at(0).command(associate(1))]
    // Three ECPDUs (the first and two re-queues of its TLV, each under a new sequence
    // number), each sent 1 + R times ackTimer apart, then the VSI is given up.
    for (let attempt = 0; attempt < 3; attempt++) {
      const t0 = attempt * 4 * ACK_US
      const seq = attempt + 1
      rows.push(
        at(t0).expectTransmit({ destination: NCB_GROUP_MAC, ecp: { operation: 0, sequence: seq }, vdp: { tlvs: [{ mode: 'associate' }] } }, `ECPDU ${seq}`),
        at(t0 + ACK_US - 1).expectNoTransmit(),
        at(t0 + ACK_US).expectTransmit({ ecp: { sequence: seq } }, `ECPDU ${seq} retry 1`),
        at(t0 + 2 * ACK_US).expectTransmit({ ecp: { sequence: seq } }, `ECPDU ${seq} retry 2`),
        at(t0 + 3 * ACK_US).expectTransmit({ ecp: { sequence: seq } }, `ECPDU ${seq} retry 3`),
        at(t0 + 4 * ACK_US).expectEvent({ kind: 'ecp-tx-error', sequence: seq, tlvCount: 1 }),
      )
    }
    rows.push(
      at(12 * ACK_US).expectEvent({ kind: 'vsi-de-associated', reason: 'tx-error' }),
      at(12 * ACK_US).expectNoTransmit(),
      at(12 * ACK_US).check((core) => {
        expect(core.vsiSnapshot()).toEqual([])
        expect(core.counters()).toMatchObject({ txEcpdus: 12, txRetransmits: 9, txErrors: 3, txResends: 2 })
      }),
    )
    const { transmitted } = runScenario(stationCore(), rows)
    const requests = transmitted.filter((f) => f.ecp?.operation === 0)
    expect(requests).toHaveLength(12)
    for (let k = 0; k < 12; k++) expect(requests[k]!.bytes).toEqual(requests[k - (k % 4)]!.bytes)
  })

  it('sends the next ECPDU as soon as the ACK arrives and packs queued TLVs of one Manager ID', () => {
    runScenario(stationCore(), [
      at(0).command(associate(1)),
      at(0).command(associate(2)),
      at(0).command(associate(3)),
      at(0).expectTransmit({ ecp: { sequence: 1 }, vdp: { tlvs: [{ vsiId: vsiIdOf(1) }] } }),
      at(0).expectNoTransmit(),
      at(100).frame(ackFromBridge(1)),
      at(100).expectTransmit({
        ecp: { sequence: 2 },
        vdp: { managerId: MGR, tlvs: [{ vsiId: vsiIdOf(2) }, { vsiId: vsiIdOf(3) }] },
      }),
      at(150).frame(ackFromBridge(2)),
      at(150).expectNoTransmit(),
    ])
  })

  it('ignores an ACK with another sequence number', () => {
    runScenario(stationCore(), [
      at(0)
        .command(associate(1))
        .expectTransmit({ ecp: { sequence: 1 } }),
      at(10).frame(ackFromBridge(9)).expectNoTransmit(),
      at(ACK_US).expectTransmit({ ecp: { sequence: 1 } }, 'still unacknowledged'),
    ])
  })

  it('keeps each ULPDU within 1494 octets and one Manager ID per ECPDU', () => {
    const other = managerIdFromText('other')
    const rows = [at(0).command(associate(1))]
    for (let n = 2; n <= 61; n++) rows.push(at(0).command(associate(n)))
    rows.push(at(0).command(associate(62, { managerId: other })))
    rows.push(at(0).command(associate(63)))
    const { transmitted } = runScenario(stationCore(), [
      ...rows,
      at(10).frame(ackFromBridge(1)),
      at(20).frame(ackFromBridge(2)),
      at(30).frame(ackFromBridge(3)),
      at(40).frame(ackFromBridge(4)),
      at(50).frame(ackFromBridge(5)),
    ])
    const pdus = transmitted.filter((f) => f.ecp?.operation === 0)
    // 1 + 42 (35-octet TLVs after the 18-octet Manager ID TLV) + 18 + the other manager + 1.
    expect(pdus.map((p) => p.vdp!.tlvs.length)).toEqual([1, 42, 18, 1, 1])
    expect(pdus.map((p) => p.vdp!.managerId)).toEqual([MGR, MGR, MGR, other, MGR])
    for (const p of pdus) expect(p.bytes.length - 14 - 4).toBeLessThanOrEqual(1494)
  })

  it('wraps the sequence number from 65535 to 1, skipping 0', async () => {
    const { EcpTx } = await import('../../../agent/port/ecp-tx.ts')
    const tx = new EcpTx({ ackTimerUs: 10, retriesMax: 0, pendingMax: 10 })
    const seen: number[] = []
    const item = { managerId: MGR, tlv: requestTlv('associate', 1), length: 35, owner: undefined }
    for (let i = 0; i < 65_537; i++) {
      tx.enqueue(i, item)
      const t = tx.pollTransmission()!
      if (i < 2 || i >= 65_533) seen.push(t.sequence)
      tx.handleAck(i, t.sequence)
    }
    expect(seen).toEqual([1, 2, 65_534, 65_535, 1, 2])
  })
})

describe('ECP receive and the VDP bridge (bridge core)', () => {
  const assoc1 = requestTlv('associate', 1)

  it('ACKs a duplicate again but does not deliver it', () => {
    const rm = new FakeResourceManager()
    runScenario(bridgeCore(rm), [
      at(0).frame(fromStation(7, [assoc1])),
      at(0).expectTransmit({ ecp: { operation: 1, sequence: 7 } }, 'ACK'),
      at(0).expectTransmit({
        ecp: { operation: 0, sequence: bseq(1) },
        vdp: {
          tlvs: [
            { mode: 'associate', status: { response: true, error: 0 }, entries: [{ vid: 100 }] },
          ],
        },
      }),
      at(10).frame(fromStation(7, [assoc1])),
      at(10).expectTransmit({ ecp: { operation: 1, sequence: 7 } }, 'ACK of the duplicate'),
      at(10).expectNoTransmit(),
      at(20).frame(ackFromStation(bseq(1))),
      at(20).check((core) => {
        expect(rm.requests).toBe(1)
        expect(core.counters()).toMatchObject({ rxDuplicates: 1, txAcks: 2 })
        expect(core.peerCounters(STATION)).toMatchObject({ rxDuplicates: 1, rxEcpdus: 2 })
      }),
      at(30).frame(fromStation(6, [assoc1])),
      at(30).expectTransmit({ ecp: { operation: 1, sequence: 6 } }, 'a lower number is new'),
      at(30).expectTransmit(
        { ecp: { operation: 0, sequence: bseq(2) } },
        'answered as a keep-alive',
      ),
    ])
  })

  it('answers an identical keep-alive from the stored state (ALIVE) without asking the resource manager', () => {
    const rm = new FakeResourceManager()
    const keepAlive = requestTlv('associate', 1, [macVidEntry(1, 100)])
    runScenario(bridgeCore(rm), [
      at(0).frame(fromStation(1, [assoc1])),
      at(0).expectEvent({
        kind: 'vsi-associated',
        role: 'bridge',
        vsi: { entries: [{ vid: 100 }] },
      }),
      at(50).frame(ackFromStation(bseq(1))),
      at(50).expectTransmit({ ecp: { operation: 1, sequence: 1 } }),
      at(50).expectTransmit({ ecp: { operation: 0, sequence: bseq(1) } }),
      at(REINIT_US).frame(fromStation(2, [keepAlive])),
      at(REINIT_US).expectTransmit({ ecp: { operation: 1, sequence: 2 } }),
      at(REINIT_US).expectTransmit({
        vdp: {
          tlvs: [
            { mode: 'associate', status: { response: true, error: 0 }, entries: [{ vid: 100 }] },
          ],
        },
      }),
      at(REINIT_US).expectNoEvent('vsi-associated'),
      at(REINIT_US + 50).frame(ackFromStation(bseq(2))),
      at(REINIT_US + 50).check((core) => {
        expect(rm.requests).toBe(1)
        expect(core.counters().keepalivesRx).toBe(1)
        expect(core.vsiSnapshot()[0]).toMatchObject({
          state: 'WAITCMD',
          confirmedMode: 'associate',
          deadlineUs: REINIT_US + TOUT_KA_US,
        })
      }),
      // The keep-alive moved the supervision deadline.
      at(REINIT_US + TOUT_KA_US - 1).expectNoTransmit(),
      at(REINIT_US + TOUT_KA_US).expectTransmit({
        vdp: { tlvs: [{ mode: 'de-associate', status: { response: false } }] },
      }),
    ])
  })

  it('de-associates a VSI without keep-alives after toutKeepAlive with status 0x00', () => {
    const rm = new FakeResourceManager()
    runScenario(bridgeCore(rm), [
      at(0).frame(fromStation(1, [assoc1])),
      at(0).expectTransmit({ ecp: { operation: 1 } }),
      at(0).expectTransmit({ ecp: { sequence: bseq(1) } }),
      at(50).frame(ackFromStation(bseq(1))),
      at(TOUT_KA_US - 1).expectNoTransmit(),
      at(TOUT_KA_US).expectTransmit({
        ecp: { operation: 0, sequence: bseq(2) },
        vdp: {
          tlvs: [
            {
              mode: 'de-associate',
              status: { response: false, migratingFrom: false, migratingTo: false },
              vsiId: vsiIdOf(1),
              entries: [{ vid: 100 }],
            },
          ],
        },
      }),
      at(TOUT_KA_US).expectEvent({
        kind: 'vsi-de-associated',
        reason: 'keepalive-timeout',
        transition: 'keepalive-timeout',
      }),
      at(TOUT_KA_US).check((core) => {
        expect(core.vsiSnapshot()).toEqual([])
        expect(rm.log).toContain(`release ${vsiIdOf(1).id} keepalive-timeout`)
        expect(rm.held.size).toBe(0)
      }),
    ])
  })

  it('releases and deletes a VSI on a station De-Associate and answers 0x40', () => {
    const rm = new FakeResourceManager()
    runScenario(bridgeCore(rm), [
      at(0).frame(fromStation(1, [assoc1])),
      at(50).frame(ackFromStation(bseq(1))),
      at(100).frame(fromStation(2, [requestTlv('de-associate', 1, [macVidEntry(1, 100)])])),
      at(100).expectEvent({ kind: 'vsi-de-associated', reason: 'station-request' }),
      at(100).expectTransmit({ ecp: { operation: 1, sequence: 1 } }),
      at(100).expectTransmit({ ecp: { operation: 0, sequence: bseq(1) } }),
      at(100).expectTransmit({ ecp: { operation: 1, sequence: 2 } }),
      at(100).expectTransmit({
        ecp: { sequence: bseq(2) },
        vdp: {
          tlvs: [
            { mode: 'de-associate', status: { response: true, error: 0 }, entries: [{ vid: 100 }] },
          ],
        },
      }),
      at(100).check((core) => {
        expect(core.vsiSnapshot()).toEqual([])
        expect(rm.held.size).toBe(0)
      }),
      // No stale supervision: nothing is sent at the old keep-alive deadline.
      at(150).frame(ackFromStation(bseq(2))),
      at(TOUT_KA_US + 10).expectNoTransmit(),
    ])
  })

  it('answers a De-Associate for an unknown VSI at once, keeping no state', () => {
    const rm = new FakeResourceManager()
    runScenario(bridgeCore(rm), [
      at(0).frame(fromStation(1, [requestTlv('de-associate', 9, [macVidEntry(9, 300)])])),
      at(0).expectTransmit({ ecp: { operation: 1, sequence: 1 } }),
      at(0).expectTransmit({
        vdp: {
          tlvs: [
            {
              mode: 'de-associate',
              status: { response: true, error: 0 },
              vsiId: vsiIdOf(9),
              entries: [{ vid: 300 }],
            },
          ],
        },
      }),
      at(0).expectNoEvent('vsi-de-associated'),
      at(0).check((core) => {
        expect(core.vsiSnapshot()).toEqual([])
        expect(rm.requests + rm.releases).toBe(0)
      }),
    ])
  })

  it('answers a malformed TLV that still names a VSI with error 1 (invalid format)', () => {
    // Associate TLV whose entry count is 0: lldpad ignores it silently.
    const body = new Writer(25)
    body.u8(0x00)
    body.u24(5)
    body.u8(1)
    body.u8(5)
    body.bytes(
      Uint8Array.from(
        vsiIdOf(4)
          .id.match(/../g)!
          .map((h) => parseInt(h, 16)),
      ),
    )
    body.u8(2)
    body.u16(0)
    const ulpdu = new Writer(18 + 27)
    ulpdu.u16((5 << 9) | 16)
    ulpdu.bytes(Uint8Array.from(MGR.match(/../g)!.map((h) => parseInt(h, 16))))
    ulpdu.u16((3 << 9) | 25)
    ulpdu.bytes(body.toBytes())
    runScenario(bridgeCore(), [
      at(0).frame(ecpFrame({ source: STATION, sequence: 1, ulpdu: ulpdu.toBytes() })),
      at(0).expectEvent({ kind: 'frame-dropped', code: 'bad-entry-count' }),
      at(0).expectTransmit({ ecp: { operation: 1, sequence: 1 } }),
      at(0).expectTransmit({
        ecp: { operation: 0 },
        vdpInvalid: [
          {
            identity: {
              mode: 'associate',
              vsiId: vsiIdOf(4),
              status: { response: true, keep: false, error: VdpError.InvalidFormat },
            },
          },
        ],
      }),
      at(0).check((core) => expect(core.vsiSnapshot()).toEqual([])),
    ])
  })

  it('answers refused requests with a De-Associate TLV and the error, Keep requests with the Keep bit', () => {
    const rm = new FakeResourceManager()
    rm.rules.set(66, { outcome: 'refused', error: VdpError.InsufficientResources, hard: true })
    rm.rules.set(67, { outcome: 'keep', error: VdpError.OtherFailure })
    runScenario(bridgeCore(rm), [
      at(0).frame(fromStation(1, [requestTlv('associate', 1, [macVidEntry(1)], 66)])),
      at(0).expectTransmit({ ecp: { operation: 1 } }),
      at(0).expectTransmit({
        vdp: {
          tlvs: [
            { mode: 'de-associate', status: { response: true, keep: false, hard: true, error: 2 } },
          ],
        },
      }),
      at(0).expectEvent({
        kind: 'vsi-rejected',
        requested: 'associate',
        error: 2,
        hard: true,
        keep: false,
      }),
      at(10).frame(ackFromStation(bseq(1))),
      at(20).frame(fromStation(2, [requestTlv('associate', 2, [macVidEntry(2)], 67)])),
      at(20).expectTransmit({ ecp: { operation: 1 } }),
      at(20).expectTransmit({
        vdp: {
          tlvs: [
            { mode: 'associate', status: { response: true, keep: true, hard: false, error: 4 } },
          ],
        },
      }),
      at(20).expectEvent({ kind: 'vsi-rejected', requested: 'associate', error: 4, keep: true }),
      at(20).check((core) => expect(core.vsiSnapshot()).toEqual([])),
    ])
  })

  it('keeps the associated state when a later request gets a Keep answer', () => {
    const rm = new FakeResourceManager()
    runScenario(bridgeCore(rm), [
      at(0).frame(fromStation(1, [assoc1])),
      at(10).frame(ackFromStation(bseq(1))),
      at(20).check(() =>
        rm.rules.set(5, { outcome: 'keep', error: VdpError.UnableToContactVsiManager }),
      ),
      at(20).frame(fromStation(2, [requestTlv('pre-associate', 1, [macVidEntry(1, 100)])])),
      at(20).expectEvent({
        kind: 'vsi-rejected',
        requested: 'pre-associate',
        error: 3,
        keep: true,
      }),
      at(20).check((core) =>
        expect(core.vsiSnapshot()[0]).toMatchObject({
          state: 'WAITCMD',
          confirmedMode: 'associate',
        }),
      ),
    ])
  })

  it('moves an associated VSI to pre-associated (deactivate) and reports it', () => {
    runScenario(bridgeCore(), [
      at(0).frame(fromStation(1, [assoc1])),
      at(10).frame(ackFromStation(bseq(1))),
      at(20).frame(fromStation(2, [requestTlv('pre-associate', 1, [macVidEntry(1, 100)])])),
      at(20).expectEvent({ kind: 'vsi-associated' }),
      at(20).expectEvent({ kind: 'vsi-deactivated', rr: false, vsi: { entries: [{ vid: 100 }] } }),
      at(20).check((core) =>
        expect(core.vsiSnapshot()[0]).toMatchObject({
          state: 'WAITCMD',
          confirmedMode: 'pre-associate',
        }),
      ),
    ])
  })

  it('rejects VID 1 with error 5 and keeps no state', () => {
    runScenario(bridgeCore(), [
      at(0).frame(fromStation(1, [requestTlv('associate', 1, [macVidEntry(1, 1)])])),
      at(0).expectTransmit({ ecp: { operation: 1 } }),
      at(0).expectTransmit({
        vdp: {
          tlvs: [
            {
              mode: 'associate',
              status: { response: true, error: VdpError.InvalidVidGroupIdOrMac },
            },
          ],
        },
      }),
      at(0).check((core) => expect(core.vsiSnapshot()).toEqual([])),
    ])
  })

  it('de-associates on a local command with an unsolicited De-Associate', () => {
    const rm = new FakeResourceManager()
    runScenario(bridgeCore(rm), [
      at(0).frame(fromStation(1, [assoc1])),
      at(10).frame(ackFromStation(bseq(1))),
      at(20).command({ kind: 'de-associate', vsiId: vsiIdOf(1) }),
      at(20).expectEvent({ kind: 'vsi-de-associated', reason: 'local-command' }),
      at(20).expectTransmit({ ecp: { operation: 1 } }),
      at(20).expectTransmit({ ecp: { operation: 0, sequence: bseq(1) } }),
      at(20).expectTransmit({
        ecp: { sequence: bseq(2) },
        vdp: { tlvs: [{ mode: 'de-associate', status: { response: false } }] },
      }),
      at(20).check((core) => {
        expect(core.vsiSnapshot()).toEqual([])
        expect(rm.log).toContain(`release ${vsiIdOf(1).id} local-command`)
        expect(() => core.handleCommand(30, { kind: 'de-associate', vsiId: vsiIdOf(1) })).toThrow(
          expect.objectContaining({ name: 'LocalProtocolError', code: 'unknown-vsi' }),
        )
      }),
    ])
  })

  it('paces new ECPDUs by ecpTxGapUs when set (lldpad stations), packing what queued meanwhile', () => {
    const core = new PortCore(
      { port: portName('sw0'), mac: BRIDGE_MAC, role: 'bridge', ...quiet, ecpTxGapUs: 3000 },
      new FakeResourceManager(),
      0,
    )
    runScenario(core, [
      at(0).frame(fromStation(1, [assoc1])),
      at(0).expectTransmit({ ecp: { operation: 1, sequence: 1 } }),
      at(0).expectTransmit({ ecp: { operation: 0, sequence: bseq(1) } }),
      at(100).frame(ackFromStation(bseq(1))),
      at(200).frame(fromStation(2, [requestTlv('associate', 2)])),
      at(300).frame(fromStation(3, [requestTlv('associate', 3)])),
      at(300).expectTransmit({ ecp: { operation: 1, sequence: 2 } }),
      at(300).expectTransmit({ ecp: { operation: 1, sequence: 3 } }),
      at(2999).expectNoTransmit(),
      at(3000).expectTransmit({
        ecp: { operation: 0, sequence: bseq(2) },
        vdp: { tlvs: [{ vsiId: vsiIdOf(2) }, { vsiId: vsiIdOf(3) }] },
      }),
    ])
  })

  it('counts the gap from the end of the step that sent: a long step does not bring the next ECPDU closer', () => {
    const core = new PortCore(
      { port: portName('sw0'), mac: BRIDGE_MAC, role: 'bridge', ...quiet, ecpTxGapUs: 3000 },
      new FakeResourceManager(),
      0,
    )
    // ECP operation of each frame sent since the last look: 1 ACK, 0 request (a response).
    const sent = (): number[] => {
      const ops: number[] = []
      for (let f = core.pollTransmit(); f !== undefined; f = core.pollTransmit()) ops.push((f[14]! >> 2) & 3)
      return ops
    }
    core.handleFrame(0, fromStation(1, [assoc1]))
    expect(sent()).toEqual([1, 0])
    core.endStep(2500) // the step that answered took 2.5 ms (a cold first request, a GC pause)
    core.handleFrame(2600, ackFromStation(bseq(1)))
    core.endStep(2600)
    core.handleFrame(3200, fromStation(2, [requestTlv('associate', 2)]))
    core.endStep(3200)
    // Counted from the step's start the gap ended at 3000; from its end it lasts until 5500.
    expect(sent()).toEqual([1])
    expect(core.nextDeadlineUs()).toBe(5500)
    core.handleTimeout(5500)
    expect(sent()).toEqual([0])
  })

  it('spaces ECPDUs by ecpTxBurstGapUs once one had to wait for ecpTxGapUs, and answers a lone request at once', () => {
    const core = new PortCore(
      { port: portName('sw0'), mac: BRIDGE_MAC, role: 'bridge', ...quiet, ecpTxGapUs: 3000, ecpTxBurstGapUs: 8000 },
      new FakeResourceManager(),
      0,
    )
    runScenario(core, [
      at(0).frame(fromStation(1, [assoc1])),
      at(0).expectTransmit({ ecp: { operation: 1, sequence: 1 } }),
      at(0).expectTransmit({ ecp: { operation: 0, sequence: bseq(1) } }),
      at(100).frame(ackFromStation(bseq(1))),
      // Within the gap: waits until 3000 and marks a burst.
      at(200).frame(fromStation(2, [requestTlv('associate', 2)])),
      at(200).expectTransmit({ ecp: { operation: 1, sequence: 2 } }),
      at(2999).expectNoTransmit(),
      at(3000).expectTransmit({ ecp: { operation: 0, sequence: bseq(2) }, vdp: { tlvs: [{ vsiId: vsiIdOf(2) }] } }),
      at(3100).frame(ackFromStation(bseq(2))),
      // After a held ECPDU the burst gap applies: 3000 + 8000.
      at(3200).frame(fromStation(3, [requestTlv('associate', 3)])),
      at(3200).expectTransmit({ ecp: { operation: 1, sequence: 3 } }),
      at(10_999).expectNoTransmit(),
      at(11_000).expectTransmit({ ecp: { operation: 0, sequence: bseq(3) }, vdp: { tlvs: [{ vsiId: vsiIdOf(3) }] } }),
      at(11_100).frame(ackFromStation(bseq(3))),
      // A lone request long after: answered at once, the short gap again.
      at(30_000).frame(fromStation(4, [requestTlv('associate', 4)])),
      at(30_000).expectTransmit({ ecp: { operation: 1, sequence: 4 } }),
      at(30_000).expectTransmit({ ecp: { operation: 0, sequence: bseq(4) }, vdp: { tlvs: [{ vsiId: vsiIdOf(4) }] } }),
    ])
  })

  it.each([
    ['ncb-group', 3000],
    ['peer-unicast', 10],
  ] as const)(
    'paces ECPDUs to different stations together only when sent to the group (%s)',
    (ecpDestination, secondUs) => {
      const core = new PortCore(
        {
          port: portName('sw0'),
          mac: BRIDGE_MAC,
          role: 'bridge',
          ...quiet,
          ecpTxGapUs: 3000,
          ecpDestination,
        },
        new FakeResourceManager(),
        0,
      )
      const other = stationMac(1)
      runScenario(core, [
        at(0)
          .frame(fromStation(1, [assoc1]))
          .expectTransmit({ ecp: { operation: 1 } })
          .expectTransmit({ ecp: { operation: 0 }, vdp: { tlvs: [{ vsiId: vsiIdOf(1) }] } }),
        at(5).frame(ackFromStation(ecpDestination === 'ncb-group' ? bseq(1) : 1)),
        at(10)
          .frame(
            ecpFrame({
              source: other,
              sequence: 1,
              vdp: { managerId: MGR, tlvs: [requestTlv('associate', 2)] },
            }),
          )
          .expectTransmit({ ecp: { operation: 1 } }),
        at(secondUs - 1).expectNoTransmit(),
        at(secondUs).expectTransmit({
          ecp: { operation: 0 },
          vdp: { tlvs: [{ vsiId: vsiIdOf(2) }] },
        }),
      ])
    },
  )

  it('maps a GroupID to one VID for every VSI of that group', () => {
    const group = (n: number) =>
      requestTlv('associate', n, [
        { vid: 0, ps: false, pcp: 0, mac: macVidEntry(n).mac!, groupId: 7001 },
      ])
    const g1 = { ...group(1), filterFormat: 4 as const }
    const g2 = { ...group(2), filterFormat: 4 as const }
    runScenario(bridgeCore(), [
      at(0).frame(fromStation(1, [g1, g2])),
      at(0).expectTransmit({ ecp: { operation: 1 } }),
      at(0).expectTransmit({ vdp: { tlvs: [{ entries: [{ vid: 100, groupId: 7001 }] }] } }),
      at(10).frame(ackFromStation(bseq(1))),
      at(10).expectTransmit({ vdp: { tlvs: [{ entries: [{ vid: 100, groupId: 7001 }] }] } }),
    ])
  })
})

describe('VDP station (station core)', () => {
  const assoc1 = requestTlv('associate', 1)

  it('stores the assigned VID and re-sends the TLV with it and the same hints every reinitKeepAlive', () => {
    runScenario(stationCore(), [
      at(0).command({ ...associate(1), hints: { migratingTo: true } }),
      at(0).expectTransmit({
        ecp: { sequence: 1 },
        vdp: { tlvs: [{ status: { response: false, migratingTo: true }, entries: [{ vid: 0 }] }] },
      }),
      at(50).frame(ackFromBridge(1)),
      at(60).frame(fromBridge(1, [response(assoc1, [macVidEntry(1, 100)])])),
      at(60).expectTransmit({ ecp: { operation: 1, sequence: 1 } }),
      at(60).expectEvent({
        kind: 'vsi-associated',
        role: 'station',
        vsi: { entries: [{ vid: 100 }] },
      }),
      at(60 + REINIT_US - 1).expectNoTransmit(),
      at(60 + REINIT_US).expectTransmit({
        ecp: { sequence: 2 },
        vdp: {
          tlvs: [
            {
              mode: 'associate',
              status: { response: false, migratingTo: true, migratingFrom: false },
              entries: [{ vid: 100, mac: macVidEntry(1).mac! }],
            },
          ],
        },
      }),
      at(60 + REINIT_US).check((core) => expect(core.counters().keepalivesTx).toBe(1)),
    ])
  })

  it('ends the VSI when the response filter does not match the request', () => {
    runScenario(stationCore(), [
      at(0).command(associate(1)),
      at(50).frame(ackFromBridge(1)),
      at(60).frame(fromBridge(1, [response(assoc1, [macVidEntry(2, 100)])])),
      at(60).expectEvent({ kind: 'vsi-de-associated', reason: 'response-mismatch' }),
      at(60).check((core) => expect(core.vsiSnapshot()).toEqual([])),
    ])
  })

  it('ends the VSI without a VDP reply on an unsolicited De-Associate from the bridge', () => {
    const deassoc: VsiTlv = { ...requestTlv('de-associate', 1, [macVidEntry(1, 100)]) }
    runScenario(stationCore(), [
      at(0).command(associate(1)),
      at(0).expectTransmit({ ecp: { sequence: 1 } }),
      at(50).frame(ackFromBridge(1)),
      at(60).frame(fromBridge(1, [response(assoc1, [macVidEntry(1, 100)])])),
      at(60).expectTransmit({ ecp: { operation: 1 } }),
      at(1000).frame(fromBridge(2, [deassoc])),
      at(1000).expectTransmit({ ecp: { operation: 1, sequence: 2 } }, 'only the ACK'),
      at(1000).expectNoTransmit(),
      at(1000).expectEvent({
        kind: 'vsi-de-associated',
        reason: 'bridge-request',
        transition: 'deassoc-from-bridge',
      }),
      at(1000).check((core) => expect(core.vsiSnapshot()).toEqual([])),
    ])
  })

  it('ends the VSI silently when no response comes within respWaitDelay', () => {
    runScenario(stationCore(), [
      at(0).command(associate(1)),
      at(0).expectTransmit({ ecp: { sequence: 1 } }),
      at(50).frame(ackFromBridge(1)),
      at(RESP_WAIT_US - 1).check((core) => expect(core.vsiSnapshot()[0]!.state).toBe('PROCWAIT')),
      at(RESP_WAIT_US).expectEvent({ kind: 'vsi-de-associated', reason: 'response-timeout' }),
      at(RESP_WAIT_US).expectNoTransmit(),
    ])
  })

  it('keeps the associated state after a Keep error and ends it after an error without Keep', () => {
    const pre1 = requestTlv('pre-associate', 1, [macVidEntry(1, 100)])
    runScenario(stationCore(), [
      at(0).command(associate(1)),
      at(50).frame(ackFromBridge(1)),
      at(60).frame(fromBridge(1, [response(assoc1, [macVidEntry(1, 100)])])),
      at(100).command(preAssociate(1)),
      at(100).expectTransmit({ ecp: { sequence: 1 } }),
      at(100).expectTransmit({ ecp: { operation: 1 } }),
      at(100).expectTransmit({
        ecp: { sequence: 2 },
        vdp: { tlvs: [{ mode: 'pre-associate', entries: [{ vid: 100 }] }] },
      }),
      at(150).frame(ackFromBridge(2)),
      at(160).frame(
        fromBridge(2, [response(pre1, [macVidEntry(1, 100)], { keep: true, error: 3 })]),
      ),
      at(160).expectEvent({
        kind: 'vsi-rejected',
        requested: 'pre-associate',
        keep: true,
        error: 3,
      }),
      at(160).check((core) =>
        expect(core.vsiSnapshot()[0]).toMatchObject({
          state: 'WAIT_SYSCMD',
          confirmedMode: 'associate',
        }),
      ),
      at(160 + REINIT_US).expectTransmit({ ecp: { operation: 1 } }),
      at(160 + REINIT_US).expectTransmit(
        { vdp: { tlvs: [{ mode: 'associate', entries: [{ vid: 100 }] }] } },
        'keep-alive of the kept mode',
      ),
      at(200 + REINIT_US).frame(ackFromBridge(3)),
      at(210 + REINIT_US).frame(
        fromBridge(3, [
          response(assoc1, [macVidEntry(1, 100)], { hard: true, error: 2 }, 'de-associate'),
        ]),
      ),
      at(210 + REINIT_US).expectEvent({ kind: 'vsi-rejected', error: 2, hard: true, keep: false }),
      at(210 + REINIT_US).expectEvent({ kind: 'vsi-de-associated', reason: 'rejected' }),
      at(210 + REINIT_US).check((core) => expect(core.vsiSnapshot()).toEqual([])),
    ])
  })

  it('runs a command issued while a request is in flight once the response arrives', () => {
    runScenario(stationCore(), [
      at(0).command(associate(1)),
      at(0).expectTransmit({ ecp: { sequence: 1 } }),
      at(10).command({ kind: 'de-associate', vsiId: vsiIdOf(1) }),
      at(10).expectNoTransmit(),
      at(50).frame(ackFromBridge(1)),
      at(60).frame(fromBridge(1, [response(assoc1, [macVidEntry(1, 100)])])),
      at(60).expectTransmit({ ecp: { operation: 1 } }),
      at(60).expectTransmit({
        ecp: { sequence: 2 },
        vdp: { tlvs: [{ mode: 'de-associate', entries: [{ vid: 100 }] }] },
      }),
      at(70).frame(ackFromBridge(2)),
      at(80).frame(
        fromBridge(2, [
          response(requestTlv('de-associate', 1, [macVidEntry(1, 100)]), [macVidEntry(1, 100)]),
        ]),
      ),
      at(80).expectEvent({ kind: 'vsi-de-associated', reason: 'station-request' }),
      at(80).check((core) => expect(core.vsiSnapshot()).toEqual([])),
    ])
  })

  it('starts a pending command afresh when the request in flight ends the VSI', () => {
    runScenario(stationCore(), [
      at(0)
        .command(associate(1))
        .expectTransmit({ ecp: { sequence: 1 } }),
      at(10).command(preAssociate(1)).expectNoTransmit(),
      at(50).frame(ackFromBridge(1)),
      at(60)
        .frame(fromBridge(1, [response(assoc1, [macVidEntry(1)], { error: 2 }, 'de-associate')]))
        .expectEvent({ kind: 'vsi-rejected', requested: 'associate', error: 2 })
        .expectEvent({ kind: 'vsi-de-associated', reason: 'rejected' })
        .expectTransmit({ ecp: { operation: 1, sequence: 1 } })
        .expectTransmit({
          ecp: { sequence: 2 },
          vdp: { tlvs: [{ mode: 'pre-associate', entries: [{ vid: 0 }] }] },
        })
        .check((core) =>
          expect(core.vsiSnapshot()).toMatchObject([
            { state: 'PROCWAIT', pendingMode: 'pre-associate' },
          ]),
        ),
    ])
  })

  it('refuses illegal local commands with LocalProtocolError and changes nothing', () => {
    const core = stationCore()
    expect(() => core.handleCommand(0, { kind: 'de-associate', vsiId: vsiIdOf(3) })).toThrow(
      expect.objectContaining({ code: 'unknown-vsi' }),
    )
    expect(() => core.handleCommand(0, command('associate', 3, { entries: [] }))).toThrow(
      expect.objectContaining({ code: 'bad-command' }),
    )
    expect(() =>
      core.handleCommand(0, command('associate', 3, { entries: [macVidEntry(3, 1)] })),
    ).toThrow(expect.objectContaining({ code: 'bad-command' }))
    expect(core.pollTransmit()).toBeUndefined()
    expect(core.vsiSnapshot()).toEqual([])
    expect(() => bridgeCore().handleCommand(0, associate(1))).toThrow(
      expect.objectContaining({ code: 'wrong-role' }),
    )
  })
})

describe('ECP failure of an answered request (station core)', () => {
  it('does not end a VSI whose newer request is still pending', () => {
    const assoc1 = requestTlv('associate', 1)
    runScenario(stationCore(), [
      at(0)
        .command(associate(1))
        .expectTransmit({ ecp: { sequence: 1 } }),
      // The bridge answered, but none of its ACKs of our ECPDU arrive.
      at(100)
        .frame(fromBridge(1, [response(assoc1, [macVidEntry(1, 100)])]))
        .expectEvent({ kind: 'vsi-associated' }),
      at(200).command(preAssociate(1)),
      at(ACK_US)
        .expectTransmit({ ecp: { operation: 1 } })
        .expectTransmit({ ecp: { sequence: 1 } }),
      at(4 * ACK_US)
        .expectEvent({ kind: 'ecp-tx-error', sequence: 1 })
        .expectNoEvent('vsi-de-associated')
        .expectTransmit({ ecp: { sequence: 1 } })
        .expectTransmit({ ecp: { sequence: 1 } })
        .expectTransmit({ ecp: { sequence: 2 }, vdp: { tlvs: [{ mode: 'pre-associate' }] } })
        .check((core) => expect(core.vsiSnapshot()[0]).toMatchObject({ state: 'PROCWAIT' })),
    ])
  })
})
