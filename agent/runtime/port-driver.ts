/**
 * Drives one `PortCore` on one `FrameLink` (STYLE.md §3, str0m's contract): make one
 * mutation (a frame, a timer, a command), then drain every output: events to the sink, and
 * re-arm the single timer at the core's next deadline. Frames go to the link as the core
 * builds them (`PortCore.setTransmitSink`), so an ECP ACK is on the wire before the VDP
 * processing of its ECPDU starts and a response before the step's events are handled. After
 * each step the core gets the clock again (`PortCore.endStep`): ECP pacing counts from when the
 * step's ECPDUs left, however long the step took.
 *
 * Where the link can acknowledge ECP requests itself (`FrameLink.ackEcp`, the raw socket), the
 * driver keeps it told whose requests the core would acknowledge (`PortCore.ecpAckOffload`: the
 * stations a bridge holds, a station's bridge): after each step in which they changed, and for
 * a fresh core (none yet).
 *
 * Where the link can take ECP ACKs in itself (`FrameLink.absorbEcpAcks`, the raw socket's
 * eBPF filter), the driver keeps it told which ACKs the core awaits with nothing queued behind
 * (`PortCore.ecpAckAbsorb`), after each step in which that may have changed. The agent's
 * `AbsorbedAckCollector` is asked before every step of every driver and gives each ACK taken
 * in to its port's core (`PortCore.handleAbsorbedAck`), in a step of its own. If the kernel
 * refuses the filter, the driver logs it once and leaves every ACK to the frames.
 *
 * With `onResponse`, a step started by a frame carrying a VDP request reports the time from
 * its start (the frame read) to the first VDP ECPDU it sends: the agent's own share of a
 * request's response time, for requests answered in the step that read them (one queued
 * behind an unacknowledged ECPDU leaves in a later step and is not counted).
 *
 * Where the link answers keep-alives itself (`FrameLink.answers`, bridge ports), the driver
 * turns the answers on for each new core (`PortCore.useAnswers`), lends the link the core's ECP
 * transmit side after each step in which the core allows it (`PortCore.answerLoan`), and takes
 * it back before the next step of any kind (`PortCore.takeBackLoan`), so that the core never
 * sends while the link may. When an ECPDU the link sent runs out of its ack timer the link
 * calls back, and the driver runs a timeout step (which takes the side back first).
 *
 * A failed assertion inside the core is a bug: the driver logs it, counts it, discards the
 * core and builds a fresh one from the factory (str0m's "panic means bug"). The port keeps
 * serving; VSIs it held are re-learnt from the stations' keep-alives. A `LocalProtocolError`
 * from a command goes back to the caller.
 *
 * @module
 */
import { AssertionError } from '../../shared/assert.ts'
import { EcpOperation, EcpSubtype, ETHERTYPE_ECP } from '../../shared/ecp/constants.ts'
import { ETHERTYPE_QINQ, ETHERTYPE_VLAN } from '../../shared/ethernet/frame.ts'
import type { PortCommand, PortCore } from '../port/port-core.ts'
import type { PortEvent } from '../port/events.ts'
import type { FrameLink, FrameLinkError } from '../transport/frame-link.ts'
import type { AbsorbedAckCollector } from './absorbed-acks.ts'
import type { Clock } from './clock.ts'
import { DeadlineTimer, type DeadlineSlot } from './deadline-timer.ts'
import type { Logger } from './logger.ts'

export interface PortDriverOptions {
  link: FrameLink
  clock: Clock
  makeCore: () => PortCore
  onEvent: (event: PortEvent) => void
  /** Called after each drain that produced events (e.g. flush the data plane). */
  onDrained?: () => void
  onCoreReset?: (error: AssertionError) => void
  onLinkError?: (error: FrameLinkError) => void
  log: Logger
  /**
   * Timer shared with the agent's other port drivers (one Node timer for all ports, see
   * deadline-timer.ts); by default the driver has its own.
   */
  deadlines?: DeadlineTimer
  /** Collector of the ACKs links took in; without it, the driver does not ask its link to. */
  absorbedAcks?: AbsorbedAckCollector
  /**
   * Seconds from reading a frame with a VDP request to the first VDP ECPDU its step sent
   * (a bridge's response); not called when the step sent none.
   */
  onResponse?: (seconds: number) => void
  /** false: do not let the link answer keep-alives even where it can. */
  answers?: boolean
  /** false: do not let the link answer requests for new VSIs from offers (port-core rule 6). */
  offers?: boolean
}

/** ECP operation and subtype of a VDP request, in the first 16 bits of the ECP header. */
const VDP_REQUEST_HEADER = (EcpOperation.Request << 10) | EcpSubtype.Vdp

/** Whether a frame is an ECPDU carrying VDP (operation request), untagged or with one C- or S-tag. */
export function isVdpEcpdu(frame: Uint8Array): boolean {
  let at = 12
  const tpid = frame.length >= 18 ? (frame[12]! << 8) | frame[13]! : 0
  if (tpid === ETHERTYPE_VLAN || tpid === ETHERTYPE_QINQ) at = 16
  if (frame.length < at + 6 || ((frame[at]! << 8) | frame[at + 1]!) !== ETHERTYPE_ECP) return false
  return (((frame[at + 2]! << 8) | frame[at + 3]!) & 0x0fff) === VDP_REQUEST_HEADER
}

/** Keep-alive answers a link holds per port at most (VSIs beyond them are answered by the core). */
const ANSWERS_MAX = 4096

export class PortDriver {
  #core: PortCore
  readonly #o: PortDriverOptions
  readonly #deadlines: DeadlineTimer
  readonly #deadline: DeadlineSlot
  #closed = false
  /** The core's `peersVersion` the link's ACK offload was last set for (-1: never, or a new core). */
  #ackedPeersVersion = -1
  /** The core's `ecpTxVersion` and `peersVersion` ACK absorption was last set for (-1: never). */
  #absorbTxVersion = -1
  #absorbPeersVersion = -1
  /** The link takes ACKs in (it can, a collector is there, and it has not refused). */
  #absorbing: boolean
  readonly #unregisterAbsorbed: (() => void) | undefined
  /** Clock at the read of the VDP request whose step runs now (-1: none, or reported). */
  #requestReadUs = -1
  /** The link holds the core's ECP transmit side (`FrameLink.answers`). */
  #lent = false
  coreResets = 0

  constructor(options: PortDriverOptions) {
    this.#o = options
    this.#deadlines = options.deadlines ?? new DeadlineTimer(options.clock)
    // libuv runs timers before it polls sockets: after a busy loop turn an ACK may already
    // wait in the socket while its ack timer expires. Handling the timeout in the check
    // phase, after this turn's poll, lets such frames in first, so a late loop does not
    // retransmit (or give up on) an ECPDU that was in fact acknowledged.
    this.#deadline = this.#deadlines.slot(() =>
      setImmediate(() => this.#step((core, nowUs) => core.handleTimeout(nowUs))),
    )
    this.#absorbing = options.link.absorbEcpAcks !== undefined && options.absorbedAcks !== undefined
    this.#unregisterAbsorbed = this.#absorbing
      ? options.absorbedAcks!.register(options.link, (peer, sequence) =>
          this.#step((core, nowUs) => core.handleAbsorbedAck(nowUs, peer, sequence)),
        )
      : undefined
    this.#core = this.#newCore()
  }

  /** Frames leave the moment the core builds them: an ECP ACK before the VDP work it precedes. */
  #newCore(): PortCore {
    const core = this.#o.makeCore()
    core.setTransmitSink((frame) => this.#send(frame))
    this.#ackedPeersVersion = -1
    this.#absorbTxVersion = -1
    const answers = this.#o.link.answers
    this.#lent = false
    if (answers !== undefined && core.role === 'bridge' && this.#o.answers !== false) {
      // A fresh start drops whatever the link held for a core before this one.
      const seen = answers.start(Math.min(core.config.vsiCountMax, ANSWERS_MAX), this.#o.clock.nowUs(), () =>
        this.#step((c, nowUs) => c.handleTimeout(nowUs)),
      )
      core.useAnswers(answers, seen, { offers: this.#o.offers !== false })
    }
    return core
  }

  #send(frame: Uint8Array): void {
    if (this.#closed) return
    if (this.#requestReadUs >= 0 && isVdpEcpdu(frame)) {
      this.#o.onResponse!((this.#o.clock.nowUs() - this.#requestReadUs) / 1e6)
      this.#requestReadUs = -1
    }
    // Armed before the ECPDU leaves: a quick peer's ACK can beat the end of the step.
    if (this.#absorbing) this.#syncAbsorb(this.#core)
    try {
      this.#o.link.send(frame)
    } catch (e) {
      // A closed or broken link; the link reports it through onError as well.
      this.#o.log.warn('send-failed', { port: this.#o.link.name, error: e })
    }
  }

  get core(): PortCore {
    return this.#core
  }

  /** The link holds the core's ECP transmit side now (it may answer keep-alives). */
  get answersLent(): boolean {
    return this.#lent
  }

  get link(): FrameLink {
    return this.#o.link
  }

  start(): void {
    const timed = this.#o.onResponse !== undefined
    this.#o.link.onFrame((frame, acked, resync, answer) => {
      // A request the link answered from offers has no response of the core's to time.
      if (timed && answer === undefined && isVdpEcpdu(frame)) this.#requestReadUs = this.#o.clock.nowUs()
      this.#step((core, nowUs) => core.handleFrame(nowUs, frame, acked, resync, answer))
      this.#requestReadUs = -1
    })
    this.#o.link.onError?.((e) => {
      this.#o.log.warn('link-error', { port: this.#o.link.name, code: e.code, fatal: e.fatal, syscall: e.syscall })
      this.#o.onLinkError?.(e)
    })
    this.#drain()
  }

  /** Bridge after a restart: replays a held VSI (`PortCore.restoreVsi`). */
  restore(vsi: Parameters<PortCore['restoreVsi']>[1]): void {
    this.#step((core, nowUs) => core.restoreVsi(nowUs, vsi), true)
  }

  /** Runs a local command; a `LocalProtocolError` propagates to the caller. */
  command(cmd: PortCommand): void {
    this.#step((core, nowUs) => core.handleCommand(nowUs, cmd), true)
  }

  #step(mutate: (core: PortCore, nowUs: number) => void, rethrowLocal = false): void {
    if (this.#closed) return
    // ACKs absorbed on any port since the last step first (a no-op when called from inside).
    this.#o.absorbedAcks?.collect()
    try {
      if (this.#lent) {
        this.#lent = false
        this.#core.takeBackLoan(this.#o.clock.nowUs(), this.#o.link.answers!.takeBack())
      }
      mutate(this.#core, this.#o.clock.nowUs())
      this.#core.endStep(this.#o.clock.nowUs())
    } catch (e) {
      if (e instanceof AssertionError) {
        this.#reset(e)
      } else if (rethrowLocal) {
        this.#drain()
        throw e
      } else {
        // Peer input never throws out of the core by contract; anything else is a bug too.
        this.#reset(new AssertionError(`Port core threw ${(e as Error)?.name}: ${(e as Error)?.message}`))
      }
    }
    this.#drain()
  }

  #reset(error: AssertionError): void {
    this.coreResets++
    this.#o.log.error('port-core-reset', { port: this.#o.link.name, error })
    this.#o.onCoreReset?.(error)
    this.#core = this.#newCore()
  }

  #drain(): void {
    if (this.#closed) return
    const core = this.#core
    let any = false
    for (let e = core.pollEvent(); e !== undefined; e = core.pollEvent()) {
      any = true
      try {
        this.#o.onEvent(e)
      } catch (err) {
        this.#o.log.error('event-sink-failed', { port: this.#o.link.name, kind: e.kind, error: err })
      }
    }
    if (any) this.#o.onDrained?.()
    this.#arm(core.nextDeadlineUs())
    const link = this.#o.link
    if (link.ackEcp !== undefined && core.peersVersion !== this.#ackedPeersVersion) {
      this.#ackedPeersVersion = core.peersVersion
      link.ackEcp(core.ecpAckOffload())
    }
    if (this.#absorbing) this.#syncAbsorb(core)
    if (!this.#lent && this.#o.link.answers !== undefined) {
      const loan = core.answerLoan()
      if (loan !== undefined) {
        this.#o.link.answers.lend(loan)
        this.#lent = true
      }
    }
  }

  /** Tells the link which ACKs to take in, if the core's ECP transmit state moved since. */
  #syncAbsorb(core: PortCore): void {
    if (core.ecpTxVersion === this.#absorbTxVersion && core.peersVersion === this.#absorbPeersVersion) return
    this.#absorbTxVersion = core.ecpTxVersion
    this.#absorbPeersVersion = core.peersVersion
    const link = this.#o.link
    try {
      link.absorbEcpAcks!(core.ecpAckAbsorb())
    } catch (e) {
      this.#absorbing = false
      this.#unregisterAbsorbed?.()
      this.#o.log.warn('ecp-ack-absorb-off', { port: link.name, error: e })
    }
  }

  #arm(atUs: number | undefined): void {
    this.#deadlines.set(this.#deadline, atUs)
  }

  close(): void {
    this.#closed = true
    this.#o.link.ackEcp?.(undefined)
    // Closing the link takes its filter and map entry with it.
    this.#unregisterAbsorbed?.()
    this.#deadlines.set(this.#deadline, undefined)
    this.#o.link.close()
  }
}
