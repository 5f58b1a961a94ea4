/**
 * The agent: composition of the pure cores with the real world. One `PortDriver` per port,
 * one resource manager (VID pools and policy) shared by all ports of the switch, one data-
 * plane driver kept in step by `DataplaneSync`, the MQTT uplink with its durable outbox,
 * the local control socket and the Prometheus endpoint.
 *
 * Restart rule: every change of the resource manager's holdings is appended to a journal
 * before the station is answered (`runtime/state-journal.ts`), and the holdings are written to
 * `<stateDir>/resources.json` (atomically, coalesced) shortly after. At start the file and the
 * journal are imported, the data plane is reconciled against them (nothing flaps: what is
 * already programmed stays), each held VSI is answered as if its station had repeated the
 * request, and the stations' keep-alives re-confirm it with the same VID. What no station
 * confirms within the longest keep-alive timeout is released then.
 *
 * @module
 */
import { randomBytes, randomInt } from 'node:crypto'
import { existsSync, mkdirSync, readFileSync } from 'node:fs'
import { createServer, type Server } from 'node:http'
import { join } from 'node:path'
import type { Command } from '../shared/api/commands.ts'
import type { SwitchPolicy } from '../shared/api/policy.ts'
import { type Mac } from '../shared/ethernet/mac.ts'
import { portName, type PortName, type VsiIdHex } from '../shared/ids.ts'
import type { VsiMode } from '../shared/vdp/constants.ts'
import type { FilterEntry, VsiId } from '../shared/vdp/types.ts'
import type { AgentConfig } from './config.ts'
import { openDataplane } from './dataplane/open.ts'
import { writeFileAtomic } from './dataplane/ownership.ts'
import type { DataplaneDriver, VsiStateChange } from './dataplane/driver.ts'
import { createDataplaneSync, type DataplaneSync } from './dataplane/sync.ts'
import type { PortEvent, VsiRef } from './port/events.ts'
import { PortCore, type PortCommand, type VsiRequestCommand } from './port/port-core.ts'
import { LocalProtocolError } from './port/errors.ts'
import { defaultPolicy, policyFromSwitchPolicy, validatePolicy, type Policy } from './resources/policy.ts'
import { createResourceManager, requestTlvOf, type ResourceManagerCore } from './resources/resource-manager.ts'
import { VidPool } from './resources/vid-pool.ts'
import type { Clock } from './runtime/clock.ts'
import { DeadlineTimer } from './runtime/deadline-timer.ts'
import { AbsorbedAckCollector } from './runtime/absorbed-acks.ts'
import type { Logger } from './runtime/logger.ts'
import { MetricsRegistry } from './runtime/metrics.ts'
import { applyJournal, readJournal, StateJournal } from './runtime/state-journal.ts'
import { PortDriver } from './runtime/port-driver.ts'
import { ControlError, startControlServer, type ControlServer } from './control/local-api.ts'
import type { AbsorbedEcpAck, FrameLink } from './transport/frame-link.ts'
import type { CommandOutcome, MqttUplink, UplinkEvent } from './uplink/mqtt-uplink.ts'

export const AGENT_VERSION = '0.1.0'

export interface AgentDeps {
  clock: Clock
  log: Logger
  /** Opens the link of a port (AF_PACKET on a switch, memory links in tests and demos). */
  openLink: (port: AgentConfig['ports'][number]) => FrameLink | Promise<FrameLink>
  /** Creates the uplink when `mqtt.url` is set (injected so the agent bundle stays testable). */
  openUplink?: (args: { config: AgentConfig; bootId: string; bootTimeMs: number; onPolicy: (p: SwitchPolicy, source: 'disk' | 'broker') => void; onCommand: (c: Command) => Promise<CommandOutcome>; onResyncNeeded: () => void; log: Logger }) => Promise<MqttUplink>
  /** Overrides the data-plane driver (tests). */
  dataplane?: DataplaneDriver
  /**
   * The links' collector of the ECP ACKs they took in (the raw socket's
   * `takeAbsorbedEcpAcks`); without it (or with `ecpAckAbsorb` off) every ACK is a frame.
   */
  takeAbsorbedAcks?: () => readonly AbsorbedEcpAck[]
}

/** What a station command waits for. */
export interface StationOutcome {
  outcome: 'associated' | 'pre-associated' | 'deactivated' | 'de-associated' | 'rejected' | 'timeout'
  vsi?: VsiRef
  error?: number
  keep?: boolean
  reason?: string
}

interface Waiter {
  port: string
  vsiId: string
  resolve: (o: StationOutcome) => void
  timer: NodeJS.Timeout
}

const RESOURCES_FILE = 'resources.json'
/**
 * Coalescing delay of state saves, ms: twenty times what the last save took, within
 * [`stateSaveDelayMs` (20 by default), SAVE_DELAY_MAX_MS]. A small table is on disk 20 ms after
 * a change; a save of 10,000 VSIs (about 10 ms of the event loop here) runs at most every
 * 200 ms, so saving takes no more than ~5% of the loop and stays out of ECP's ack timer
 * (2.56 ms at RTE 8). The journal holds the changes in between.
 */
const SAVE_DELAY_MAX_MS = 1000
const SAVE_COST_FACTOR = 20
const STATION_FILE = 'station-vsis.json'
/** VSIs serialised per event-loop turn when saving (see `#resourcesJson`). */
const SAVE_SLICE_VSIS = 500

export class Agent {
  readonly config: AgentConfig
  readonly bootId = randomBytes(8).toString('hex')
  readonly bootTimeMs: number
  readonly metrics = new MetricsRegistry()
  readonly #deps: AgentDeps
  readonly #log: Logger
  readonly #drivers = new Map<string, PortDriver>()
  #rm!: ResourceManagerCore
  #journal: StateJournal | undefined
  #policy: Policy = defaultPolicy
  #dataplane!: DataplaneDriver
  #sync!: DataplaneSync
  #uplink: MqttUplink | undefined
  #control: ControlServer | undefined
  #http: Server | undefined
  #waiters: Waiter[] = []
  /**
   * Station role: the VSIs this host wants, re-requested after a restart, as the JSON of
   * `{ port, command }` (built once per command, not at every save).
   */
  readonly #stationDesired = new Map<string, string>()
  /** Counts changes of `#stationDesired` (with the resource manager's, what a save covers). */
  #stationChanges = 0
  /** Change count that the last data-plane flush and save request covered. */
  #handledChanges = 0
  /**
   * Resolved at the end of `start()`: the uplink connects before the ports exist, and a fleet
   * command delivered at once (the edge sends open commands when the switch comes online) must
   * see the ports and the VSIs restored from the state directory.
   */
  #markReady: () => void = () => {}
  readonly #ready = new Promise<void>((resolve) => (this.#markReady = resolve))
  #saveTimer: NodeJS.Timeout | undefined
  #saving: Promise<void> | undefined
  #saveDirty = false
  /** Event-loop time the last save's serialisation took, ms. */
  #lastSaveMs = 0
  #unconfirmedTimer: NodeJS.Timeout | undefined
  #stopped = false
  readonly #events
  readonly #eventsDropped

  private constructor(config: AgentConfig, deps: AgentDeps) {
    this.config = config
    this.#deps = deps
    this.#log = deps.log.child({ switchId: config.switchId })
    this.bootTimeMs = deps.clock.wallMs()
    this.#events = this.metrics.counter('vdp_agent_events_total', 'Port events by kind')
    this.#eventsDropped = this.metrics.counter('vdp_agent_uplink_events_dropped_total', 'Events the uplink refused (outbox full or invalid)')
  }

  /**
   * @example
   * ```ts
   * const agent = await Agent.start(config, { clock: monotonicClock, log, openLink: (p) => openAfPacketLink(p.name) })
   * ```
   */
  static async start(config: AgentConfig, deps: AgentDeps): Promise<Agent> {
    const a = new Agent(config, deps)
    try {
      await a.#start()
    } catch (e) {
      await a.stop().catch(() => {})
      throw e
    }
    return a
  }

  async #start(): Promise<void> {
    const c = this.config
    mkdirSync(c.stateDir, { recursive: true, mode: 0o700 })
    this.#policy = c.policy === undefined ? defaultPolicy : validatePolicy(c.policy)
    if (c.role === 'bridge') {
      const journalFailures = this.metrics.counter('vdp_agent_state_journal_failures_total', 'Failed writes or removals of the state journal')
      this.#journal = new StateJournal(c.stateDir, (error) => {
        journalFailures.inc()
        this.#log.error('state-journal-failed', { error })
      })
    }
    const journal = this.#journal
    this.#rm = createResourceManager(this.#policy, VidPool.parse(this.#policy.vidPool ?? c.vidPool), {
      vsiCountMax: 65_536,
      ...(journal === undefined ? {} : {
        onHoldingChange: (ch) => journal.append(ch.kind === 'hold' ? { hold: ch.vsi } : { drop: { port: ch.port, vsiId: ch.vsiId } }),
      }),
    })
    const restored = this.#restoreResources()

    this.#dataplane = this.#deps.dataplane ?? (await openDataplane({
      dataplane: c.dataplane,
      stateDir: c.stateDir,
      sonic: c.sonic,
      linux: c.linux,
      logger: this.#dataplaneLogger(),
    }))
    const dpFailures = this.metrics.counter('vdp_agent_dataplane_failures_total', 'Failed data-plane applies or reconciles')
    // The data-plane changes also tell the fleet which VLANs this switch uses.
    const rm = this.#rm
    const source = {
      pollDataplaneChanges: () => {
        const ops = rm.pollDataplaneChanges()
        for (const op of ops) {
          if (op.op === 'vlan-add') this.#publish({ kind: 'vlan-allocated', vid: op.vid, ...(op.vni !== undefined ? { vni: op.vni } : {}), reason: 'first-vsi' })
          else if (op.op === 'vlan-del') this.#publish({ kind: 'vlan-released', vid: op.vid, ...(op.vni !== undefined ? { vni: op.vni } : {}), reason: 'last-vsi-left' })
        }
        return ops
      },
      dataplaneState: () => rm.dataplaneState(),
    }
    const dpCommit = this.metrics.histogram(
      'vdp_agent_dataplane_commit_seconds',
      'From the VDP responses of a step leaving to the data plane holding their changes',
      [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1],
    )
    this.#sync = createDataplaneSync(source, this.#dataplane, {
      logger: this.#dataplaneLogger(),
      onFailure: (e) => {
        dpFailures.inc()
        this.#log.warn('dataplane-failed', { error: e })
      },
      onCommit: (_ops, seconds) => dpCommit.observe(seconds, { dataplane: this.#dataplane.kind }),
    })
    const report = await this.#sync.reconcile()
    if (report) this.#log.info('dataplane-reconciled', { ...report })
    if (c.role === 'bridge' && this.#dataplane.publishVsiState) {
      await this.#dataplane.publishVsiState(this.#rm.heldVsis().filter((v) => v.mode !== 'de-associate').map((v) => ({ kind: 'set' as const, row: this.#stateRow(v.port, v.vsiId, v.mode, v.entries, v.station, v.managerId, v.typeId, v.typeVersion) })), { replaceAll: true }).catch((e) => this.#log.warn('vsi-state-publish-failed', { error: e }))
    }

    if (c.mqtt.url !== '' && this.#deps.openUplink) {
      this.#uplink = await this.#deps.openUplink({
        config: c,
        bootId: this.bootId,
        bootTimeMs: this.bootTimeMs,
        onPolicy: (p, source) => this.#applyFleetPolicy(p, source),
        onCommand: (cmd) => this.#runFleetCommand(cmd),
        onResyncNeeded: () => this.#resendSnapshot(),
        log: this.#log.child({ part: 'uplink' }),
      })
    }

    // A new sequence space each run (stations count from 1: stay well away from it), so a
    // station does not take the restarted agent's first ECPDU for a duplicate.
    const firstSequence = 0x4000 + randomInt(0x8000)
    // One Node timer for every port's next deadline (deadline-timer.ts).
    const deadlines = new DeadlineTimer(this.#deps.clock)
    const responseTime = this.metrics.histogram(
      'vdp_agent_vdp_response_seconds',
      'From reading a frame with a VDP request to the first VDP response of that step leaving (inside the agent; requests answered in the step that read them, not those the raw socket answered)',
      [0.00001, 0.000025, 0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.1],
    )
    const takeAbsorbed = this.#deps.takeAbsorbedAcks
    const absorbedAcks = c.ecpAckAbsorb && takeAbsorbed !== undefined ? new AbsorbedAckCollector(takeAbsorbed) : undefined
    for (const spec of c.ports) {
      const link = await this.#deps.openLink(spec)
      const mac = spec.mac ?? link.mac
      const makeCore = () =>
        new PortCore(
          {
            port: portName(spec.name),
            mac,
            role: c.role,
            evb: { ...c.evb },
            lldp: { txIntervalUs: c.lldpTxIntervalS * 1_000_000 },
            ecpDestination: spec.ecpDestination ?? 'ncb-group',
            ecpTxGapUs: c.ecpTxGapUs,
            ecpTxBurstGapUs: c.ecpTxBurstGapUs,
            bridgeFirstSequence: firstSequence,
            vsiCountMax: 65_536,
          },
          c.role === 'bridge' ? this.#rm : undefined,
          this.#deps.clock.nowUs(),
        )
      const driver = new PortDriver({
        link,
        clock: this.#deps.clock,
        deadlines,
        ...(absorbedAcks ? { absorbedAcks } : {}),
        answers: c.keepAliveAnswers,
        offers: c.answerOffers,
        ...(c.role === 'bridge' ? { onResponse: responseTime.bind({ port: spec.name }) } : {}),
        makeCore,
        onEvent: (e) => this.#onPortEvent(spec.name, e),
        onDrained: () => this.#afterDrain(),
        onCoreReset: () => this.metrics.counter('vdp_agent_core_resets_total', 'Port cores discarded after a failed assertion').inc({ port: spec.name }),
        log: this.#log.child({ port: spec.name }),
      })
      this.#drivers.set(spec.name, driver)
    }
    for (const d of this.#drivers.values()) d.start()
    this.#registerMetrics()
    if (c.role === 'bridge' && restored > 0) this.#replayRestored()

    if (restored > 0) {
      // Stations re-confirm within toutKeepAlive; whatever stays silent is released then.
      const graceMs = Math.ceil(Math.max(...[...this.#drivers.values()].map((d) => d.core.operational().toutKeepAliveUs)) / 1000) + 1000
      this.#unconfirmedTimer = setTimeout(() => {
        const dropped = this.#rm.dropUnconfirmed()
        if (dropped.length) this.#log.info('restored-vsis-released', { count: dropped.length })
        this.#afterDrain()
      }, graceMs)
      this.#unconfirmedTimer.unref()
    }
    if (c.role === 'station') this.#restoreStation()

    this.#control = await startControlServer(c.controlSocket, this.#controlHandlers(), this.#log.child({ part: 'control' }))
    if (c.metricsListen !== '') this.#http = await this.#startHttp(c.metricsListen)
    this.#publish({ kind: 'agent-started', agentVersion: AGENT_VERSION, role: c.role, ports: c.ports.map((p) => portName(p.name)), reason: restored ? `restored ${restored} VSIs` : 'start' })
    this.#log.info('agent-ready', { role: c.role, ports: c.ports.map((p) => p.name), dataplane: this.#dataplane.kind, restored, bootId: this.bootId })
    this.#markReady()
  }

  /** The data plane logs sentences; they go out under one stable event name. */
  #dataplaneLogger() {
    const log = this.#log
    return {
      debug: (msg: string, f?: Record<string, unknown>) => log.debug('dataplane', { msg, ...f }),
      info: (msg: string, f?: Record<string, unknown>) => log.info('dataplane', { msg, ...f }),
      warn: (msg: string, f?: Record<string, unknown>) => log.warn('dataplane', { msg, ...f }),
    }
  }

  // ----------------------------------------------------------------------------------------
  // State files

  /** The state file, then the journal's changes since it was written. */
  #restoreResources(): number {
    const dir = this.config.stateDir
    const file = join(dir, RESOURCES_FILE)
    const journal = this.#journal === undefined ? { records: [], skipped: 0, segments: 0 } : readJournal(dir)
    if (!existsSync(file) && journal.records.length === 0) return 0
    try {
      const snapshot = existsSync(file) ? (JSON.parse(readFileSync(file, 'utf8')) as unknown) : { version: 1, policyRevision: 0, vsis: [] }
      if (journal.records.length > 0 && typeof snapshot === 'object' && snapshot !== null && Array.isArray((snapshot as { vsis?: unknown }).vsis)) {
        const s = snapshot as { vsis: unknown[] }
        s.vsis = applyJournal(s.vsis, journal.records)
      }
      const report = this.#rm.importSnapshot(snapshot)
      for (const d of report.dropped) this.#log.warn('restore-dropped', { ...d })
      this.#log.info('resources-restored', {
        restored: report.restored,
        dropped: report.dropped.length,
        journalRecords: journal.records.length,
        journalLinesSkipped: journal.skipped,
      })
      return report.restored
    } catch (e) {
      this.#log.error('restore-failed', { file, error: e })
      return 0
    }
  }

  /**
   * Hands every restored VSI to its port core as if its station had just repeated the
   * request: same VIDs (the resource manager holds them), an answer to the station, keep-alive
   * supervision from now on, and fresh events for the fleet (the edge expects a restarted
   * switch to announce again what it holds).
   */
  #replayRestored(): void {
    let replayed = 0
    for (const v of this.#rm.heldVsis()) {
      const d = this.#drivers.get(v.port)
      if (!d) continue
      try {
        d.restore({ peer: v.station, managerId: v.managerId, tlv: requestTlvOf(v) })
        replayed++
      } catch (e) {
        this.#log.warn('restore-replay-failed', { port: v.port, vsiId: v.vsiId, error: e })
      }
    }
    this.#log.info('restored-vsis-replayed', { count: replayed })
  }

  /**
   * Saves are coalesced: at most one runs at a time, and changes during a save schedule one
   * more after it. What changed since the last save is in the journal, written before each
   * answer, so a killed agent restores it too and answers those VSIs at restart
   * (`#replayRestored`): a station that repeats a keep-alive the outage left unanswered keeps
   * its VSI. (Without the journal, a VSI associated within the save delay before a kill was
   * lost, and lldpad, which gives up on such a keep-alive, dropped it.)
   */
  #scheduleSave(): void {
    this.#saveDirty = true
    if (this.#saveTimer !== undefined || this.#saving || this.#stopped) return
    const least = this.config.stateSaveDelayMs
    const delayMs = Math.min(Math.max(SAVE_DELAY_MAX_MS, least), Math.max(least, SAVE_COST_FACTOR * this.#lastSaveMs))
    this.#saveTimer = setTimeout(() => {
      this.#saveTimer = undefined
      void this.#saveNow()
    }, delayMs)
  }

  async #saveNow(): Promise<void> {
    if (this.#saving) {
      await this.#saving
      if (!this.#saveDirty) return
    }
    this.#saveDirty = false
    this.#saving = this.#writeState()
    try {
      await this.#saving
    } finally {
      this.#saving = undefined
    }
    if (this.#saveDirty && !this.#stopped) this.#scheduleSave()
  }

  /**
   * The resource snapshot as JSON, built in slices of `SAVE_SLICE_VSIS` with the event loop
   * free in between: at 10,000 VSIs one piece would hold it for ~10 ms, longer than ECP's
   * retry window at RTE 8. `busyMs` adds up the time the slices took.
   */
  async #resourcesJson(busy: { ms: number }): Promise<string> {
    let t0 = performance.now()
    const view = this.#rm.snapshotView()
    const parts: string[] = []
    for (let i = 0; i < view.vsis.length; i++) {
      parts.push(JSON.stringify(view.vsis[i]))
      if ((i + 1) % SAVE_SLICE_VSIS === 0 && i + 1 < view.vsis.length) {
        busy.ms += performance.now() - t0
        await new Promise((r) => setImmediate(r))
        t0 = performance.now()
      }
    }
    const json = `{"version":1,"policyRevision":${JSON.stringify(view.policyRevision)},"vsis":[${parts.join(',')}]}`
    busy.ms += performance.now() - t0
    return json
  }

  async #writeState(): Promise<void> {
    try {
      const busy = { ms: 0 }
      // Same turn as the snapshot `#resourcesJson` takes: the file covers this segment.
      const covered = this.#journal?.rotate()
      const resources = await this.#resourcesJson(busy)
      const t0 = performance.now()
      const station = this.config.role === 'station' ? `[${[...this.#stationDesired.values()].join(',')}]` : undefined
      this.#lastSaveMs = busy.ms + performance.now() - t0
      await writeFileAtomic(join(this.config.stateDir, RESOURCES_FILE), resources)
      if (covered !== undefined) this.#journal?.removeUpTo(covered)
      if (station !== undefined) await writeFileAtomic(join(this.config.stateDir, STATION_FILE), station)
    } catch (e) {
      this.#log.error('state-save-failed', { error: e })
    }
  }

  #restoreStation(): void {
    const file = join(this.config.stateDir, STATION_FILE)
    if (!existsSync(file)) return
    try {
      const list = JSON.parse(readFileSync(file, 'utf8')) as Array<{ port: string; command: VsiRequestCommand }>
      for (const { port, command } of list) {
        const d = this.#drivers.get(port)
        if (!d) continue
        this.#stationDesired.set(`${port}|${command.vsiId.id}`, JSON.stringify({ port, command }))
        try {
          d.command(command)
        } catch (e) {
          this.#log.warn('station-restore-failed', { port, vsiId: command.vsiId.id, error: e })
        }
      }
      this.#log.info('station-vsis-restored', { count: list.length })
    } catch (e) {
      this.#log.error('restore-failed', { file, error: e })
    }
  }

  // ----------------------------------------------------------------------------------------
  // Events

  /**
   * After a drain that produced events: only a change of what the state file holds (VSIs
   * granted or released, station wishes) needs a data-plane flush and a save. Counters,
   * peer and EVB events do not; saving 10,000 VSIs for each of them stalled the loop.
   */
  #afterDrain(): void {
    const changes = this.#rm.changes + this.#stationChanges
    if (changes === this.#handledChanges) return
    this.#handledChanges = changes
    void this.#sync.flush()
    this.#scheduleSave()
  }

  #setStationDesired(key: string, entry: { port: string; command: VsiRequestCommand } | undefined): void {
    if (entry === undefined) {
      if (this.#stationDesired.delete(key)) this.#stationChanges++
      return
    }
    this.#stationDesired.set(key, JSON.stringify(entry))
    this.#stationChanges++
  }

  #onPortEvent(port: string, e: PortEvent): void {
    this.#events.inc({ kind: e.kind })
    switch (e.kind) {
      case 'vsi-associated':
      case 'vsi-pre-associated':
      case 'vsi-deactivated': {
        const mode: VsiMode = e.kind === 'vsi-associated' ? 'associate' : e.rr ? 'pre-associate-rr' : 'pre-associate'
        this.#log.info(e.kind, { port, station: e.vsi.peer, vsiId: e.vsi.vsiId.id, vids: e.vsi.entries.map((x) => x.vid) })
        this.#publish({ ...this.#vsiFields(port, e.vsi, e.transition), kind: e.kind, ...(e.kind === 'vsi-deactivated' ? { initiator: 'station' as const } : {}) } as UplinkEvent)
        if (this.config.role === 'bridge') this.#publishState([{ kind: 'set', row: this.#stateRow(portName(port), e.vsi.vsiId.id, mode, e.vsi.entries, e.vsi.peer, e.vsi.managerId, e.vsi.typeId, e.vsi.typeVersion) }])
        this.#settle(port, e.vsi.vsiId.id, { outcome: e.kind === 'vsi-associated' ? 'associated' : e.kind === 'vsi-pre-associated' ? 'pre-associated' : 'deactivated', vsi: e.vsi })
        break
      }
      case 'vsi-de-associated': {
        this.#log.info('vsi-de-associated', { port, station: e.vsi.peer, vsiId: e.vsi.vsiId.id, reason: e.reason })
        const kind = e.reason === 'keepalive-timeout' ? 'vsi-timeout' : 'vsi-de-associated'
        const initiator = e.reason === 'station-request' ? 'station' : e.reason === 'local-command' || e.reason === 'bridge-request' || e.reason === 'answer-mismatch' ? 'bridge' : undefined
        this.#publish({ ...this.#vsiFields(port, e.vsi, e.reason), kind, ...(kind === 'vsi-de-associated' && initiator ? { initiator } : {}) } as UplinkEvent)
        if (this.config.role === 'bridge') this.#publishState([{ kind: 'del', port: portName(port), vsiId: e.vsi.vsiId.id }])
        if (this.config.role === 'station' && e.reason !== 'station-request') this.#setStationDesired(`${port}|${e.vsi.vsiId.id}`, undefined)
        this.#settle(port, e.vsi.vsiId.id, { outcome: 'de-associated', vsi: e.vsi, reason: e.reason })
        break
      }
      case 'vsi-rejected':
        this.#log.info('vsi-rejected', { port, station: e.vsi.peer, vsiId: e.vsi.vsiId.id, error: e.error, keep: e.keep, hard: e.hard })
        this.#publish({ ...this.#vsiFields(port, e.vsi, `error ${e.error}${e.hard ? ' hard' : ''}`), kind: 'vsi-rejected', error: Math.max(1, e.error), keep: e.keep } as UplinkEvent)
        this.#settle(port, e.vsi.vsiId.id, { outcome: 'rejected', vsi: e.vsi, error: e.error, keep: e.keep })
        break
      case 'peer-up':
        this.#log.info('peer-up', { port, peer: e.peer, via: e.via })
        this.#publish({ kind: 'peer-up', port: portName(port), stationMac: e.peer, reason: e.via })
        break
      case 'peer-down':
        this.#log.info('peer-down', { port, peer: e.peer, reason: e.reason })
        this.#publish({ kind: 'peer-down', port: portName(port), stationMac: e.peer, reason: e.reason })
        break
      case 'evb-negotiated':
        this.#log.info('evb-negotiated', { port, peer: e.peer, ...e.operational })
        break
      case 'frame-dropped':
        this.metrics.counter('vdp_agent_frames_dropped_total', 'Frames dropped as malformed or out of protocol').inc({ port, code: e.code })
        this.#log.debug('frame-dropped', { port, code: e.code, offset: e.offset, peer: e.peer })
        break
      case 'ecp-tx-error':
        this.#log.warn('ecp-tx-error', { port, peer: e.peer, sequence: e.sequence, tlvs: e.tlvCount })
        break
      case 'counters':
        break
    }
  }

  #vsiFields(port: string, v: VsiRef, reason: string) {
    const first = v.entries[0]
    const group = v.entries.find((x) => x.groupId !== undefined)?.groupId
    const macs = [...new Set(v.entries.flatMap((x) => (x.mac ? [x.mac] : [])))]
    return {
      port: portName(port),
      stationMac: v.peer,
      managerId: v.managerId,
      typeId: v.typeId,
      typeVersion: v.typeVersion,
      vsiIdFormat: v.vsiId.format,
      vsiId: v.vsiId.id,
      ...(group !== undefined ? { groupId: group, ...((group & 0xffffff) !== 0 ? { vni: group & 0xffffff } : {}) } : {}),
      vid: first?.vid ?? 0,
      macs,
      migration: v.migration,
      reason,
    }
  }

  #publish(e: UplinkEvent): void {
    if (!this.#uplink) return
    try {
      if (this.#uplink.publish(e) === undefined) this.#eventsDropped.inc({ kind: e.kind })
    } catch (err) {
      this.#eventsDropped.inc({ kind: e.kind })
      this.#log.warn('uplink-publish-refused', { kind: e.kind, error: err })
    }
  }

  #stateRow(port: PortName, vsiId: VsiIdHex, mode: VsiMode, entries: FilterEntry[], station: Mac, managerId: VsiRef['managerId'], typeId: number, typeVersion: number) {
    return {
      port,
      vsiId,
      state: mode === 'associate' ? ('associated' as const) : mode === 'pre-associate-rr' ? ('pre-associated-rr' as const) : ('pre-associated' as const),
      entries: entries.map((x) => ({ vid: x.vid, ...(x.groupId !== undefined ? { vni: x.groupId & 0xffffff } : {}), ...(x.mac ? { mac: x.mac } : {}) })),
      station,
      managerId,
      typeId,
      typeVersion,
      updatedMs: this.#deps.clock.wallMs(),
    }
  }

  #publishState(changes: VsiStateChange[]): void {
    if (!this.#dataplane.publishVsiState) return
    this.#dataplane.publishVsiState(changes).catch((e) => this.#log.warn('vsi-state-publish-failed', { error: e }))
  }

  #resendSnapshot(): void {
    for (const [port, d] of this.#drivers) {
      for (const s of d.core.vsiSnapshot()) {
        if (s.confirmedMode === 'associate') this.#publish({ ...this.#vsiFields(port, s.vsi, 'resync'), kind: 'vsi-associated' } as UplinkEvent)
        else if (s.confirmedMode === 'pre-associate' || s.confirmedMode === 'pre-associate-rr') this.#publish({ ...this.#vsiFields(port, s.vsi, 'resync'), kind: 'vsi-pre-associated' } as UplinkEvent)
      }
    }
  }

  // ----------------------------------------------------------------------------------------
  // Station commands (vdpctl associate …) and waiting for their outcome

  #settle(port: string, vsiId: string, outcome: StationOutcome): void {
    const keep: Waiter[] = []
    for (const w of this.#waiters) {
      if (w.port === port && w.vsiId === vsiId) {
        clearTimeout(w.timer)
        w.resolve(outcome)
      } else keep.push(w)
    }
    this.#waiters = keep
  }

  /** Runs a port command; with `waitMs` resolves with the VSI's next outcome. */
  async command(port: string, cmd: PortCommand, waitMs = 0): Promise<StationOutcome | undefined> {
    const d = this.#drivers.get(port)
    if (!d) throw new ControlError('unknown-port', `Cannot run ${cmd.kind}: no port "${port}" (ports: ${[...this.#drivers.keys()].join(', ')})`)
    const vsiId = 'vsiId' in cmd ? cmd.vsiId.id : ''
    const waiting = waitMs > 0 && vsiId
      ? new Promise<StationOutcome>((resolve) => {
          const timer = setTimeout(() => {
            this.#waiters = this.#waiters.filter((w) => w.timer !== timer)
            resolve({ outcome: 'timeout' })
          }, waitMs)
          this.#waiters.push({ port, vsiId, resolve, timer })
        })
      : undefined
    try {
      d.command(cmd)
    } catch (e) {
      if (e instanceof LocalProtocolError) {
        if (waiting) this.#settle(port, vsiId, { outcome: 'timeout' })
        throw new ControlError(e.code, e.message)
      }
      throw e
    }
    if (this.config.role === 'station' && 'vsiId' in cmd) {
      const key = `${port}|${cmd.vsiId.id}`
      this.#setStationDesired(key, cmd.kind === 'de-associate' ? undefined : { port, command: cmd })
      this.#scheduleSave()
    }
    return waiting ? await waiting : undefined
  }

  // ----------------------------------------------------------------------------------------
  // Fleet policy and commands

  #applyFleetPolicy(p: SwitchPolicy, source: 'disk' | 'broker'): void {
    try {
      const policy = policyFromSwitchPolicy(p)
      this.#policy = policy
      this.#rm.setPolicy(policy)
      this.#log.info('policy-applied', { revision: policy.revision, source, vns: policy.vns.length })
    } catch (e) {
      this.#log.warn('policy-rejected', { source, error: e })
    }
  }

  async #runFleetCommand(cmd: Command): Promise<CommandOutcome> {
    await this.#ready
    // 802.1Qbg has no bridge-initiated Associate -> Pre-Associate: it needs the NVO3 protocol
    // extensions, which this agent does not speak yet. Say so rather than de-associate.
    if ('mode' in cmd && (cmd as { mode?: string }).mode === 'deactivate') {
      return { status: 'failed', affected: 0, detail: 'deactivate (associate to pre-associate) from the switch side needs the VDP extensions; not supported' }
    }
    let affected = 0
    const vsiId = 'vsiId' in cmd ? String((cmd as { vsiId: unknown }).vsiId) : undefined
    for (const [port, d] of this.#drivers) {
      if ('port' in cmd && (cmd as { port?: string }).port && (cmd as { port?: string }).port !== port) continue
      for (const s of d.core.vsiSnapshot()) {
        const matchesVsi = vsiId !== undefined && s.vsi.vsiId.id === vsiId
        const vni = 'vni' in cmd ? Number((cmd as { vni: unknown }).vni) : undefined
        const matchesVn = vni !== undefined && s.vsi.entries.some((x) => x.groupId !== undefined && (x.groupId & 0xffffff) === vni)
        if (!matchesVsi && !matchesVn) continue
        try {
          d.command({ kind: 'de-associate', vsiId: s.vsi.vsiId, peer: s.vsi.peer })
          affected++
        } catch (e) {
          this.#log.warn('fleet-command-failed', { port, error: e })
        }
      }
    }
    return { status: affected > 0 ? 'done' : 'not-found', affected } as CommandOutcome
  }

  // ----------------------------------------------------------------------------------------
  // Introspection (vdpctl)

  ports() {
    return [...this.#drivers].map(([name, d]) => ({
      name,
      mac: d.core.config.mac,
      role: d.core.role,
      vsis: d.core.vsiCount,
      peers: d.core.peers().length,
      evb: d.core.operational(),
      link: d.link.stats(),
      // Keep-alive answers by the raw socket: VSIs it holds an answer for, and whether it may
      // answer right now (the port core has nothing to send).
      keepAliveAnswers: { held: d.core.answersHeld, lent: d.answersLent, offers: d.core.offersStored },
      coreResets: d.coreResets,
    }))
  }

  vsis(filter: { port?: string; vsiId?: string; mac?: string } = {}) {
    const rows = []
    for (const [port, d] of this.#drivers) {
      if (filter.port && filter.port !== port) continue
      for (const s of d.core.vsiSnapshot()) {
        if (filter.vsiId && !s.vsi.vsiId.id.startsWith(filter.vsiId.replace(/-/g, '').toLowerCase())) continue
        if (filter.mac && !s.vsi.entries.some((e) => e.mac === filter.mac!.toLowerCase()) && s.vsi.peer !== filter.mac.toLowerCase()) continue
        const nowUs = this.#deps.clock.nowUs()
        rows.push({
          port,
          station: s.vsi.peer,
          vsiId: s.vsi.vsiId,
          managerId: s.vsi.managerId,
          typeId: s.vsi.typeId,
          typeVersion: s.vsi.typeVersion,
          filterFormat: s.vsi.filterFormat,
          entries: s.vsi.entries.map((e) => ({ ...e, ...(e.groupId !== undefined ? { vni: e.groupId & 0xffffff } : {}) })),
          state: s.state,
          mode: s.confirmedMode ?? null,
          pending: s.pendingMode ?? null,
          lastSeenAgoMs: Math.round((nowUs - s.lastSeenUs) / 1000),
          sinceAgoMs: Math.round((nowUs - s.sinceUs) / 1000),
        })
      }
    }
    return rows
  }

  vlans() {
    return this.#rm.vlanUse()
  }

  counters() {
    return [...this.#drivers].map(([name, d]) => ({ port: name, counters: d.core.counters(), link: d.link.stats(), peers: d.core.peers() }))
  }

  status() {
    return {
      switchId: this.config.switchId,
      role: this.config.role,
      version: AGENT_VERSION,
      bootId: this.bootId,
      uptimeS: Math.round((this.#deps.clock.wallMs() - this.bootTimeMs) / 1000),
      ports: this.#drivers.size,
      vsis: [...this.#drivers.values()].reduce((n, d) => n + d.core.vsiCount, 0),
      vlans: this.#rm.vlanCount(),
      policyRevision: this.#policy.revision,
      dataplane: { kind: this.#dataplane.kind, healthy: this.#sync.healthy },
      uplink: this.#uplink ? this.#uplink.metrics() : null,
      memory: (({ rss, heapTotal, heapUsed, external }) => ({ rssBytes: rss, heapTotalBytes: heapTotal, heapUsedBytes: heapUsed, externalBytes: external }))(process.memoryUsage()),
    }
  }

  #controlHandlers() {
    const str = (p: Record<string, unknown>, k: string): string | undefined => (typeof p[k] === 'string' ? (p[k] as string) : undefined)
    const station = (kind: VsiRequestCommand['kind']) => async (p: Record<string, unknown>) => {
      if (this.config.role !== 'station') throw new ControlError('wrong-role', `Cannot ${kind}: this agent runs in bridge role`)
      const port = str(p, 'port') ?? this.config.ports[0]!.name
      const cmd = p.command as VsiRequestCommand
      return this.command(port, { ...cmd, kind }, Number(p.waitMs ?? 0))
    }
    return {
      status: () => this.status(),
      ports: () => this.ports(),
      peers: () => this.counters().map((c) => ({ port: c.port, peers: c.peers })),
      vsis: (p: Record<string, unknown>) => this.vsis({ ...(str(p, 'port') ? { port: str(p, 'port')! } : {}), ...(str(p, 'vsiId') ? { vsiId: str(p, 'vsiId')! } : {}), ...(str(p, 'mac') ? { mac: str(p, 'mac')! } : {}) }),
      vlans: () => this.vlans(),
      counters: () => this.counters(),
      metrics: () => this.metrics.render(),
      associate: station('associate'),
      'pre-associate': station('pre-associate'),
      'pre-associate-rr': station('pre-associate-rr'),
      'de-associate': async (p: Record<string, unknown>) => {
        const port = str(p, 'port') ?? this.config.ports[0]!.name
        const vsiId = p.vsiId as VsiId
        return this.command(port, { kind: 'de-associate', vsiId, ...(str(p, 'peer') ? { peer: str(p, 'peer') as Mac } : {}) }, Number(p.waitMs ?? 0))
      },
      'dataplane-resync': async () => this.#sync.reconcile(),
    }
  }

  #registerMetrics(): void {
    const m = this.metrics
    const per = (f: (d: PortDriver) => number) => () => [...this.#drivers].map(([port, d]) => ({ labels: { port }, value: f(d) }))
    m.collected('vdp_port_vsis', 'VSIs held per port', 'gauge', per((d) => d.core.vsiCount))
    m.collected('vdp_port_peers', 'ECP peers per port', 'gauge', per((d) => d.core.peers().length))
    m.collected('vdp_port_rx_frames_total', 'Frames received by the port core', 'counter', per((d) => d.core.counters().rxFrames))
    m.collected('vdp_port_tx_frames_total', 'Frames sent by the port core', 'counter', per((d) => d.core.counters().txFrames))
    m.collected('vdp_port_decode_errors_total', 'Frames that failed to decode', 'counter', per((d) => d.core.counters().decodeErrors))
    m.collected('vdp_port_ecp_retransmits_total', 'ECP retransmissions', 'counter', per((d) => d.core.counters().txRetransmits))
    m.collected('vdp_port_ecp_tx_errors_total', 'ECPDUs given up after maxRetries', 'counter', per((d) => d.core.counters().txErrors))
    m.collected('vdp_port_rejects_total', 'VDP requests rejected', 'counter', per((d) => d.core.counters().rejects))
    m.collected('vdp_port_keepalives_total', 'VDP keep-alives received (requests repeating the confirmed state)', 'counter', per((d) => d.core.counters().keepalivesRx))
    m.collected('vdp_port_keepalives_answered_total', 'Of those, keep-alives the raw socket answered itself without the port core', 'counter', per((d) => d.core.counters().keepalivesAnswered))
    m.collected('vdp_port_offers_answered_total', 'VDP requests for new VSIs the raw socket answered from the port core\'s offers, ahead of the core', 'counter', per((d) => d.core.counters().offersAnswered))
    m.collected('vdp_port_offer_mismatches_total', 'Answers from offers the port core\'s own decision disagreed with (it then ends a VSI it granted otherwise, or answers as it decided; should stay 0)', 'counter', per((d) => d.core.counters().offerMismatches))
    m.collected('vdp_link_kernel_drops_total', 'Frames the kernel or link dropped', 'counter', per((d) => d.link.stats().drops))
    m.collected('vdp_link_ecp_acks_offloaded_total', 'ECP ACKs the raw socket sent itself, before the port core saw the request', 'counter', per((d) => d.link.stats().offloadedAcks ?? 0))
    m.collected('vdp_link_ecp_acks_absorbed_total', 'ECP ACKs the raw socket took in (eBPF filter) without waking the agent: handed to the port core later, or taken by the socket for its own keep-alive answers', 'counter', per((d) => d.link.stats().absorbedAcks ?? 0))
    m.collected('vdp_vlans', 'VLANs in use on this switch', 'gauge', () => [{ labels: {}, value: this.#rm.vlanCount() }])
    m.collected('vdp_dataplane_healthy', '1 when the data plane is in sync', 'gauge', () => [{ labels: { kind: this.#dataplane.kind }, value: this.#sync.healthy ? 1 : 0 }])
    m.collected('vdp_uplink', 'Uplink and outbox figures', 'gauge', () =>
      this.#uplink ? Object.entries(this.#uplink.metrics()).map(([k, v]) => ({ labels: { metric: k }, value: Number(v) })) : [],
    )
  }

  async #startHttp(listen: string): Promise<Server> {
    const i = listen.lastIndexOf(':')
    const host = listen.slice(0, i).replace(/^\[|\]$/g, '')
    const port = Number(listen.slice(i + 1))
    const server = createServer((req, res) => {
      if (req.url === '/metrics') {
        res.writeHead(200, { 'content-type': 'text/plain; version=0.0.4' }).end(this.metrics.render())
      } else if (req.url === '/healthz') {
        res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ ok: true, dataplane: this.#sync.healthy }))
      } else res.writeHead(404).end()
    })
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject)
      server.listen(port, host, () => resolve())
    })
    return server
  }

  /** Graceful stop (SIGTERM): ports closed, state saved, uplink says offline. The data plane stays as it is. */
  async stop(): Promise<void> {
    if (this.#stopped) return
    this.#stopped = true
    if (this.#saveTimer) clearTimeout(this.#saveTimer)
    if (this.#unconfirmedTimer) clearTimeout(this.#unconfirmedTimer)
    for (const w of this.#waiters) {
      clearTimeout(w.timer)
      w.resolve({ outcome: 'timeout' })
    }
    for (const d of this.#drivers.values()) d.close()
    if (this.#rm) await this.#saveNow()
    this.#journal?.close()
    await this.#control?.close()
    await new Promise<void>((r) => (this.#http ? this.#http.close(() => r()) : r()))
    await this.#sync?.flush().catch(() => {})
    await this.#sync?.close().catch(() => {})
    await this.#uplink?.close().catch(() => {})
    await this.#dataplane?.close().catch(() => {})
    this.#log.info('agent-stopped', {})
  }
}
