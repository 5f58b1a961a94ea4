import { describe, expect, it } from 'vitest'
import { encodeEvbTlv, decodeEvbTlv, type EvbTlv } from '../../../shared/evb/evb-tlv.ts'
import { defaultEvbConfig, negotiateEvb, validateEvbConfig, type EvbConfig } from '../../../shared/evb/negotiate.ts'
import { hex, toHex } from '../../../shared/wire/hex.ts'
import { Reader } from '../../../shared/wire/reader.ts'
import { Writer } from '../../../shared/wire/writer.ts'
import { DecodeError } from '../../../shared/wire/errors.ts'

const body = (t: EvbTlv) => {
  const w = new Writer(9)
  encodeEvbTlv(w, t)
  return toHex(w.toBytes().subarray(4), ' ')
}
const parse = (five: string) => decodeEvbTlv(new Reader(hex`00 80 c2 0d ${five}`))

// lldpad defaults; station evbrrreq=yes evbgpid=yes, bridge evbrrcap=yes evbgpid=yes
// (vdp-spec.md §3.1, computed from lldpad's negotiation code, and lldpad-evb-lldp.pcap).
const station: EvbConfig = { ...defaultEvbConfig, role: 'station', groupId: true, reflectiveRelay: true }
const bridge: EvbConfig = { ...defaultEvbConfig, role: 'bridge', groupId: true, reflectiveRelay: true }

describe('negotiateEvb()', () => {
  it('reproduces the lldpad exchange byte for byte', () => {
    const s0 = negotiateEvb(station, undefined).tlv
    expect(body(s0)).toBe('00 0f 68 94 14') // station, before hearing the bridge
    const b1 = negotiateEvb(bridge, s0).tlv
    expect(body(b1)).toBe('07 0f 68 74 34') // bridge reply
    const s2 = negotiateEvb(station, b1)
    expect(body(s2.tlv)).toBe('07 0d 68 b4 34') // station steady state
    const b3 = negotiateEvb(bridge, s2.tlv)
    expect(body(b3.tlv)).toBe('07 0d 68 74 34') // bridge steady state
    expect(s2.operational).toEqual({ retries: 3, rte: 8, rwd: 20, rka: 20, groupIdEnabled: true, reflectiveRelay: true, peerSeen: true })
    expect(b3.operational.groupIdEnabled).toBe(true)
  })

  it('a bridge before hearing anything sends the captured first TLV', () => {
    expect(body(negotiateEvb(bridge, undefined).tlv)).toBe('06 00 68 54 14')
  })

  it('each side adopts the larger value and marks ROL when the remote one was taken', () => {
    const slow: EvbConfig = { ...station, retries: 5, rte: 14, rwd: 10, rka: 22 }
    const peer = parse('06 00 68 54 14') // bridge: R 3, RTE 8, RWD 20, RKA 20
    const { tlv, operational } = negotiateEvb(slow, peer)
    expect([operational.retries, operational.rte, operational.rwd, operational.rka]).toEqual([5, 14, 20, 22])
    expect(tlv.rwdRol).toBe(true)
    expect(tlv.rkaRol).toBe(false)
  })

  it('GroupID formats need BGID and SGID', () => {
    expect(negotiateEvb({ ...bridge, groupId: true }, parse('00 03 68 94 14')).operational.groupIdEnabled).toBe(false)
    expect(negotiateEvb({ ...bridge, groupId: false }, parse('00 0b 68 94 14')).operational.groupIdEnabled).toBe(false)
    expect(negotiateEvb({ ...bridge, groupId: true }, parse('00 0b 68 94 14')).operational.groupIdEnabled).toBe(true)
  })

  it('validateEvbConfig() rejects out-of-range exponents', () => {
    expect(() => validateEvbConfig({ ...bridge, rte: 32 })).toThrow(/rte 32/)
    expect(() => validateEvbConfig({ ...bridge, retries: 8 })).toThrow(/retries 8/)
  })

  it('decodeEvbTlv() refuses a TLV longer than 9 octets (lldpad evb22_rchange overflow)', () => {
    expect(() => decodeEvbTlv(new Reader(hex`00 80 c2 0d 07 0d 68 b4 34 00`))).toThrowError(DecodeError)
  })
})
