/**
 * Builders for VSI commands and TLVs used by the port-core tests.
 */
import type { Mac } from '../../../shared/ethernet/mac.ts'
import { managerIdFromText, type ManagerId } from '../../../shared/ids.ts'
import { FilterFormat, VsiIdFormat, type VsiMode } from '../../../shared/vdp/constants.ts'
import type { FilterEntry, VsiId, VsiTlv } from '../../../shared/vdp/types.ts'
import type { VsiRequestCommand } from '../../../agent/port/port-core.ts'

export const MGR: ManagerId = managerIdFromText('vdplab')

export function vsiIdOf(n: number): VsiId {
  return {
    format: VsiIdFormat.Uuid,
    id: ('5644504c41424000' + n.toString(16).padStart(16, '0')) as VsiId['id'],
  }
}

export const vmMac = (n: number): Mac =>
  `02:76:64:71:${((n >> 8) & 0xff).toString(16).padStart(2, '0')}:${(n & 0xff).toString(16).padStart(2, '0')}` as Mac

export function macVidEntry(n: number, vid = 0): FilterEntry {
  return { vid, ps: false, pcp: 0, mac: vmMac(n) }
}

export function command(
  kind: VsiRequestCommand['kind'],
  n: number,
  options: {
    entries?: FilterEntry[]
    filterFormat?: FilterFormat
    typeId?: number
    managerId?: ManagerId
  } = {},
): VsiRequestCommand {
  return {
    kind,
    managerId: options.managerId ?? MGR,
    typeId: options.typeId ?? 5,
    typeVersion: 1,
    vsiId: vsiIdOf(n),
    filterFormat: options.filterFormat ?? FilterFormat.MacVid,
    entries: options.entries ?? [macVidEntry(n)],
  }
}

export const associate = (n: number, o?: Parameters<typeof command>[2]) =>
  command('associate', n, o)
export const preAssociate = (n: number, o?: Parameters<typeof command>[2]) =>
  command('pre-associate', n, o)

export function groupCommand(
  kind: VsiRequestCommand['kind'],
  n: number,
  groupId: number,
): VsiRequestCommand {
  return command(kind, n, {
    filterFormat: FilterFormat.GroupMacVid,
    entries: [{ vid: 0, ps: false, pcp: 0, mac: vmMac(n), groupId }],
  })
}

export function requestTlv(
  mode: VsiMode,
  n: number,
  entries: FilterEntry[] = [macVidEntry(n)],
  typeId = 5,
): VsiTlv {
  return {
    kind: 'vsi',
    mode,
    status: { response: false, migratingFrom: false, migratingTo: false },
    typeId,
    typeVersion: 1,
    vsiId: vsiIdOf(n),
    filterFormat: FilterFormat.MacVid,
    entries,
  }
}
