/**
 * A two-namespace VDP lab: `<name>-host` and `<name>-sw` joined by the veth pair
 * `<name>-h0` <-> `<name>-sw0`, an lldpad station on the host side and, optionally, an lldpad
 * bridge on the switch side. With `bridge: 'none'` the switch side is left for our own agent
 * (open `lab.switchIf` in `lab.switchNs`). Everything created carries the lab name as prefix
 * and is removed by `stop()`, also after a failed start.
 *
 * ```ts
 * const lab = await startLldpadLab({ name: 'vdpx', bridge: 'none', evb: { vdpRka: 14 } })
 * try {
 *   // start our bridge in lab.switchNs on lab.switchIf (ip netns exec ...), then:
 *   await lab.waitForBridgeEvb((t) => t.bridgeStatus.bgid)
 *   const r = await lab.vdptool.associate({ mgrid2: 'lab', typeId: 5, typeVersion: 1,
 *     uuid: lab.uuid(1), filters: [{ vid: 0, mac: lab.vsiMac(1) }] }, { wait: true })
 *   if (r.kind === 'response') expect(r.event.filters[0]?.vid).toBe(100)
 * } finally { await lab.stop() }
 * ```
 *
 * The namespace/veth helpers below are private to this file; they can be merged into a
 * shared `test/support/netns.ts` later.
 *
 * @module
 */
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import {
  run,
  runIn,
  runOk,
  startLldpad,
  type EvbSettings,
  type EvbTlv,
  type LldpadHandle,
  type RunResult,
  type VdpEvbParams,
  type VdpTool,
} from './lldpad.ts'

// ---------------------------------------------------------------------------------------------
// network namespaces and veth (private helper)

const IFNAMSIZ_MAX = 15

/** Lab names: lower-case letters, digits, '-'; short enough for `<name>-sw0` (<= 15 chars). */
export function checkLabName(name: string): void {
  if (!/^[a-z][a-z0-9-]*$/.test(name)) throw new Error(`lab name ${JSON.stringify(name)}: use [a-z][a-z0-9-]*`)
  if (`${name}-sw0`.length > IFNAMSIZ_MAX) {
    throw new Error(`lab name ${JSON.stringify(name)} too long: "${name}-sw0" exceeds ${IFNAMSIZ_MAX} characters`)
  }
}

async function netnsExists(ns: string): Promise<boolean> {
  const r = await run('ip', ['netns', 'list'])
  return r.stdout.split('\n').some((line) => line.split(' ')[0] === ns)
}

/**
 * Deletes a namespace of ours: first ends the processes still inside it (they were started in
 * this lab by the harness or by a test), by pid, then `ip netns del`.
 */
export async function deleteNetns(ns: string): Promise<void> {
  if (!(await netnsExists(ns))) return
  for (const signal of ['SIGTERM', 'SIGKILL'] as const) {
    const pids = (await run('ip', ['netns', 'pids', ns])).stdout.split(/\s+/).filter((p) => /^\d+$/.test(p))
    if (pids.length === 0) break
    for (const pid of pids) {
      try {
        process.kill(Number(pid), signal)
      } catch {
        // gone
      }
    }
    await new Promise((resolve) => setTimeout(resolve, 300))
  }
  await run('ip', ['netns', 'del', ns])
}

async function createNetns(ns: string): Promise<void> {
  await deleteNetns(ns) // leftover of a crashed run of the same lab
  await runOk('ip', ['netns', 'add', ns])
  await runOk('ip', ['-n', ns, 'link', 'set', 'lo', 'up'])
}

/** Creates `a` in `nsA` and its peer `b` in `nsB`, IPv6 off (clean captures), both up. */
async function createVethPair(
  nsA: string, a: string, macA: string,
  nsB: string, b: string, macB: string,
): Promise<void> {
  await runOk('ip', [
    'link', 'add', a, 'netns', nsA, 'address', macA, 'type', 'veth',
    'peer', 'name', b, 'netns', nsB, 'address', macB,
  ])
  for (const [ns, ifname] of [[nsA, a], [nsB, b]] as const) {
    await runIn(ns, 'sysctl', ['-q', '-w', `net.ipv6.conf.${ifname}.disable_ipv6=1`])
    await runOk('ip', ['-n', ns, 'link', 'set', ifname, 'up'])
  }
}

// ---------------------------------------------------------------------------------------------
// the lab

export interface LldpadLabOptions {
  /** Prefix of every namespace and interface; <= 11 characters ([a-z][a-z0-9-]*). */
  readonly name: string
  /** `lldpad`: an lldpad bridge on the switch side. `none`: the switch side is left free. */
  readonly bridge: 'lldpad' | 'none'
  readonly station?: 'lldpad'
  /** Station EVB settings (default: GroupID on, RR requested). */
  readonly stationEvb?: EvbSettings
  /** Bridge EVB settings (default: GroupID on, RR capable). */
  readonly bridgeEvb?: EvbSettings
  /** Applied to both ends on top of the defaults above (e.g. `{ vdpRka: 14 }`). */
  readonly evb?: EvbSettings
  readonly stationMac?: string
  readonly switchMac?: string
  /** Wait until both lldpads pushed EVB parameters to VDP (default true; gotcha 5). */
  readonly waitForEvb?: boolean
}

export interface LldpadLab {
  readonly name: string
  /** Host (station) namespace and interface. */
  readonly hostNs: string
  readonly hostIf: string
  readonly hostMac: string
  /** Switch (bridge) namespace and interface; ours to open when `bridge: 'none'`. */
  readonly switchNs: string
  readonly switchIf: string
  readonly switchMac: string
  /** Temp dir with the lldpad configs and logs. */
  readonly dir: string
  readonly station: LldpadHandle
  /** The lldpad bridge, when the lab was started with `bridge: 'lldpad'` (or after startLldpadBridge). */
  readonly bridge: LldpadHandle | undefined
  /** `vdptool` on the station. */
  readonly vdptool: VdpTool
  /**
   * Waits until the station has heard a bridge's EVB TLV (lldpad's or our agent's) satisfying
   * `predicate` and EVB pushed parameters to the station's VDP after that (gotcha 5): from then
   * on vdptool requests go out with the negotiated timers. Resolves with both.
   */
  waitForBridgeEvb(
    predicate?: (tlv: EvbTlv) => boolean,
    timeoutMs?: number,
  ): Promise<{ readonly bridgeTlv: EvbTlv; readonly vdp: VdpEvbParams }>
  /** Starts an lldpad bridge on the switch side (e.g. after a test stopped its own bridge). */
  startLldpadBridge(evb?: EvbSettings): Promise<LldpadHandle>
  /** Stops the lldpad bridge, if any. */
  stopLldpadBridge(): Promise<void>
  /** `ip netns exec <switchNs> file args` */
  execSwitch(file: string, args: readonly string[]): Promise<RunResult>
  /** `ip netns exec <hostNs> file args` */
  execHost(file: string, args: readonly string[]): Promise<RunResult>
  /** A deterministic VSIID `5644504c-4142-4000-8000-<n as 12 hex digits>` (as in the captures). */
  uuid(n: number): string
  /** A deterministic VSI MAC `02:76:64:71:xx:xx`. */
  vsiMac(n: number): string
  /** Ends every process in the lab namespaces, deletes them and the temp dir. */
  stop(options?: { keepFiles?: boolean }): Promise<void>
}

const DEFAULT_STATION_EVB: EvbSettings = { gpid: true, rrReq: true }
const DEFAULT_BRIDGE_EVB: EvbSettings = { gpid: true, rrCap: true }

export async function startLldpadLab(options: LldpadLabOptions): Promise<LldpadLab> {
  const name = options.name
  checkLabName(name)
  const hostNs = `${name}-host`
  const switchNs = `${name}-sw`
  const hostIf = `${name}-h0`
  const switchIf = `${name}-sw0`
  const hostMac = options.stationMac ?? '02:76:64:70:00:01'
  const switchMac = options.switchMac ?? '02:76:64:70:00:02'
  const dir = mkdtempSync(join(tmpdir(), `vdplab-${name}-`))
  const stationEvb: EvbSettings = { ...DEFAULT_STATION_EVB, ...options.stationEvb, ...options.evb }
  const bridgeEvbDefault: EvbSettings = { ...DEFAULT_BRIDGE_EVB, ...options.bridgeEvb, ...options.evb }
  const waitForEvb = options.waitForEvb ?? true

  let station: LldpadHandle | undefined
  let bridge: LldpadHandle | undefined
  let stopped = false
  const stop = async ({ keepFiles = false } = {}): Promise<void> => {
    if (stopped) return
    stopped = true
    await Promise.all([bridge?.stop({ keepFiles: true }), station?.stop({ keepFiles: true })])
    await Promise.all([deleteNetns(switchNs), deleteNetns(hostNs)])
    if (!keepFiles) rmSync(dir, { recursive: true, force: true })
  }

  const startBridge = (evb: EvbSettings = bridgeEvbDefault): Promise<LldpadHandle> =>
    startLldpad({ netns: switchNs, ifname: switchIf, role: 'bridge', evb, dir: join(dir, 'bridge'), waitForEvb: false })

  try {
    await createNetns(hostNs)
    await createNetns(switchNs)
    await createVethPair(hostNs, hostIf, hostMac, switchNs, switchIf, switchMac)
    // bridge first, so the station hears a bridge TLV from its first LLDP tick on
    if (options.bridge === 'lldpad') bridge = await startBridge()
    station = await startLldpad({
      netns: hostNs, ifname: hostIf, role: 'station', evb: stationEvb, dir: join(dir, 'station'), waitForEvb: false,
    })
    if (waitForEvb) {
      // gotcha 5 (and "requests before EVB parameters"): both ends must have pushed EVB to VDP
      await Promise.all([station.waitForVdpParams(), bridge?.waitForVdpParams()])
    }
  } catch (error) {
    await stop({ keepFiles: true })
    throw new Error(`startLldpadLab(${name}) failed (files kept in ${dir}): ${(error as Error).message}`)
  }
  const stationHandle = station
  return {
    name,
    hostNs,
    hostIf,
    hostMac,
    switchNs,
    switchIf,
    switchMac,
    dir,
    station: stationHandle,
    get bridge() {
      return bridge
    },
    vdptool: stationHandle.vdptool,
    startLldpadBridge: async (evb) => {
      if (bridge !== undefined && !bridge.exited) throw new Error('an lldpad bridge is already running in this lab')
      bridge = await startBridge(evb)
      return bridge
    },
    stopLldpadBridge: async () => {
      await bridge?.stop({ keepFiles: true })
      bridge = undefined
    },
    waitForBridgeEvb: async (predicate = () => true, timeoutMs = 15_000) => {
      const bridgeTlv = await stationHandle.waitForNeighborEvb((t) => t.mode === 'bridge' && predicate(t), timeoutMs)
      const offset = stationHandle.logOffset()
      const vdp = await stationHandle.waitForVdpParams((p) => p.evb, 5_000, offset)
      return { bridgeTlv, vdp }
    },
    execSwitch: (file, args) => runIn(switchNs, file, args),
    execHost: (file, args) => runIn(hostNs, file, args),
    uuid: (n) => `5644504c-4142-4000-8000-${n.toString(16).padStart(12, '0')}`,
    vsiMac: (n) => `02:76:64:71:${((n >> 8) & 0xff).toString(16).padStart(2, '0')}:${(n & 0xff).toString(16).padStart(2, '0')}`,
    stop,
  }
}
