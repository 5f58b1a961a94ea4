/** Event builders for the edge tests: defaults for every field, overrides per test. */
import type { FleetEvent, VsiEvent, VsiEventKind } from '../../../shared/api/events.ts'
import { parseMac, type Mac } from '../../../shared/ethernet/mac.ts'
import { parseIpv4 } from '../../../shared/api/ip.ts'
import { managerIdFromText, portName, switchId, vsiIdFromUuid, type VsiIdHex } from '../../../shared/ids.ts'

export const T0 = 1_700_000_000_000
export const MANAGER = managerIdFromText('vdplab')

export const vsiIdOf = (n: number): VsiIdHex => vsiIdFromUuid(`${n.toString(16).padStart(8, '0')}-0000-4000-8000-000000000000`)
export const macOf = (n: number): Mac =>
  parseMac(`02:00:${[(n >> 24) & 255, (n >> 16) & 255, (n >> 8) & 255, n & 255].map((b) => b.toString(16).padStart(2, '0')).join(':')}`)
export const ipOf = (n: number): string => `10.${(n >> 16) & 255}.${(n >> 8) & 255}.${n & 255}`

export interface VsiEventOptions {
  kind?: VsiEventKind
  sw?: string
  bootId?: string
  bootTime?: number
  seq: number
  time?: number
  port?: string
  vsi?: number
  vni?: number
  vid?: number
  migration?: VsiEvent['migration']
  migrationId?: string
  ipv4?: string[]
}

export function vsiEvent(o: VsiEventOptions): VsiEvent {
  const vsi = o.vsi ?? 1
  const base = {
    v: 1 as const,
    switchId: switchId(o.sw ?? 'tor1'),
    bootId: o.bootId ?? 'boot-0001',
    bootTime: o.bootTime ?? T0,
    seq: o.seq,
    time: o.time ?? T0 + o.seq * 10,
    port: portName(o.port ?? 'Ethernet8'),
    stationMac: parseMac('02:aa:00:00:00:01'),
    managerId: MANAGER,
    typeId: 100,
    typeVersion: 1,
    vsiIdFormat: 5 as const,
    vsiId: vsiIdOf(vsi),
    groupId: o.vni ?? 5000,
    vni: o.vni ?? 5000,
    vid: o.vid ?? 100,
    macs: [macOf(vsi)],
    ipv4: (o.ipv4 ?? [ipOf(vsi)]).map(parseIpv4),
    migration: o.migration ?? ('none' as const),
    reason: 'request',
    ...(o.migrationId !== undefined ? { migrationId: o.migrationId } : {}),
  }
  const kind = o.kind ?? 'vsi-associated'
  if (kind === 'vsi-rejected') return { ...base, kind, error: 2, keep: false }
  return { ...base, kind } as VsiEvent
}

export function agentStarted(o: { sw?: string; bootId?: string; bootTime?: number; seq?: number; time?: number }): FleetEvent {
  const bootTime = o.bootTime ?? T0
  return {
    v: 1,
    kind: 'agent-started',
    switchId: switchId(o.sw ?? 'tor1'),
    bootId: o.bootId ?? 'boot-0001',
    bootTime,
    seq: o.seq ?? 0,
    time: o.time ?? bootTime,
    agentVersion: '0.1.0',
    role: 'bridge',
    ports: [portName('Ethernet8'), portName('Ethernet12')],
    reason: 'start',
  }
}

/** One event of every kind, valid. */
export function sampleEvents(): FleetEvent[] {
  const h = { v: 1 as const, switchId: switchId('tor1'), bootId: 'boot-0001', bootTime: T0 }
  const port = portName('Ethernet8')
  const stationMac = parseMac('02:aa:00:00:00:01')
  return [
    agentStarted({}),
    vsiEvent({ seq: 1, kind: 'vsi-pre-associated', migration: 'to', migrationId: 'm-1' }),
    vsiEvent({ seq: 2 }),
    { ...vsiEvent({ seq: 3, kind: 'vsi-deactivated' }), initiator: 'station' } as FleetEvent,
    vsiEvent({ seq: 4, kind: 'vsi-de-associated' }),
    vsiEvent({ seq: 5, kind: 'vsi-rejected' }),
    vsiEvent({ seq: 6, kind: 'vsi-timeout' }),
    { ...h, kind: 'peer-up', seq: 7, time: T0 + 70, port, stationMac, extensions: ['auth', 'ip'], reason: 'lldp' },
    { ...h, kind: 'peer-down', seq: 8, time: T0 + 80, port, stationMac, reason: 'ttl-expired' },
    { ...h, kind: 'vlan-allocated', seq: 9, time: T0 + 90, vid: 100, vni: 5000, reason: 'first-vsi' },
    { ...h, kind: 'vlan-released', seq: 10, time: T0 + 100, vid: 100, reason: 'last-vsi-left' },
  ]
}
