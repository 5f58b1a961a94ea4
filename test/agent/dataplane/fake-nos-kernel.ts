/**
 * A model of what a NOS kernel with VLAN filtering does with the iproute2 lines the Linux
 * driver emits, for unit tests on machines whose kernel cannot run them. It answers the JSON
 * queries the driver makes and records every call. It models only those lines. The real
 * kernel's behaviour it follows was checked on Debian's 6.1 kernel in the arm64 VM
 * (test/integration/dataplane-linux-vm.test.ts): flags replaced by a repeated add, one PVID
 * per port, one tunnel map per VID and per VNI, JSON key names.
 */
import type { CommandResult, CommandRunner } from '../../../agent/dataplane/linux.ts'

interface Link {
  ifname: string
  kind: 'bridge' | 'vxlan' | 'port'
  vni?: number
  master?: string
  vlanFiltering?: number
}

export class FakeNosKernel implements CommandRunner {
  readonly calls: Array<{ argv: string[]; stdin: string | undefined }> = []
  readonly links = new Map<string, Link>()
  /** `${ifname}|${vid}` -> flags */
  readonly vlans = new Map<string, string[]>()
  /** `${ifname}|${vid}` -> vni */
  readonly tunnels = new Map<string, number>()
  /** Lines (exact text) the kernel refuses, with the error to print. */
  readonly refuse = new Map<string, string>()

  constructor(bridge = 'br0', ports: string[] = [], vlanFiltering = 1) {
    this.links.set(bridge, { ifname: bridge, kind: 'bridge', vlanFiltering })
    for (const p of ports) {
      this.links.set(p, { ifname: p, kind: 'port', master: bridge })
      this.vlans.set(`${p}|1`, ['PVID', 'Egress Untagged'])
    }
  }

  /** The batches sent to one tool, as stdin texts. */
  batches(tool: 'ip' | 'bridge'): string[] {
    return this.calls.filter((c) => c.argv[0] === tool && c.argv.includes('-batch')).map((c) => c.stdin ?? '')
  }

  async run(argv: readonly string[], stdin?: string): Promise<CommandResult> {
    this.calls.push({ argv: [...argv], stdin })
    const args = argv.slice(1).filter((a, i, all) => a !== '-n' && all[i - 1] !== '-n')
    if (args.includes('-batch')) return this.batch(argv[0]!, stdin ?? '')
    const key = args.join(' ')
    if (key === '-j vlan show') {
      const by = new Map<string, Array<{ vlan: number; flags: string[] }>>()
      for (const [k, flags] of this.vlans) {
        const [ifname, vid] = k.split('|') as [string, string]
        by.set(ifname, [...(by.get(ifname) ?? []), { vlan: Number(vid), flags }])
      }
      return ok(JSON.stringify([...by].map(([ifname, vlans]) => ({ ifname, vlans }))))
    }
    if (key === '-j vlan tunnelshow') {
      const by = new Map<string, Array<{ vlan: number; tunid: number }>>()
      for (const [k, tunid] of this.tunnels) {
        const [ifname, vid] = k.split('|') as [string, string]
        by.set(ifname, [...(by.get(ifname) ?? []), { vlan: Number(vid), tunid }])
      }
      return ok(JSON.stringify([...by].map(([ifname, tunnels]) => ({ ifname, tunnels }))))
    }
    if (key.startsWith('-d -j link show')) {
      const dev = args[5]
      const list = [...this.links.values()].filter((l) => dev === undefined || l.ifname === dev)
      if (dev !== undefined && list.length === 0) return { code: 1, stdout: '', stderr: `Device "${dev}" does not exist.\n` }
      return ok(JSON.stringify(list.map((l) => ({
        ifname: l.ifname,
        ...(l.master ? { master: l.master } : {}),
        linkinfo: l.kind === 'port' ? {} : { info_kind: l.kind, info_data: l.kind === 'bridge' ? { vlan_filtering: l.vlanFiltering } : { id: l.vni } },
      }))))
    }
    return { code: 1, stdout: '', stderr: `fake kernel: unknown query ${key}\n` }
  }

  private batch(tool: string, stdin: string): CommandResult {
    let stderr = ''
    stdin.split('\n').filter((l) => l !== '').forEach((line, i) => {
      const err = this.refuse.get(line) ?? this.exec(tool, line)
      if (err) stderr += `${err}\nCommand failed -:${i + 1}\n`
    })
    return { code: stderr ? 1 : 0, stdout: '', stderr }
  }

  private exec(tool: string, line: string): string | undefined {
    const w = line.split(' ')
    if (tool === 'bridge' && w[0] === 'vlan') {
      const dev = w[3]!
      const vid = Number(w[5])
      if (!this.links.has(dev)) return `Cannot find device "${dev}"`
      const k = `${dev}|${vid}`
      if (w[1] === 'add') {
        if (w[6] === 'tunnel_info') {
          // One map per VID and per VNI on a device: a second one is refused.
          const vni = Number(w[8])
          const clash = [...this.tunnels].some(([tk, tv]) => tk.startsWith(`${dev}|`) && (tk === k ? tv !== vni : tv === vni))
          if (clash) return 'RTNETLINK answers: File exists'
          this.tunnels.set(k, vni)
        }
        else {
          // As the kernel does: a repeated add replaces the VLAN's flags with the command's,
          // and a port has one PVID (a new one takes it from the old VID).
          if (w[6] === 'pvid') {
            for (const [other, flags] of this.vlans) {
              if (other.startsWith(`${dev}|`) && other !== k) this.vlans.set(other, flags.filter((f) => f !== 'PVID'))
            }
          }
          this.vlans.set(k, w[6] === 'pvid' ? ['PVID', 'Egress Untagged'] : [])
        }
      } else if (w[6] === 'tunnel_info') this.tunnels.delete(k)
      else {
        this.vlans.delete(k)
        this.tunnels.delete(k)
      }
      return undefined
    }
    if (tool === 'ip' && w[0] === 'link') {
      const name = w[2]!
      if (w[1] === 'add') {
        if (this.links.has(name)) return 'RTNETLINK answers: File exists'
        this.links.set(name, { ifname: name, kind: 'vxlan', vni: Number(w[6]) })
        return undefined
      }
      const l = this.links.get(name)
      if (!l) return `Cannot find device "${name}"`
      if (w[1] === 'del') {
        this.links.delete(name)
        for (const k of [...this.vlans.keys()]) if (k.startsWith(`${name}|`)) this.vlans.delete(k)
        return undefined
      }
      if (w[3] === 'master') {
        l.master = w[4]!
        this.vlans.set(`${name}|1`, ['PVID', 'Egress Untagged'])
      }
      return undefined
    }
    return `fake kernel: cannot model "${line}"`
  }
}

const ok = (stdout: string): CommandResult => ({ code: 0, stdout, stderr: '' })
