/** Builders for resource-manager requests in tests. */
import type { Mac } from '../../../shared/ethernet/mac.ts'
import { managerIdFromText, portName, vsiIdFromUuid, type PortName } from '../../../shared/ids.ts'
import type { FilterFormat, VsiMode } from '../../../shared/vdp/constants.ts'
import type { FilterEntry, VsiTlv } from '../../../shared/vdp/types.ts'
import type { ResourceRequest, VsiRelease } from '../../../agent/port/resources.ts'

export const STATION = '02:00:00:00:00:01' as Mac
export const MGR = managerIdFromText('vdplab')

export interface VsiSpec {
  port?: string
  /** Short number, expanded into a VSIID. */
  vsi: number
  mode?: VsiMode
  typeId?: number
  typeVersion?: number
  format?: FilterFormat
  entries: Array<Partial<FilterEntry>>
}

export function tlvOf(s: VsiSpec): VsiTlv {
  const format = s.format ?? 4
  return {
    kind: 'vsi',
    mode: s.mode ?? 'associate',
    status: { response: false, migratingFrom: false, migratingTo: false },
    typeId: s.typeId ?? 1,
    typeVersion: s.typeVersion ?? 1,
    vsiId: { format: 5, id: vsiIdFromUuid(s.vsi.toString(16).padStart(32, '0')) },
    filterFormat: format,
    entries: s.entries.map((e, i) => {
      const out: FilterEntry = { vid: e.vid ?? 0, ps: e.ps ?? false, pcp: e.pcp ?? 0 }
      if (format === 2 || format === 4) out.mac = e.mac ?? (`02:00:00:00:${(s.vsi & 0xff).toString(16).padStart(2, '0')}:${i.toString(16).padStart(2, '0')}` as Mac)
      if (format === 3 || format === 4) out.groupId = e.groupId ?? 5000
      return out
    }),
  }
}

export function req(s: VsiSpec): ResourceRequest {
  return { port: portName(s.port ?? 'Ethernet0'), station: STATION, managerId: MGR, tlv: tlvOf(s) }
}

export function rel(s: VsiSpec, entries?: FilterEntry[]): VsiRelease {
  const tlv = tlvOf(s)
  if (entries) tlv.entries = entries
  return { port: portName(s.port ?? 'Ethernet0'), station: STATION, managerId: MGR, tlv, reason: 'deassoc-received' }
}

export const port = (p: string): PortName => portName(p)
