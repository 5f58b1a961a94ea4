/**
 * The port core with the project's real resource manager (agent/resources): VID pool, VN
 * policy, GroupID (VNI) -> VID, data-plane ops on association and release.
 */
import { describe, expect, it } from 'vitest'
import { createResourceManager } from '../../../agent/resources/resource-manager.ts'
import { defaultPolicy } from '../../../agent/resources/policy.ts'
import { VidPool } from '../../../agent/resources/vid-pool.ts'
import { BridgeStationPair } from '../../support/pair.ts'
import { associate, groupCommand, vsiIdOf } from './fixtures.ts'

describe('PortCore with createResourceManager()', () => {
  it('assigns pool VIDs, maps a VNI to one VID, and releases them on De-Associate', () => {
    const rm = createResourceManager(
      { ...defaultPolicy, vns: [{ vni: 5000, vid: 150, vsiTypes: 'any' }] },
      VidPool.parse('100-199'),
    )
    const pair = new BridgeStationPair({ resources: rm })
    pair.driveUntil(
      () => pair.station.operational().groupIdEnabled && pair.bridge.operational().groupIdEnabled,
    )
    pair.command(pair.station, associate(1))
    pair.command(pair.station, groupCommand('associate', 2, 5000))
    pair.command(pair.station, groupCommand('associate', 3, 5000))
    pair.settle()
    const vids = Object.fromEntries(
      pair.station.vsiSnapshot().map((v) => [v.vsi.vsiId.id, v.vsi.entries[0]!.vid]),
    )
    expect(vids[vsiIdOf(2).id]).toBe(150)
    expect(vids[vsiIdOf(3).id]).toBe(150)
    expect(vids[vsiIdOf(1).id]).toBeGreaterThanOrEqual(100)
    expect(vids[vsiIdOf(1).id]).toBeLessThanOrEqual(199)
    expect(rm.heldVsis()).toHaveLength(3)
    expect(rm.pollDataplaneChanges().length).toBeGreaterThan(0)
    for (const n of [1, 2, 3])
      pair.command(pair.station, { kind: 'de-associate', vsiId: vsiIdOf(n) })
    pair.settle()
    expect(rm.heldVsis()).toEqual([])
    expect(pair.bridge.vsiSnapshot()).toEqual([])
    expect(pair.eventsOf(pair.station, 'vsi-de-associated').map((e) => e.reason)).toEqual([
      'station-request',
      'station-request',
      'station-request',
    ])
  })

  it('answers insufficient resources when the pool is exhausted', () => {
    const rm = createResourceManager({ ...defaultPolicy, openVsiTypes: true }, VidPool.parse('100'))
    const pair = new BridgeStationPair({ resources: rm })
    pair.command(pair.station, associate(1, { typeId: 5 }))
    pair.command(pair.station, associate(2, { typeId: 6 }))
    pair.settle()
    expect(pair.eventsOf(pair.station, 'vsi-rejected')).toMatchObject([
      { vsi: { vsiId: vsiIdOf(2) }, error: 2 },
    ])
    expect(pair.eventsOf(pair.bridge, 'vsi-rejected')[0]!.detail).toEqual(expect.any(String))
    expect(pair.station.vsiSnapshot().map((v) => v.vsi.vsiId.id)).toEqual([vsiIdOf(1).id])
    expect(pair.bridge.vsiSnapshot().map((v) => v.vsi.vsiId.id)).toEqual([vsiIdOf(1).id])
  })
})
