/**
 * Linux data-plane driver for Debian-based NOSes (and Cumulus-style setups): a VLAN-aware
 * bridge (`vlan_filtering 1`, the operator's, e.g. `br0`) whose ports are the switch ports,
 * driven with iproute2 in batch mode (`bridge -force -batch -`, `ip -force -batch -`, commands
 * on stdin, one process per phase). VLAN-to-VNI mapping, two layouts (`vxlan.mode`):
 *
 * - `single` (one VXLAN device for all VNIs, Linux 4.11+): the operator creates the device
 *   (`ip link add vxlan0 type vxlan external dstport 4789 local <vtep> nolearning`, enslaved to
 *   the bridge with `vlan_tunnel on`); per VN the agent runs
 *   `bridge vlan add dev vxlan0 vid <vid>` and `bridge vlan add dev vxlan0 vid <vid> tunnel_info id <vni>`.
 * - `per-vni` (one VXLAN device per VNI, any kernel with VXLAN): per VN the agent creates
 *   `<prefix><vni>` (`ip link add vxlan5000 type vxlan id 5000 local <vtep> dstport 4789 nolearning`),
 *   enslaves it (`ip link set vxlan5000 master br0`, `ip link set vxlan5000 up`) and makes the
 *   VN's VID its untagged PVID (`bridge vlan add dev vxlan5000 vid <vid> pvid untagged`,
 *   `bridge vlan del dev vxlan5000 vid 1`).
 * - `none`: VLANs only.
 *
 * Ports join as tagged members: `bridge vlan add dev <port> vid <vid>`. Items the agent
 * creates are recorded (ownership.ts) as `member|<port>|<vid>`, `vxdev|<name>|<vni>` and
 * `vxvid|<dev>|<vid>|<vni>`, after their commands succeeded; a crash between a command and the
 * save of the record can leave one item unrecorded (then left alone as foreign). Deletes run
 * only for owned items. With `-force`, iproute2 runs every line and reports each failure as
 * `Command failed -:<line>` after the kernel's words; the driver maps lines back to items,
 * keeps the successes, and throws `DataplaneError('command-failed')` listing the rest. Items
 * exist whole or not at all: a claim that failed after its first step is undone in the same
 * call (`rollBack()`).
 *
 * `apply()` reads the kernel first (`bridge -j vlan show`, plus `tunnelshow` in the `single`
 * layout and `ip -d -j link show` for device items) and does not write an item that is
 * already there: not owned, it is reported foreign; owned, it is left as it is. This matters
 * because the kernel treats a repeated `bridge vlan add` as a rewrite of the VLAN's flags (an
 * operator's `pvid untagged` membership would become tagged without PVID). In the `single`
 * layout, a VID/VNI item whose VID or VNI the operator already uses on the VXLAN device is a
 * conflict (`ours <- theirs`), in `apply()` and in `reconcile()`, and is not written.
 * These kernel behaviours were seen on Debian's 6.1 kernel (dataplane-linux-vm.test.ts).
 *
 * Reconciliation reads the kernel (`ip -d -j link show`, `bridge -j vlan show`,
 * `bridge -j vlan tunnelshow`) and compares it with the desired items.
 *
 * @module
 */
import { spawn } from 'node:child_process'
import type { DataplaneOp, DataplaneState } from '../resources/dataplane-ops.ts'
import {
  DataplaneError,
  emptyReconcileReport,
  silentLogger,
  type ApplyReport,
  type DataplaneDriver,
  type DataplaneLogger,
  type ReconcileReport,
} from './driver.ts'
import type { OwnershipRecord } from './ownership.ts'

export interface CommandResult {
  code: number
  stdout: string
  stderr: string
}

/** Runs one program (`argv[0]`) with `stdin`; injected so unit tests can record batches. */
export interface CommandRunner {
  run(argv: readonly string[], stdin?: string): Promise<CommandResult>
}

/** The real runner: `child_process.spawn`, no shell. A missing program is `unavailable`. */
export const spawnRunner: CommandRunner = {
  run(argv, stdin) {
    return new Promise((resolve, reject) => {
      const child = spawn(argv[0]!, argv.slice(1), { stdio: ['pipe', 'pipe', 'pipe'] })
      let stdout = ''
      let stderr = ''
      child.stdout.on('data', (b: Buffer) => (stdout += b.toString()))
      child.stderr.on('data', (b: Buffer) => (stderr += b.toString()))
      child.once('error', (e) =>
        reject(new DataplaneError('unavailable', `Cannot run ${argv[0]}: ${e.message}`, [], { cause: e })),
      )
      child.once('close', (code) => resolve({ code: code ?? -1, stdout, stderr }))
      child.stdin.on('error', () => {}) // EPIPE when the program exits early; its exit code tells
      child.stdin.end(stdin ?? '')
    })
  },
}

export type VxlanLayout =
  | { mode: 'none' }
  | { mode: 'single'; device: string }
  | { mode: 'per-vni'; local: string; dstport?: number; prefix?: string }

export interface LinuxDriverOptions {
  /** The VLAN-aware bridge holding the switch ports (the operator's). */
  bridge: string
  vxlan: VxlanLayout
  /** Run every command in this network namespace (`ip -n`, `bridge -n`). */
  netns?: string
  ownership: OwnershipRecord
  runner?: CommandRunner
  logger?: DataplaneLogger
  /** Refuse to start on a bridge with `vlan_filtering 0` (default true). */
  requireVlanFiltering?: boolean
  ipPath?: string
  bridgePath?: string
}

type Tool = 'ip' | 'bridge'
interface Step {
  tool: Tool
  line: string
  item: string
}
/** One item's change: commands in phase order; `claim` (own after) or `release` (forget after). */
interface Change {
  item: string
  action: 'claim' | 'release'
  steps: Step[]
}

const IFNAME_RE = /^[A-Za-z0-9_.:@-]{1,15}$/
const memberItem = (port: string, vid: number) => `member|${port}|${vid}`
const vxdevItem = (name: string, vni: number) => `vxdev|${name}|${vni}`
const vxvidItem = (dev: string, vid: number, vni: number) => `vxvid|${dev}|${vid}|${vni}`

/** Phase of a step: member/tunnel deletes, device deletes, device adds, VLAN adds. */
function phaseOf(s: Step, action: 'claim' | 'release'): number {
  if (action === 'release') return s.tool === 'bridge' ? 0 : 1
  return s.tool === 'ip' ? 2 : 3
}

/** Parses `-force -batch` stderr: failed line numbers (1-based) with the kernel's words. */
export function parseBatchErrors(stderr: string): Map<number, string> {
  const out = new Map<number, string>()
  let pending: string[] = []
  for (const line of stderr.split('\n')) {
    const m = /^Command failed -:(\d+)$/.exec(line.trim())
    if (m) {
      out.set(Number(m[1]), pending.join('; ') || 'failed')
      pending = []
    } else if (line.trim() !== '') {
      pending.push(line.trim())
    }
  }
  return out
}

const GONE_RE = /Cannot find device|Cannot find bridge device|No such device|does not exist|not found/i

export interface LinuxDriver extends DataplaneDriver {
  readonly kind: 'linux'
  /** The items the desired state maps to (for tests and `vdpctl`). */
  itemsOf(desired: DataplaneState): string[]
}

/**
 * Checks the bridge and returns the driver.
 * @example
 * ```ts
 * const ownership = await OwnershipRecord.load('/var/lib/vdp-agent/dataplane-owned.json', 'linux', 'br0')
 * const dp = await openLinuxDriver({ bridge: 'br0', vxlan: { mode: 'single', device: 'vxlan0' }, ownership })
 * await dp.reconcile(rm.dataplaneState())
 * ```
 */
export async function openLinuxDriver(options: LinuxDriverOptions): Promise<LinuxDriver> {
  const o = {
    runner: spawnRunner,
    logger: silentLogger,
    requireVlanFiltering: true,
    ipPath: 'ip',
    bridgePath: 'bridge',
    ...options,
  }
  const layout = o.vxlan
  const prefix = layout.mode === 'per-vni' ? (layout.prefix ?? 'vxlan') : ''
  const dstport = layout.mode === 'per-vni' ? (layout.dstport ?? 4789) : 0
  for (const name of [o.bridge, ...(layout.mode === 'single' ? [layout.device] : [])]) {
    if (!IFNAME_RE.test(name)) throw new DataplaneError('bad-config', `Cannot use interface name "${name}": not a Linux interface name`)
  }
  if (layout.mode === 'per-vni' && !/^[0-9a-fA-F.:]+$/.test(layout.local)) {
    throw new DataplaneError('bad-config', `Cannot use VTEP address "${layout.local}": not an IP address`)
  }
  const nsArgs = o.netns === undefined ? [] : ['-n', o.netns]
  const argv = (tool: Tool, args: string[]) => [tool === 'ip' ? o.ipPath : o.bridgePath, ...nsArgs, ...args]

  async function query(tool: Tool, args: string[]): Promise<unknown> {
    const r = await o.runner.run(argv(tool, args))
    if (r.code !== 0) {
      throw new DataplaneError('unavailable', `Cannot read kernel state with "${tool} ${args.join(' ')}": ${r.stderr.trim() || `exit ${r.code}`}`)
    }
    try {
      return r.stdout.trim() === '' ? [] : JSON.parse(r.stdout)
    } catch (e) {
      throw new DataplaneError('unavailable', `Cannot parse "${tool} ${args.join(' ')}" output: ${(e as Error).message}`)
    }
  }

  // The bridge must exist (and filter VLANs, unless told otherwise).
  const br = (await query('ip', ['-d', '-j', 'link', 'show', 'dev', o.bridge]).catch((e: DataplaneError) => {
    throw new DataplaneError('bad-config', `Cannot use bridge "${o.bridge}": ${e.message}`)
  })) as Array<{ linkinfo?: { info_kind?: string; info_data?: { vlan_filtering?: number } } }>
  const info = br[0]?.linkinfo
  if (info?.info_kind !== 'bridge') throw new DataplaneError('bad-config', `Cannot use "${o.bridge}": it is not a bridge`)
  if (o.requireVlanFiltering && info.info_data?.vlan_filtering !== 1) {
    throw new DataplaneError('bad-config', `Cannot use bridge "${o.bridge}": vlan_filtering is off (ip link set ${o.bridge} type bridge vlan_filtering 1)`)
  }

  const vxName = (vni: number) => `${prefix}${vni}`

  function itemsOf(desired: DataplaneState): string[] {
    const items: string[] = []
    for (const v of desired.vlans) {
      if (v.vni === undefined || layout.mode === 'none') continue
      if (layout.mode === 'single') items.push(vxvidItem(layout.device, v.vid, v.vni))
      else items.push(vxdevItem(vxName(v.vni), v.vni), vxvidItem(vxName(v.vni), v.vid, v.vni))
    }
    for (const m of desired.members) items.push(memberItem(m.port, m.vid))
    return items
  }

  function changeOf(item: string, action: 'claim' | 'release'): Change {
    const [kind, a, b, c] = item.split('|') as [string, string, string, string?]
    const steps: Step[] = []
    const add = action === 'claim'
    if (kind === 'member') {
      steps.push({ tool: 'bridge', item, line: `vlan ${add ? 'add' : 'del'} dev ${a} vid ${b}` })
    } else if (kind === 'vxdev') {
      if (add) {
        steps.push(
          { tool: 'ip', item, line: `link add ${a} type vxlan id ${b} local ${layout.mode === 'per-vni' ? layout.local : ''} dstport ${dstport} nolearning` },
          { tool: 'ip', item, line: `link set ${a} master ${o.bridge}` },
          { tool: 'ip', item, line: `link set ${a} up` },
        )
      } else {
        steps.push({ tool: 'ip', item, line: `link del ${a}` })
      }
    } else if (kind === 'vxvid') {
      if (layout.mode === 'single') {
        steps.push(
          add
            ? { tool: 'bridge', item, line: `vlan add dev ${a} vid ${b}` }
            : { tool: 'bridge', item, line: `vlan del dev ${a} vid ${b} tunnel_info id ${c}` },
          add
            ? { tool: 'bridge', item, line: `vlan add dev ${a} vid ${b} tunnel_info id ${c}` }
            : { tool: 'bridge', item, line: `vlan del dev ${a} vid ${b}` },
        )
      } else if (add) {
        steps.push(
          { tool: 'bridge', item, line: `vlan add dev ${a} vid ${b} pvid untagged` },
          { tool: 'bridge', item, line: `vlan del dev ${a} vid 1` },
        )
      }
      // per-vni release: deleting the device removes its VLANs.
    }
    return { item, action, steps }
  }

  /** Runs one `-force -batch` of `steps`; records each failed line's item in `failedItems`. */
  async function runBatch(steps: readonly Step[], failedItems: Map<string, string>): Promise<void> {
    const tool = steps[0]!.tool
    const stdin = steps.map((s) => s.line).join('\n') + '\n'
    const r = await o.runner.run(argv(tool, ['-force', '-batch', '-']), stdin)
    const errors = parseBatchErrors(r.stderr)
    if (r.code !== 0 && errors.size === 0) {
      for (const s of steps) failedItems.set(s.item, r.stderr.trim() || `${tool} exited with ${r.code}`)
    }
    for (const [line, error] of errors) {
      const s = steps[line - 1]
      if (s && !failedItems.has(s.item)) failedItems.set(s.item, `${s.line}: ${error}`)
    }
    o.logger.debug('iproute2 batch', { tool, lines: steps.length, failed: errors.size })
  }

  /**
   * Items exist whole or not at all. A claim that failed after its first step succeeded is
   * undone after its phase, unless the item was already owned (then the next reconcile
   * repairs it):
   * - a per-VNI device refused after `link add` (the kernel refuses `up` with "Address already
   *   in use" when another VXLAN socket holds the UDP port on that address) is deleted, and
   *   the VID steps on a device that was not created are not run (on an operator's device of
   *   the same name they would rewrite its VLANs);
   * - a `single` layout VID whose `tunnel_info` the kernel refused ("File exists": the VNI is
   *   mapped to another VID; "Invalid argument": `vlan_tunnel` is off) is deleted again.
   */
  async function rollBack(phase: number, changes: readonly Change[], failedItems: Map<string, string>): Promise<void> {
    const undo: Step[] = []
    for (const ch of changes) {
      const err = failedItems.get(ch.item)
      if (ch.action !== 'claim' || err === undefined || o.ownership.has(ch.item)) continue
      const [kind, dev, vid] = ch.item.split('|') as [string, string, string]
      const firstStepFailed = err.startsWith(`${ch.steps[0]!.line}:`)
      if (phase === 2 && kind === 'vxdev') {
        if (!firstStepFailed) undo.push({ tool: 'ip', item: ch.item, line: `link del ${dev}` })
        for (const other of changes) {
          if (other.action === 'claim' && other.item.startsWith(`vxvid|${dev}|`) && !failedItems.has(other.item)) {
            failedItems.set(other.item, `not run: device ${dev} was not created (${err})`)
          }
        }
      } else if (phase === 3 && kind === 'vxvid' && layout.mode === 'single' && !firstStepFailed) {
        undo.push({ tool: 'bridge', item: ch.item, line: `vlan del dev ${dev} vid ${vid}` })
      }
    }
    if (undo.length > 0) await runBatch(undo, new Map())
  }

  /** Runs changes in phases, one batch per phase; updates ownership; returns failed items. */
  async function execute(changes: readonly Change[]): Promise<Array<{ item: string; error: string }>> {
    const failedItems = new Map<string, string>()
    for (let phase = 0; phase < 4; phase++) {
      const steps = changes.flatMap((ch) => ch.steps.filter((s) => phaseOf(s, ch.action) === phase))
        .filter((s) => !failedItems.has(s.item))
      if (steps.length > 0) await runBatch(steps, failedItems)
      if (phase >= 2) await rollBack(phase, changes, failedItems)
    }
    const failures: Array<{ item: string; error: string }> = []
    for (const ch of changes) {
      const err = failedItems.get(ch.item)
      if (ch.action === 'claim') {
        if (err === undefined) o.ownership.add([ch.item])
        else failures.push({ item: ch.item, error: err })
      } else if (err === undefined || GONE_RE.test(err)) {
        o.ownership.delete([ch.item])
      } else {
        failures.push({ item: ch.item, error: err })
      }
    }
    await o.ownership.save()
    return failures
  }

  interface Live {
    present(item: string): boolean
    /**
     * For a `single` layout VID/VNI item: what the operator already has on the device that
     * the item would rewrite (its VID with another or no map, its VNI mapped to another VID),
     * as `<dev> vid <vid>[ tunnel_info id <vni>]`; undefined when nothing (owned items do not
     * count). The kernel refuses a second map of a VID or a VNI ("File exists").
     */
    conflictOf(item: string): string | undefined
  }

  /** Reads the kernel; `needLinks` false skips `ip -d -j link show` (no device items asked). */
  async function readLive(needLinks = true): Promise<Live> {
    type LinkRow = { ifname: string; master?: string; linkinfo?: { info_kind?: string; info_data?: { id?: number } } }
    const links = needLinks ? ((await query('ip', ['-d', '-j', 'link', 'show'])) as LinkRow[]) : []
    const vlans = (await query('bridge', ['-j', 'vlan', 'show'])) as Array<{ ifname: string; vlans?: Array<{ vlan: number; vlanEnd?: number }> }>
    const tunnels = layout.mode !== 'single' ? [] : (await query('bridge', ['-j', 'vlan', 'tunnelshow'])) as Array<{
      ifname: string
      tunnels?: Array<{ vlan: number; vlanEnd?: number; tunid: number; tunidEnd?: number }>
    }>
    const linkByName = new Map(links.map((l) => [l.ifname, l]))
    const vidSet = new Set<string>()
    for (const p of vlans) {
      for (const v of p.vlans ?? []) for (let vid = v.vlan; vid <= (v.vlanEnd ?? v.vlan); vid++) vidSet.add(`${p.ifname}|${vid}`)
    }
    const ownedVxvids = new Set<string>()
    for (const i of o.ownership.items()) if (i.startsWith('vxvid|')) ownedVxvids.add(i.split('|').slice(1, 3).join('|'))
    const tunSet = new Set<string>()
    const tunByVid = new Map<string, number>()
    const vidByTun = new Map<string, number>()
    for (const p of tunnels) {
      for (const t of p.tunnels ?? []) {
        for (let i = 0; i <= (t.vlanEnd ?? t.vlan) - t.vlan; i++) {
          tunSet.add(`${p.ifname}|${t.vlan + i}|${t.tunid + i}`)
          tunByVid.set(`${p.ifname}|${t.vlan + i}`, t.tunid + i)
          vidByTun.set(`${p.ifname}|${t.tunid + i}`, t.vlan + i)
        }
      }
    }
    return {
      conflictOf(item) {
        const [kind, dev, vid, vni] = item.split('|') as [string, string, string, string?]
        if (kind !== 'vxvid' || layout.mode !== 'single' || o.ownership.has(item)) return undefined
        const tun = tunByVid.get(`${dev}|${vid}`)
        if (tun !== undefined && tun !== Number(vni) && !o.ownership.has(vxvidItem(dev, Number(vid), tun))) {
          return `${dev} vid ${vid} tunnel_info id ${tun}`
        }
        if (tun === undefined && vidSet.has(`${dev}|${vid}`) && !ownedVxvids.has(`${dev}|${vid}`)) {
          return `${dev} vid ${vid}`
        }
        const other = vidByTun.get(`${dev}|${vni}`)
        if (other !== undefined && other !== Number(vid) && !o.ownership.has(vxvidItem(dev, other, Number(vni)))) {
          return `${dev} vid ${other} tunnel_info id ${vni}`
        }
        return undefined
      },
      present(item) {
        const [kind, a, b, c] = item.split('|') as [string, string, string, string?]
        if (kind === 'member') return vidSet.has(`${a}|${b}`)
        if (kind === 'vxdev') {
          const l = linkByName.get(a)
          return l?.linkinfo?.info_kind === 'vxlan' && l.linkinfo.info_data?.id === Number(b) && l.master === o.bridge
        }
        if (kind === 'vxvid') {
          return layout.mode === 'single' ? vidSet.has(`${a}|${b}`) && tunSet.has(`${a}|${b}|${c}`) : vidSet.has(`${a}|${b}`)
        }
        return false
      },
    }
  }

  function itemsOfOps(ops: readonly DataplaneOp[]): Change[] {
    const changes: Change[] = []
    for (const op of ops) {
      const vlan = (vid: number, vni: number | undefined) => itemsOf({ vlans: [vni === undefined ? { vid } : { vid, vni }], members: [] })
      switch (op.op) {
        case 'member-add':
          changes.push(changeOf(memberItem(op.port, op.vid), 'claim'))
          break
        case 'member-del':
          if (o.ownership.has(memberItem(op.port, op.vid))) changes.push(changeOf(memberItem(op.port, op.vid), 'release'))
          break
        case 'vlan-add':
          for (const it of vlan(op.vid, op.vni)) changes.push(changeOf(it, 'claim'))
          break
        case 'vlan-del':
          for (const it of vlan(op.vid, op.vni).reverse()) if (o.ownership.has(it)) changes.push(changeOf(it, 'release'))
          break
      }
    }
    return changes
  }

  let queue: Promise<unknown> = Promise.resolve()
  const serial = <T>(f: () => Promise<T>): Promise<T> => {
    const run = queue.then(f, f)
    queue = run.catch(() => {})
    return run
  }

  return {
    kind: 'linux',
    itemsOf,
    apply(ops) {
      return serial(async () => {
        const all = itemsOfOps(ops)
        // Contract 1 (driver.ts): what is already there and not ours is foreign, never
        // rewritten. A repeated `bridge vlan add` is not harmless: the kernel replaces the
        // VLAN's flags with the command's, so an operator's `pvid untagged` membership would
        // become tagged without PVID (and then be deleted as ours on release).
        const claims = all.filter((c) => c.action === 'claim')
        const live = claims.length === 0 ? undefined : await readLive(claims.some((c) => c.item.startsWith('vxdev|')))
        const releasedBefore = new Set<string>()
        const changes: Change[] = []
        const report: ApplyReport = { changed: [], foreign: [], conflicts: [] }
        for (const ch of all) {
          if (ch.action === 'release') releasedBefore.add(ch.item)
          else if (!releasedBefore.has(ch.item) && live?.present(ch.item)) {
            if (!o.ownership.has(ch.item)) report.foreign.push(ch.item)
            continue
          } else {
            const conflict = live?.conflictOf(ch.item)
            if (conflict !== undefined) {
              report.conflicts.push(`${ch.item} <- ${conflict}`)
              continue
            }
          }
          changes.push(ch)
        }
        const failures = await execute(changes)
        if (failures.length > 0) {
          throw new DataplaneError('command-failed', `Cannot apply ${failures.length} of ${changes.length} data-plane change(s) with iproute2`, failures)
        }
        report.changed = changes.map((c) => c.item)
        return report
      })
    },
    reconcile(desired) {
      return serial(async () => {
        const live = await readLive()
        const want = itemsOf(desired)
        const wantSet = new Set(want)
        const report: ReconcileReport = emptyReconcileReport()
        const changes: Change[] = []
        for (const item of want) {
          const owned = o.ownership.has(item)
          const conflict = live.conflictOf(item)
          if (live.present(item)) (owned ? report.unchanged : report.foreign).push(item)
          else if (conflict !== undefined) report.conflicts.push(`${item} <- ${conflict}`)
          else {
            changes.push(changeOf(item, 'claim'))
            report.created.push(item)
          }
        }
        for (const item of o.ownership.items()) {
          if (wantSet.has(item)) continue
          if (live.present(item)) {
            changes.push(changeOf(item, 'release'))
            report.deleted.push(item)
          } else {
            o.ownership.delete([item])
            report.forgotten.push(item)
          }
        }
        const failures = await execute(changes)
        if (failures.length > 0) {
          throw new DataplaneError('command-failed', `Cannot reconcile ${failures.length} data-plane item(s) with iproute2`, failures)
        }
        o.logger.info('Linux bridge reconciled', { created: report.created.length, deleted: report.deleted.length })
        return report
      })
    },
    async close() {
      await queue
    },
  }
}
