// Golden tests on every frame of the lldpad captures in ../shared/captures: decode, compare
// with the independent field-by-field decode shipped beside each capture, and re-encode
// byte for byte (parse, compare, mirror).
import { describe, expect, it } from 'vitest'
import { decodeEcpdu, encodeEcpdu } from '../../shared/ecp/codec.ts'
import { ETHERTYPE_ECP } from '../../shared/ecp/constants.ts'
import { decodeEthernetFrame, encodeEthernetFrame, ETHERTYPE_LLDP, padFrame } from '../../shared/ethernet/frame.ts'
import { managerIdFromText } from '../../shared/ids.ts'
import { decodeLldpdu, encodeLldpdu, findEvbTlv } from '../../shared/lldp/codec.ts'
import { decodeVdpPdu, encodeVdpPdu, vdpPduLength } from '../../shared/vdp/codec.ts'
import { encodeStatus } from '../../shared/vdp/vsi-tlv.ts'
import type { VsiTlv } from '../../shared/vdp/types.ts'
import { CAPTURE_NAMES, readCapture, readExpectedDecode } from '../support/captures.ts'

const FRAME_COUNTS: Record<string, number> = { 'lldpad-evb-lldp': 13, 'lldpad-assoc': 56, 'lldpad-deassoc': 44, 'pybridge-vid': 36 }

describe.each(CAPTURE_NAMES)('capture %s', (name) => {
  const records = readCapture(name)
  const expected = readExpectedDecode(name)

  it('has the frames its decode lists', () => {
    expect(records.length).toBe(FRAME_COUNTS[name])
    expect(expected.map((f) => f.index)).toEqual(records.map((_, i) => i + 1))
  })

  it.each(expected.map((f) => [f.index, f] as const))('frame %i decodes to the listed fields and re-encodes byte for byte', (_i, want) => {
    const bytes = records[want.index - 1]!.data
    const eth = decodeEthernetFrame(bytes)
    expect(bytes.length).toBe(want.length)
    expect(eth.source).toBe(want.source)
    expect(eth.destination).toBe(want.destination)
    let payload: Uint8Array
    if (want.kind === 'ecp') {
      expect(eth.ethertype).toBe(ETHERTYPE_ECP)
      const ecp = decodeEcpdu(eth.payload)
      expect(ecp.header.operation).toBe(want.operation === 'ack' ? 1 : 0)
      expect(ecp.header.sequence).toBe(want.sequence)
      expect(ecp.header.subtype).toBe(1)
      if (want.operation === 'ack') {
        expect(ecp.ulpdu.length).toBe(0)
        payload = encodeEcpdu(ecp)
      } else {
        const vdp = decodeVdpPdu(ecp.ulpdu)
        expect(vdp.managerId).toBe(managerIdFromText(want.managerId!))
        const vsis = vdp.tlvs.filter((t): t is VsiTlv => t.kind === 'vsi')
        expect(vsis.length).toBe(want.vsi.length)
        vsis.forEach((tlv, k) => {
          const w = want.vsi[k]!
          expect(tlv.mode).toBe(w.mode)
          expect(tlv.status.response).toBe(w.response)
          expect(encodeStatus(tlv.status)).toBe(w.status)
          if (tlv.status.response) expect(tlv.status.error).toBe(w.error)
          expect(tlv.typeId).toBe(w.typeId)
          expect(tlv.typeVersion).toBe(w.typeVersion)
          expect(tlv.vsiId).toEqual({ format: 5, id: w.vsiId })
          expect(tlv.filterFormat).toBe(w.filterFormat)
          expect(tlv.entries.map((e) => ({ vid: e.vid, ...(e.mac ? { mac: e.mac } : {}), ...(e.groupId !== undefined ? { groupId: e.groupId } : {}) }))).toEqual(w.entries)
        })
        const ulpdu = encodeVdpPdu(vdp)
        expect(vdpPduLength(vdp)).toBe(ulpdu.length)
        payload = encodeEcpdu({ header: ecp.header, ulpdu })
      }
    } else {
      expect(eth.ethertype).toBe(ETHERTYPE_LLDP)
      const lldp = decodeLldpdu(eth.payload)
      expect(lldp.ttlS).toBe(120)
      const evb = findEvbTlv(lldp)!
      const w = want.evb!
      expect(evb.mode).toBe(w.mode === 'bridge' ? 1 : 2)
      expect((evb.bridge.bgid ? 4 : 0) | (evb.bridge.rrcap ? 2 : 0) | (evb.bridge.rrctr ? 1 : 0)).toBe(w.bridge)
      expect((evb.station.sgid ? 8 : 0) | (evb.station.rrreq ? 4 : 0) | evb.station.rrstat).toBe(w.station)
      expect([evb.retries, evb.rte, evb.rwd, evb.rka]).toEqual([w.retries, w.rte, w.rwd, w.rka])
      payload = encodeLldpdu(lldp)
    }
    const again = encodeEthernetFrame({ ...eth, payload })
    expect(bytes.length === 60 ? padFrame(again) : again).toEqual(bytes)
  })
})
