import { describe, expect, it } from 'vitest'
import {
  compilePolicy,
  defaultPolicy,
  PolicyError,
  resolveEntry,
  validatePolicy,
  type Policy,
} from '../../../agent/resources/policy.ts'
import { VdpError } from '../../../shared/vdp/constants.ts'
import { tlvOf } from './requests.ts'

function codeOf(doc: unknown): { code: string; path: string } | undefined {
  try {
    validatePolicy(doc)
  } catch (e) {
    if (e instanceof PolicyError) return { code: e.code, path: e.path }
    throw e
  }
  return undefined
}

const closed: Policy = validatePolicy({
  revision: 7,
  vidPool: '100-199',
  vns: [
    { vni: 5000, name: 'web', tenant: 'acme', vsiTypes: [{ typeId: 1, version: 1 }] },
    { vni: 6000, vid: 300, vsiTypes: [{ typeId: 2 }] },
    { vni: 7000, vsiTypes: 'any' },
  ],
})

describe('validatePolicy()', () => {
  it('fills defaults: a document is closed unless it opens itself', () => {
    const p = validatePolicy({})
    expect(p).toEqual({ revision: 0, vns: [], openVnis: false, openVsiTypes: false, hostKeys: [], lagGroups: [] })
    expect(closed.vns[1]).toEqual({ vni: 6000, vid: 300, vsiTypes: [{ typeId: 2 }] })
  })

  it('accepts host key and LAG group placeholders', () => {
    const p = validatePolicy({ hostKeys: [{ keyId: 'k1' }], lagGroups: [{ name: 'lag1', ports: ['Ethernet0', 'Ethernet4'] }] })
    expect(p.hostKeys).toEqual([{ keyId: 'k1', hosts: [] }])
    expect(p.lagGroups).toEqual([{ name: 'lag1', ports: ['Ethernet0', 'Ethernet4'], peerSwitches: [] }])
  })

  it('rejects bad documents with a code and the offending path', () => {
    expect(codeOf(null)).toEqual({ code: 'bad-type', path: '(root)' })
    expect(codeOf({ vns: {} })).toEqual({ code: 'bad-type', path: 'vns' })
    expect(codeOf({ vns: [{ vni: 0 }] })).toEqual({ code: 'bad-vni', path: 'vns[0].vni' })
    expect(codeOf({ vns: [{ vni: 0x1000000 }] })).toEqual({ code: 'bad-vni', path: 'vns[0].vni' })
    expect(codeOf({ vns: [{ vni: 5 }, { vni: 5 }] })).toEqual({ code: 'duplicate-vni', path: 'vns[1].vni' })
    expect(codeOf({ vns: [{ vni: 5, vid: 1 }] })).toEqual({ code: 'bad-vid', path: 'vns[0].vid' })
    expect(codeOf({ vns: [{ vni: 5, vid: 10 }, { vni: 6, vid: 10 }] })).toEqual({ code: 'duplicate-vid', path: 'vns[1].vid' })
    expect(codeOf({ vns: [{ vni: 5, vsiTypes: [{ typeId: -1 }] }] })).toEqual({ code: 'bad-vsi-type', path: 'vns[0].vsiTypes[0]' })
    expect(codeOf({ vns: [{ vni: 5, vsiTypes: [{ typeId: 1, version: 256 }] }] })).toEqual({ code: 'bad-vsi-type', path: 'vns[0].vsiTypes[0].version' })
    expect(codeOf({ vidPool: '1-10' })).toEqual({ code: 'bad-pool', path: 'vidPool' })
    expect(codeOf({ vidPool: 100 })).toEqual({ code: 'bad-pool', path: 'vidPool' })
    expect(codeOf({ openVnis: 'yes' })).toEqual({ code: 'bad-type', path: 'openVnis' })
    expect(codeOf({ lagGroups: [{ name: 'a', ports: [] }] })).toEqual({ code: 'bad-lag-group', path: 'lagGroups[0].ports' })
    expect(codeOf({ revision: -1 })).toEqual({ code: 'bad-type', path: 'revision' })
  })

  it('writes messages in the "Cannot …: …" form', () => {
    try {
      validatePolicy({ vns: [{ vni: 0 }] })
    } catch (e) {
      expect((e as Error).message).toMatch(/^Cannot use policy: vns\[0\]\.vni is 0/)
    }
  })
})

describe('resolveEntry()', () => {
  const cp = compilePolicy(closed)
  const verdict = (spec: Parameters<typeof tlvOf>[0]) => {
    const tlv = tlvOf(spec)
    return resolveEntry(cp, tlv, tlv.entries[0]!)
  }

  it('maps a GroupID to its VN when the VSI type is allowed', () => {
    expect(verdict({ vsi: 1, typeId: 1, typeVersion: 1, entries: [{ groupId: 5000 }] })).toEqual({ ok: true, target: { kind: 'vn', vni: 5000 } })
    expect(verdict({ vsi: 1, typeId: 2, typeVersion: 9, entries: [{ groupId: 6000 }] })).toEqual({ ok: true, target: { kind: 'vn', vni: 6000, staticVid: 300 } })
    expect(verdict({ vsi: 1, typeId: 99, entries: [{ groupId: 7000 }] })).toEqual({ ok: true, target: { kind: 'vn', vni: 7000 } })
  })

  it('answers error 5 (hard) for a GroupID with a non-zero upper octet, GroupID 0, or an unknown VNI', () => {
    expect(verdict({ vsi: 1, entries: [{ groupId: 0x01001388 }] })).toMatchObject({ ok: false, error: VdpError.InvalidVidGroupIdOrMac, hard: true, reason: 'groupid-upper-octet' })
    expect(verdict({ vsi: 1, format: 3, entries: [{ groupId: 0 }] })).toMatchObject({ ok: false, error: 5, reason: 'groupid-zero' })
    expect(verdict({ vsi: 1, entries: [{ groupId: 4242 }] })).toMatchObject({ ok: false, error: 5, hard: true, reason: 'unknown-vni' })
  })

  it('answers error 4 (hard) for an unknown VSI type and for a type not allowed on the VN', () => {
    expect(verdict({ vsi: 1, typeId: 99, entries: [{ groupId: 5000 }] })).toMatchObject({ ok: false, error: VdpError.OtherFailure, hard: true, reason: 'unknown-vsi-type' })
    expect(verdict({ vsi: 1, typeId: 2, entries: [{ groupId: 5000 }] })).toMatchObject({ ok: false, error: 4, hard: true, reason: 'vn-not-allowed' })
    expect(verdict({ vsi: 1, typeId: 1, typeVersion: 2, entries: [{ groupId: 5000 }] })).toMatchObject({ ok: false, error: 4, reason: 'unknown-vsi-type' })
    expect(verdict({ vsi: 1, format: 2, typeId: 99, entries: [{}] })).toMatchObject({ ok: false, error: 4, reason: 'unknown-vsi-type' })
  })

  it('maps formats 1/2 through the VSI type, and a static VID of an any-type VN', () => {
    expect(verdict({ vsi: 1, format: 1, typeId: 1, entries: [{}] })).toEqual({ ok: true, target: { kind: 'vn', vni: 5000 } })
    expect(verdict({ vsi: 1, format: 2, typeId: 2, entries: [{}] })).toEqual({ ok: true, target: { kind: 'vn', vni: 6000, staticVid: 300 } })
    const anyStatic = compilePolicy(validatePolicy({ vns: [{ vni: 8000, vid: 800 }] }))
    const tlv = tlvOf({ vsi: 1, format: 1, typeId: 42, entries: [{ vid: 800 }] })
    expect(resolveEntry(anyStatic, tlv, tlv.entries[0]!)).toEqual({ ok: true, target: { kind: 'vn', vni: 8000, staticVid: 800 } })
  })

  it('refuses an ambiguous VSI type unless the VID picks the VN', () => {
    const amb = compilePolicy(validatePolicy({ vns: [{ vni: 1, vid: 10, vsiTypes: [{ typeId: 3 }] }, { vni: 2, vid: 20, vsiTypes: [{ typeId: 3 }] }] }))
    const t0 = tlvOf({ vsi: 1, format: 1, typeId: 3, entries: [{}] })
    expect(resolveEntry(amb, t0, t0.entries[0]!)).toMatchObject({ ok: false, error: 4, reason: 'vsi-type-ambiguous' })
    const t20 = tlvOf({ vsi: 1, format: 1, typeId: 3, entries: [{ vid: 20 }] })
    expect(resolveEntry(amb, t20, t20.entries[0]!)).toEqual({ ok: true, target: { kind: 'vn', vni: 2, staticVid: 20 } })
  })

  it('refuses bad MACs and VID 1 with error 5', () => {
    expect(verdict({ vsi: 1, entries: [{ mac: '01:00:5e:00:00:01' as never }] })).toMatchObject({ ok: false, error: 5, reason: 'bad-mac' })
    expect(verdict({ vsi: 1, entries: [{ vid: 1 }] })).toMatchObject({ ok: false, error: 5, reason: 'bad-vid' })
  })

  it('defaultPolicy is open: any VNI, and a local VLAN per unbound VSI type', () => {
    const open = compilePolicy(defaultPolicy)
    const g = tlvOf({ vsi: 1, typeId: 9, entries: [{ groupId: 123456 }] })
    expect(resolveEntry(open, g, g.entries[0]!)).toEqual({ ok: true, target: { kind: 'vn', vni: 123456 } })
    const v = tlvOf({ vsi: 1, format: 2, typeId: 9, typeVersion: 3, entries: [{}] })
    expect(resolveEntry(open, v, v.entries[0]!)).toEqual({ ok: true, target: { kind: 'local', typeId: 9, typeVersion: 3 } })
  })
})

describe('policyFromSwitchPolicy()', () => {
  it('maps the fleet wire policy onto a closed resource policy', async () => {
    const { policyFromSwitchPolicy } = await import('../../../agent/resources/policy.ts')
    const p = policyFromSwitchPolicy({
      v: 1,
      switchId: 'tor1',
      revision: 9,
      issuedAt: 0,
      vns: [
        { name: 'web', vni: 5000, tenant: 'acme', allowedVsiTypes: [], vid: 300 },
        { name: 'db', vni: 6000, tenant: 'acme', allowedVsiTypes: [{ typeId: 1 }, { typeId: 2, typeVersion: 3 }] },
      ],
      vidPool: [{ first: 100, last: 199 }, { first: 400, last: 400 }],
      hosts: [],
      lagGroups: [{ name: 'lag1', ports: ['Ethernet0'], switches: ['tor2'] }],
      unknownHosts: 'allow',
    } as never)
    expect(p).toEqual({
      revision: 9,
      vns: [
        { vni: 5000, name: 'web', tenant: 'acme', vid: 300, vsiTypes: 'any' },
        { vni: 6000, name: 'db', tenant: 'acme', vsiTypes: [{ typeId: 1 }, { typeId: 2, version: 3 }] },
      ],
      vidPool: '100-199,400',
      openVnis: false,
      openVsiTypes: false,
      hostKeys: [],
      lagGroups: [{ name: 'lag1', ports: ['Ethernet0'], peerSwitches: ['tor2'] }],
    })
  })
})
