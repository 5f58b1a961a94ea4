/**
 * MQTT ingest of the edge: every switch's events, status and command replies from the broker
 * into the fleet store, and policy and commands back to the switches.
 *
 * Two entries share one core (`EventIngestor`: decode, validate, batch, commit, acknowledge):
 * - `MqttIngest`, an MQTT client of any broker (mosquitto, EMQX, HiveMQ, or the embedded one);
 * - `EmbeddedIngest` (embedded-ingest.ts), a hook inside the embedded aedes broker.
 *
 * Rules:
 * 1. Session: MQTT 3.1.1 (aedes and mosquitto alike), `clean=false`, a fixed clientId, QoS 1
 *    subscriptions, so the broker keeps what arrives while the edge is down (on disk with
 *    mosquitto persistence).
 * 2. Acknowledge after commit: mqtt.js normally PUBACKs a message as soon as its handler
 *    returns. Here `handleMessage` keeps each QoS 1 PUBLISH in the pending batch and tells
 *    mqtt.js to send nothing; the batch goes through `store.applyEvents` (one transaction,
 *    durable when it returns) and only then is a PUBACK sent for each message, in the order
 *    received (MQTT-4.6.0-2). An edge killed mid-batch has acknowledged none of the batch:
 *    the broker delivers it again to the persistent session, and the store drops the
 *    duplicates by `(switchId, bootId, seq)`. PUBACKs owed on a connection that has since
 *    closed are not sent (the broker re-sends those messages anyway). The manual PUBACK goes
 *    through mqtt.js' internal `_sendPacket` (covered by the pipeline tests; mqtt 5.x).
 * 3. Batching: a batch closes at `batchMax` events or at the end of the event-loop turn that
 *    received its first message (every PUBLISH of one socket read is one batch): latency stays
 *    at one commit, throughput rises with load.
 * 4. Validation (`shared/api`): a payload that does not decode, has another schema version or
 *    exceeds `EVENT_BYTES_MAX`, or whose `switchId` is not the switch of its topic, is counted
 *    by reason, logged (rate-limited), acknowledged and dropped: it would fail the same way
 *    on every redelivery. Nothing a switch sends can throw out of this module.
 * 5. Shared subscriptions (`shared: 'group'`): filters become `$share/<group>/…` so several
 *    edge instances split the switches' messages (mosquitto 2, EMQX, HiveMQ; aedes 1.x does not
 *    implement them). Tested with mosquitto 2.0 over MQTT 3.1.1 and 5; for brokers that accept
 *    `$share` only from MQTT 5 clients (HiveMQ), set `protocolVersion: 5`.
 * 6. Store failure (disk full, locked database): the batch is neither acknowledged nor
 *    dropped; it is retried with back-off, and new messages wait behind it in order.
 *
 * @module
 */
import type { IClientOptions, IPublishPacket, MqttClient } from 'mqtt'
import { ApiDecodeError } from '../../shared/api/cbor.ts'
import { decodeCommand, decodeCommandReply, encodeCommand, type Command } from '../../shared/api/commands.ts'
import { decodeEvent, EVENT_BATCH_MAX, type FleetEvent } from '../../shared/api/events.ts'
import { encodePolicy, type SwitchPolicy } from '../../shared/api/policy.ts'
import {
  DEFAULT_TOPIC_PREFIX,
  allSwitchesFilter,
  decodeSwitchStatus,
  parseSwitchTopic,
  sharedFilter,
  switchTopic,
  validateTopicPrefix,
} from '../../shared/api/topics.ts'
import type { SwitchId } from '../../shared/ids.ts'
import type { FleetStore, IngestResult } from '../store/fleet-store.ts'
import { connectMqtt } from '../../agent/uplink/mqtt-connect.ts'

export interface IngestLogger {
  info(msg: string, fields?: Record<string, unknown>): void
  warn(msg: string, fields?: Record<string, unknown>): void
  error(msg: string, fields?: Record<string, unknown>): void
}

/** What the HTTP side of the edge needs from the MQTT side: retained policy and commands. */
export interface EdgeMessaging {
  /** Publishes a switch's policy, retained, QoS 1. */
  publishPolicy(policy: SwitchPolicy): Promise<void>
  /** Removes a switch's retained policy (switch decommissioned). */
  clearPolicy(switchId: SwitchId): Promise<void>
  /** Publishes a command to its switch, QoS 1, not retained. */
  publishCommand(command: Command): Promise<void>
  metrics(): IngestMetrics
  close(): Promise<void>
}

export interface IngestOptions {
  topicPrefix?: string
  /** Events per store transaction at most. */
  batchMax?: number
  migrationGraceMs?: number
}

export interface IngestDeps {
  store: FleetStore
  log?: IngestLogger
  /** Edge clock, ms since the epoch. */
  nowMs?: () => number
  /**
   * Commits one batch; default `store.applyEvents`. `vdp-edge` passes edge/ingest.ts
   * `ingestEvents` so HTTP and MQTT ingestion share counters.
   */
  apply?(events: readonly FleetEvent[]): IngestResult
  /** Each dropped message, by reason (shared counters). */
  onRejected?(reason: IngestRejectReason): void
  /** After each committed batch (metrics, UI push, tests). */
  onCommitted?(events: readonly FleetEvent[], result: IngestResult): void
  /** (Re)connected and subscribed: the place to re-publish retained policies. */
  onReady?(): void
  /**
   * A switch published its `online` status (stored): the place to publish its open commands
   * again. The agent publishes `online` only once its command subscription is in place.
   */
  onSwitchOnline?(switchId: SwitchId): void
}

export type IngestRejectReason =
  | 'malformed-cbor'
  | 'unsupported-version'
  | 'schema'
  | 'too-large'
  | 'switch-mismatch'
  | 'bad-topic'

export interface IngestMetrics {
  ingest_connected: number
  ingest_messages_total: number
  ingest_events_applied_total: number
  ingest_events_duplicate_total: number
  ingest_events_stale_total: number
  ingest_batches_total: number
  ingest_commit_errors_total: number
  ingest_pending: number
  ingest_status_total: number
  ingest_replies_total: number
  /** Commands a switch's client acknowledged (embedded broker only). */
  ingest_commands_delivered_total: number
  ingest_commands_published_total: number
  ingest_policies_published_total: number
  ingest_rejected_total: Record<IngestRejectReason, number>
}

export const defaultIngestOptions: Required<IngestOptions> = {
  topicPrefix: DEFAULT_TOPIC_PREFIX,
  batchMax: EVENT_BATCH_MAX,
  migrationGraceMs: 60_000,
}

interface Pending {
  event: FleetEvent | undefined
  ack: () => void
}

const noLog: IngestLogger = { info() {}, warn() {}, error() {} }

/**
 * The broker-independent core: `submit(topic, payload, ack)` for every message from a switch;
 * `ack` is called, in submission order, once the message is committed or dropped as invalid.
 */
export class EventIngestor {
  readonly prefix: string
  readonly #store: FleetStore
  readonly #log: IngestLogger
  readonly #nowMs: () => number
  readonly #deps: IngestDeps
  readonly #batchMax: number
  readonly #migrationGraceMs: number
  #pending: Pending[] = []
  #flushScheduled = false
  #retryTimer: NodeJS.Timeout | undefined
  #retryDelayMs = 100
  #rejectLogAtMs = 0
  #rejectsUnlogged = 0
  /** Sends a command produced by a batch (migration cleanup) to its switch. */
  publishCommand: (command: Command) => Promise<void> = async () => {}
  readonly m: IngestMetrics = {
    ingest_connected: 0,
    ingest_messages_total: 0,
    ingest_events_applied_total: 0,
    ingest_events_duplicate_total: 0,
    ingest_events_stale_total: 0,
    ingest_batches_total: 0,
    ingest_commit_errors_total: 0,
    ingest_pending: 0,
    ingest_status_total: 0,
    ingest_replies_total: 0,
    ingest_commands_delivered_total: 0,
    ingest_commands_published_total: 0,
    ingest_policies_published_total: 0,
    ingest_rejected_total: {
      'malformed-cbor': 0,
      'unsupported-version': 0,
      schema: 0,
      'too-large': 0,
      'switch-mismatch': 0,
      'bad-topic': 0,
    },
  }

  constructor(options: IngestOptions, deps: IngestDeps) {
    const o = { ...defaultIngestOptions, ...options }
    this.prefix = validateTopicPrefix(o.topicPrefix)
    if (!Number.isInteger(o.batchMax) || o.batchMax < 1 || o.batchMax > EVENT_BATCH_MAX) {
      throw new Error(`Cannot start ingest: batchMax ${o.batchMax} is not an integer in 1..${EVENT_BATCH_MAX}`)
    }
    this.#batchMax = o.batchMax
    this.#migrationGraceMs = o.migrationGraceMs
    this.#store = deps.store
    this.#deps = deps
    this.#log = deps.log ?? noLog
    this.#nowMs = deps.nowMs ?? Date.now
  }

  metrics(): IngestMetrics {
    return { ...this.m, ingest_pending: this.#pending.length, ingest_rejected_total: { ...this.m.ingest_rejected_total } }
  }

  /** True when nothing waits for a commit. */
  get idle(): boolean {
    return this.#pending.length === 0
  }

  /** One message from the broker. Never throws. */
  submit(topicName: string, payload: Uint8Array, ack: () => void): void {
    this.m.ingest_messages_total++
    const topic = parseSwitchTopic(this.prefix, topicName)
    let event: FleetEvent | undefined
    if (topic === undefined) {
      this.#reject('bad-topic', topicName)
    } else if (topic.channel === 'events') {
      event = this.#decodeEvent(payload, topic.switchId, topicName)
    } else {
      this.#handleSideMessage(topic.channel, topic.switchId, payload, topicName)
    }
    this.#pending.push({ event, ack })
    if (this.#retryTimer !== undefined) return // a failed batch goes first
    if (this.#pending.length >= this.#batchMax) this.flush()
    else if (!this.#flushScheduled) {
      this.#flushScheduled = true
      setImmediate(() => {
        this.#flushScheduled = false
        if (this.#retryTimer === undefined) this.flush()
      })
    }
  }

  /** Commits pending events in order (at most batchMax per transaction), then acknowledges. */
  flush(): void {
    while (this.#pending.length > 0) {
      let end = 0
      const batch: FleetEvent[] = []
      while (end < this.#pending.length && batch.length < this.#batchMax) {
        const e = this.#pending[end++]!.event
        if (e !== undefined) batch.push(e)
      }
      if (batch.length > 0) {
        let result: IngestResult
        try {
          result = this.#deps.apply
            ? this.#deps.apply(batch)
            : this.#store.applyEvents(batch, { nowMs: this.#nowMs(), migrationGraceMs: this.#migrationGraceMs })
        } catch (err) {
          this.m.ingest_commit_errors_total++
          this.#log.error('Cannot commit event batch: retrying, nothing acknowledged', {
            events: batch.length,
            retryInMs: this.#retryDelayMs,
            error: String(err),
          })
          this.#retryTimer = setTimeout(() => {
            this.#retryTimer = undefined
            this.flush()
          }, this.#retryDelayMs)
          this.#retryDelayMs = Math.min(this.#retryDelayMs * 2, 5000)
          return
        }
        this.#retryDelayMs = 100
        this.m.ingest_batches_total++
        this.m.ingest_events_applied_total += result.applied
        this.m.ingest_events_duplicate_total += result.duplicates
        this.m.ingest_events_stale_total += result.stale
        for (const command of result.commands) {
          this.publishCommand(command).catch((err) =>
            this.#log.warn('Cannot publish command', { commandId: command.commandId, error: String(err) }),
          )
        }
        try {
          this.#deps.onCommitted?.(batch, result)
        } catch (err) {
          this.#log.error('onCommitted handler failed', { error: String(err) })
        }
      }
      const done = this.#pending.slice(0, end)
      this.#pending = this.#pending.slice(end)
      for (const p of done) p.ack()
    }
  }

  /** Stops retrying (shutdown); pending messages stay unacknowledged for the broker to re-send. */
  stop(): void {
    if (this.#retryTimer !== undefined) clearTimeout(this.#retryTimer)
    this.#retryTimer = undefined
  }

  #decodeEvent(bytes: Uint8Array, topicSwitchId: SwitchId, topic: string): FleetEvent | undefined {
    let event: FleetEvent
    try {
      event = decodeEvent(bytes)
    } catch (err) {
      this.#reject(err instanceof ApiDecodeError ? err.code : 'malformed-cbor', topic, err)
      return undefined
    }
    if (event.switchId !== topicSwitchId) {
      this.#reject('switch-mismatch', topic, `event switchId ${event.switchId}`)
      return undefined
    }
    return event
  }

  /** Status and replies: small, applied at once (their own short transactions). */
  #handleSideMessage(channel: string, switchId: SwitchId, bytes: Uint8Array, topic: string): void {
    try {
      if (channel === 'status') {
        if (bytes.byteLength === 0) return // retained status cleared
        const status = decodeSwitchStatus(bytes)
        if (status.switchId !== switchId) return this.#reject('switch-mismatch', topic)
        this.#store.setSwitchStatus(status, this.#nowMs())
        this.m.ingest_status_total++
        if (status.state === 'online') this.#deps.onSwitchOnline?.(switchId)
      } else if (channel === 'replies') {
        const reply = decodeCommandReply(bytes)
        if (reply.switchId !== switchId) return this.#reject('switch-mismatch', topic)
        this.#store.recordReply(reply, this.#nowMs())
        this.m.ingest_replies_total++
      }
      // policy and commands are the edge's own publications: nothing to ingest
    } catch (err) {
      if (err instanceof ApiDecodeError) this.#reject(err.code, topic, err)
      else this.#log.error('Cannot store switch status or reply', { topic, error: String(err) })
    }
  }

  /**
   * The broker saw a switch acknowledge one of the edge's PUBLISHes (embedded broker): a
   * command on the switch's own topic becomes `delivered`. Never throws.
   */
  delivered(topicName: string, payload: Uint8Array, switchUsername: string): void {
    const topic = parseSwitchTopic(this.prefix, topicName)
    if (topic === undefined || topic.channel !== 'commands' || topic.switchId !== switchUsername) return
    try {
      const command = decodeCommand(payload)
      if (this.#store.markCommandDelivered(command.commandId, topic.switchId, this.#nowMs())) this.m.ingest_commands_delivered_total++
    } catch (err) {
      this.#log.warn('Cannot record a command delivery', { topic: topicName.slice(0, 200), error: String(err) })
    }
  }

  #reject(reason: IngestRejectReason, topic: string, detail?: unknown): void {
    this.m.ingest_rejected_total[reason]++
    try {
      this.#deps.onRejected?.(reason)
    } catch {
      // counters only
    }
    const now = Date.now()
    if (now - this.#rejectLogAtMs < 1000) {
      this.#rejectsUnlogged++
      return
    }
    this.#log.warn('Dropped a message from a switch', {
      reason,
      topic: topic.slice(0, 200),
      ...(detail !== undefined ? { detail: String(detail instanceof Error ? detail.message : detail).slice(0, 200) } : {}),
      ...(this.#rejectsUnlogged > 0 ? { alsoDroppedSinceLastLog: this.#rejectsUnlogged } : {}),
    })
    this.#rejectLogAtMs = now
    this.#rejectsUnlogged = 0
  }
}

export interface MqttIngestConfig extends IngestOptions {
  url: string
  username?: string
  password?: string
  /** Fixed so the broker keeps the session; one per edge instance. */
  clientId?: string
  /** Shared-subscription group (`$share/<group>/…`); undefined: plain subscriptions. */
  shared?: string
  protocolVersion?: 4 | 5
  keepaliveS?: number
  reconnectPeriodMs?: number
  tls?: import('node:tls').ConnectionOptions
}

/** mqtt.js skips its own PUBACK when `handleMessage` reports an error: this one. */
const DEFER_ACK = new Error('PUBACK deferred until the store commits')

type SendPacket = (
  packet: { cmd: 'puback'; messageId: number },
  cb?: () => void,
  cbStorePut?: () => void,
  noStore?: boolean,
) => void

/** The ingest as an MQTT client of any broker (rules 1-6). */
export class MqttIngest implements EdgeMessaging {
  readonly #client: MqttClient
  readonly #core: EventIngestor
  readonly #log: IngestLogger
  readonly #deps: IngestDeps
  readonly #filters: string[]
  readonly #sendPacket: SendPacket
  /** Incremented at each connect: PUBACKs are only owed to the connection that delivered. */
  #generation = 0
  #closed = false
  #subscribedWaiters: (() => void)[] = []
  #corked = false

  private constructor(config: MqttIngestConfig, deps: IngestDeps) {
    this.#core = new EventIngestor(config, deps)
    this.#core.publishCommand = (c) => this.publishCommand(c)
    this.#deps = deps
    this.#log = deps.log ?? noLog
    const filter = (ch: 'events' | 'status' | 'replies') => {
      const f = allSwitchesFilter(this.#core.prefix, ch)
      return config.shared !== undefined ? sharedFilter(config.shared, f) : f
    }
    this.#filters = [filter('events'), filter('status'), filter('replies')]
    const options: IClientOptions = {
      clientId: config.clientId ?? 'vdp-edge',
      clean: false,
      protocolVersion: config.protocolVersion ?? 4,
      keepalive: config.keepaliveS ?? 30,
      reconnectPeriod: config.reconnectPeriodMs ?? 1000,
      resubscribe: false,
    }
    if (config.username !== undefined) options.username = config.username
    if (config.password !== undefined) options.password = config.password
    this.#client = connectMqtt(config.url, options, config.tls ?? {})
    this.#sendPacket = (this.#client as unknown as { _sendPacket: SendPacket })._sendPacket.bind(this.#client)
    this.#client.handleMessage = (packet, callback) => this.#onPublish(packet, callback)
    this.#client.on('connect', (connack) => this.#onConnect(connack.sessionPresent))
    this.#client.on('close', () => {
      this.#core.m.ingest_connected = 0
    })
    this.#client.on('error', (err) => this.#log.warn('MQTT ingest error', { error: err.message }))
  }

  /**
   * Connects and subscribes; resolves at the first subscription, rejects after `timeoutMs`.
   * @example
   * ```ts
   * const ingest = await MqttIngest.start({ url: 'mqtt://127.0.0.1:1883', username: 'edge', password }, { store, log })
   * await ingest.publishPolicy(policy)
   * ```
   */
  static async start(config: MqttIngestConfig, deps: IngestDeps, timeoutMs = 15_000): Promise<MqttIngest> {
    const ingest = new MqttIngest(config, deps)
    try {
      await ingest.#firstSubscription(timeoutMs)
    } catch (err) {
      await ingest.close()
      throw err
    }
    return ingest
  }

  get connected(): boolean {
    return this.#client.connected
  }

  async publishPolicy(policy: SwitchPolicy): Promise<void> {
    const bytes = encodePolicy(policy)
    await this.#client.publishAsync(switchTopic(this.#core.prefix, policy.switchId, 'policy'), Buffer.from(bytes), {
      qos: 1,
      retain: true,
    })
    this.#core.m.ingest_policies_published_total++
  }

  async clearPolicy(switchId: SwitchId): Promise<void> {
    await this.#client.publishAsync(switchTopic(this.#core.prefix, switchId, 'policy'), Buffer.alloc(0), {
      qos: 1,
      retain: true,
    })
  }

  async publishCommand(command: Command): Promise<void> {
    const bytes = encodeCommand(command)
    await this.#client.publishAsync(switchTopic(this.#core.prefix, command.switchId, 'commands'), Buffer.from(bytes), {
      qos: 1,
    })
    this.#core.m.ingest_commands_published_total++
  }

  metrics(): IngestMetrics {
    return this.#core.metrics()
  }

  /** Commits and acknowledges what is pending, then disconnects keeping the session. */
  async close(timeoutMs = 2000): Promise<void> {
    if (this.#closed) return
    try {
      this.#core.flush()
    } catch {
      // flush never throws by design; a store already closed leaves messages to the broker
    }
    this.#closed = true
    this.#core.stop()
    await Promise.race([this.#client.endAsync(false), new Promise((r) => setTimeout(r, timeoutMs))]).catch(() => undefined)
    this.#client.end(true)
  }

  #firstSubscription(timeoutMs: number): Promise<void> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#subscribedWaiters = this.#subscribedWaiters.filter((w) => w !== onSub)
        reject(new Error(`Cannot start MQTT ingest: no subscription within ${timeoutMs} ms`))
      }, timeoutMs)
      const onSub = () => {
        clearTimeout(timer)
        resolve()
      }
      this.#subscribedWaiters.push(onSub)
    })
  }

  #onConnect(sessionPresent: boolean): void {
    this.#generation++
    this.#core.m.ingest_connected = 1
    this.#log.info('MQTT ingest connected', { sessionPresent })
    // Subscribe every time: idempotent, and it covers a broker that lost the session.
    this.#client.subscribe(this.#filters, { qos: 1 }, (err, granted) => {
      if (err) {
        this.#log.error('Cannot subscribe to switch topics', { error: err.message })
        return
      }
      const refused = (granted ?? []).filter((g) => g.qos === 128).map((g) => g.topic)
      if (refused.length > 0) this.#log.error('Broker refused ingest subscriptions', { topics: refused })
      const waiters = this.#subscribedWaiters
      this.#subscribedWaiters = []
      for (const w of waiters) w()
      this.#deps.onReady?.()
    })
  }

  /** The PUBACKs of one commit leave in one write instead of one segment each. */
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

  #onPublish(packet: IPublishPacket, callback: (err?: Error) => void): void {
    if (this.#closed) {
      callback(DEFER_ACK) // never acknowledge after close: the broker keeps it for next time
      return
    }
    const payload = packet.payload as Buffer
    const bytes = new Uint8Array(payload.buffer, payload.byteOffset, payload.byteLength)
    const messageId = packet.qos > 0 ? packet.messageId : undefined
    if (messageId === undefined) {
      this.#core.submit(packet.topic, bytes, () => {})
      callback()
      return
    }
    const generation = this.#generation
    this.#core.submit(packet.topic, bytes, () => {
      if (generation === this.#generation && this.#client.connected) {
        this.#corkUntilNextTick()
        this.#sendPacket({ cmd: 'puback', messageId }, undefined, undefined, true)
      }
    })
    callback(DEFER_ACK)
  }
}
