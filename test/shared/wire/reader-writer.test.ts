import { describe, expect, it } from 'vitest'
import { AssertionError } from '../../../shared/assert.ts'
import { decodeEcpdu, encodeEcpdu, nextSequence, seqLessThan } from '../../../shared/ecp/codec.ts'
import { parseMac, macFromBytes, macToBytes, isValidUnicastMac } from '../../../shared/ethernet/mac.ts'
import { managerIdFromText, vsiIdFromUuid, uuidFromVsiId } from '../../../shared/ids.ts'
import { DecodeError, EncodeError } from '../../../shared/wire/errors.ts'
import { hex } from '../../../shared/wire/hex.ts'
import { Reader } from '../../../shared/wire/reader.ts'
import { Writer } from '../../../shared/wire/writer.ts'

const code = (f: () => unknown) => {
  try { f() } catch (e) { return (e as DecodeError).code }
  return undefined
}

describe('Reader', () => {
  it('reads big-endian integers and reports truncation with the absolute offset', () => {
    const r = new Reader(hex`01 02 03 04 05 06 07 08 09 ff ff ff ff`, 0)
    expect(r.u8()).toBe(1)
    expect(r.u16()).toBe(0x0203)
    expect(r.u24()).toBe(0x040506)
    expect(r.u16()).toBe(0x0708)
    r.skip(1)
    expect(r.u32()).toBe(0xffffffff)
    let err: DecodeError | undefined
    try { r.u8() } catch (e) { err = e as DecodeError }
    expect(err?.code).toBe('truncated')
    expect(err?.offset).toBe(13)
  })
  it('sub() confines a TLV body so an overrun cannot read the next TLV', () => {
    const r = new Reader(hex`aa bb cc dd`)
    const body = r.sub(2)
    expect(body.u16()).toBe(0xaabb)
    expect(code(() => body.u8())).toBe('truncated')
    expect(r.u16()).toBe(0xccdd)
  })
})

describe('Writer', () => {
  it('rejects out-of-range values with EncodeError and a short buffer with an assertion', () => {
    expect(() => new Writer(1).u8(256)).toThrowError(EncodeError)
    expect(() => new Writer(1).u16(1)).toThrowError(AssertionError)
    const w = new Writer(2)
    w.u8(1)
    expect(() => w.toBytes()).toThrowError(AssertionError)
  })
})

describe('ECP header', () => {
  it('decodes a request and an ACK as lldpad sends them', () => {
    expect(decodeEcpdu(hex`10 01 12 24 0a 0b 0c 0d`)).toEqual({ header: { version: 1, operation: 0, subtype: 1, sequence: 0x1224 }, ulpdu: hex`0a 0b 0c 0d` })
    expect(encodeEcpdu({ header: { version: 1, operation: 1, subtype: 1, sequence: 1 }, ulpdu: new Uint8Array() })).toEqual(hex`14 01 00 01`)
  })
  it('refuses other versions and reserved operations', () => {
    expect(code(() => decodeEcpdu(hex`20 01 00 01`))).toBe('bad-version')
    expect(code(() => decodeEcpdu(hex`18 01 00 01`))).toBe('bad-operation')
    expect(code(() => decodeEcpdu(hex`10 01 00`))).toBe('truncated')
  })
  it('sequence numbers skip 0 on wrap and compare across the wrap', () => {
    expect(nextSequence(0xffff)).toBe(1)
    expect(nextSequence(1)).toBe(2)
    expect(seqLessThan(0xfffe, 2)).toBe(true)
    expect(seqLessThan(2, 0xfffe)).toBe(false)
  })
})

describe('identifiers', () => {
  it('MAC parse/format and validity', () => {
    expect(parseMac('02-76-64-70-00-01')).toBe('02:76:64:70:00:01')
    expect(macFromBytes(macToBytes(parseMac('AA:bb:cc:dd:ee:ff')))).toBe('aa:bb:cc:dd:ee:ff')
    expect(() => parseMac('02:76:64:70:00')).toThrow(/six hex octets/)
    expect(isValidUnicastMac(parseMac('01:80:c2:00:00:00'))).toBe(false)
    expect(isValidUnicastMac(parseMac('00:00:00:00:00:00'))).toBe(false)
    expect(isValidUnicastMac(parseMac('02:76:64:71:00:01'))).toBe(true)
  })
  it('Manager ID from vdptool mgrid2 text and VSIID from UUID text', () => {
    expect(managerIdFromText('vdplab')).toBe('7664706c616200000000000000000000')
    expect(managerIdFromText('abc')).toBe('ab0c0000000000000000000000000000')
    expect(() => managerIdFromText('this-is-not_ok!')).toThrow()
    const id = vsiIdFromUuid('5644504c-4142-4000-8000-000000000001')
    expect(uuidFromVsiId(id)).toBe('5644504c-4142-4000-8000-000000000001')
  })
})
