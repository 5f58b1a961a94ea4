/**
 * Peer input never throws out of PortCore (STYLE.md §3): random bytes, random ECP payloads and
 * single-byte mutations of valid frames only ever produce counters and `frame-dropped` events.
 */
import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { NCB_GROUP_MAC } from '../../../shared/ethernet/mac.ts'
import { portName } from '../../../shared/ids.ts'
import { PortCore } from '../../../agent/port/port-core.ts'
import type { PortEvent } from '../../../agent/port/events.ts'
import { BRIDGE_MAC, FakeResourceManager, stationMac } from '../../support/pair.ts'
import { ecpFrame } from '../../support/scenario.ts'
import { associate, MGR, requestTlv, vsiIdOf } from './fixtures.ts'
import { LocalProtocolError } from '../../../agent/port/errors.ts'
import type { Mac } from '../../../shared/ethernet/mac.ts'
import type { VsiMode } from '../../../shared/vdp/constants.ts'
import type { VsiTlv } from '../../../shared/vdp/types.ts'

const cores = () => [
  new PortCore(
    { port: portName('sw0'), mac: BRIDGE_MAC, role: 'bridge', countersIntervalUs: 0 },
    new FakeResourceManager(),
    0,
  ),
  new PortCore(
    { port: portName('h0'), mac: stationMac(0), role: 'station', countersIntervalUs: 0 },
    undefined,
    0,
  ),
]

function drain(core: PortCore): PortEvent[] {
  const events: PortEvent[] = []
  for (let e = core.pollEvent(); e !== undefined; e = core.pollEvent()) events.push(e)
  while (core.pollTransmit() !== undefined);
  return events
}

const header = Uint8Array.from([1, 0x80, 0xc2, 0, 0, 0, 2, 0, 0, 0, 0x5a, 0x77, 0x89, 0x40])

describe('PortCore.handleFrame() with hostile input', () => {
  it('never throws on random bytes', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 200 }), (bytes) => {
        for (const core of cores()) expect(() => core.handleFrame(1, bytes)).not.toThrow()
      }),
      { numRuns: 500 },
    )
  })

  it('never throws on random ECP payloads, and reports what it drops', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 300 }), (payload) => {
        const frame = new Uint8Array(header.length + payload.length)
        frame.set(header)
        frame.set(payload, header.length)
        for (const core of cores()) {
          drain(core)
          const before = core.counters()
          expect(() => core.handleFrame(1, frame)).not.toThrow()
          const after = core.counters()
          const events = drain(core)
          const dropped = events.filter((e) => e.kind === 'frame-dropped').length
          expect(after.framesDropped - before.framesDropped).toBe(dropped)
        }
      }),
      { numRuns: 500 },
    )
  })

  it('never throws on single-byte mutations of a valid request', () => {
    const valid = ecpFrame({
      source: stationMac(3),
      destination: NCB_GROUP_MAC,
      sequence: 1,
      vdp: { managerId: MGR, tlvs: [requestTlv('associate', 1)] },
    })
    fc.assert(
      fc.property(
        fc.nat({ max: valid.length - 1 }),
        fc.integer({ min: 0, max: 255 }),
        fc.nat({ max: valid.length }),
        (at, value, cut) => {
          const bytes = valid.slice(0, Math.max(cut, at + 1))
          bytes[at] = value
          for (const core of cores()) {
            expect(() => core.handleFrame(1, bytes)).not.toThrow()
            drain(core)
          }
        },
      ),
      { numRuns: 1000 },
    )
  })

  it('reports a truncated ECPDU as frame-dropped with the decoder code and offset', () => {
    const [bridge] = cores()
    const frame = ecpFrame({
      source: stationMac(3),
      sequence: 1,
      vdp: { managerId: MGR, tlvs: [requestTlv('associate', 1)] },
    })
    bridge!.handleFrame(5, frame.slice(0, 40))
    const events = drain(bridge!)
    // The Associate TLV header sits at frame offset 14 + 4 + 18 = 36; its length overruns.
    expect(events).toContainEqual(
      expect.objectContaining({ kind: 'frame-dropped', code: 'truncated', atUs: 5, offset: 36 }),
    )
    expect(bridge!.counters().decodeErrors).toBe(1)
    expect(bridge!.vsiSnapshot()).toEqual([])
  })

  it('bounds the peer table and reports the overflow', () => {
    const bridge = new PortCore(
      {
        port: portName('sw0'),
        mac: BRIDGE_MAC,
        role: 'bridge',
        countersIntervalUs: 0,
        peerCountMax: 2,
        lldp: { enabled: false },
      },
      new FakeResourceManager(),
      0,
    )
    for (let i = 0; i < 3; i++) {
      bridge.handleFrame(
        i,
        ecpFrame({
          source: stationMac(i),
          sequence: 1,
          vdp: { managerId: MGR, tlvs: [requestTlv('associate', i + 1)] },
        }),
      )
    }
    expect(bridge.peers()).toHaveLength(2)
    expect(bridge.vsiCount).toBe(2)
    expect(drain(bridge)).toContainEqual(
      expect.objectContaining({ kind: 'frame-dropped', code: 'peer-table-full' }),
    )
  })

  it('bounds the VSI table and answers insufficient resources beyond it', () => {
    const bridge = new PortCore(
      {
        port: portName('sw0'),
        mac: BRIDGE_MAC,
        role: 'bridge',
        countersIntervalUs: 0,
        vsiCountMax: 2,
        lldp: { enabled: false },
      },
      new FakeResourceManager(),
      0,
    )
    bridge.handleFrame(
      0,
      ecpFrame({
        source: stationMac(0),
        sequence: 1,
        vdp: { managerId: MGR, tlvs: [1, 2, 3].map((n) => requestTlv('associate', n)) },
      }),
    )
    expect(bridge.vsiCount).toBe(2)
    expect(drain(bridge).filter((e) => e.kind === 'vsi-rejected')).toMatchObject([
      { error: 2, keep: false },
    ])
  })
})

describe('PortCore bounds', () => {
  const quiet = { countersIntervalUs: 0, lldp: { enabled: false } } as const

  it('refuses a station command with queue-full when pendingEcpduMax TLVs wait', () => {
    const core = new PortCore(
      { port: portName('h0'), mac: stationMac(0), role: 'station', ...quiet, pendingEcpduMax: 2 },
      undefined,
      0,
    )
    core.handleCommand(0, associate(1)) // in flight
    core.handleCommand(0, associate(2)) // queued
    core.handleCommand(0, associate(3)) // queued
    expect(() => core.handleCommand(0, associate(4))).toThrow(
      expect.objectContaining({ code: 'queue-full' }),
    )
    expect(core.vsiCount).toBe(3)
  })

  it('counts events and frames it cannot queue instead of growing without bound', () => {
    const core = new PortCore(
      {
        port: portName('sw0'),
        mac: BRIDGE_MAC,
        role: 'bridge',
        ...quiet,
        eventQueueMax: 16,
        transmitQueueMax: 16,
      },
      new FakeResourceManager(),
      0,
    )
    for (let n = 1; n <= 20; n++) {
      core.handleFrame(
        n,
        ecpFrame({
          source: stationMac(0),
          sequence: n,
          vdp: { managerId: MGR, tlvs: [requestTlv('associate', n)] },
        }),
      )
    }
    expect(drain(core)).toHaveLength(16)
    // peer-up and 20 vsi-associated: 21 events, 16 kept.
    expect(core.counters().eventsDropped).toBe(21 - 16)
    expect(core.counters().transmitsDropped).toBeGreaterThan(0)
    expect(core.vsiCount).toBe(20)
  })
})

describe('PortCore under random sequences of well-formed but arbitrary VDP traffic', () => {
  const status = fc.oneof(
    fc.record({
      response: fc.constant(false as const),
      migratingFrom: fc.boolean(),
      migratingTo: fc.boolean(),
    }),
    fc.record({
      response: fc.constant(true as const),
      keep: fc.boolean(),
      hard: fc.boolean(),
      error: fc.integer({ min: 0, max: 5 }),
    }),
  )
  const tlv = fc.record({
    mode: fc.constantFrom(
      'pre-associate',
      'pre-associate-rr',
      'associate',
      'de-associate',
    ) as fc.Arbitrary<VsiMode>,
    n: fc.integer({ min: 1, max: 3 }),
    vid: fc.constantFrom(0, 1, 100, 101, 4094, 4095),
    status,
    typeId: fc.constantFrom(5, 66),
  })
  const step = fc.oneof(
    fc.record({
      kind: fc.constant('frame' as const),
      seq: fc.integer({ min: 0, max: 4 }),
      ack: fc.boolean(),
      tlvs: fc.array(tlv, { minLength: 1, maxLength: 3 }),
    }),
    fc.record({ kind: fc.constant('time' as const), us: fc.integer({ min: 0, max: 20_000_000 }) }),
    fc.record({
      kind: fc.constant('command' as const),
      mode: fc.constantFrom('associate', 'pre-associate', 'de-associate', 'link-down', 'link-up'),
      n: fc.integer({ min: 1, max: 3 }),
    }),
  )

  it('never throws anything but LocalProtocolError from commands', () => {
    fc.assert(
      fc.property(fc.array(step, { maxLength: 40 }), (steps) => {
        for (const core of cores()) {
          const peer = core.role === 'bridge' ? stationMac(0) : BRIDGE_MAC
          let nowUs = 0
          for (const s of steps) {
            if (s.kind === 'time') {
              nowUs += s.us
              for (
                let d = core.nextDeadlineUs();
                d !== undefined && d <= nowUs;
                d = core.nextDeadlineUs()
              )
                core.handleTimeout(d)
            } else if (s.kind === 'frame') {
              const tlvs: VsiTlv[] = s.tlvs.map((t) => ({
                ...requestTlv(
                  t.mode,
                  t.n,
                  [{ vid: t.vid, ps: false, pcp: 0, mac: `02:76:64:71:00:0${t.n}` as Mac }],
                  t.typeId,
                ),
                status: t.status,
              }))
              core.handleFrame(
                nowUs,
                ecpFrame({
                  source: peer,
                  sequence: s.seq,
                  ack: s.ack,
                  vdp: { managerId: MGR, tlvs },
                }),
              )
            } else {
              try {
                core.handleCommand(
                  nowUs,
                  s.mode === 'de-associate'
                    ? { kind: 'de-associate', vsiId: vsiIdOf(s.n) }
                    : s.mode === 'link-down' || s.mode === 'link-up'
                      ? { kind: s.mode }
                      : { ...associate(s.n), kind: s.mode as 'associate' },
                )
              } catch (e) {
                expect(e).toBeInstanceOf(LocalProtocolError)
              }
            }
            drain(core)
          }
        }
      }),
      { numRuns: 1500 },
    )
  })
})
