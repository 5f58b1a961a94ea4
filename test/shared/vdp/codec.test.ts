import { describe, expect, it } from 'vitest'
import { decodeVdpPdu, decodeVdpPduTolerant, encodeVdpPdu, vdpPduLength } from '../../../shared/vdp/codec.ts'
import { DecodeError } from '../../../shared/wire/errors.ts'
import { hex } from '../../../shared/wire/hex.ts'
import { negativeVectors, vectors } from '../../fixtures/vdp/vectors.ts'

describe('VDP golden vectors', () => {
  it.each(vectors.map((v) => [v.name, v] as const))('decodeVdpPdu() parses %s', (_n, v) => {
    expect(decodeVdpPdu(v.hex)).toEqual(v.value)
  })
  it.each(vectors.map((v) => [v.name, v] as const))('encodeVdpPdu() generates %s', (_n, v) => {
    expect(encodeVdpPdu(v.value)).toEqual(v.hex)
    expect(vdpPduLength(v.value)).toBe(v.hex.length)
  })
  it.each(vectors.map((v) => [v.name, v] as const))('decode(encode()) mirrors %s', (_n, v) => {
    expect(decodeVdpPdu(encodeVdpPdu(decodeVdpPdu(v.hex)))).toEqual(v.value)
  })
})

describe('VDP negative vectors', () => {
  it.each(negativeVectors.map((v) => [v.name, v] as const))('decodeVdpPdu() rejects %s', (_n, v) => {
    let err: unknown
    try {
      decodeVdpPdu(v.hex)
    } catch (e) {
      err = e
    }
    expect(err).toBeInstanceOf(DecodeError)
    expect((err as DecodeError).code).toBe(v.code)
  })

  it.each(vectors.map((v) => [v.name, v] as const))('decodeVdpPdu() rejects %s truncated at every offset', (_n, v) => {
    // Cutting inside a TLV must fail; cutting exactly at a TLV boundary is a shorter valid PDU.
    // A cut inside the End TLV leaves one zero octet, which is padding.
    for (let cut = 0; cut < v.hex.length; cut++) {
      const part = v.hex.subarray(0, cut)
      let pdu
      try {
        pdu = decodeVdpPdu(part)
      } catch (e) {
        expect(e).toBeInstanceOf(DecodeError)
        continue
      }
      const again = encodeVdpPdu(pdu)
      expect(part.subarray(0, again.length)).toEqual(again)
      expect(part.subarray(again.length).every((b) => b === 0)).toBe(true)
    }
  })

  it('tolerates zero padding after the last TLV, as to the 60-octet minimum', () => {
    const v = vectors[0]!
    const padded = new Uint8Array(v.hex.length + 7)
    padded.set(v.hex)
    expect(decodeVdpPdu(padded).tlvs).toEqual(v.value.tlvs)
  })

  it('decodeVdpPduTolerant() reports a malformed VSI TLV with its identity and keeps the others', () => {
    const bad = hex`
      0a 10 6d 67 72 31 00 00 00 00 00 00 00 00 00 00 00 00
      06 1b 00 00 00 07 01 05 2b b0 e9 d3 4e 8a 4f 0a 9a 3e 5d 2c 1f 0b 7a 61 01 00 02 00 64  # count 2, room for 1
      06 1b 00 00 00 05 04 05 2b b0 e9 d3 4e 8a 4f 0a 9a 3e 5d 2c 1f 0b 7a 62 01 00 01 00 64
    `
    const { pdu, invalid } = decodeVdpPduTolerant(bad)
    expect(pdu.tlvs).toHaveLength(1)
    expect(invalid).toHaveLength(1)
    expect(invalid[0]!.error.code).toBe('bad-length')
    expect(invalid[0]!.identity?.typeId).toBe(7)
    expect(invalid[0]!.identity?.vsiId.id).toBe('2bb0e9d34e8a4f0a9a3e5d2c1f0b7a61')
  })
})
