/**
 * Interop by replay: the lldpad station's frames from the golden captures (../shared/captures)
 * are fed to our bridge core at their captured times; the answers must be what a plain lldpad
 * station accepts (lldpad-interop.md "Interop notes"): ACK per request, response = request TLV
 * with status 0x40 and only the VID filled, keep-alives answered from the stored state.
 */
import { describe, expect, it } from 'vitest'
import { decodeEthernetFrame } from '../../../shared/ethernet/frame.ts'
import { parseMac } from '../../../shared/ethernet/mac.ts'
import { portName } from '../../../shared/ids.ts'
import type { VsiTlv } from '../../../shared/vdp/types.ts'
import { PortCore } from '../../../agent/port/port-core.ts'
import type { PortEvent } from '../../../agent/port/events.ts'
import { readCapture } from '../../support/captures.ts'
import { FakeResourceManager } from '../../support/pair.ts'
import { decodeFrame, ecpFrame, type DecodedFrame } from '../../support/scenario.ts'

const STATION = parseMac('02:76:64:70:00:01')
const BRIDGE = parseMac('02:76:64:70:00:02')

function replay(
  core: PortCore,
  names: string[],
): { out: DecodedFrame[]; events: PortEvent[]; requests: VsiTlv[] } {
  const out: DecodedFrame[] = []
  const events: PortEvent[] = []
  const requests: VsiTlv[] = []
  let baseUs = 0
  let nowUs = 0
  const drain = () => {
    for (let f = core.pollTransmit(); f !== undefined; f = core.pollTransmit())
      out.push(decodeFrame(f))
    for (let e = core.pollEvent(); e !== undefined; e = core.pollEvent()) events.push(e)
  }
  for (const name of names) {
    const records = readCapture(name)
    const first = records[0]!
    const t0 = first.timeUs
    for (const r of records) {
      if (decodeEthernetFrame(r.data).source !== STATION) continue
      const atUs = baseUs + (r.timeUs - t0)
      for (let d = core.nextDeadlineUs(); d !== undefined && d <= atUs; d = core.nextDeadlineUs()) {
        nowUs = Math.max(nowUs, d)
        core.handleTimeout(nowUs)
        drain()
      }
      nowUs = Math.max(nowUs, atUs)
      const frame = decodeFrame(r.data)
      if (frame.vdp !== undefined)
        for (const t of frame.vdp.tlvs) if (t.kind === 'vsi') requests.push(t)
      // The station's ACKs acknowledge lldpad's bridge numbering; ours differs (bridge ports
      // count from BRIDGE_FIRST_SEQUENCE), so each ACK names the ECPDU we sent last.
      const lastSent = out.filter((f) => f.ecp?.operation === 0).at(-1)?.ecp?.sequence
      const bytes =
        frame.ecp?.operation === 1 && lastSent !== undefined
          ? ecpFrame({ source: STATION, sequence: lastSent, ack: true })
          : r.data
      core.handleFrame(nowUs, bytes)
      drain()
    }
    baseUs = nowUs + 1_000_000
  }
  return { out, events, requests }
}

describe('our bridge core against lldpad station traffic', () => {
  it('answers the captured associations and keep-alives as lldpad expects', () => {
    const rm = new FakeResourceManager()
    const core = new PortCore(
      {
        port: portName('sw0'),
        mac: BRIDGE,
        role: 'bridge',
        countersIntervalUs: 0,
        evb: { retries: 3, rte: 8, rwd: 20, rka: 20 },
      },
      rm,
      0,
    )
    const { out, events, requests } = replay(core, ['lldpad-evb-lldp', 'lldpad-assoc'])
    expect(core.operational()).toMatchObject({ rte: 8, retries: 3, rka: 20, groupIdEnabled: true })
    expect(events.filter((e) => e.kind === 'frame-dropped')).toEqual([])

    const acks = out.filter((f) => f.ecp?.operation === 1)
    const responses = out.filter((f) => f.ecp?.operation === 0)
    expect(acks.length).toBe(requests.length)
    for (const f of [...acks, ...responses]) expect(f.source).toBe(BRIDGE)
    // No ECPDU was given up. (A retransmission can happen: the captured ACK left ~2.2 ms after
    // the request, answered by lldpad's slower bridge, close to the 2.56 ms ack timer; a
    // duplicate is harmless to the station.)
    expect(core.counters().txErrors).toBe(0)
    expect(core.counters().txRetransmits).toBeLessThanOrEqual(2)

    const seen = new Set<number>()
    const firstSends = responses.filter(
      (f) => !seen.has(f.ecp!.sequence) && seen.add(f.ecp!.sequence) !== undefined,
    )
    const answered = firstSends.flatMap((f) => f.vdp!.tlvs as VsiTlv[])
    expect(answered.length).toBe(requests.length)
    for (const [i, req] of requests.entries()) {
      const rsp = answered[i]!
      expect(rsp.mode).toBe(req.mode)
      expect(rsp.status).toEqual({ response: true, keep: false, hard: false, error: 0 })
      expect(rsp.vsiId).toEqual(req.vsiId)
      expect(rsp.filterFormat).toBe(req.filterFormat)
      expect(rsp.entries.map((e) => ({ ...e, vid: 0 }))).toEqual(
        req.entries.map((e) => ({ ...e, vid: 0 })),
      )
      for (const [j, e] of req.entries.entries()) {
        if (e.vid !== 0) expect(rsp.entries[j]!.vid).toBe(e.vid)
        else expect(rsp.entries[j]!.vid).toBeGreaterThanOrEqual(100)
      }
    }
    // 7 VSIs processed once; every later TLV was an identical keep-alive (ALIVE).
    expect(rm.requests).toBe(7)
    expect(core.counters().keepalivesRx).toBe(requests.length - 7)
    expect(core.vsiSnapshot()).toHaveLength(7)
  })

  it('deletes the VSIs the lldpad station de-associates (no stray De-Associate later)', () => {
    const rm = new FakeResourceManager()
    const core = new PortCore(
      {
        port: portName('sw0'),
        mac: BRIDGE,
        role: 'bridge',
        countersIntervalUs: 0,
        evb: { retries: 3, rte: 8, rwd: 20, rka: 20 },
      },
      rm,
      0,
    )
    const { out, events } = replay(core, ['lldpad-evb-lldp', 'lldpad-assoc', 'lldpad-deassoc'])
    const deassociated = events.filter((e) => e.kind === 'vsi-de-associated')
    expect(deassociated.map((e) => (e.kind === 'vsi-de-associated' ? e.reason : ''))).toEqual(
      Array(7).fill('station-request'),
    )
    expect(core.vsiSnapshot()).toEqual([])
    expect(rm.held.size).toBe(0)
    const unsolicited = out
      .flatMap((f) => (f.vdp?.tlvs ?? []) as VsiTlv[])
      .filter((t) => !t.status.response)
    expect(unsolicited).toEqual([])
  })
})

describe('our station core against captured bridge traffic', () => {
  /**
   * The lldpad station's requests in the capture become commands for our station at the same
   * times; the bridge's frames are fed back. Our station must put on the wire exactly the ECP
   * frames lldpad's station did (requests with the stored VIDs, ACKs), and end in the states
   * the bridge decided: VID 100, GroupID 7001 -> VID 101, a reject, de-associations.
   */
  it('sends byte for byte what the lldpad station sent to an independent bridge (pybridge-vid)', () => {
    const core = new PortCore(
      {
        port: portName('h0'),
        mac: STATION,
        role: 'station',
        countersIntervalUs: 0,
        evb: { retries: 3, rte: 8, rwd: 20, rka: 20, groupId: true, reflectiveRelay: true },
      },
      undefined,
      0,
    )
    const records = readCapture('pybridge-vid')
    const t0 = records[0]!.timeUs
    const ours: Uint8Array[] = []
    const events: PortEvent[] = []
    const drain = () => {
      for (let f = core.pollTransmit(); f !== undefined; f = core.pollTransmit()) {
        if (decodeFrame(f).ecp !== undefined) ours.push(f)
      }
      for (let e = core.pollEvent(); e !== undefined; e = core.pollEvent()) events.push(e)
    }
    const theirs: Uint8Array[] = []
    let nowUs = 0
    for (const r of records) {
      const atUs = r.timeUs - t0
      for (let d = core.nextDeadlineUs(); d !== undefined && d <= atUs; d = core.nextDeadlineUs()) {
        nowUs = Math.max(nowUs, d)
        core.handleTimeout(nowUs)
        drain()
      }
      nowUs = Math.max(nowUs, atUs)
      const frame = decodeFrame(r.data)
      if (frame.source === STATION) {
        if (frame.ecp === undefined) continue
        theirs.push(r.data)
        const tlv = frame.vdp?.tlvs[0]
        if (frame.ecp.operation === 0 && tlv?.kind === 'vsi') {
          core.handleCommand(
            nowUs,
            tlv.mode === 'de-associate'
              ? { kind: 'de-associate', vsiId: tlv.vsiId }
              : {
                  kind: tlv.mode,
                  managerId: frame.vdp!.managerId,
                  typeId: tlv.typeId,
                  typeVersion: tlv.typeVersion,
                  vsiId: tlv.vsiId,
                  filterFormat: tlv.filterFormat,
                  // As vdptool gives them: VID 0 where the bridge is to choose.
                  entries: tlv.entries,
                },
          )
          drain()
        }
      } else {
        core.handleFrame(nowUs, r.data)
        drain()
      }
    }
    const strip = (b: Uint8Array) => Array.from(b.length > 60 ? b : b.subarray(0, 18))
    // 5 requests and 6 ACKs (of the 5 responses and the unsolicited De-Associate).
    expect(theirs).toHaveLength(11)
    expect(ours.map(strip)).toEqual(theirs.map(strip))
    const summary = events
      .filter((e) => e.kind.startsWith('vsi-'))
      .map((e) =>
        'vsi' in e
          ? `${e.kind} ${e.vsi.vsiId.id.slice(-2)} ${e.vsi.entries.map((x) => x.vid).join(',')}` +
            ('reason' in e ? ` ${e.reason}` : '') +
            ('error' in e ? ` error ${e.error}` : '')
          : e.kind,
      )
    expect(summary).toEqual([
      'vsi-associated 11 100',
      'vsi-associated 12 101',
      'vsi-rejected 13 0 error 2',
      'vsi-de-associated 13 0 rejected',
      'vsi-de-associated 11 100 station-request',
      'vsi-associated 14 102',
      'vsi-de-associated 14 102 bridge-request',
    ])
    expect(core.vsiSnapshot().map((v) => v.vsi.vsiId.id.slice(-2))).toEqual(['12'])
  })
})
