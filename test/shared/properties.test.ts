// Property tests over the codecs: round trips, agreement with a naive DataView reference,
// and random or mutated bytes producing DecodeError and nothing else.
import { readdirSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { decodeFrame } from '../../shared/decode-frame.ts'
import { encodeVdpFrame } from '../../shared/encode-frame.ts'
import { decodeEcpdu, encodeEcpdu } from '../../shared/ecp/codec.ts'
import { decodeEthernetFrame, encodeEthernetFrame } from '../../shared/ethernet/frame.ts'
import { decodeEvbTlv } from '../../shared/evb/evb-tlv.ts'
import { decodeLldpdu, encodeLldpdu, evbLldpTlv, findEvbTlv } from '../../shared/lldp/codec.ts'
import { decodePcap } from '../../shared/pcap/pcap.ts'
import { decodeVdpPdu, decodeVdpPduTolerant, encodeVdpPdu, vdpPduLength } from '../../shared/vdp/codec.ts'
import { DecodeError } from '../../shared/wire/errors.ts'
import { Reader } from '../../shared/wire/reader.ts'
import { evbTlv, mac, vdpPdu, vsiTlv } from '../support/arbitraries.ts'
import { CAPTURE_NAMES, readCapture } from '../support/captures.ts'

function onlyDecodeErrors(f: () => unknown): void {
  try {
    f()
  } catch (e) {
    if (!(e instanceof DecodeError)) throw e
  }
}

const captured = CAPTURE_NAMES.flatMap((n) => readCapture(n).map((r) => r.data))

describe('codec properties', () => {
  it('encodeVdpFrame is byte for byte the layered Ethernet/ECP/VDP encoding', () => {
    fc.assert(
      fc.property(mac, mac, fc.integer({ min: 0, max: 0xffff }), vdpPdu, (destination, source, sequence, pdu) => {
        const layered = encodeEthernetFrame({
          destination,
          source,
          ethertype: 0x8940,
          payload: encodeEcpdu({ header: { version: 1, operation: 0, subtype: 1, sequence }, ulpdu: encodeVdpPdu(pdu) }),
        })
        expect(encodeVdpFrame({ destination, source, sequence, pdu })).toEqual(layered)
      }),
      { numRuns: 300 },
    )
  })

  it('decodeVdpPdu(encodeVdpPdu(x)) deep-equals x, and the length function agrees', () => {
    fc.assert(
      fc.property(vdpPdu, (pdu) => {
        const bytes = encodeVdpPdu(pdu)
        expect(bytes.length).toBe(vdpPduLength(pdu))
        expect(decodeVdpPdu(bytes)).toEqual(pdu)
      }),
      { numRuns: 2000 },
    )
  })

  it('the VSI TLV decoder agrees with a naive DataView reference', () => {
    fc.assert(
      fc.property(vsiTlv, (tlv) => {
        const bytes = encodeVdpPdu({ managerId: '00'.repeat(16) as never, tlvs: [tlv], endTlv: false })
        const dv = new DataView(bytes.buffer, bytes.byteOffset)
        const at = 18
        const head = dv.getUint16(at)
        expect(head >> 9).toBe({ 'pre-associate': 1, 'pre-associate-rr': 2, associate: 3, 'de-associate': 4 }[tlv.mode])
        expect(head & 0x1ff).toBe(bytes.length - at - 2)
        expect((dv.getUint32(at + 2) >>> 0) & 0xffffff).toBe(tlv.typeId)
        expect(dv.getUint8(at + 6)).toBe(tlv.typeVersion)
        expect(dv.getUint8(at + 7)).toBe(tlv.vsiId.format)
        expect(dv.getUint8(at + 24)).toBe(tlv.filterFormat)
        expect(dv.getUint16(at + 25)).toBe(tlv.entries.length)
        const size = { 1: 2, 2: 8, 3: 6, 4: 12 }[tlv.filterFormat]
        tlv.entries.forEach((e, i) => {
          const word = dv.getUint16(at + 27 + (i + 1) * size - 2)
          expect(word & 0xfff).toBe(e.vid)
          expect((word >> 12) & 7).toBe(e.pcp)
          expect((word & 0x8000) !== 0).toBe(e.ps)
          if (tlv.filterFormat >= 3) expect(dv.getUint32(at + 27 + i * size)).toBe(e.groupId)
        })
      }),
      { numRuns: 1000 },
    )
  })

  it('Ethernet, ECP and LLDP/EVB round trip', () => {
    fc.assert(
      fc.property(mac, mac, fc.option(fc.integer({ min: 0, max: 4095 }), { nil: undefined }), fc.integer({ min: 0, max: 0xffff }), fc.integer({ min: 0, max: 1 }), fc.uint8Array({ maxLength: 64 }), evbTlv,
        (dst, src, vid, seq, op, ulpdu, evb) => {
          const payload = encodeEcpdu({ header: { version: 1, operation: op as 0 | 1, subtype: 1, sequence: seq }, ulpdu })
          const frame = { destination: dst, source: src, ...(vid === undefined ? {} : { vlan: { tpid: 0x8100, pcp: 3, dei: false, vid } }), ethertype: 0x8940, payload }
          const bytes = encodeEthernetFrame(frame)
          expect(decodeEthernetFrame(bytes)).toEqual(frame)
          expect(decodeEcpdu(payload)).toEqual({ header: { version: 1, operation: op, subtype: 1, sequence: seq }, ulpdu })
          const lldp = { chassisId: { subtype: 4, value: new Uint8Array(6) }, portId: { subtype: 3, value: new Uint8Array(6) }, ttlS: 120, tlvs: [evbLldpTlv(evb)] }
          const l2 = decodeLldpdu(encodeLldpdu(lldp))
          expect(l2).toEqual(lldp)
          expect(findEvbTlv(l2)).toEqual(evb)
        }),
      { numRuns: 1000 },
    )
  })

  it('random bytes make every decoder throw DecodeError and nothing else', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 300 }), (bytes) => {
        onlyDecodeErrors(() => decodeVdpPdu(bytes))
        onlyDecodeErrors(() => decodeVdpPduTolerant(bytes))
        onlyDecodeErrors(() => decodeEcpdu(bytes))
        onlyDecodeErrors(() => decodeEthernetFrame(bytes))
        onlyDecodeErrors(() => decodeLldpdu(bytes))
        onlyDecodeErrors(() => decodeEvbTlv(new Reader(bytes)))
        onlyDecodeErrors(() => decodePcap(bytes))
        decodeFrame(bytes) // reports errors in its result, never throws
      }),
      { numRuns: 5000 },
    )
  })

  it('mutated captured frames make decoders throw DecodeError and nothing else', () => {
    fc.assert(
      fc.property(
        fc.constantFrom(...captured),
        fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { minLength: 1, maxLength: 6 }),
        fc.nat(),
        (orig, flips, cut) => {
          const bytes = orig.slice(0, Math.max(14, orig.length - (cut % 8)))
          for (const [i, b] of flips) bytes[14 + (i % Math.max(1, bytes.length - 14))] = b
          const out = decodeFrame(bytes)
          expect(out).toHaveProperty('length', bytes.length)
          onlyDecodeErrors(() => decodeVdpPdu(bytes.subarray(18)))
          onlyDecodeErrors(() => decodeLldpdu(bytes.subarray(14)))
        },
      ),
      { numRuns: 5000 },
    )
  })

  it('replays every committed crasher without an error other than DecodeError', () => {
    const dir = join(import.meta.dirname, '../fixtures/crashers')
    const files = readdirSync(dir).filter((f) => f.endsWith('.bin'))
    expect(files.length).toBeGreaterThan(0)
    for (const f of files) {
      const bytes = new Uint8Array(readFileSync(join(dir, f)))
      expect(decodeFrame(bytes)).toHaveProperty('length', bytes.length)
      onlyDecodeErrors(() => decodeVdpPdu(bytes))
      onlyDecodeErrors(() => decodeLldpdu(bytes))
    }
  })
})
