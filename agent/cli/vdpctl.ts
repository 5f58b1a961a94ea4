/**
 * `vdpctl`: the operator's command line. `decode` works offline on a capture; the other
 * commands talk to a running `vdp-agent` over its local control socket.
 *
 * @module
 */
import { readFileSync } from 'node:fs'
import { parseArgs } from 'node:util'
import { decodeFrame } from '../../shared/decode-frame.ts'
import { decodePcap, LINKTYPE_ETHERNET } from '../../shared/pcap/pcap.ts'
import { DecodeError } from '../../shared/wire/errors.ts'
import { parseMac } from '../../shared/ethernet/mac.ts'
import { managerIdFromText, vsiIdFromUuid, uuidFromVsiId, type VsiIdHex } from '../../shared/ids.ts'
import type { FilterEntry } from '../../shared/vdp/types.ts'
import { callAgent, ControlError } from '../control/local-api.ts'

export const VDPCTL_USAGE = `Usage: vdpctl <command> [options]

Offline:
  decode FILE.pcap [--only ecp|lldp|vdp]   Decode ECP, VDP and LLDP/EVB frames of a capture as JSON

From a running vdp-agent (--socket PATH, default $VDP_AGENT_SOCKET or /run/vdp-agent/control.sock):
  status                                   Agent, policy, data plane and uplink state
  ports                                    Ports with negotiated EVB timers, link counters, keep-alive answers held and offers stored
  peers                                    ECP peers (stations) per port
  vsis [--port P] [--vsi UUID] [--mac MAC] VSIs: VN, VID, MACs, state, last keep-alive
  vlans                                    VLAN use: VID, VNI, ports, VSI count
  counters                                 Protocol and link counters per port and peer
  metrics                                  The Prometheus metrics (also when --metrics is off)
  disconnect --vsi UUID [--port P] [--station MAC]
                                           Bridge role: de-associate a VSI from the switch side
  dataplane-resync                         Reconcile the data plane with the agent's state now

Station role (hypervisor side), like vdptool:
  associate | pre-associate | pre-associate-rr | de-associate
      --uuid UUID --filter F [--filter F…] [--mgrid ID] [--typeid N] [--typeidver N]
      [--hints none|to|from] [--port P] [--wait MS | --no-wait]
      F: VID | VID-MAC | VID--GROUPID | VID-MAC-GROUPID (VID 0: the bridge picks it)

Options:
  --json       Print JSON instead of tables
  --version    Print the version
`

export interface CliIo {
  out(text: string): void
  err(text: string): void
}

/** Decodes a classic pcap into one JSON object per frame. */
export function decodeCapture(bytes: Uint8Array, only?: string): Array<Record<string, unknown>> {
  const pcap = decodePcap(bytes)
  if (pcap.linkType !== LINKTYPE_ETHERNET) {
    throw new Error(`Cannot decode capture: link type ${pcap.linkType} is not Ethernet (1)`)
  }
  const t0 = pcap.records[0]?.timeUs ?? 0
  const frames = pcap.records.map((r, i) => ({ frame: i + 1, timeS: (r.timeUs - t0) / 1e6, ...decodeFrame(r.data) }))
  if (!only) return frames
  return frames.filter((f) => (only === 'lldp' ? 'lldp' in f : only === 'vdp' ? 'ecp' in f && typeof f.ecp === 'object' && f.ecp !== null && 'vdp' in f.ecp : 'ecp' in f))
}

export async function runVdpctl(argv: string[], io: CliIo): Promise<number> {
  const [command, ...rest] = argv
  if (command === undefined || command === 'help' || command === '--help' || command === '-h') {
    io.out(VDPCTL_USAGE)
    return command === undefined ? 2 : 0
  }
  if (command === '--version') {
    io.out(`vdpctl ${process.env.VDP_VERSION ?? '0.1.0'}\n`)
    return 0
  }
  if (command === 'decode') {
    let parsed
    try {
      parsed = parseArgs({ args: rest, allowPositionals: true, options: { only: { type: 'string' } } })
    } catch (e) {
      io.err(`vdpctl decode: ${(e as Error).message}\n`)
      return 2
    }
    const file = parsed.positionals[0]
    if (!file) {
      io.err('vdpctl decode: missing FILE.pcap\n')
      return 2
    }
    const only = parsed.values.only
    if (only !== undefined && !['ecp', 'lldp', 'vdp'].includes(only)) {
      io.err(`vdpctl decode: --only must be ecp, lldp or vdp, not "${only}"\n`)
      return 2
    }
    let bytes: Uint8Array
    try {
      bytes = new Uint8Array(readFileSync(file))
    } catch (e) {
      io.err(`vdpctl decode: cannot read ${file}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}\n`)
      return 1
    }
    try {
      io.out(JSON.stringify(decodeCapture(bytes, only), null, 2) + '\n')
      return 0
    } catch (e) {
      io.err(`vdpctl decode: ${e instanceof DecodeError ? `${e.code}: ${e.message}` : (e as Error).message}\n`)
      return 1
    }
  }
  if (AGENT_COMMANDS.has(command)) return runAgentCommand(command, rest, io)
  io.err(`vdpctl: unknown command "${command}"\n\n${VDPCTL_USAGE}`)
  return 2
}

const STATION_COMMANDS = new Set(['associate', 'pre-associate', 'pre-associate-rr', 'de-associate'])
const AGENT_COMMANDS = new Set(['status', 'ports', 'peers', 'vsis', 'vlans', 'counters', 'metrics', 'disconnect', 'dataplane-resync', ...STATION_COMMANDS])

/**
 * Parses a vdptool-style filter: `VID`, `VID-MAC`, `VID--GROUP`, `VID-MAC-GROUP`. VID is the
 * whole 16-bit word (PS and PCP in the top nibble), as vdptool takes it.
 */
export function parseFilterArg(text: string): { format: 1 | 2 | 3 | 4; entry: FilterEntry } {
  const parts = text.split('-')
  const word = Number(parts[0])
  if (!Number.isInteger(word) || word < 0 || word > 0xffff) throw new Error(`Invalid filter "${text}": VID word ${parts[0]} is not 0..65535`)
  const base = { vid: word & 0xfff, ps: (word & 0x8000) !== 0, pcp: (word >> 12) & 7 }
  const group = (g: string | undefined) => {
    const n = Number(g)
    if (!g || !Number.isInteger(n) || n < 0 || n > 0xffffffff) throw new Error(`Invalid filter "${text}": GroupID "${g}" is not 0..4294967295`)
    return n
  }
  if (parts.length === 1) return { format: 1, entry: base }
  if (parts.length === 2) return { format: 2, entry: { ...base, mac: parseMac(parts[1]!) } }
  if (parts.length === 3 && parts[1] === '') return { format: 3, entry: { ...base, groupId: group(parts[2]) } }
  if (parts.length === 3) return { format: 4, entry: { ...base, mac: parseMac(parts[1]!), groupId: group(parts[2]) } }
  throw new Error(`Invalid filter "${text}": expected VID, VID-MAC, VID--GROUP or VID-MAC-GROUP`)
}

function table(rows: Array<Record<string, unknown>>, columns: string[]): string {
  if (rows.length === 0) return '(none)\n'
  const cells = rows.map((r) => columns.map((c) => String(r[c] ?? '')))
  const widths = columns.map((c, i) => Math.max(c.length, ...cells.map((r) => r[i]!.length)))
  const line = (vals: string[]) => vals.map((v, i) => v.padEnd(widths[i]!)).join('  ').trimEnd() + '\n'
  return line(columns.map((c) => c.toUpperCase())) + cells.map(line).join('')
}

function render(command: string, result: unknown): string {
  switch (command) {
    case 'vsis':
      return table((result as Array<Record<string, any>>).map((r) => ({
        port: r.port, station: r.station, vsi: uuidFromVsiId(r.vsiId.id as VsiIdHex), type: `${r.typeId}/${r.typeVersion}`, mode: r.mode ?? r.pending ?? '-', state: r.state,
        vni: r.entries.map((e: any) => e.vni ?? '-').join(','), vid: r.entries.map((e: any) => e.vid).join(','), macs: r.entries.map((e: any) => e.mac ?? '-').join(','),
        'last-ka': `${(r.lastSeenAgoMs / 1000).toFixed(1)}s`,
      })), ['port', 'station', 'vsi', 'type', 'mode', 'state', 'vni', 'vid', 'macs', 'last-ka'])
    case 'vlans':
      return table((result as Array<Record<string, any>>).map((v) => ({ vid: v.vid, vni: v.vni ?? (v.vsiType ? `type ${v.vsiType.typeId}/${v.vsiType.typeVersion}` : '-'), vsis: v.vsiCount, ports: v.ports.map((p: any) => `${p.port}(${p.vsiCount})`).join(' ') })), ['vid', 'vni', 'vsis', 'ports'])
    case 'ports':
      return table((result as Array<Record<string, any>>).map((p) => ({ port: p.name, mac: p.mac, role: p.role, vsis: p.vsis, peers: p.peers, 'r/rte/rwd/rka': `${p.evb.retries}/${p.evb.rte}/${p.evb.rwd}/${p.evb.rka}`, groupid: p.evb.groupIdEnabled ? 'yes' : 'no', 'rx/tx': `${p.link.rxFrames}/${p.link.txFrames}`, drops: p.link.drops, answers: p.keepAliveAnswers ? `${p.keepAliveAnswers.held}${p.keepAliveAnswers.lent ? ' lent' : ''}` : '-', offers: p.keepAliveAnswers?.offers ?? '-' })), ['port', 'mac', 'role', 'vsis', 'peers', 'r/rte/rwd/rka', 'groupid', 'rx/tx', 'drops', 'answers', 'offers'])
    case 'peers':
      return table((result as Array<Record<string, any>>).flatMap((p) => p.peers.map((x: any) => ({ port: p.port, peer: x.peer, ecp: x.ecpState, queued: x.queued, 'rx-ecpdus': x.counters.rxEcpdus, 'tx-ecpdus': x.counters.txEcpdus, retransmits: x.counters.txRetransmits, errors: x.counters.txErrors }))), ['port', 'peer', 'ecp', 'queued', 'rx-ecpdus', 'tx-ecpdus', 'retransmits', 'errors'])
    case 'counters':
      return (result as Array<Record<string, any>>).map((p) => `${p.port}\n` + Object.entries({ ...p.counters, ...Object.fromEntries(Object.entries(p.link).map(([k, v]) => [`link.${k}`, v])) }).map(([k, v]) => `  ${k.padEnd(20)} ${v}`).join('\n') + '\n').join('')
    case 'metrics':
      return String(result)
    default:
      return JSON.stringify(result, null, 2) + '\n'
  }
}

async function runAgentCommand(command: string, rest: string[], io: CliIo): Promise<number> {
  let parsed
  try {
    parsed = parseArgs({
      args: rest,
      allowPositionals: false,
      options: {
        socket: { type: 'string' }, json: { type: 'boolean' }, port: { type: 'string' }, vsi: { type: 'string' }, mac: { type: 'string' },
        station: { type: 'string' }, uuid: { type: 'string' }, filter: { type: 'string', multiple: true }, mgrid: { type: 'string' },
        typeid: { type: 'string' }, typeidver: { type: 'string' }, hints: { type: 'string' }, wait: { type: 'string' }, 'no-wait': { type: 'boolean' },
      },
    })
  } catch (e) {
    io.err(`vdpctl ${command}: ${(e as Error).message}\n`)
    return 2
  }
  const v = parsed.values
  const socket = v.socket ?? process.env.VDP_AGENT_SOCKET ?? '/run/vdp-agent/control.sock'
  let method = command
  let params: Record<string, unknown> = {}
  let timeoutMs = 5000
  try {
    if (command === 'vsis') params = { ...(v.port ? { port: v.port } : {}), ...(v.vsi ? { vsiId: v.vsi } : {}), ...(v.mac ? { mac: parseMac(v.mac) } : {}) }
    if (command === 'disconnect') {
      if (!v.vsi) throw new Error('--vsi UUID is required')
      method = 'de-associate'
      params = { ...(v.port ? { port: v.port } : {}), vsiId: { format: 5, id: vsiIdFromUuid(v.vsi) }, ...(v.station ? { peer: parseMac(v.station) } : {}) }
    }
    if (STATION_COMMANDS.has(command)) {
      if (!v.uuid) throw new Error('--uuid is required')
      const waitMs = v['no-wait'] ? 0 : Number(v.wait ?? 5000)
      if (!Number.isInteger(waitMs) || waitMs < 0 || waitMs > 600_000) throw new Error(`--wait ${v.wait} is not 0..600000 ms`)
      timeoutMs = waitMs + 5000
      const vsiId = { format: 5, id: vsiIdFromUuid(v.uuid) }
      if (command === 'de-associate') {
        params = { ...(v.port ? { port: v.port } : {}), vsiId, waitMs }
      } else {
        const filters = (v.filter ?? []).map(parseFilterArg)
        if (filters.length === 0) throw new Error('at least one --filter is required')
        const formats = new Set(filters.map((f) => f.format))
        if (formats.size > 1) throw new Error('all --filter values must use the same format')
        const hints = v.hints ?? 'none'
        if (!['none', 'to', 'from'].includes(hints)) throw new Error(`--hints ${hints} is not none, to or from`)
        const typeId = Number(v.typeid ?? 0)
        const typeVersion = Number(v.typeidver ?? 0)
        if (!Number.isInteger(typeId) || typeId < 0 || typeId > 0xffffff) throw new Error(`--typeid ${v.typeid} is not 0..16777215`)
        if (!Number.isInteger(typeVersion) || typeVersion < 0 || typeVersion > 255) throw new Error(`--typeidver ${v.typeidver} is not 0..255`)
        params = {
          ...(v.port ? { port: v.port } : {}),
          waitMs,
          command: {
            managerId: managerIdFromText(v.mgrid ?? '0'), typeId, typeVersion, vsiId,
            filterFormat: filters[0]!.format, entries: filters.map((f) => f.entry),
            hints: { migratingTo: hints === 'to', migratingFrom: hints === 'from' },
          },
        }
      }
    }
  } catch (e) {
    io.err(`vdpctl ${command}: ${(e as Error).message}\n`)
    return 2
  }
  try {
    const result = await callAgent(socket, method, params, timeoutMs)
    io.out(v.json ? JSON.stringify(result, null, 2) + '\n' : render(command, result))
    if (STATION_COMMANDS.has(command) && result && typeof result === 'object' && 'outcome' in result) {
      const o = (result as { outcome: string }).outcome
      return o === 'rejected' || o === 'timeout' ? 1 : 0
    }
    return 0
  } catch (e) {
    io.err(`vdpctl ${command}: ${e instanceof ControlError ? `${e.message} [${e.code}]` : (e as Error).message}\n`)
    return 1
  }
}

const isMain = process.argv[1] !== undefined && import.meta.url === new URL(`file://${process.argv[1]}`).href
if (isMain || process.env.VDPCTL_MAIN === '1') {
  runVdpctl(process.argv.slice(2), { out: (t) => process.stdout.write(t), err: (t) => process.stderr.write(t) }).then(
    (code) => process.exit(code),
  )
}
