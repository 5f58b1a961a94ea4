/**
 * The agent's MQTT uplink: events out through the durable outbox, policy and commands in.
 *
 * Protocol: MQTT 3.1.1 (protocolVersion 4) by default, the one version both the embedded
 * aedes 1.x (3.1.1 only) and mosquitto 2 speak; nothing here needs MQTT 5. Session:
 * `clean=false` with clientId = switch id, so the broker keeps the switch's subscriptions and
 * the commands queued for it while it is away. Topics and payloads come from `shared/api`
 * (`<prefix>/switch/<id>/events|status|policy|commands|replies`, CBOR).
 *
 * Rules:
 * 1. `publish(event)` fills the event header (v, switchId, bootId, bootTime, seq, time), encodes
 *    it and appends it to the outbox. The record is published only after its group commit
 *    (fsync), at QoS 1, in seq order, with at most `inflightMax` unacknowledged PUBLISHes; it
 *    is deleted from the outbox on PUBACK. After a reconnect mqtt.js first re-sends its
 *    in-flight PUBLISHes (same packet ids, persistent session), then the outbox continues.
 *    After a restart every record still in the outbox is published again: duplicates are
 *    possible and carry the same `(switchId, bootId, seq)`.
 * 2. Event seq: 0, 1, 2, … within a boot (`shared/api/events.ts` rule 1). It is derived from
 *    the outbox's persistent record counter minus the first record of the boot, both kept in
 *    the outbox database, so a restart with the same bootId continues the sequence.
 * 3. Status: retained `online` at every connect, retained `offline` as last will and at a
 *    clean `close()`. When the broker has no session for the switch, `online` goes out only
 *    after the SUBACK of the policy and command subscriptions: the edge publishes its open
 *    commands when it sees `online`, and a command published before the subscription exists
 *    would reach nobody.
 * 4. Policy: the retained `policy` topic. A policy for another switch, or one neither newer
 *    by revision nor by `issuedAt` than the one applied, is ignored; an accepted one is written to
 *    `<stateDir>/policy.cbor` (mode 0600: it holds host keys; write, fsync, rename) before the
 *    callback, so after a restart the agent applies the last policy without the edge. Keys are
 *    never logged: only the revision.
 * 5. Commands: executed at most once per command id, across agent restarts: the reply is
 *    kept in the outbox database (fsync) before it is published, and a delivery that arrives
 *    while the same id is executing waits for that execution. Every delivery (QoS 1 may
 *    deliver twice; the edge publishes an open command again when the switch comes online) is
 *    answered with the same reply. A command received after its `expiresAt` is not executed
 *    and is answered `expired`. mqtt.js acknowledges a command on receipt: a crash during
 *    the execution, before the reply is on disk, lets the edge's next copy run it again (for a
 *    disconnect that finds the VSI already gone: `not-found`).
 *
 * @module
 */
import { closeSync, fsyncSync, openSync, readFileSync, renameSync, writeSync } from 'node:fs'
import { join } from 'node:path'
import type { MqttClient, IClientOptions } from 'mqtt'
import { decodeCommand, decodeCommandReply, encodeCommandReply, type Command, type CommandReply } from '../../shared/api/commands.ts'
import { EVENT_SCHEMA_VERSION, encodeEvent, type FleetEvent } from '../../shared/api/events.ts'
import { decodePolicy, type SwitchPolicy } from '../../shared/api/policy.ts'
import { STATUS_SCHEMA_VERSION, encodeSwitchStatus, switchTopic, DEFAULT_TOPIC_PREFIX, validateTopicPrefix } from '../../shared/api/topics.ts'
import type { SwitchId } from '../../shared/ids.ts'
import { connectMqtt } from './mqtt-connect.ts'
import { Outbox, silentLogger, type OutboxMetrics, type OutboxRecord, type UplinkLogger } from './outbox.ts'

type DistributiveOmit<T, K extends PropertyKey> = T extends unknown ? Omit<T, K> : never

/** An event as the agent shell hands it over: the uplink fills the header (`time` defaults to now). */
export type UplinkEvent = DistributiveOmit<FleetEvent, 'v' | 'switchId' | 'bootId' | 'bootTime' | 'seq' | 'time'> & {
  time?: number
}

/** What a command handler answers; the uplink adds v, commandId, switchId and time. */
export type CommandOutcome = Pick<CommandReply, 'status' | 'affected'> & { detail?: string }

export interface MqttUplinkConfig {
  /** `mqtt://host:port` or `mqtts://host:port`. */
  url: string
  switchId: SwitchId
  /** Broker username; default: the switch id (what the broker ACL pattern `%u` expects). */
  username?: string
  password?: string
  topicPrefix?: string
  /** The agent's `--state-dir`: outbox database and last policy. */
  stateDir: string
  /** Random per agent start (`shared/api/fields.ts` bootIdField: 8..64 of [A-Za-z0-9-]). */
  bootId: string
  /** Wall-clock start of this boot, ms since the epoch. */
  bootTimeMs: number
  agentVersion: string
  /** Unacknowledged PUBLISHes at once. */
  inflightMax?: number
  keepaliveS?: number
  reconnectPeriodMs?: number
  connectTimeoutMs?: number
  /** 4 = MQTT 3.1.1 (default), 5 = MQTT 5. */
  protocolVersion?: 4 | 5
  outboxBytesMax?: number
  outboxEventsMax?: number
  /** Extra TLS options for `mqtts://` (CA, client certificate). */
  tls?: import('node:tls').ConnectionOptions
}

type DefaultedKeys = 'topicPrefix' | 'inflightMax' | 'keepaliveS' | 'reconnectPeriodMs' | 'connectTimeoutMs' | 'protocolVersion'
type ResolvedUplinkConfig = MqttUplinkConfig & Required<Pick<MqttUplinkConfig, DefaultedKeys>>

export const defaultMqttUplinkConfig: Required<Pick<MqttUplinkConfig, DefaultedKeys>> = {
  topicPrefix: DEFAULT_TOPIC_PREFIX,
  inflightMax: 256,
  keepaliveS: 30,
  reconnectPeriodMs: 1000,
  connectTimeoutMs: 10_000,
  protocolVersion: 4,
}

export interface UplinkHandlers {
  /** A policy to apply: from disk at start (`'disk'`), then each newer one from the broker. */
  onPolicy?(policy: SwitchPolicy, source: 'disk' | 'broker'): void
  /** Executes a command; the returned outcome is published on `replies`. */
  onCommand?(command: Command): CommandOutcome | Promise<CommandOutcome>
  /** Connected (again). `sessionPresent` false means the broker forgot the session. */
  onConnected?(info: { sessionPresent: boolean }): void
  /** The outbox refused events and has room again: re-send the association snapshot. */
  onResyncNeeded?(): void
}

export interface UplinkMetrics extends OutboxMetrics {
  uplink_connected: number
  uplink_connects_total: number
  uplink_published_total: number
  uplink_acked_total: number
  uplink_inflight: number
  uplink_policy_applied_total: number
  uplink_policy_rejected_total: number
  uplink_commands_total: number
  uplink_command_errors_total: number
}

export class MqttUplink {
  readonly outbox: Outbox
  readonly #client: MqttClient
  readonly #config: ResolvedUplinkConfig
  readonly #handlers: UplinkHandlers
  readonly #log: UplinkLogger
  readonly #bootFirstRecordSeq: number
  readonly #topics: { events: string; status: string; policy: string; commands: string; replies: string }
  /** Committed records not yet handed to mqtt.js, in seq order (a queue with a head index). */
  #queue: OutboxRecord[] = []
  #queueHead = 0
  #inflight = 0
  #policyRevision = -1
  #policyIssuedAtMs = -1
  /** Commands being executed: a second delivery waits for the first one's reply. */
  readonly #executing = new Map<string, Promise<CommandReply>>()
  #closed = false
  #corked = false
  #disconnectedAtMs: number | undefined
  #drainWaiters: (() => void)[] = []
  readonly #m = {
    uplink_connects_total: 0,
    uplink_published_total: 0,
    uplink_acked_total: 0,
    uplink_policy_applied_total: 0,
    uplink_policy_rejected_total: 0,
    uplink_commands_total: 0,
    uplink_command_errors_total: 0,
  }

  private constructor(config: MqttUplinkConfig, handlers: UplinkHandlers, log: UplinkLogger) {
    const c: ResolvedUplinkConfig = { ...config, ...withDefaults(config) }
    validateTopicPrefix(c.topicPrefix)
    if (!Number.isInteger(c.inflightMax) || c.inflightMax < 1 || c.inflightMax > 65_000) {
      throw new Error(`Cannot create uplink: inflightMax ${c.inflightMax} is not an integer in 1..65000`)
    }
    this.#config = c
    this.#handlers = handlers
    this.#log = log
    const topic = (ch: 'events' | 'status' | 'policy' | 'commands' | 'replies') => switchTopic(c.topicPrefix, c.switchId, ch)
    this.#topics = {
      events: topic('events'),
      status: topic('status'),
      policy: topic('policy'),
      commands: topic('commands'),
      replies: topic('replies'),
    }
    this.outbox = Outbox.open(
      {
        stateDir: c.stateDir,
        ...(c.outboxBytesMax !== undefined ? { outboxBytesMax: c.outboxBytesMax } : {}),
        ...(c.outboxEventsMax !== undefined ? { outboxEventsMax: c.outboxEventsMax } : {}),
      },
      log,
    )
    this.#bootFirstRecordSeq = this.#bootStart()
    this.#queue = this.outbox.unacked()
    this.outbox.onCommitted((records) => {
      for (const r of records) this.#queue.push(r)
      this.#pump()
    })
    this.outbox.onResyncNeeded(() => this.#handlers.onResyncNeeded?.())
    this.#loadPolicyFromDisk()

    const will = encodeSwitchStatus({ v: STATUS_SCHEMA_VERSION, switchId: c.switchId, state: 'offline', agentVersion: c.agentVersion })
    const options: IClientOptions = {
      clientId: c.switchId,
      clean: false,
      protocolVersion: c.protocolVersion,
      username: c.username ?? c.switchId,
      keepalive: c.keepaliveS,
      reconnectPeriod: c.reconnectPeriodMs,
      connectTimeout: c.connectTimeoutMs,
      resubscribe: false,
      queueQoSZero: false,
      will: { topic: this.#topics.status, payload: Buffer.from(will), qos: 1, retain: true },
    }
    if (c.password !== undefined) options.password = c.password
    this.#client = connectMqtt(c.url, options, c.tls ?? {})
    this.#client.on('connect', (connack) => this.#onConnect(connack.sessionPresent))
    this.#client.on('close', () => this.#onClose())
    this.#client.on('error', (err) => this.#log.warn('MQTT uplink error', { error: err.message }))
    this.#client.on('message', (topic, payload) => this.#onMessage(topic, payload))
  }

  /**
   * Opens the outbox, applies the policy kept on disk (`onPolicy(policy, 'disk')`) and starts
   * connecting in the background (events are accepted at once).
   * @example
   * ```ts
   * const uplink = MqttUplink.open({ url: 'mqtt://edge:1883', switchId: switchId('tor1'), password,
   *   stateDir: '/var/lib/vdp-agent', bootId, bootTimeMs: Date.now(), agentVersion: '0.1.0' },
   *   { onPolicy: (p) => resources.applyPolicy(p), onCommand: (c) => ports.execute(c) }, logger)
   * uplink.publish({ kind: 'peer-up', port, stationMac, reason: 'lldp-evb-negotiated' })
   * ```
   */
  static open(config: MqttUplinkConfig, handlers: UplinkHandlers = {}, log: UplinkLogger = silentLogger): MqttUplink {
    return new MqttUplink(config, handlers, log)
  }

  get connected(): boolean {
    return this.#client.connected
  }

  /**
   * Stores the event durably (group commit at the end of this event-loop turn) and publishes
   * it after that. Returns the event's seq, or `undefined` when the outbox is full and the
   * event was refused (counted in `outbox_dropped_total`). Throws if the event is invalid.
   */
  publish(event: UplinkEvent): number | undefined {
    if (this.#closed) throw new Error('Cannot publish event: the uplink is closed')
    let seq = -1
    const recordSeq = this.outbox.append((recordSeq) => {
      seq = recordSeq - this.#bootFirstRecordSeq
      const full = {
        ...event,
        v: EVENT_SCHEMA_VERSION,
        switchId: this.#config.switchId,
        bootId: this.#config.bootId,
        bootTime: this.#config.bootTimeMs,
        seq,
        time: event.time ?? Date.now(),
      } as FleetEvent
      return encodeEvent(full)
    })
    return recordSeq === undefined ? undefined : seq
  }

  /** Commits staged events now (one fsync): call before acting on an event's durability. */
  flush(): void {
    this.outbox.commit()
  }

  /** Resolves when every event so far is acknowledged by the broker (bounded by `timeoutMs`). */
  drained(timeoutMs = 30_000): Promise<boolean> {
    if (this.outbox.metrics().outbox_events === 0) return Promise.resolve(true)
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.#drainWaiters = this.#drainWaiters.filter((w) => w !== done)
        resolve(false)
      }, timeoutMs)
      const done = () => {
        clearTimeout(timer)
        resolve(true)
      }
      this.#drainWaiters.push(done)
    })
  }

  metrics(): UplinkMetrics {
    return {
      ...this.outbox.metrics(),
      ...this.#m,
      uplink_connected: this.#client.connected ? 1 : 0,
      uplink_inflight: this.#inflight,
    }
  }

  /**
   * Stops: publishes the retained `offline` status when connected (bounded wait), closes
   * the connection without losing the session, and closes the outbox. Unacknowledged events
   * stay on disk for the next start.
   */
  async close(timeoutMs = 2000): Promise<void> {
    if (this.#closed) return
    this.#closed = true
    if (this.#client.connected) {
      const offline = encodeSwitchStatus({
        v: STATUS_SCHEMA_VERSION,
        switchId: this.#config.switchId,
        state: 'offline',
        bootId: this.#config.bootId,
        time: Date.now(),
        agentVersion: this.#config.agentVersion,
      })
      await Promise.race([
        this.#client.publishAsync(this.#topics.status, Buffer.from(offline), { qos: 1, retain: true }).catch(() => undefined),
        new Promise((r) => setTimeout(r, timeoutMs)),
      ])
    }
    // A clean DISCONNECT (the broker then drops the last will: `offline` is already retained),
    // bounded; then force the socket closed in any case.
    await Promise.race([this.#client.endAsync(false).catch(() => undefined), new Promise((r) => setTimeout(r, timeoutMs))])
    this.#client.end(true)
    this.outbox.close()
  }

  #bootStart(): number {
    const stored = this.outbox.getMeta('boot')
    if (typeof stored === 'string') {
      try {
        const b = JSON.parse(stored) as { bootId: string; firstRecordSeq: number }
        if (b.bootId === this.#config.bootId && Number.isSafeInteger(b.firstRecordSeq)) return b.firstRecordSeq
      } catch {
        // A damaged value: start the boot afresh.
      }
    }
    const first = this.outbox.nextSeq
    this.outbox.setMeta('boot', JSON.stringify({ bootId: this.#config.bootId, firstRecordSeq: first }))
    return first
  }

  #onConnect(sessionPresent: boolean): void {
    this.#m.uplink_connects_total++
    const downMs = this.#disconnectedAtMs === undefined ? undefined : Date.now() - this.#disconnectedAtMs
    this.#disconnectedAtMs = undefined
    this.#log.info('MQTT uplink connected', {
      sessionPresent,
      ...(downMs !== undefined ? { disconnectedMs: downMs } : {}),
      backlog: this.outbox.metrics().outbox_events,
    })
    const online = encodeSwitchStatus({
      v: STATUS_SCHEMA_VERSION,
      switchId: this.#config.switchId,
      state: 'online',
      bootId: this.#config.bootId,
      time: Date.now(),
      agentVersion: this.#config.agentVersion,
    })
    const announce = () => this.#client.publish(this.#topics.status, Buffer.from(online), { qos: 1, retain: true })
    if (sessionPresent) announce()
    else {
      this.#client.subscribe([this.#topics.policy, this.#topics.commands], { qos: 1 }, (err, granted) => {
        if (err) this.#log.warn('Cannot subscribe to policy and commands', { error: err.message })
        else if (granted?.some((g) => g.qos === 128)) this.#log.error('Broker refused subscription to policy or commands', {})
        if (this.#client.connected && !this.#closed) announce()
      })
    }
    this.#handlers.onConnected?.({ sessionPresent })
    this.#pump()
  }

  #onClose(): void {
    if (this.#disconnectedAtMs === undefined && !this.#closed) {
      this.#disconnectedAtMs = Date.now()
      this.#log.warn('MQTT uplink disconnected: events stay in the outbox until the broker is back', {
        backlog: this.outbox.metrics().outbox_events,
      })
    }
  }

  /** Hands committed records to mqtt.js while connected and the window has room. */
  #pump(): void {
    const client = this.#client
    if (client.connected && this.#queueHead < this.#queue.length && this.#inflight < this.#config.inflightMax) {
      this.#corkUntilNextTick()
    }
    while (client.connected && !this.#closed && this.#inflight < this.#config.inflightMax && this.#queueHead < this.#queue.length) {
      const record = this.#queue[this.#queueHead++]!
      if (!this.outbox.has(record.seq)) continue // acknowledged meanwhile (re-queued copy)
      this.#inflight++
      this.#m.uplink_published_total++
      const payload = Buffer.from(record.payload.buffer, record.payload.byteOffset, record.payload.byteLength)
      client.publish(this.#topics.events, payload, { qos: 1 }, (err) => this.#onPuback(record, err))
    }
    if (this.#queueHead > 4096 && this.#queueHead * 2 > this.#queue.length) {
      this.#queue = this.#queue.slice(this.#queueHead)
      this.#queueHead = 0
    }
  }

  /** The PUBLISHes of one pump leave in one write instead of one segment each (TCP_NODELAY). */
  #corkUntilNextTick(): void {
    if (this.#corked) return
    const stream = this.#client.stream
    if (typeof stream?.cork !== 'function') return
    this.#corked = true
    stream.cork()
    process.nextTick(() => {
      this.#corked = false
      stream.uncork()
    })
  }

  #onPuback(record: OutboxRecord, err: Error | undefined): void {
    this.#inflight--
    if (this.#closed) return
    if (err) {
      // mqtt.js gave the message up (forced end): publish it again later, in order.
      this.#queue.splice(this.#queueHead, 0, record)
      this.#queue.sort((a, b) => a.seq - b.seq)
    } else {
      this.#m.uplink_acked_total++
      this.outbox.ack(record.seq)
      if (this.#drainWaiters.length > 0 && this.outbox.metrics().outbox_events === 0) {
        const waiters = this.#drainWaiters
        this.#drainWaiters = []
        for (const w of waiters) w()
      }
    }
    this.#pump()
  }

  #onMessage(topic: string, payload: Buffer): void {
    if (topic === this.#topics.policy) this.#onPolicyMessage(payload)
    else if (topic === this.#topics.commands) void this.#onCommandMessage(payload)
  }

  #onPolicyMessage(payload: Buffer): void {
    if (payload.byteLength === 0) return // retained policy cleared: keep the last one
    let policy: SwitchPolicy
    try {
      policy = decodePolicy(payload)
    } catch (err) {
      this.#m.uplink_policy_rejected_total++
      this.#log.warn('Cannot apply policy: it does not decode', { error: err instanceof Error ? err.message : String(err) })
      return
    }
    if (policy.switchId !== this.#config.switchId) {
      this.#m.uplink_policy_rejected_total++
      this.#log.warn('Cannot apply policy: it is for another switch', { policySwitchId: policy.switchId })
      return
    }
    // Re-delivery of the retained message, or an older policy. A policy with a lower revision
    // but a later issuedAt is applied: an edge whose store was re-created counts from 1 again.
    if (policy.revision <= this.#policyRevision && policy.issuedAt <= this.#policyIssuedAtMs) return
    try {
      writeFileAtomic(join(this.#config.stateDir, 'policy.cbor'), payload)
    } catch (err) {
      this.#log.error('Cannot keep policy on disk: applying it anyway', { error: String(err) })
    }
    this.#policyRevision = policy.revision
    this.#policyIssuedAtMs = policy.issuedAt
    this.#m.uplink_policy_applied_total++
    this.#log.info('Policy received', { revision: policy.revision })
    this.#handlers.onPolicy?.(policy, 'broker')
  }

  #loadPolicyFromDisk(): void {
    let bytes: Buffer
    try {
      bytes = readFileSync(join(this.#config.stateDir, 'policy.cbor'))
    } catch {
      return
    }
    try {
      const policy = decodePolicy(bytes)
      if (policy.switchId !== this.#config.switchId) return
      this.#policyRevision = policy.revision
      this.#policyIssuedAtMs = policy.issuedAt
      this.#log.info('Policy loaded from disk', { revision: policy.revision })
      this.#handlers.onPolicy?.(policy, 'disk')
    } catch (err) {
      this.#log.warn('Cannot use the policy kept on disk: waiting for the edge', { error: String(err) })
    }
  }

  async #onCommandMessage(payload: Buffer): Promise<void> {
    let command: Command
    try {
      command = decodeCommand(payload)
    } catch (err) {
      this.#m.uplink_command_errors_total++
      this.#log.warn('Cannot execute command: it does not decode', { error: err instanceof Error ? err.message : String(err) })
      return
    }
    if (command.switchId !== this.#config.switchId) {
      this.#m.uplink_command_errors_total++
      this.#log.warn('Cannot execute command: it is for another switch', { commandId: command.commandId })
      return
    }
    let reply: CommandReply
    try {
      reply = await this.#replyTo(command)
    } catch (err) {
      this.#m.uplink_command_errors_total++
      this.#log.error('Cannot answer command', { commandId: command.commandId, error: String(err) })
      return
    }
    if (this.#closed) return
    this.#client.publish(this.#topics.replies, Buffer.from(encodeCommandReply(reply)), { qos: 1 })
  }

  /** The reply kept on disk, the one of an execution in progress, or a new execution's. */
  #replyTo(command: Command): Promise<CommandReply> {
    const kept = this.outbox.getReply(command.commandId)
    if (kept !== undefined) return Promise.resolve(decodeCommandReply(kept))
    let running = this.#executing.get(command.commandId)
    if (running === undefined) {
      running = this.#execute(command).finally(() => this.#executing.delete(command.commandId))
      this.#executing.set(command.commandId, running)
    }
    return running
  }

  async #execute(command: Command): Promise<CommandReply> {
    this.#m.uplink_commands_total++
    let outcome: CommandOutcome
    if (command.expiresAt !== undefined && Date.now() > command.expiresAt) {
      outcome = { status: 'expired', affected: 0, detail: 'received after its expiresAt: not executed' }
    } else {
      try {
        outcome = this.#handlers.onCommand
          ? await this.#handlers.onCommand(command)
          : { status: 'failed', affected: 0, detail: 'agent has no command handler' }
      } catch (err) {
        this.#m.uplink_command_errors_total++
        outcome = { status: 'failed', affected: 0, detail: String(err instanceof Error ? err.message : err).slice(0, 200) }
      }
    }
    const reply: CommandReply = {
      v: 1,
      commandId: command.commandId,
      switchId: this.#config.switchId,
      time: Date.now(),
      status: outcome.status,
      affected: outcome.affected,
      ...(outcome.detail !== undefined ? { detail: outcome.detail.slice(0, 200) } : {}),
    }
    this.#log.info('Command executed', { commandId: command.commandId, kind: command.kind, status: reply.status, affected: reply.affected })
    if (!this.#closed) {
      try {
        this.outbox.putReply(command.commandId, encodeCommandReply(reply))
      } catch (err) {
        this.#log.error('Cannot keep a command reply on disk: a copy of the command would run again', { commandId: command.commandId, error: String(err) })
      }
    }
    return reply
  }
}

function withDefaults(config: MqttUplinkConfig): Required<Pick<MqttUplinkConfig, DefaultedKeys>> {
  const d = defaultMqttUplinkConfig
  return {
    topicPrefix: config.topicPrefix ?? d.topicPrefix,
    inflightMax: config.inflightMax ?? d.inflightMax,
    keepaliveS: config.keepaliveS ?? d.keepaliveS,
    reconnectPeriodMs: config.reconnectPeriodMs ?? d.reconnectPeriodMs,
    connectTimeoutMs: config.connectTimeoutMs ?? d.connectTimeoutMs,
    protocolVersion: config.protocolVersion ?? d.protocolVersion,
  }
}

/** Write, fsync, rename, fsync the directory: the file is the old or the new one, never torn. */
function writeFileAtomic(path: string, data: Uint8Array): void {
  const tmp = `${path}.tmp`
  const fd = openSync(tmp, 'w', 0o600)
  try {
    writeSync(fd, data)
    fsyncSync(fd)
  } finally {
    closeSync(fd)
  }
  renameSync(tmp, path)
  const dir = openSync(join(path, '..'), 'r')
  try {
    fsyncSync(dir)
  } finally {
    closeSync(dir)
  }
}
