import { describe, expect, it } from 'vitest'
import fc from 'fast-check'
import { applyDataplaneOps, emptyDataplaneState, type DataplaneState } from '../../../agent/resources/dataplane-ops.ts'
import { defaultPolicy, validatePolicy, type Policy } from '../../../agent/resources/policy.ts'
import { createResourceManager, SnapshotError, type HoldingChange } from '../../../agent/resources/resource-manager.ts'
import { VidPool } from '../../../agent/resources/vid-pool.ts'
import { port, rel, req, type VsiSpec } from './requests.ts'

const policy: Policy = validatePolicy({
  revision: 1,
  vns: [
    { vni: 5000, vsiTypes: [{ typeId: 1 }] },
    { vni: 6000, vid: 300, vsiTypes: 'any' },
    { vni: 7000, vsiTypes: 'any' },
  ],
})

const granted = (d: ReturnType<ReturnType<typeof createResourceManager>['request']>) => {
  if (d.outcome !== 'granted') throw new Error(`expected a grant, got ${JSON.stringify(d)}`)
  return d.entries
}

describe('createResourceManager()', () => {
  it('fills null VIDs, same VID for every VSI of a VN on every port', () => {
    const rm = createResourceManager(policy, VidPool.parse('100-199'))
    const a = granted(rm.request(req({ vsi: 1, port: 'Ethernet0', entries: [{ groupId: 5000 }] }), 0))
    const b = granted(rm.request(req({ vsi: 2, port: 'Ethernet4', entries: [{ groupId: 5000 }] }), 0))
    const c = granted(rm.request(req({ vsi: 3, port: 'Ethernet4', format: 2, typeId: 1, entries: [{}] }), 0))
    const d = granted(rm.request(req({ vsi: 4, port: 'Ethernet4', entries: [{ groupId: 7000 }] }), 0))
    expect([a[0]!.vid, b[0]!.vid, c[0]!.vid, d[0]!.vid]).toEqual([100, 100, 100, 101])
    expect(a[0]).toMatchObject({ groupId: 5000, ps: false, pcp: 0 })
  })

  it('keeps the entries in request order and uses a static VN VID', () => {
    const rm = createResourceManager(policy, VidPool.parse('100-199'))
    const e = granted(rm.request(req({ vsi: 1, entries: [{ groupId: 7000 }, { groupId: 6000 }, { groupId: 5000 }] }), 0))
    expect(e.map((x) => [x.groupId, x.vid])).toEqual([[7000, 100], [6000, 300], [5000, 101]])
  })

  it('emits data-plane ops only on transitions', () => {
    const rm = createResourceManager(policy, VidPool.parse('100-199'))
    rm.request(req({ vsi: 1, port: 'Ethernet0', entries: [{ groupId: 5000 }] }), 0)
    expect(rm.pollDataplaneChanges()).toEqual([
      { op: 'vlan-add', vid: 100, vni: 5000 },
      { op: 'member-add', vid: 100, port: 'Ethernet0' },
    ])
    rm.request(req({ vsi: 2, port: 'Ethernet0', entries: [{ groupId: 5000 }] }), 0)
    rm.request(req({ vsi: 1, port: 'Ethernet0', entries: [{ groupId: 5000, vid: 100 }] }), 0) // keep-alive
    expect(rm.pollDataplaneChanges()).toEqual([])
    rm.request(req({ vsi: 3, port: 'Ethernet8', entries: [{ groupId: 5000 }] }), 0)
    expect(rm.pollDataplaneChanges()).toEqual([{ op: 'member-add', vid: 100, port: 'Ethernet8' }])
    rm.release(rel({ vsi: 1, port: 'Ethernet0', entries: [{ groupId: 5000, vid: 100 }] }), 0)
    expect(rm.pollDataplaneChanges()).toEqual([])
    rm.release(rel({ vsi: 2, port: 'Ethernet0', entries: [{ groupId: 5000, vid: 100 }] }), 0)
    expect(rm.pollDataplaneChanges()).toEqual([{ op: 'member-del', vid: 100, port: 'Ethernet0' }])
    rm.release(rel({ vsi: 3, port: 'Ethernet8', entries: [{ groupId: 5000, vid: 100 }] }), 0)
    expect(rm.pollDataplaneChanges()).toEqual([
      { op: 'member-del', vid: 100, port: 'Ethernet8' },
      { op: 'vlan-del', vid: 100, vni: 5000 },
    ])
    expect(rm.vlanUse()).toEqual([])
  })

  it('reserves the VID on pre-associate and programs the port on associate', () => {
    const rm = createResourceManager(policy, VidPool.parse('100-199'))
    const pre = granted(rm.request(req({ vsi: 1, mode: 'pre-associate', entries: [{ groupId: 5000 }] }), 0))
    expect(pre[0]!.vid).toBe(100)
    expect(rm.pollDataplaneChanges()).toEqual([])
    expect(rm.vlanUse()).toEqual([{ vid: 100, vni: 5000, vsiCount: 1, ports: [] }])
    granted(rm.request(req({ vsi: 1, mode: 'associate', entries: [{ groupId: 5000 }] }), 0))
    expect(rm.pollDataplaneChanges()).toEqual([
      { op: 'vlan-add', vid: 100, vni: 5000 },
      { op: 'member-add', vid: 100, port: 'Ethernet0' },
    ])
    expect(rm.vlanUse()).toEqual([{ vid: 100, vni: 5000, vsiCount: 1, ports: [{ port: 'Ethernet0', vsiCount: 1 }] }])
  })

  it('answers error 2 (not hard) when the pool is exhausted, and recovers when a VN leaves', () => {
    const rm = createResourceManager(validatePolicy({ openVnis: true, openVsiTypes: true }), VidPool.parse('100-101'))
    granted(rm.request(req({ vsi: 1, entries: [{ groupId: 1 }] }), 0))
    granted(rm.request(req({ vsi: 2, entries: [{ groupId: 2 }] }), 0))
    expect(rm.request(req({ vsi: 3, entries: [{ groupId: 3 }] }), 0)).toEqual({ outcome: 'refused', error: 2, hard: false, reason: 'pool-exhausted' })
    // A VN that has its VID is still served.
    granted(rm.request(req({ vsi: 4, entries: [{ groupId: 2 }] }), 0))
    rm.release(rel({ vsi: 1, entries: [{ groupId: 1, vid: 100 }] }), 0)
    expect(granted(rm.request(req({ vsi: 3, entries: [{ groupId: 3 }] }), 0))[0]!.vid).toBe(100)
  })

  it('undoes partial allocations of a refused multi-entry request', () => {
    const rm = createResourceManager(validatePolicy({ openVnis: true, openVsiTypes: true }), VidPool.parse('100-101'))
    granted(rm.request(req({ vsi: 1, entries: [{ groupId: 1 }] }), 0))
    const d = rm.request(req({ vsi: 2, entries: [{ groupId: 2 }, { groupId: 3 }] }), 0)
    expect(d).toMatchObject({ outcome: 'refused', error: 2 })
    expect(rm.vlanUse().map((u) => u.vid)).toEqual([100])
    expect(granted(rm.request(req({ vsi: 3, entries: [{ groupId: 4 }] }), 0))[0]!.vid).toBe(101)
  })

  it('checks explicit VIDs: the VN VID, a free pool VID or a static VID, else error 5', () => {
    const rm = createResourceManager(policy, VidPool.parse('100-199'))
    expect(granted(rm.request(req({ vsi: 1, entries: [{ groupId: 5000, vid: 150 }] }), 0))[0]!.vid).toBe(150)
    expect(granted(rm.request(req({ vsi: 2, entries: [{ groupId: 6000, vid: 300 }] }), 0))[0]!.vid).toBe(300)
    expect(rm.request(req({ vsi: 3, entries: [{ groupId: 5000, vid: 151 }] }), 0)).toMatchObject({ outcome: 'refused', error: 5, hard: true, reason: 'vid-mismatch' })
    expect(rm.request(req({ vsi: 4, entries: [{ groupId: 7000, vid: 150 }] }), 0)).toMatchObject({ outcome: 'refused', error: 5, reason: 'vid-taken' })
    expect(rm.request(req({ vsi: 5, entries: [{ groupId: 7000, vid: 300 }] }), 0)).toMatchObject({ outcome: 'refused', error: 5, reason: 'bad-vid' })
    expect(rm.request(req({ vsi: 6, entries: [{ groupId: 7000, vid: 2000 }] }), 0)).toMatchObject({ outcome: 'refused', error: 5, reason: 'bad-vid' })
    expect(rm.request(req({ vsi: 7, entries: [{ groupId: 6000, vid: 100 }] }), 0)).toMatchObject({ outcome: 'refused', error: 5, reason: 'vid-mismatch' })
  })

  it('never hands out a static VN VID that lies inside the pool to another VN', () => {
    const p = validatePolicy({ vns: [{ vni: 1, vid: 100 }, { vni: 2 }] })
    const rm = createResourceManager(p, VidPool.parse('100-101'))
    expect(granted(rm.request(req({ vsi: 1, entries: [{ groupId: 2 }] }), 0))[0]!.vid).toBe(101)
    expect(rm.request(req({ vsi: 2, entries: [{ groupId: 2, vid: 100 }] }), 0)).toMatchObject({ error: 5 })
  })

  it('answers Keep for a failed request on a held VSI, and leaves its VIDs alone', () => {
    const rm = createResourceManager(policy, VidPool.parse('100-199'))
    granted(rm.request(req({ vsi: 1, entries: [{ groupId: 5000 }] }), 0))
    rm.pollDataplaneChanges()
    const d = rm.request(req({ vsi: 1, entries: [{ groupId: 0x01000000 | 5000 }] }), 0)
    expect(d).toEqual({ outcome: 'keep', error: 5, reason: 'groupid-upper-octet' })
    expect(rm.pollDataplaneChanges()).toEqual([])
    expect(rm.heldVsis()[0]!.entries[0]!.vid).toBe(100)
  })

  it('moves a held VSI to another VN atomically', () => {
    const rm = createResourceManager(policy, VidPool.parse('100-199'))
    granted(rm.request(req({ vsi: 1, entries: [{ groupId: 5000 }] }), 0))
    rm.pollDataplaneChanges()
    expect(granted(rm.request(req({ vsi: 1, entries: [{ groupId: 7000 }] }), 0))[0]!.vid).toBe(101)
    expect(rm.pollDataplaneChanges()).toEqual([
      { op: 'member-del', vid: 100, port: 'Ethernet0' },
      { op: 'vlan-del', vid: 100, vni: 5000 },
      { op: 'vlan-add', vid: 101, vni: 7000 },
      { op: 'member-add', vid: 101, port: 'Ethernet0' },
    ])
  })

  it('refuses with error 4 (hard) an unknown VSI type under a closed policy', () => {
    const rm = createResourceManager(policy, VidPool.parse('100-199'))
    expect(rm.request(req({ vsi: 1, format: 2, typeId: 77, entries: [{}] }), 0)).toEqual({ outcome: 'refused', error: 4, hard: true, reason: 'unknown-vsi-type' })
  })

  it('gives an unbound VSI type its own local VLAN under the default policy', () => {
    const rm = createResourceManager(defaultPolicy, VidPool.parse('100-199'))
    granted(rm.request(req({ vsi: 1, format: 2, typeId: 77, entries: [{}] }), 0))
    granted(rm.request(req({ vsi: 2, port: 'Ethernet4', format: 1, typeId: 77, entries: [{}] }), 0))
    expect(rm.pollDataplaneChanges()).toEqual([
      { op: 'vlan-add', vid: 100 },
      { op: 'member-add', vid: 100, port: 'Ethernet0' },
      { op: 'member-add', vid: 100, port: 'Ethernet4' },
    ])
    expect(rm.vlanUse()[0]).toMatchObject({ vid: 100, vsiType: { typeId: 77, typeVersion: 1 }, vsiCount: 2 })
  })

  it('refuses a bad vsiCountMax', () => {
    expect(() => createResourceManager(policy, VidPool.parse('100-199'), { vsiCountMax: 0 })).toThrow(/vsiCountMax 0/)
  })

  it('limits the number of VSIs (error 2)', () => {
    const rm = createResourceManager(policy, VidPool.parse('100-199'), { vsiCountMax: 1 })
    granted(rm.request(req({ vsi: 1, entries: [{ groupId: 5000 }] }), 0))
    expect(rm.request(req({ vsi: 2, entries: [{ groupId: 5000 }] }), 0)).toMatchObject({ outcome: 'refused', error: 2, hard: false, reason: 'vsi-limit' })
    granted(rm.request(req({ vsi: 1, entries: [{ groupId: 5000 }] }), 0))
  })

  it('restores the same VIDs from a snapshot, through JSON, with no queued ops', () => {
    const rm = createResourceManager(policy, VidPool.parse('100-199'))
    granted(rm.request(req({ vsi: 1, entries: [{ groupId: 7000 }] }), 0))
    granted(rm.request(req({ vsi: 2, port: 'Ethernet4', entries: [{ groupId: 5000 }] }), 0))
    granted(rm.request(req({ vsi: 3, mode: 'pre-associate', entries: [{ groupId: 6000 }] }), 0))
    rm.release(rel({ vsi: 1, entries: [{ groupId: 7000, vid: 100 }] }), 0)
    granted(rm.request(req({ vsi: 4, entries: [{ groupId: 7000 }] }), 0))
    const json = JSON.stringify(rm.exportSnapshot())
    const rm2 = createResourceManager(policy, VidPool.parse('100-199'))
    expect(rm2.importSnapshot(JSON.parse(json))).toEqual({ restored: 3, dropped: [] })
    expect(rm2.vlanUse()).toEqual(rm.vlanUse())
    expect(rm2.dataplaneState()).toEqual(rm.dataplaneState())
    expect(rm2.pollDataplaneChanges()).toEqual([])
    // New requests still get the answers the old process would have given.
    expect(granted(rm2.request(req({ vsi: 9, entries: [{ groupId: 5000 }] }), 0))[0]!.vid).toBe(101)
    expect(granted(rm2.request(req({ vsi: 9, entries: [{ groupId: 7000 }] }), 0))[0]!.vid).toBe(100)
  })

  it('drops snapshot VSIs the new policy no longer allows, and rejects malformed snapshots', () => {
    const rm = createResourceManager(policy, VidPool.parse('100-199'))
    granted(rm.request(req({ vsi: 1, entries: [{ groupId: 7000 }] }), 0))
    granted(rm.request(req({ vsi: 2, entries: [{ groupId: 5000 }] }), 0))
    const narrower = validatePolicy({ vns: [{ vni: 5000 }] })
    const rm2 = createResourceManager(narrower, VidPool.parse('100-199'))
    const report = rm2.importSnapshot(rm.exportSnapshot())
    expect(report.restored).toBe(1)
    expect(report.dropped).toEqual([{ port: 'Ethernet0', vsiId: expect.any(String), reason: 'unknown-vni' }])
    expect(rm2.vlanUse()).toEqual([{ vid: 101, vni: 5000, vsiCount: 1, ports: [{ port: 'Ethernet0', vsiCount: 1 }] }])
    expect(() => rm2.importSnapshot({ version: 2, vsis: [] })).toThrow(SnapshotError)
    expect(() => rm2.importSnapshot({ version: 1, vsis: [{ port: 'x' }] })).toThrow(SnapshotError)
  })
})

// ---- property tests -------------------------------------------------------------------------

type Cmd =
  | { kind: 'req'; vsi: number; port: number; vn: number; mode: 'associate' | 'pre-associate'; format: 3 | 2 }
  | { kind: 'rel'; vsi: number; port: number }

const cmdArb: fc.Arbitrary<Cmd> = fc.oneof(
  fc.record({
    kind: fc.constant('req' as const),
    vsi: fc.integer({ min: 1, max: 12 }),
    port: fc.integer({ min: 0, max: 3 }),
    vn: fc.integer({ min: 1, max: 8 }),
    mode: fc.constantFrom('associate' as const, 'pre-associate' as const),
    format: fc.constantFrom(3 as const, 2 as const),
  }),
  fc.record({ kind: fc.constant('rel' as const), vsi: fc.integer({ min: 1, max: 12 }), port: fc.integer({ min: 0, max: 3 }) }),
)

function spec(c: Cmd): VsiSpec {
  if (c.kind === 'rel') return { vsi: c.vsi, port: `Ethernet${c.port * 4}`, entries: [{}] }
  // Format 2: the VSI type is the VN (typeId = vn) under a policy binding type n to VNI n.
  return c.format === 3
    ? { vsi: c.vsi, port: `Ethernet${c.port * 4}`, mode: c.mode, format: 3, typeId: c.vn, entries: [{ groupId: c.vn }] }
    : { vsi: c.vsi, port: `Ethernet${c.port * 4}`, mode: c.mode, format: 2, typeId: c.vn, entries: [{}] }
}

const propPolicy = validatePolicy({ vns: Array.from({ length: 8 }, (_, i) => ({ vni: i + 1, vsiTypes: [{ typeId: i + 1 }] })) })

describe('createResourceManager() properties', () => {
  it('keeps refcounts consistent, one VID per VN, and returns to empty after releasing everything', () => {
    fc.assert(
      fc.property(fc.array(cmdArb, { maxLength: 60 }), fc.integer({ min: 1, max: 8 }), (cmds, poolSize) => {
        const pool = VidPool.parse(`100-${99 + poolSize}`)
        const rm = createResourceManager(propPolicy, pool)
        let applied: DataplaneState = emptyDataplaneState()
        for (const c of cmds) {
          const s = spec(c)
          if (c.kind === 'req') {
            const d = rm.request(req(s), 0)
            if (d.outcome !== 'granted') {
              // Only exhaustion can refuse here, and only when every VID is taken.
              expect(d.error).toBe(2)
              expect(pool.freeCount).toBe(0)
            }
          } else {
            rm.release(rel(s), 0)
          }
          applied = applyDataplaneOps(applied, rm.pollDataplaneChanges())
          // The ops drained so far rebuild exactly the desired state (transitions only, none lost).
          expect(applied).toEqual(rm.dataplaneState())
          const use = rm.vlanUse()
          // One VID per VN, one VN per VID.
          expect(new Set(use.map((u) => u.vni)).size).toBe(use.length)
          expect(new Set(use.map((u) => u.vid)).size).toBe(use.length)
          for (const u of use) {
            expect(u.vsiCount).toBeGreaterThan(0)
            for (const p of u.ports) expect(p.vsiCount).toBeGreaterThan(0)
            expect(u.ports.reduce((n, p) => n + p.vsiCount, 0)).toBeLessThanOrEqual(u.vsiCount)
          }
          // Refcounts equal a recount from the held VSIs (so none is negative or stale).
          const expected = new Map<string, number>()
          const holders = new Map<number, number>()
          for (const h of rm.heldVsis()) {
            for (const vid of new Set(h.entries.map((e) => e.vid))) {
              holders.set(vid, (holders.get(vid) ?? 0) + 1)
              if (h.mode === 'associate') expected.set(`${vid}|${h.port}`, (expected.get(`${vid}|${h.port}`) ?? 0) + 1)
            }
          }
          const actual = new Map<string, number>()
          for (const u of use) for (const p of u.ports) actual.set(`${u.vid}|${p.port}`, p.vsiCount)
          expect(actual).toEqual(expected)
          expect(new Map(use.map((u) => [u.vid, u.vsiCount]))).toEqual(holders)
          expect(pool.freeCount).toBe(pool.size - use.length)
          // Same VN, same VID, on every port.
          const vidOfVn = new Map<number, number>()
          for (const h of rm.heldVsis()) {
            const vn = h.entries[0]!.groupId ?? h.typeId
            const vid = h.entries[0]!.vid
            expect(vidOfVn.get(vn) ?? vid).toBe(vid)
            vidOfVn.set(vn, vid)
          }
        }
        for (const h of rm.heldVsis()) {
          rm.release({ port: h.port, station: h.station, managerId: h.managerId, reason: 'test', tlv: { ...req({ vsi: 0, entries: [{}] }).tlv, vsiId: { format: 5, id: h.vsiId } } }, 0)
        }
        applied = applyDataplaneOps(applied, rm.pollDataplaneChanges())
        expect(applied).toEqual(emptyDataplaneState())
        expect(rm.vlanUse()).toEqual([])
        expect(rm.heldVsis()).toEqual([])
        expect(pool.freeCount).toBe(pool.size)
      }),
      { numRuns: 300 },
    )
  })

  it('grants exactly as many VNs as the pool has VIDs', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 20 }), fc.integer({ min: 1, max: 30 }), (poolSize, vnCount) => {
        const rm = createResourceManager(validatePolicy({ openVnis: true, openVsiTypes: true }), VidPool.parse(`2-${1 + poolSize}`))
        let grants = 0
        for (let vn = 1; vn <= vnCount; vn++) {
          const d = rm.request(req({ vsi: vn, port: `p${vn % 3}`, entries: [{ groupId: vn }] }), 0)
          if (d.outcome === 'granted') grants++
          else expect(d).toEqual({ outcome: 'refused', error: 2, hard: false, reason: 'pool-exhausted' })
        }
        expect(grants).toBe(Math.min(poolSize, vnCount))
      }),
    )
  })

  it('a snapshot round trip reproduces VIDs and data-plane state', () => {
    fc.assert(
      fc.property(fc.array(cmdArb, { maxLength: 40 }), (cmds) => {
        const rm = createResourceManager(propPolicy, VidPool.parse('100-104'))
        for (const c of cmds) {
          if (c.kind === 'req') rm.request(req(spec(c)), 0)
          else rm.release(rel(spec(c)), 0)
        }
        const rm2 = createResourceManager(propPolicy, VidPool.parse('100-104'))
        const report = rm2.importSnapshot(JSON.parse(JSON.stringify(rm.exportSnapshot())))
        expect(report.dropped).toEqual([])
        expect(rm2.vlanUse()).toEqual(rm.vlanUse())
        expect(rm2.dataplaneState()).toEqual(rm.dataplaneState())
        expect(rm2.exportSnapshot()).toEqual(rm.exportSnapshot())
      }),
    )
  })
})

it('port() helper builds port names', () => {
  expect(port('Ethernet0')).toBe('Ethernet0')
})

describe('createResourceManager() mode changes', () => {
  it('associate -> pre-associate removes the port from the VLAN but keeps the VID', () => {
    const rm = createResourceManager(policy, VidPool.parse('100-199'))
    granted(rm.request(req({ vsi: 1, entries: [{ groupId: 5000 }] }), 0))
    rm.pollDataplaneChanges()
    expect(granted(rm.request(req({ vsi: 1, mode: 'pre-associate', entries: [{ groupId: 5000, vid: 100 }] }), 0))[0]!.vid).toBe(100)
    expect(rm.pollDataplaneChanges()).toEqual([
      { op: 'member-del', vid: 100, port: 'Ethernet0' },
      { op: 'vlan-del', vid: 100, vni: 5000 },
    ])
    expect(rm.vlanUse()).toEqual([{ vid: 100, vni: 5000, vsiCount: 1, ports: [] }])
  })

  it('setPolicy(): a keep-alive the new policy rejects is answered Keep, the VID stays', () => {
    const rm = createResourceManager(policy, VidPool.parse('100-199'))
    granted(rm.request(req({ vsi: 1, entries: [{ groupId: 7000 }] }), 0))
    rm.setPolicy(validatePolicy({ vns: [{ vni: 5000 }] }))
    expect(rm.request(req({ vsi: 1, entries: [{ groupId: 7000, vid: 100 }] }), 0)).toEqual({ outcome: 'keep', error: 5, reason: 'unknown-vni' })
    expect(rm.vlanUse().map((u) => u.vid)).toEqual([100])
  })
})

describe('createResourceManager() after a restart', () => {
  it('dropUnconfirmed() releases restored VSIs no station came back for', () => {
    const rm = createResourceManager(policy, VidPool.parse('100-199'))
    granted(rm.request(req({ vsi: 1, port: 'Ethernet0', entries: [{ groupId: 5000 }] }), 0))
    granted(rm.request(req({ vsi: 2, port: 'Ethernet4', entries: [{ groupId: 7000 }] }), 0))
    const rm2 = createResourceManager(policy, VidPool.parse('100-199'))
    rm2.importSnapshot(rm.exportSnapshot())
    // VSI 1's station keeps the VSI alive (same VID); VSI 2's never comes back.
    expect(granted(rm2.request(req({ vsi: 1, port: 'Ethernet0', entries: [{ groupId: 5000, vid: 100 }] }), 0))[0]!.vid).toBe(100)
    const dropped = rm2.dropUnconfirmed()
    expect(dropped.map((h) => h.port)).toEqual(['Ethernet4'])
    expect(rm2.pollDataplaneChanges()).toEqual([
      { op: 'member-del', vid: 101, port: 'Ethernet4' },
      { op: 'vlan-del', vid: 101, vni: 7000 },
    ])
    expect(rm2.dropUnconfirmed()).toEqual([])
  })

  it('refuses (not Keep) and forgets a restored VSI whose new request fails', () => {
    const rm = createResourceManager(policy, VidPool.parse('100-199'))
    granted(rm.request(req({ vsi: 1, entries: [{ groupId: 5000 }] }), 0))
    const rm2 = createResourceManager(policy, VidPool.parse('100-199'))
    rm2.importSnapshot(rm.exportSnapshot())
    expect(rm2.request(req({ vsi: 1, entries: [{ groupId: 5000, vid: 150 }] }), 0)).toMatchObject({ outcome: 'refused', error: 5, reason: 'vid-mismatch' })
    expect(rm2.heldVsis()).toEqual([])
    expect(rm2.vlanUse()).toEqual([])
  })
})

describe('createResourceManager() onHoldingChange (the journal feed)', () => {
  const watched = () => {
    const seen: HoldingChange[] = []
    const rm = createResourceManager(policy, VidPool.parse('100-199'), { onHoldingChange: (c) => seen.push(c) })
    return { rm, seen, kinds: () => seen.map((c) => (c.kind === 'hold' ? `hold ${c.vsi.mode} ${c.vsi.entries.map((e) => e.vid).join(',')}` : `drop ${c.vsiId.slice(-2)}`)) }
  }

  it('reports a new VSI with its granted VIDs, before the caller answers, and a change of mode', () => {
    const { rm, seen, kinds } = watched()
    granted(rm.request(req({ vsi: 1, mode: 'pre-associate', entries: [{ groupId: 5000 }] }), 0))
    expect(kinds()).toEqual(['hold pre-associate 100'])
    granted(rm.request(req({ vsi: 1, entries: [{ groupId: 5000, vid: 100 }] }), 0))
    expect(kinds()).toEqual(['hold pre-associate 100', 'hold associate 100'])
    // What was reported is what a snapshot holds for that VSI.
    const last = seen.at(-1)
    expect(last?.kind === 'hold' && last.vsi).toEqual(rm.exportSnapshot().vsis[0])
  })

  it('says nothing for a keep-alive that changes nothing, or a refused request', () => {
    const { rm, kinds } = watched()
    granted(rm.request(req({ vsi: 1, entries: [{ groupId: 5000 }] }), 0))
    granted(rm.request(req({ vsi: 1, entries: [{ groupId: 5000, vid: 100 }] }), 0))
    granted(rm.request(req({ vsi: 1, entries: [{ groupId: 5000 }] }), 0))
    expect(rm.request(req({ vsi: 2, entries: [{ groupId: 9999 }] }), 0).outcome).not.toBe('granted')
    expect(kinds()).toEqual(['hold associate 100'])
    // Nor does `changes` move (the shell saves the state file when it does).
    const before = rm.changes
    granted(rm.request(req({ vsi: 1, entries: [{ groupId: 5000, vid: 100 }] }), 0))
    expect(rm.changes).toBe(before)
    // A move to another VN is a change.
    granted(rm.request(req({ vsi: 1, entries: [{ groupId: 7000 }] }), 0))
    expect(kinds()).toEqual(['hold associate 100', 'hold associate 101'])
    expect(rm.changes).toBe(before + 1)
  })

  it('reports releases and unconfirmed drops, and nothing while importing a snapshot', () => {
    const { rm, kinds } = watched()
    granted(rm.request(req({ vsi: 1, entries: [{ groupId: 5000 }] }), 0))
    granted(rm.request(req({ vsi: 2, entries: [{ groupId: 5000 }] }), 0))
    rm.release(rel({ vsi: 1, entries: [{ groupId: 5000, vid: 100 }] }), 0)
    expect(kinds()).toEqual(['hold associate 100', 'hold associate 100', 'drop 01'])
    granted(rm.request(req({ vsi: 4, entries: [{ groupId: 7000 }] }), 0))
    const { rm: rm2, kinds: kinds2 } = watched()
    rm2.importSnapshot(JSON.parse(JSON.stringify(rm.exportSnapshot())))
    expect(kinds2()).toEqual([])
    // A restored VSI confirmed unchanged is not news; one nobody confirms is dropped.
    granted(rm2.request(req({ vsi: 2, entries: [{ groupId: 5000, vid: 100 }] }), 0))
    expect(kinds2()).toEqual([])
    granted(rm2.request(req({ vsi: 3, entries: [{ groupId: 5000 }] }), 0))
    expect(rm2.dropUnconfirmed().map((v) => v.vsiId.slice(-2))).toEqual(['04'])
    expect(kinds2()).toEqual(['hold associate 100', 'drop 04'])
  })
})

describe('createResourceManager() offer state (port-core rule 6)', () => {

  it('offer state: a decision for a kind of new VSI holds while the epoch stays, with headroom (property)', () => {
    const open = validatePolicy({ ...defaultPolicy, revision: 2, vns: [{ vni: 5000, vsiTypes: [{ typeId: 1 }] }] })
    fc.assert(
      fc.property(
        fc.array(
          fc.record({
            op: fc.constantFrom('request', 'request', 'request', 'release', 'release', 'release', 'release', 'policy'),
            vsi: fc.integer({ min: 1, max: 4 }),
            vn: fc.constantFrom(5000, 7000, 8000),
            port: fc.constantFrom('Ethernet0', 'Ethernet4'),
          }),
          { maxLength: 80 },
        ),
        (ops) => {
          // A small pool and table: VIDs get reused by other VNs and the table fills up.
          const rm = createResourceManager(open, VidPool.parse('100-102'), { vsiCountMax: 6 })
          const offers = new Map<number, { vid: number; epoch: number }>()
          const held = new Map<string, number>()
          for (const o of ops) {
            const key = `${o.port}|${o.vsi}`
            if (o.op === 'request' && !held.has(key)) {
              const epoch = rm.offerState[0]!
              const room = rm.offerState[1]!
              const d = rm.request(req({ vsi: o.vsi, port: o.port, entries: [{ groupId: o.vn }] }), 0)
              const offer = offers.get(o.vn)
              // What the link would have answered is what the manager decides.
              if (offer !== undefined && offer.epoch === epoch && room > 0) expect(d).toMatchObject({ outcome: 'granted', entries: [{ vid: offer.vid }] })
              if (d.outcome === 'granted') {
                held.set(key, o.vn)
                offers.set(o.vn, { vid: d.entries[0]!.vid, epoch: rm.offerState[0]! })
              }
            } else if (o.op === 'release' && held.has(key)) {
              rm.release(rel({ vsi: o.vsi, port: o.port, entries: [{ groupId: held.get(key)! }] }), 0)
              held.delete(key)
            } else if (o.op === 'policy') {
              rm.setPolicy(open)
            }
            expect(rm.offerState[1]).toBe(6 - held.size)
          }
        },
      ),
      { numRuns: 300 },
    )
  })

  it('offer state: the epoch moves when a VN lets go of its VID, not when a VN gains a VSI', () => {
    const rm = createResourceManager(policy, VidPool.parse('100-199'))
    const e0 = rm.offerState[0]
    granted(rm.request(req({ vsi: 1, entries: [{ groupId: 7000 }] }), 0))
    granted(rm.request(req({ vsi: 2, entries: [{ groupId: 7000 }] }), 0))
    expect(rm.offerState[0]).toBe(e0)
    rm.release(rel({ vsi: 1, entries: [{ groupId: 7000 }] }), 0)
    expect(rm.offerState[0]).toBe(e0)
    rm.release(rel({ vsi: 2, entries: [{ groupId: 7000 }] }), 0)
    expect(rm.offerState[0]).not.toBe(e0)
    const e1 = rm.offerState[0]
    rm.setPolicy(policy)
    expect(rm.offerState[0]).not.toBe(e1)
    expect(rm.offerState[1]).toBe(4096)
  })
})
