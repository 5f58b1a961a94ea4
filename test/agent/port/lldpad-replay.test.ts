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
import { decodeFrame, type DecodedFrame } from '../../support/scenario.ts'

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
      core.handleFrame(nowUs, r.data)
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
    // The lldpad station's ACKs matched our sequence numbers. (A retransmission can happen: the
    // captured ACK left ~2.2 ms after the request, answered by lldpad's slower bridge, close to
    // the 2.56 ms ack timer; a duplicate is harmless to the station.)
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
