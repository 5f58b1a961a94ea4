/**
 * `BridgeStationPair`: one bridge `PortCore` and one or more station `PortCore`s on an
 * in-memory segment in virtual time (quinn `Pair`, h11 `ConnectionPair`, TigerBeetle's packet
 * simulator). `step()` jumps to the earliest frame delivery or core deadline; seeded knobs add
 * loss, duplication and delay. Each (sender, receiver) channel is FIFO like a cable, so a
 * duplicate arrives right after its original and ECP's "equal to last" rule catches it.
 *
 * On failure, `dumpFrames()` lists the frames with times and a short decode.
 *
 * @module
 */
import { decodeEcpdu } from '../../shared/ecp/codec.ts'
import { ETHERTYPE_ECP } from '../../shared/ecp/constants.ts'
import { decodeEthernetFrame } from '../../shared/ethernet/frame.ts'
import type { Mac } from '../../shared/ethernet/mac.ts'
import { portName } from '../../shared/ids.ts'
import type { Us } from '../../shared/time.ts'
import { decodeVdpPduTolerant } from '../../shared/vdp/codec.ts'
import { encodePcap } from '../../shared/pcap/pcap.ts'
import type { FilterEntry } from '../../shared/vdp/types.ts'
import type { PortConfigInput } from '../../agent/port/config.ts'
import type { PortEvent } from '../../agent/port/events.ts'
import { PortCore, type PortCommand } from '../../agent/port/port-core.ts'
import type {
  ResourceDecision,
  ResourceManager,
  ResourceRequest,
  VsiRelease,
} from '../../agent/port/resources.ts'

/** Small seeded PRNG (mulberry32): reproducible runs. */
export function rng(seed: number): () => number {
  let a = seed >>> 0
  return () => {
    a = (a + 0x6d2b79f5) >>> 0
    let t = a
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

/**
 * In-test resource manager: VIDs from a pool for VID 0 requests, one VID per GroupID, explicit
 * VIDs granted as asked; `rules` inject keep / refused answers per VSI type id.
 */
export class FakeResourceManager implements ResourceManager {
  readonly #free: number[]
  readonly groupVids = new Map<number, number>()
  /** VSIID → VIDs it holds (not GroupID-mapped ones). */
  readonly held = new Map<string, number[]>()
  readonly rules = new Map<number, ResourceDecision>()
  requests = 0
  releases = 0
  readonly log: string[] = []

  constructor(pool: { first: number; last: number } = { first: 100, last: 3999 }) {
    this.#free = []
    for (let v = pool.last; v >= pool.first; v--) this.#free.push(v)
  }

  get freeCount(): number {
    return this.#free.length
  }

  request(req: ResourceRequest): ResourceDecision {
    this.requests++
    this.log.push(`request ${req.tlv.mode} ${req.tlv.vsiId.id}`)
    const rule = this.rules.get(req.tlv.typeId)
    if (rule !== undefined) return rule
    const id = req.tlv.vsiId.id
    const mine = this.held.get(id) ?? []
    const entries: FilterEntry[] = []
    const taken: number[] = []
    for (const [i, e] of req.tlv.entries.entries()) {
      if (e.vid !== 0) {
        entries.push({ ...e })
        continue
      }
      if (e.groupId !== undefined) {
        let vid = this.groupVids.get(e.groupId)
        if (vid === undefined) {
          vid = this.#free.pop()
          if (vid === undefined) return { outcome: 'refused', error: 2, hard: false }
          this.groupVids.set(e.groupId, vid)
        }
        entries.push({ ...e, vid })
        continue
      }
      let vid = mine[i] ?? req.current?.entries[i]?.vid
      if (vid === undefined || vid === 0) {
        vid = this.#free.pop()
        if (vid === undefined) {
          for (const v of taken) this.#free.push(v)
          return { outcome: 'refused', error: 2, hard: false }
        }
        taken.push(vid)
      }
      entries.push({ ...e, vid })
    }
    const vids = entries.map((e) => e.vid)
    if (req.tlv.entries.some((e) => e.vid === 0 && e.groupId === undefined)) this.held.set(id, vids)
    return { outcome: 'granted', entries }
  }

  release(rel: VsiRelease): void {
    this.releases++
    this.log.push(`release ${rel.tlv.vsiId.id} ${rel.reason}`)
    const vids = this.held.get(rel.tlv.vsiId.id)
    if (vids === undefined) return
    this.held.delete(rel.tlv.vsiId.id)
    for (const v of vids) this.#free.push(v)
  }
}

export interface PairOptions {
  seed?: number
  stations?: number
  /** Probability that a frame is lost on its way to one receiver. */
  lossRate?: number
  /** Probability that a frame is delivered twice (back to back). */
  duplicateRate?: number
  /** One-way delay, uniform in [min, max] µs. Default 50 µs. */
  delayUs?: { min: number; max: number }
  bridge?: Partial<PortConfigInput>
  station?: Partial<PortConfigInput>
  resources?: ResourceManager
  startUs?: Us
}

export interface FrameRecord {
  /** When the sender put it on the link. */
  sentUs: Us
  /** When it reaches the receiver (send time for lost frames). */
  atUs: Us
  from: string
  to: string
  bytes: Uint8Array
  fate: 'delivered' | 'lost' | 'duplicated' | 'dropped-by-test'
}

interface Flight {
  atUs: Us
  order: number
  to: PortCore
  from: PortCore
  bytes: Uint8Array
}

export const BRIDGE_MAC = '02:00:00:00:0b:01' as Mac
export const stationMac = (i: number): Mac =>
  `02:00:00:00:5a:${(i + 1).toString(16).padStart(2, '0')}` as Mac

export class BridgeStationPair {
  nowUs: Us
  readonly bridge: PortCore
  readonly stations: PortCore[]
  readonly resources: ResourceManager
  readonly frames: FrameRecord[] = []
  readonly #events = new Map<PortCore, PortEvent[]>()
  readonly #names = new Map<PortCore, string>()
  #flights: Flight[] = []
  #order = 0
  readonly #random: () => number
  readonly #lastAt = new Map<string, Us>()
  #dropNext = 0
  /** Test hook: return true to lose this frame on its way from `from` to `to`. */
  dropIf: ((bytes: Uint8Array, from: PortCore, to: PortCore) => boolean) | undefined
  /** Frames handed to cores; a bound for runaway loops in tests. */
  deliveries = 0
  recordFrames = true

  constructor(readonly options: PairOptions = {}) {
    this.#random = rng(options.seed ?? 1)
    this.nowUs = options.startUs ?? 0
    this.resources = options.resources ?? new FakeResourceManager()
    this.bridge = new PortCore(
      { port: portName('sw0'), mac: BRIDGE_MAC, role: 'bridge', ...options.bridge },
      this.resources,
      this.nowUs,
    )
    this.#register(this.bridge, 'bridge')
    this.stations = []
    for (let i = 0; i < (options.stations ?? 1); i++) {
      const s = new PortCore(
        { port: portName(`h${i}`), mac: stationMac(i), role: 'station', ...options.station },
        undefined,
        this.nowUs,
      )
      this.stations.push(s)
      this.#register(s, `station${i}`)
    }
  }

  get station(): PortCore {
    return this.stations[0]!
  }

  get cores(): PortCore[] {
    return [this.bridge, ...this.stations]
  }

  #register(core: PortCore, name: string): void {
    this.#events.set(core, [])
    this.#names.set(core, name)
  }

  events(core: PortCore): PortEvent[] {
    return this.#events.get(core)!
  }

  /** Events of one kind, typed. */
  eventsOf<K extends PortEvent['kind']>(
    core: PortCore,
    kind: K,
  ): Extract<PortEvent, { kind: K }>[] {
    return this.events(core).filter((e): e is Extract<PortEvent, { kind: K }> => e.kind === kind)
  }

  /** Drops armed by `dropNext` that no frame consumed yet. */
  get pendingDrops(): number {
    return this.#dropNext
  }

  /** The next `n` frames put on the link are lost (for every receiver). */
  dropNext(n = 1): void {
    this.#dropNext += n
  }

  command(core: PortCore, command: PortCommand): void {
    core.handleCommand(this.nowUs, command)
    this.#drain(core)
  }

  /** Runs `fn` on `core` now (an input the harness has no name for), then drains it. */
  apply(core: PortCore, fn: (core: PortCore, nowUs: Us) => void): void {
    fn(core, this.nowUs)
    this.#drain(core)
  }

  /** Injects a raw frame into `to` as if it came over the link now. */
  inject(to: PortCore, bytes: Uint8Array): void {
    to.handleFrame(this.nowUs, bytes)
    this.#drain(to)
  }

  /** Earliest pending delivery or deadline. */
  nextEventUs(): Us | undefined {
    let t = this.#flights[0]?.atUs
    for (const c of this.cores) {
      const d = c.nextDeadlineUs()
      if (d !== undefined && (t === undefined || d < t)) t = d
    }
    return t
  }

  /** Jumps to the next delivery or deadline and runs everything due then. */
  step(): boolean {
    const t = this.nextEventUs()
    if (t === undefined) return false
    if (t > this.nowUs) this.nowUs = t
    while (this.#flights.length > 0 && this.#flights[0]!.atUs <= this.nowUs) {
      const f = this.#flights.shift()!
      this.deliveries++
      f.to.handleFrame(this.nowUs, f.bytes)
      this.#drain(f.to)
    }
    for (const c of this.cores) {
      const d = c.nextDeadlineUs()
      if (d !== undefined && d <= this.nowUs) {
        c.handleTimeout(this.nowUs)
        this.#drain(c)
      }
    }
    return true
  }

  driveBounded(steps: number): void {
    for (let i = 0; i < steps && this.step(); i++);
  }

  /** Steps until `done()`; throws with a frame dump after `stepsMax`. */
  driveUntil(done: () => boolean, stepsMax = 200_000): void {
    for (let i = 0; i < stepsMax; i++) {
      if (done()) return
      if (!this.step()) break
    }
    if (!done())
      throw new Error(
        `Cannot reach the condition in ${stepsMax} steps at ${this.nowUs} us\n${this.dumpFrames(40)}`,
      )
  }

  /** Steps until no frame is in flight and no core has ECP work or a VSI awaiting a response. */
  settle(stepsMax = 200_000): void {
    this.driveUntil(
      () => this.#flights.length === 0 && this.cores.every((c) => !c.hasPendingWork()),
      stepsMax,
    )
  }

  /** Runs every delivery and deadline up to `targetUs`, then sets the clock to it. */
  advanceTo(targetUs: Us, stepsMax = 10_000_000): void {
    for (let i = 0; i < stepsMax; i++) {
      const t = this.nextEventUs()
      if (t === undefined || t > targetUs) {
        this.nowUs = Math.max(this.nowUs, targetUs)
        return
      }
      this.step()
    }
    throw new Error(`Cannot advance to ${targetUs} us in ${stepsMax} steps`)
  }

  advanceBy(us: Us): void {
    this.advanceTo(this.nowUs + us)
  }

  get inFlight(): number {
    return this.#flights.length
  }

  #drain(core: PortCore): void {
    for (let e = core.pollEvent(); e !== undefined; e = core.pollEvent())
      this.#events.get(core)!.push(e)
    for (let f = core.pollTransmit(); f !== undefined; f = core.pollTransmit()) this.#send(core, f)
  }

  #send(from: PortCore, bytes: Uint8Array): void {
    const dropped = this.#dropNext > 0
    if (dropped) this.#dropNext--
    const { lossRate = 0, duplicateRate = 0, delayUs = { min: 50, max: 50 } } = this.options
    for (const to of this.cores) {
      if (to === from) continue
      const rec = (fate: FrameRecord['fate'], atUs: Us) => {
        if (this.recordFrames) {
          this.frames.push({
            sentUs: this.nowUs,
            atUs,
            from: this.#names.get(from)!,
            to: this.#names.get(to)!,
            bytes,
            fate,
          })
        }
      }
      if (dropped || this.dropIf?.(bytes, from, to) === true) {
        rec('dropped-by-test', this.nowUs)
        continue
      }
      if (lossRate > 0 && this.#random() < lossRate) {
        rec('lost', this.nowUs)
        continue
      }
      const channel = `${this.#names.get(from)}>${this.#names.get(to)}`
      const delay = delayUs.min + Math.floor(this.#random() * (delayUs.max - delayUs.min + 1))
      const atUs = Math.max(this.nowUs + delay, this.#lastAt.get(channel) ?? 0)
      this.#lastAt.set(channel, atUs)
      const copies = duplicateRate > 0 && this.#random() < duplicateRate ? 2 : 1
      for (let i = 0; i < copies; i++) {
        this.#insert({ atUs, order: this.#order++, to, from, bytes })
        rec(i === 0 ? 'delivered' : 'duplicated', atUs)
      }
    }
  }

  #insert(f: Flight): void {
    const a = this.#flights
    let lo = 0
    let hi = a.length
    while (lo < hi) {
      const mid = (lo + hi) >> 1
      const m = a[mid]!
      if (m.atUs < f.atUs || (m.atUs === f.atUs && m.order < f.order)) lo = mid + 1
      else hi = mid
    }
    a.splice(lo, 0, f)
  }

  /**
   * The recorded frames as a pcap file (one record per frame put on the link, at its send
   * time; epoch 0 = virtual time 0), for Wireshark or `vdpctl decode` after a failure.
   */
  pcap(): Uint8Array {
    const seen = new Set<Uint8Array>()
    const records = []
    for (const r of this.frames) {
      if (seen.has(r.bytes)) continue
      seen.add(r.bytes)
      records.push({ timeUs: r.sentUs, originalLength: r.bytes.length, data: r.bytes })
    }
    return encodePcap(records)
  }

  /** The last `count` frames, one line each: time, direction, fate, short decode, hex. */
  dumpFrames(count = 100): string {
    return this.frames
      .slice(-count)
      .map(
        (r) =>
          `${r.atUs.toString().padStart(12)} ${r.from}>${r.to} ${r.fate.padEnd(10)} ${describeFrame(r.bytes)}`,
      )
      .join('\n')
  }
}

/** One-line description of a frame for dumps. */
export function describeFrame(bytes: Uint8Array): string {
  try {
    const f = decodeEthernetFrame(bytes)
    if (f.ethertype !== ETHERTYPE_ECP)
      return `${f.source}>${f.destination} 0x${f.ethertype.toString(16)} len ${bytes.length}`
    const e = decodeEcpdu(f.payload)
    if (e.header.operation === 1) return `${f.source} ECP ACK seq ${e.header.sequence}`
    const { pdu } = decodeVdpPduTolerant(e.ulpdu)
    const tlvs = pdu.tlvs
      .map((t) =>
        t.kind === 'vsi'
          ? `${t.mode}${t.status.response ? `/rsp${t.status.error}` : ''}:${t.vsiId.id.slice(-4)}`
          : t.kind,
      )
      .join(',')
    return `${f.source} ECP REQ seq ${e.header.sequence} [${tlvs}]`
  } catch (err) {
    return `undecodable (${(err as Error).message})`
  }
}
