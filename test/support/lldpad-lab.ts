/**
 * A two-namespace VDP lab on a {@link NetnsLab} (test/support/netns.ts): namespaces
 * `<name>-<id>-host` and `<name>-<id>-sw` joined by the veth pair `<name><id>h0` <->
 * `<name><id>sw0`, an lldpad station on the host side and, optionally, an lldpad bridge on the
 * switch side. With `bridge: 'none'` the switch side is left for our own agent (open
 * `lab.switchIf` in `lab.switchNs`, e.g. with `lab.netns.spawnNode(lab.switchNs, ...)`).
 * Everything created carries the lab name as prefix and is removed by `stop()`, also after a
 * failed start and (by NetnsLab's exit hook) when the process exits.
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
 * @module
 */
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import {
  runIn,
  startLldpad,
  type EvbSettings,
  type EvbTlv,
  type LldpadHandle,
  type RunResult,
  type VdpEvbParams,
  type VdpTool,
} from './lldpad.ts'
import { NetnsLab } from './netns.ts'

// ---------------------------------------------------------------------------------------------
// the lab

export interface LldpadLabOptions {
  /** Prefix of every namespace and interface: 1..8 characters [a-z0-9], starting with a letter. */
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
  /** The namespaces, links and children of this lab (spawnNode, exec, addVethPair...). */
  readonly netns: NetnsLab
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
  const netns = await NetnsLab.create(name)
  const hostMac = options.stationMac ?? '02:76:64:70:00:01'
  const switchMac = options.switchMac ?? '02:76:64:70:00:02'
  const hostIf = netns.ifname('h0')
  const switchIf = netns.ifname('sw0')
  const dir = mkdtempSync(join(tmpdir(), `vdplab-${netns.prefix}-`))
  const stationEvb: EvbSettings = { ...DEFAULT_STATION_EVB, ...options.stationEvb, ...options.evb }
  const bridgeEvbDefault: EvbSettings = { ...DEFAULT_BRIDGE_EVB, ...options.bridgeEvb, ...options.evb }
  const waitForEvb = options.waitForEvb ?? true
  let hostNs = ''
  let switchNs = ''

  let station: LldpadHandle | undefined
  let bridge: LldpadHandle | undefined
  let stopped = false
  const stop = async ({ keepFiles = false } = {}): Promise<void> => {
    if (stopped) return
    stopped = true
    await Promise.all([bridge?.stop({ keepFiles: true }), station?.stop({ keepFiles: true })])
    await netns.cleanup()
    if (!keepFiles) rmSync(dir, { recursive: true, force: true })
  }

  const startBridge = (evb: EvbSettings = bridgeEvbDefault): Promise<LldpadHandle> =>
    startLldpad({ netns: switchNs, ifname: switchIf, role: 'bridge', evb, dir: join(dir, 'bridge'), waitForEvb: false })

  try {
    hostNs = await netns.addNamespace('host')
    switchNs = await netns.addNamespace('sw')
    await netns.addVethPair({ ns: hostNs, ifname: hostIf, mac: hostMac }, { ns: switchNs, ifname: switchIf, mac: switchMac })
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
    netns,
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
