/**
 * In-process `FrameLink`s for tests and for running a bridge and a station without root: a
 * `MemoryHub` is one shared segment (like a repeater hub or a flooding bridge) and
 * `createMemoryLinkPair` is a hub with two links, i.e. a cable.
 *
 * Rules, the same as the raw socket's: a frame is copied when sent (the caller may reuse its
 * buffer), delivered to every other attached link but never back to its sender, always
 * asynchronously (queueMicrotask by default, or setImmediate to interleave with I/O), and
 * never after the receiver closed. Loss is seeded and reproducible; there is no wall-clock
 * delay here (virtual-time simulation belongs to test/support/pair.ts).
 *
 * @module
 */
import { isGroupMac, macFromBytes, type Mac } from '../../shared/ethernet/mac.ts'
import {
  ETHERNET_HEADER_BYTES,
  FrameLinkError,
  type FrameLink,
  type FrameLinkStats,
} from './frame-link.ts'

export type MemoryDelivery = 'microtask' | 'immediate'

export interface MemoryHubOptions {
  /** When each frame reaches the receivers. Default 'microtask'. */
  delivery?: MemoryDelivery
  /** Probability in [0, 1] that a frame is lost on its way to each receiver. Default 0. */
  lossRate?: number
  /** Seed of the loss generator, so that a failing run can be replayed. Default 1. */
  seed?: number
  /** Deterministic loss: return true to drop this frame on its way from `from` to `to`. */
  drop?: (frame: Uint8Array, from: MemoryLink, to: MemoryLink) => boolean
  /**
   * Deliver a unicast frame only to the link whose MAC is its destination (like a learning
   * bridge that knows every station). Group frames always go to all. Default false: a hub.
   */
  filterUnicast?: boolean
  /** Sees every frame sent on the hub, before loss (for pcap dumps on test failure). */
  tap?: (frame: Uint8Array, from: MemoryLink) => void
}

/** A `FrameLink` attached to a `MemoryHub`. */
export interface MemoryLink extends FrameLink {
  readonly hub: MemoryHub
  readonly closed: boolean
  onError(handler: (error: FrameLinkError) => void): void
  /** Raises an error event on this link as if the medium had failed (for driver tests). */
  injectError(code: string, fatal: boolean, message?: string): void
}

/** mulberry32: small, fast, seedable; good enough to pick which frames are lost. */
function seededRandom(seed: number): () => number {
  let a = seed >>> 0
  return () => {
    a = (a + 0x6d2b79f5) >>> 0
    let t = a
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

export class MemoryHub {
  readonly #links = new Set<MemoryLinkImpl>()
  readonly #delivery: MemoryDelivery
  readonly #drop: MemoryHubOptions['drop']
  readonly #filterUnicast: boolean
  readonly #tap: MemoryHubOptions['tap']
  readonly #random: () => number
  #lossRate: number

  constructor(options: MemoryHubOptions = {}) {
    this.#delivery = options.delivery ?? 'microtask'
    this.#drop = options.drop
    this.#filterUnicast = options.filterUnicast ?? false
    this.#tap = options.tap
    this.#random = seededRandom(options.seed ?? 1)
    this.#lossRate = 0
    this.setLossRate(options.lossRate ?? 0)
  }

  /** Changes the loss probability from now on (e.g. cut the cable with 1, mend it with 0). */
  setLossRate(lossRate: number): void {
    if (!(lossRate >= 0 && lossRate <= 1)) {
      throw new RangeError(`Cannot set loss rate: ${lossRate} is not within [0, 1]`)
    }
    this.#lossRate = lossRate
  }

  /** Attaches a new link; `name` must be unique on this hub. */
  attach(name: string, mac: Mac): MemoryLink {
    for (const l of this.#links) {
      if (l.name === name) throw new Error(`Cannot attach link "${name}": the hub already has one by that name`)
    }
    const link = new MemoryLinkImpl(this, name, mac)
    this.#links.add(link)
    return link
  }

  /** Links currently attached (closed links are detached). */
  get links(): readonly MemoryLink[] {
    return [...this.#links]
  }

  /** @internal called by MemoryLinkImpl.send */
  transmit(from: MemoryLinkImpl, frame: Uint8Array): void {
    this.#tap?.(frame, from)
    const destination = macFromBytes(frame, 0)
    const unicastOnly = this.#filterUnicast && !isGroupMac(destination)
    for (const to of this.#links) {
      if (to === from) continue
      if (unicastOnly && to.mac !== destination) continue
      if (this.#drop?.(frame, from, to)) {
        to.countDrop()
        continue
      }
      if (this.#lossRate > 0 && this.#random() < this.#lossRate) {
        to.countDrop()
        continue
      }
      // Each receiver gets its own copy: a handler that mutates its frame affects no one else.
      const copy = frame.slice()
      if (this.#delivery === 'immediate') setImmediate(() => to.receive(copy))
      else queueMicrotask(() => to.receive(copy))
    }
  }

  /** @internal */
  detach(link: MemoryLinkImpl): void {
    this.#links.delete(link)
  }
}

class MemoryLinkImpl implements MemoryLink {
  readonly hub: MemoryHub
  readonly name: string
  readonly mac: Mac
  #frameHandler: ((frame: Uint8Array, acked: boolean) => void) | undefined
  #errorHandler: ((error: FrameLinkError) => void) | undefined
  #closed = false
  #stats = { rxFrames: 0, txFrames: 0, drops: 0, txErrors: 0, errors: 0 }

  constructor(hub: MemoryHub, name: string, mac: Mac) {
    this.hub = hub
    this.name = name
    this.mac = mac
  }

  get closed(): boolean {
    return this.#closed
  }

  send(frame: Uint8Array): void {
    if (this.#closed) throw new FrameLinkError('EBADF', true, `Cannot send frame on ${this.name}: link is closed`)
    if (frame.length < ETHERNET_HEADER_BYTES) {
      throw new FrameLinkError(
        'EINVAL',
        false,
        `Cannot send frame on ${this.name}: ${frame.length} bytes is shorter than an Ethernet header (${ETHERNET_HEADER_BYTES})`,
      )
    }
    this.#stats.txFrames++
    this.hub.transmit(this, frame)
  }

  onFrame(handler: (frame: Uint8Array, acked: boolean) => void): void {
    if (this.#closed) throw new FrameLinkError('EBADF', true, `Cannot receive on ${this.name}: link is closed`)
    this.#frameHandler = handler
  }

  onError(handler: (error: FrameLinkError) => void): void {
    this.#errorHandler = handler
  }

  injectError(code: string, fatal: boolean, message = `Cannot receive on ${this.name}: injected ${code}`): void {
    queueMicrotask(() => {
      if (this.#closed) return
      this.#stats.errors++
      this.#errorHandler?.(new FrameLinkError(code, fatal, message))
    })
  }

  stats(): FrameLinkStats {
    return { ...this.#stats }
  }

  close(): void {
    if (this.#closed) return
    this.#closed = true
    this.#frameHandler = undefined
    this.#errorHandler = undefined
    this.hub.detach(this)
  }

  /** @internal */
  receive(frame: Uint8Array): void {
    if (this.#closed) return
    const handler = this.#frameHandler
    // Like a socket nobody reads yet: without a handler the frame is lost, and counted.
    if (handler === undefined) {
      this.#stats.drops++
      return
    }
    this.#stats.rxFrames++
    handler(frame, false)
  }

  /** @internal */
  countDrop(): void {
    this.#stats.drops++
  }
}

/**
 * Two links joined by a cable: what one sends, the other receives.
 * @example
 * ```ts
 * const [bridge, station] = createMemoryLinkPair(parseMac('02:00:00:00:00:01'), parseMac('02:00:00:00:00:02'))
 * station.onFrame((frame) => console.log(frame.length))
 * bridge.send(frame) // delivered in a microtask
 * ```
 */
export function createMemoryLinkPair(
  macA: Mac,
  macB: Mac,
  options: MemoryHubOptions & { nameA?: string; nameB?: string } = {},
): [MemoryLink, MemoryLink] {
  const hub = new MemoryHub(options)
  return [hub.attach(options.nameA ?? 'mem0', macA), hub.attach(options.nameB ?? 'mem1', macB)]
}
