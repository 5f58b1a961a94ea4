/**
 * Linux raw-socket `FrameLink`: the only file in the agent that touches a NIC. It wraps the
 * project's AF_PACKET addon (`native/af_packet.c`), which binds one socket to one interface
 * with ETH_P_ALL, a BPF filter for ECP (0x8940) and LLDP (0x88CC), untagged or behind one tag,
 * and membership of 01-80-C2-00-00-00 (DESIGN.md section 3, "Raw L2").
 *
 * Where the addon is looked for, first hit wins (a file that fails to load is skipped):
 * 1. `options.addonPath`, or the `VDP_AF_PACKET_ADDON` environment variable;
 * 2. `af_packet.node` beside the running file (the esbuild bundle ships it there);
 * 3. `prebuilds/<platform>-<arch>/af_packet.node`, then `build/Release/af_packet.node`, in
 *    the running file's folder and each folder above it (the source tree and npm installs).
 *
 * @module
 */
import { existsSync } from 'node:fs'
import { constants as osConstants } from 'node:os'
import { createRequire } from 'node:module'
import { dirname, join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { NCB_GROUP_MAC, macFromBytes, macToBytes, type Mac } from '../../shared/ethernet/mac.ts'
import {
  ETHERNET_HEADER_BYTES,
  FrameLinkError,
  type AbsorbedEcpAck,
  type AnswerLoanReturn,
  type AnswerPeerStats,
  type KeepAliveAnswers,
  type EcpAckAbsorb,
  type EcpAckOffload,
  type FrameHandler,
  type FrameLink,
  type FrameLinkStats,
} from './frame-link.ts'

export interface AfPacketLinkOptions {
  /** Group addresses to join with PACKET_ADD_MEMBERSHIP; default `[NCB_GROUP_MAC]`, at most 8. */
  multicast?: readonly Mac[]
  /** Socket receive buffer; bursts beyond it are kernel drops. Default 1 MiB. */
  rcvBufBytes?: number
  /** Frames read per recvmmsg call, 1..64. Default 32. */
  batch?: number
  /** Load this addon file instead of searching for one. */
  addonPath?: string
}

/** A `FrameLink` on a real interface, plus what only a socket has. */
export interface AfPacketLink extends FrameLink {
  readonly ifindex: number
  readonly mtu: number
  onError(handler: (error: FrameLinkError) => void): void
  /**
   * Kernel-side counters: frames that passed the filter, and those dropped (queue full); and
   * the ECP ACKs the addon sent itself (`ackEcp`), and those it could not send.
   */
  kernelStats(): { packets: number; drops: number; truncated: number; acksSent: number; ackErrors: number; acksAbsorbed: number; answersSent: number; offersSent: number }
  ackEcp(offload: EcpAckOffload | undefined): void
  absorbEcpAcks(absorb: EcpAckAbsorb | undefined): void
  /** Keep-alive answers in C (always there on a raw link; see `FrameLink.answers`). */
  readonly answers: KeepAliveAnswers
  /** Lets the process exit while this link is still open (like `net.Socket.unref`). */
  unref(): void
  ref(): void
}

/** The native class, as `native/af_packet.c` defines it. */
interface NativeSocket {
  readonly ifindex: number
  readonly mtu: number
  readonly mac: Buffer
  /** Frames per recvmmsg. */
  readonly batch: number
  /** Bytes a receive area needs for one batch. */
  readonly rxBytesMax: number
  /**
   * With a receive area: recvmmsg writes into `rxData`, `onFrames` gets the frame count and
   * frame i is `rxData[rxSpans[2i] .. rxSpans[2i] + rxSpans[2i + 1])`.
   */
  start(
    onFrames: (count: number) => void,
    onError: (code: string, syscall: string, fatal: boolean) => void,
    rxData: Uint8Array,
    rxSpans: Uint32Array,
  ): void
  /** 0, or a negative errno. */
  send(frame: Uint8Array): number
  /**
   * ECP ACK offload (see `FrameLink.ackEcp`); `source` null turns it off. An acknowledged
   * frame's length in `rxSpans` has bit 31 set.
   */
  setEcpAck(source: Buffer | null, unicast: boolean, peers: Buffer): void
  /**
   * ECP ACK absorption (see `FrameLink.absorbEcpAcks`): puts the eBPF filter on the socket and
   * returns the link's entry in the shared map (`own`: the port's MAC); null puts the classic
   * filter back and returns 0. Throws an Error with .code and .syscall when the kernel refuses.
   */
  absorbAcks(own: Buffer | null): number
  /** Arms `slot` (0..7) for an ACK from `peer` with `sequence`; a negative sequence disarms it. */
  armAck(slot: number, peer: Buffer, sequence: number): void
  /** Keep-alive answers (see `FrameLink.answers`); null turns them off. */
  fastAnswers(seen: Float64Array | null, nowUs?: number, onReturn?: () => void): void
  fastAnswer(id: number, peer?: Buffer, request?: Uint8Array, response?: Uint8Array): void
  fastGrant(lastSequence: number, ackTimerUs: number, holdUntilUs: number, gapUs: number, offerCredit?: number, offerFormats?: number): void
  fastReclaim(): { sequence: number; holdUntilUs: number; outstanding: [peer: Buffer, sequence: number, slot: number, frame: Buffer, deadlineUs: number][] }
  fastForget(peer: Buffer): void
  /** Offers (see `KeepAliveAnswers.offers`): [epoch, headroom] shared with the resource manager; null turns them off. */
  fastOffers(state: Int32Array | null): void
  fastOffer(typeId: number, typeVersion: number, filterFormat: number, groupId: number, vid: number, epoch: number): boolean
  fastKnown(peer: Buffer, vsiId: Uint8Array, held: boolean): void
  fastPeerStats(): [peer: Buffer, rxEcpdus: number, rxDuplicates: number, rxVdpTlvs: number, txEcpdus: number, txVdpTlvs: number, rxAcks: number, rxAcksAbsorbed: number][]
  stats(): [packets: number, drops: number, truncated: number, acksSent: number, ackErrors: number, acksAbsorbed: number, answersSent: number, offersSent: number]
  ifExists(): boolean
  ref(): void
  unref(): void
  close(): void
}

interface NativeAddon {
  AfPacketSocket: new (
    ifname: string,
    options: { rcvBufBytes?: number; batch?: number; multicast?: Buffer[] },
  ) => NativeSocket
  /**
   * The ACKs absorbed since the last call on every link of the process, as triples (map
   * entry, slot, sequence) in `out`; returns how many. One memory read when nothing is new.
   */
  takeAbsorbedAcks(out: Uint32Array): number
}

/** Slots per link for absorbed ACKs (ABSORB_SLOTS in the C file): peers awaited at once. */
const ABSORB_SLOTS = 8
/**
 * Links with ACK absorption, by their entry in the addon's shared map. Weak: a link dropped
 * without close() is still collected (and its socket closed by the addon's finalizer).
 */
const absorbingLinks = new Map<number, WeakRef<AfPacketLinkImpl>>()
const absorbedTriples = new Uint32Array(3 * 64)
const NONE_ABSORBED: readonly AbsorbedEcpAck[] = []

/**
 * The ECP ACKs the raw links of this process took in (`absorbEcpAcks`) since the last call,
 * for their port cores. Cheap when there are none (one read of a shared counter): the agent
 * asks before every step of every port.
 */
export function takeAbsorbedEcpAcks(): readonly AbsorbedEcpAck[] {
  if (absorbingLinks.size === 0 || cachedAddon === undefined) return NONE_ABSORBED
  let out: AbsorbedEcpAck[] | undefined
  for (;;) {
    const n = cachedAddon.addon.takeAbsorbedAcks(absorbedTriples)
    for (let i = 0; i < n; i++) {
      const link = absorbingLinks.get(absorbedTriples[3 * i]!)?.deref()
      const peer = link?.peerInSlot(absorbedTriples[3 * i + 1]!)
      if (link === undefined || peer === undefined) continue
      ;(out ??= []).push({ link, peer, sequence: absorbedTriples[3 * i + 2]! })
    }
    if (3 * n < absorbedTriples.length) return out ?? NONE_ABSORBED
  }
}

/**
 * A span's length bits; bit 31 says the addon acknowledged the frame (SPAN_ACKED in the C
 * file), bit 30 that it answered requests of the same peer before it (SPAN_RESYNC), bit 29
 * that it answered this one from offers (SPAN_OFFERED): then bits 0-15 are the frame's length
 * and bits 16-28 that of the answer, which follows the frame in the receive area.
 */
const SPAN_LENGTH = 0x1fffffff
const SPAN_ACKED = 0x80000000
const SPAN_RESYNC = 0x40000000
const SPAN_OFFERED = 0x20000000

const ADDON_FILE = 'af_packet.node'
const ADDON_ENV = 'VDP_AF_PACKET_ADDON'
/** After ENETDOWN: first look whether the interface was deleted, then keep looking while down. */
const GONE_CHECK_FIRST_MS = 50
const GONE_CHECK_EVERY_MS = 1000
/** How many folders above the running file to look for prebuilds/ and build/. */
const SEARCH_DEPTH_MAX = 6

const REASONS: Record<string, string> = {
  EPERM: 'operation not permitted (needs root or CAP_NET_RAW)',
  EACCES: 'permission denied (needs root or CAP_NET_RAW)',
  ENODEV: 'no such interface',
  ENAMETOOLONG: 'interface name is longer than 15 characters',
  ENETDOWN: 'network is down',
  ENXIO: 'interface no longer exists',
  EMSGSIZE: 'frame is longer than the interface MTU allows',
  ENOBUFS: 'no buffer space available',
  EAGAIN: 'send queue is full',
  EBADF: 'socket is closed',
}

function reasonOf(code: string, fallback?: string): string {
  return REASONS[code] ?? fallback ?? code
}

/** errno values after which the link cannot recover by itself. */
const FATAL_SEND_CODES = new Set(['ENXIO', 'ENODEV', 'EBADF'])

/** errno number to name, from this platform's own table. */
const ERRNO_NAMES = new Map<number, string>(
  Object.entries(osConstants.errno).map(([name, value]) => [value, name]),
)

let cachedAddon: { path: string; addon: NativeAddon } | undefined

/** Candidate addon paths in search order (exported for diagnostics and tests). */
export function afPacketAddonCandidates(from: string = fileURLToPath(import.meta.url)): string[] {
  const out: string[] = []
  const env = process.env[ADDON_ENV]
  if (env) out.push(resolve(env))
  let dir = dirname(from)
  out.push(join(dir, ADDON_FILE))
  const platformDir = `${process.platform}-${process.arch}`
  for (let i = 0; i <= SEARCH_DEPTH_MAX; i++) {
    out.push(join(dir, 'prebuilds', platformDir, ADDON_FILE))
    out.push(join(dir, 'build', 'Release', ADDON_FILE))
    const up = dirname(dir)
    if (up === dir) break
    dir = up
  }
  return out
}

/**
 * Loads the addon once per process.
 * @returns the path it was loaded from, for logs
 */
export function loadAfPacketAddon(addonPath?: string): { path: string; addon: NativeAddon } {
  if (addonPath === undefined && cachedAddon) return cachedAddon
  if (process.platform !== 'linux') {
    throw new FrameLinkError(
      'ENOTSUP',
      true,
      `Cannot load the AF_PACKET addon: raw sockets need Linux, this is ${process.platform}`,
    )
  }
  const require = createRequire(import.meta.url)
  const candidates = addonPath !== undefined ? [resolve(addonPath)] : afPacketAddonCandidates()
  const failures: string[] = []
  for (const path of candidates) {
    if (!existsSync(path)) continue
    try {
      const loaded = { path, addon: require(path) as NativeAddon }
      if (addonPath === undefined) cachedAddon = loaded
      return loaded
    } catch (e) {
      failures.push(`${path}: ${(e as Error).message}`)
    }
  }
  const detail = failures.length
    ? `every candidate failed to load (${failures.join('; ')})`
    : `${ADDON_FILE} not found (looked in ${candidates.length} places, e.g. ${candidates[1]}); run "npm ci" or firmware-scripts/build-addon.sh`
  throw new FrameLinkError('ENOENT', true, `Cannot load the AF_PACKET addon: ${detail}`)
}

/**
 * Opens a raw link on `ifname`. Must run in the network namespace of that interface.
 * Receiving starts with the first `onFrame` call; until then frames wait in the kernel queue.
 *
 * @throws FrameLinkError with `code` 'EPERM' (not root / no CAP_NET_RAW), 'ENODEV' (no such
 *   interface), 'ENOENT' (addon missing) and others from socket(), bind(), setsockopt()
 * @example
 * ```ts
 * const link = openAfPacketLink('eth0')
 * link.onError((e) => log.warn(e.message))       // "Cannot receive on eth0: network is down"
 * link.onFrame((frame) => core.handleFrame(clock.nowUs(), frame))
 * link.send(frame)
 * link.close()
 * ```
 */
export function openAfPacketLink(ifname: string, options: AfPacketLinkOptions = {}): AfPacketLink {
  const { addon } = loadAfPacketAddon(options.addonPath)
  const nativeOptions: { rcvBufBytes?: number; batch?: number; multicast?: Buffer[] } = {}
  if (options.rcvBufBytes !== undefined) nativeOptions.rcvBufBytes = options.rcvBufBytes
  if (options.batch !== undefined) nativeOptions.batch = options.batch
  const groups = options.multicast ?? [NCB_GROUP_MAC]
  if (groups.length > 8) {
    throw new FrameLinkError('EINVAL', true, `Cannot open raw socket on ${ifname}: ${groups.length} multicast groups exceed the limit of 8`)
  }
  nativeOptions.multicast = groups.map((m) => Buffer.from(macToBytes(m)))
  let socket: NativeSocket
  try {
    socket = new addon.AfPacketSocket(ifname, nativeOptions)
  } catch (e) {
    const err = e as Error & { code?: string; syscall?: string }
    const code = err.code ?? 'EUNKNOWN'
    throw new FrameLinkError(
      code,
      true,
      `Cannot open raw socket on ${ifname}: ${reasonOf(code, err.message)}`,
      err.syscall,
    )
  }
  return new AfPacketLinkImpl(ifname, socket)
}

class AfPacketLinkImpl implements AfPacketLink {
  readonly name: string
  readonly mac: Mac
  readonly ifindex: number
  readonly mtu: number
  readonly #socket: NativeSocket
  #frameHandler: FrameHandler | undefined
  #errorHandler: ((error: FrameLinkError) => void) | undefined
  #started = false
  #closed = false
  #rxFrames = 0
  #txFrames = 0
  #txErrors = 0
  #errors = 0
  /** Set by ENETDOWN, cleared by the next frame; while set, a timer looks for deletion. */
  #down = false
  #goneTimer: NodeJS.Timeout | undefined
  /** Receive area the addon reads each batch into (see `#deliver`). */
  #rxData: Uint8Array | undefined
  #rxSpans: Uint32Array | undefined
  /** ACK absorption: the link's entry in the addon's map (0: never turned on). */
  #absorbEntry = 0
  #absorbOwn: Mac | undefined
  /** Per slot: the peer it was last armed for, and the sequence it is armed with (-1: none). */
  readonly #slotPeers: (Mac | undefined)[] = new Array<Mac | undefined>(ABSORB_SLOTS).fill(undefined)
  readonly #slotSequences: number[] = new Array<number>(ABSORB_SLOTS).fill(-1)
  readonly #slotMacBytes: (Buffer | undefined)[] = new Array<Buffer | undefined>(ABSORB_SLOTS).fill(undefined)

  constructor(name: string, socket: NativeSocket) {
    this.name = name
    this.#socket = socket
    this.mac = macFromBytes(socket.mac)
    this.ifindex = socket.ifindex
    this.mtu = socket.mtu
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
    const rc = this.#socket.send(frame)
    if (rc === 0) {
      this.#txFrames++
      return
    }
    this.#txErrors++
    const code = ERRNO_NAMES.get(-rc) ?? `errno ${-rc}`
    // Reported later, not from inside send(): the caller may be halfway through a drain loop.
    queueMicrotask(() =>
      this.#raise(code, 'send', FATAL_SEND_CODES.has(code), `Cannot send frame on ${this.name}: ${reasonOf(code)}`),
    )
  }

  onFrame(handler: FrameHandler): void {
    if (this.#closed) throw new FrameLinkError('EBADF', true, `Cannot receive on ${this.name}: link is closed`)
    this.#frameHandler = handler
    if (this.#started) return
    this.#started = true
    this.#rxData = new Uint8Array(this.#socket.rxBytesMax)
    this.#rxSpans = new Uint32Array(2 * this.#socket.batch)
    this.#socket.start(
      (count) => this.#deliver(count),
      (code, syscall, fatal) => {
        this.#raise(code, syscall, fatal, `Cannot receive on ${this.name}: ${reasonOf(code)}`)
        if (code === 'ENETDOWN' && !fatal) this.#watchForDeletion()
      },
      this.#rxData,
      this.#rxSpans,
    )
  }

  onError(handler: (error: FrameLinkError) => void): void {
    this.#errorHandler = handler
  }

  ackEcp(offload: EcpAckOffload | undefined): void {
    if (this.#closed) return
    if (offload === undefined) {
      this.#socket.setEcpAck(null, false, Buffer.alloc(0))
      return
    }
    const peers = Buffer.alloc(6 * offload.peers.length)
    offload.peers.forEach((mac, i) => peers.set(macToBytes(mac), 6 * i))
    this.#socket.setEcpAck(Buffer.from(macToBytes(offload.source)), offload.unicast, peers)
  }

  absorbEcpAcks(absorb: EcpAckAbsorb | undefined): void {
    if (this.#closed) return
    if (absorb === undefined) {
      if (this.#absorbEntry === 0 || this.#absorbOwn === undefined) return
      this.#absorbOwn = undefined
      this.#slotSequences.fill(-1)
      this.#nativeAbsorb(null)
      return
    }
    if (absorb.own !== this.#absorbOwn) {
      this.#absorbEntry = this.#nativeAbsorb(Buffer.from(macToBytes(absorb.own)))
      this.#absorbOwn = absorb.own
      absorbingLinks.set(this.#absorbEntry, new WeakRef(this))
    }
    const peers = this.#slotPeers
    const sequences = this.#slotSequences
    const awaited = absorb.awaited
    // Slots keep their peer while it is awaited: a slot whose ACK was taken in but not yet
    // collected is re-armed only for the same peer's next ECPDU, never given to another peer.
    for (let k = 0; k < ABSORB_SLOTS; k++) {
      const peer = peers[k]
      if (sequences[k]! < 0 || peer === undefined) continue
      let wanted = -1
      for (const a of awaited) if (a.peer === peer) wanted = a.sequence
      if (wanted !== sequences[k]) this.#arm(k, peer, wanted)
    }
    for (const a of awaited) {
      let k = peers.indexOf(a.peer)
      if (k >= 0 && sequences[k] === a.sequence) continue
      // A slot never used before one that was: an ACK taken in for its last peer during this
      // step is still in it until the next collection.
      if (k < 0) k = peers.indexOf(undefined)
      if (k < 0) k = sequences.indexOf(-1)
      if (k < 0) continue // more peers awaited than slots: their ACKs come as frames
      this.#arm(k, a.peer, a.sequence)
    }
  }

  #arm(slot: number, peer: Mac, sequence: number): void {
    // The peer's octets are built once per slot and peer, not per ECPDU.
    let bytes = this.#slotMacBytes[slot]
    if (bytes === undefined || this.#slotPeers[slot] !== peer) this.#slotMacBytes[slot] = bytes = Buffer.from(macToBytes(peer))
    this.#slotPeers[slot] = peer
    this.#slotSequences[slot] = sequence
    this.#socket.armAck(slot, bytes, sequence)
  }

  #nativeAbsorb(own: Buffer | null): number {
    try {
      return this.#socket.absorbAcks(own)
    } catch (e) {
      const err = e as Error & { code?: string; syscall?: string }
      const code = err.code ?? 'EUNKNOWN'
      throw new FrameLinkError(code, false, `Cannot absorb ECP ACKs on ${this.name}: ${err.message}`, err.syscall)
    }
  }

  readonly answers: KeepAliveAnswers = {
    start: (capacity, nowUs, onReturn) => {
      const seen = new Float64Array(2 * capacity)
      this.#socket.fastAnswers(seen, nowUs, onReturn)
      return seen
    },
    stop: () => {
      if (!this.#closed) this.#socket.fastAnswers(null)
    },
    set: (id, peer, request, response) => {
      this.#socket.fastAnswer(id, Buffer.from(macToBytes(peer)), request, response)
    },
    remove: (id) => {
      if (!this.#closed) this.#socket.fastAnswer(id)
    },
    lend: (loan) => {
      this.#socket.fastGrant(loan.lastSequence, loan.ackTimerUs, loan.holdUntilUs, loan.gapUs, loan.offerCredit ?? 0, loan.offerFormats ?? 0)
    },
    takeBack: (): AnswerLoanReturn => {
      const back = this.#socket.fastReclaim()
      if (back.outstanding.length === 0) return { sequence: back.sequence, holdUntilUs: back.holdUntilUs, outstanding: [] }
      return {
        sequence: back.sequence,
        holdUntilUs: back.holdUntilUs,
        outstanding: back.outstanding.map(([peerBytes, sequence, slot, frame, deadlineUs]) => {
          const peer = macFromBytes(peerBytes)
          // The slot stays armed for this ECPDU's ACK: the collector now reports it to the core.
          if (slot >= 0) {
            this.#slotPeers[slot] = peer
            this.#slotSequences[slot] = sequence
            this.#slotMacBytes[slot] = peerBytes
          }
          return { peer, sequence, frame, deadlineUs }
        }),
      }
    },
    forget: (peer) => {
      if (!this.#closed) this.#socket.fastForget(Buffer.from(macToBytes(peer)))
    },
    offers: {
      start: (state) => {
        this.#socket.fastOffers(state)
      },
      set: (o) => this.#socket.fastOffer(o.typeId, o.typeVersion, o.filterFormat, o.groupId, o.vid, o.epoch),
      known: (peer, vsiId, held) => {
        if (!this.#closed) this.#socket.fastKnown(Buffer.from(macToBytes(peer)), Buffer.from(vsiId, 'hex'), held)
      },
    },
    peerStats: (): AnswerPeerStats[] =>
      this.#socket.fastPeerStats().map(([peer, rxEcpdus, rxDuplicates, rxVdpTlvs, txEcpdus, txVdpTlvs, rxAcks, rxAcksAbsorbed]) => ({
        peer: macFromBytes(peer),
        rxEcpdus,
        rxDuplicates,
        rxVdpTlvs,
        txEcpdus,
        txVdpTlvs,
        rxAcks,
        rxAcksAbsorbed,
      })),
  }

  /** The peer `slot` was last armed for (the collector's view of an absorbed ACK). */
  peerInSlot(slot: number): Mac | undefined {
    return this.#slotPeers[slot]
  }

  stats(): FrameLinkStats {
    // ACKs and keep-alive answers the addon sent itself (ackEcp, answers) count as frames
    // sent, and the ACKs' failures as errors (the port core then sent the ACK from JavaScript,
    // which reports the cause; a failed answer is left to the core the same way).
    const [, drops, truncated, acksSent, ackErrors, acksAbsorbed, answersSent, offersSent] = this.#socket.stats()
    return {
      rxFrames: this.#rxFrames,
      txFrames: this.#txFrames + acksSent + answersSent + offersSent,
      drops: drops + truncated,
      txErrors: this.#txErrors + ackErrors,
      errors: this.#errors,
      offloadedAcks: acksSent,
      absorbedAcks: acksAbsorbed,
      answeredKeepalives: answersSent,
      answeredFromOffers: offersSent,
    }
  }

  kernelStats(): { packets: number; drops: number; truncated: number; acksSent: number; ackErrors: number; acksAbsorbed: number; answersSent: number; offersSent: number } {
    const [packets, drops, truncated, acksSent, ackErrors, acksAbsorbed, answersSent, offersSent] = this.#socket.stats()
    return { packets, drops, truncated, acksSent, ackErrors, acksAbsorbed, answersSent, offersSent }
  }

  ref(): void {
    this.#socket.ref()
  }

  unref(): void {
    this.#socket.unref()
  }

  close(): void {
    if (this.#closed) return
    this.#closed = true
    this.#frameHandler = undefined
    this.#errorHandler = undefined
    clearTimeout(this.#goneTimer)
    if (this.#absorbEntry !== 0 && absorbingLinks.get(this.#absorbEntry)?.deref() === this) absorbingLinks.delete(this.#absorbEntry)
    this.#socket.close()
  }

  // The kernel reports a deleted interface exactly like one set down (one ENETDOWN) and then
  // never again, so deletion is found by looking: a port that vanished must not look merely
  // down forever.
  #watchForDeletion(): void {
    this.#down = true
    if (this.#goneTimer !== undefined) return
    const check = (): void => {
      this.#goneTimer = undefined
      if (this.#closed || !this.#down) return
      if (!this.#socket.ifExists()) {
        this.#down = false
        this.#raise('ENXIO', 'if_indextoname', true, `Cannot receive on ${this.name}: ${reasonOf('ENXIO')}`)
        return
      }
      this.#goneTimer = setTimeout(check, GONE_CHECK_EVERY_MS).unref()
    }
    this.#goneTimer = setTimeout(check, GONE_CHECK_FIRST_MS).unref()
  }

  /**
   * `count` frames lie in the receive area; each handler gets a view of its frame, valid
   * until it returns (the next batch overwrites the area; FrameLink rule).
   */
  #deliver(count: number): void {
    // A handler may throw or close the link mid-batch: later frames still reach the handler
    // unless the link was closed, and the first exception is rethrown afterwards so that it
    // surfaces as an uncaught exception, as from any other event source.
    let failure: { error: unknown } | undefined
    const data = this.#rxData!
    const spans = this.#rxSpans!
    for (let i = 0; i < count; i++) {
      const handler = this.#frameHandler
      if (this.#closed || handler === undefined) return
      const start = spans[2 * i]!
      const span = spans[2 * i + 1]!
      const offered = (span & SPAN_OFFERED) !== 0
      const length = offered ? span & 0xffff : span & SPAN_LENGTH
      const frame = data.subarray(start, start + length)
      const answer = offered ? data.subarray(start + length, start + length + ((span >>> 16) & 0x1fff)) : undefined
      this.#down = false
      this.#rxFrames++
      try {
        handler(frame, (span & SPAN_ACKED) !== 0, (span & SPAN_RESYNC) !== 0, answer)
      } catch (error) {
        failure ??= { error }
      }
    }
    if (failure) throw failure.error
  }

  #raise(code: string, syscall: string, fatal: boolean, message: string): void {
    if (this.#closed) return
    this.#errors++
    this.#errorHandler?.(new FrameLinkError(code, fatal, message, syscall))
  }
}
