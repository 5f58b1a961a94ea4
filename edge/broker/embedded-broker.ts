/**
 * The MQTT broker embedded in `vdp-edge` by default: aedes 1.x (MQTT 3.1.1) on a TCP port,
 * 127.0.0.1 unless told otherwise, with authentication and per-switch authorization.
 *
 * Rules:
 * 1. Every client authenticates with a username and password. Switch accounts: the username
 *    is the switch id and the clientId must equal it (no one takes over another switch's
 *    persistent session). Service accounts (the edge's own ingest client): any clientId.
 *    Passwords are kept as scrypt hashes (`hashBrokerPassword`) or, for generated service
 *    accounts, in memory; comparison is constant-time. Passwords never reach a log.
 * 2. A switch may publish only to `<prefix>/switch/<its id>/events|status|replies` (its last
 *    will included) and subscribe only to `<prefix>/switch/<its id>/policy|commands`. A
 *    denied subscription is answered with SUBACK 0x80; a denied PUBLISH closes the connection
 *    (MQTT 3.1.1 has no negative PUBACK). Each denial is counted by kind and logged.
 *    A service account may publish and subscribe anywhere under the prefix.
 * 3. `$SYS/` publishes are refused to everybody (aedes' own default rule).
 *
 * Limits, written down: aedes keeps sessions, QoS 1 in-flight and queued messages and retained
 * messages in memory (aedes-persistence). An edge restart therefore forgets them: the
 * switches' persistent sessions, the commands queued for offline switches, the retained
 * policies and statuses. What `vdp-edge` does about it: every switch's policy is published
 * again at start (edge/main.ts), and commands are durable in the fleet store and published
 * again when their switch comes online (edge/command-dispatcher.ts).
 * What is not lost: an event leaves a switch's outbox only on PUBACK. With the in-process
 * ingest hook (`setPublishHook`, used by edge/mqtt/embedded-ingest.ts and by `vdp-edge`)
 * aedes sends that PUBACK only after the fleet store committed the event, so an edge killed
 * at any instant loses no event: the switch still has it and publishes it again. (An MQTT
 * client subscribed to this broker instead would receive the message after aedes has already
 * PUBACKed the switch: an edge death between the two loses the events of one batch.) No
 * packet size limit is enforced by aedes; ingest drops payloads above `EVENT_BYTES_MAX`.
 *
 * @module
 */
import { createHash, randomBytes, scrypt, scryptSync, timingSafeEqual } from 'node:crypto'
import { createServer, type AddressInfo, type Server, type Socket } from 'node:net'
import { Aedes, type AedesOptions, type Client } from 'aedes'
import { DEFAULT_TOPIC_PREFIX, parseSwitchTopic, validateTopicPrefix } from '../../shared/api/topics.ts'

export interface BrokerLogger {
  info(msg: string, fields?: Record<string, unknown>): void
  warn(msg: string, fields?: Record<string, unknown>): void
  error(msg: string, fields?: Record<string, unknown>): void
}

export type BrokerRole = 'switch' | 'service'

export interface BrokerAccount {
  username: string
  role: BrokerRole
  /** `scrypt$<saltB64>$<hashB64>` from `hashBrokerPassword`, or… */
  passwordHash?: string
  /** …a plain password (generated service accounts, tests). */
  password?: string
}

export interface EmbeddedBrokerConfig {
  /** Listen address; default 127.0.0.1. */
  host?: string
  /** TCP port; 0 picks a free one. Default 1883. */
  port?: number
  topicPrefix?: string
  accounts: readonly BrokerAccount[]
  /** Longest switch id accepted as clientId (aedes' default is 23). */
  clientIdLengthMax?: number
  log?: BrokerLogger
}

export interface BrokerMetrics {
  broker_clients_connected: number
  broker_auth_denied_total: number
  broker_publish_denied_total: number
  broker_subscribe_denied_total: number
  broker_publish_total: number
}

const SCRYPT_KEYLEN = 32

/** Hashes a broker password for an account file: `scrypt$<salt>$<hash>` (base64). */
export function hashBrokerPassword(password: string): string {
  const salt = randomBytes(16)
  const hash = scryptSync(password, salt, SCRYPT_KEYLEN)
  return `scrypt$${salt.toString('base64')}$${hash.toString('base64')}`
}

/**
 * Checks a password. scrypt runs on the libuv thread pool (never blocking the broker's event
 * loop: a fleet reconnecting at once would otherwise stall every client for seconds), and a
 * successful check is remembered as a SHA-256 of (hash, password) so reconnects cost no scrypt.
 */
async function checkPassword(account: BrokerAccount, given: Buffer | undefined, verified: Set<string>): Promise<boolean> {
  if (given === undefined) return false
  if (account.passwordHash !== undefined) {
    const [scheme, saltB64, hashB64] = account.passwordHash.split('$')
    if (scheme !== 'scrypt' || saltB64 === undefined || hashB64 === undefined) return false
    const memo = createHash('sha256').update(account.passwordHash).update('\0').update(given).digest('base64')
    if (verified.has(memo)) return true
    const expected = Buffer.from(hashB64, 'base64')
    const actual = await new Promise<Buffer>((resolve, reject) =>
      scrypt(given, Buffer.from(saltB64, 'base64'), expected.length, (err, key) => (err ? reject(err) : resolve(key))),
    )
    const ok = actual.length === expected.length && timingSafeEqual(actual, expected)
    if (ok) {
      if (verified.size >= 100_000) verified.clear()
      verified.add(memo)
    }
    return ok
  }
  if (account.password !== undefined) {
    const a = Buffer.from(account.password)
    // Compare equal-length buffers only; the length itself is not secret enough to matter.
    return a.length === given.length && timingSafeEqual(a, given)
  }
  return false
}

const SWITCH_PUBLISH_CHANNELS = new Set(['events', 'status', 'replies'])
const SWITCH_SUBSCRIBE_CHANNELS = new Set(['policy', 'commands'])

/**
 * Called for every PUBLISH a switch account made that passed authorization (its last will
 * included, when aedes publishes it), from aedes' `authorizePublish`, before aedes sends the
 * PUBACK: the PUBACK waits for `done()`. An in-process consumer that commits before
 * calling `done` makes the switch keep the event in its outbox until it is committed.
 */
export type SwitchPublishHook = (topic: string, payload: Uint8Array, switchUsername: string, done: () => void) => void

/**
 * Called when a switch account acknowledged (PUBACK) a QoS 1 message the broker sent it, with
 * that message's topic and payload: how the edge learns a command was delivered.
 */
export type SwitchDeliveryHook = (topic: string, payload: Uint8Array, switchUsername: string) => void

const noLog: BrokerLogger = { info() {}, warn() {}, error() {} }

export class EmbeddedBroker {
  readonly aedes: Aedes
  readonly #server: Server
  readonly #prefix: string
  readonly #log: BrokerLogger
  readonly #accounts = new Map<string, BrokerAccount>()
  /** clientId → role, for clients that passed authentication. */
  readonly #roles = new WeakMap<Client, { role: BrokerRole; username: string }>()
  readonly #sockets = new Set<Socket>()
  /** Memo of successful scrypt checks (see checkPassword). */
  readonly #verified = new Set<string>()
  readonly #m: BrokerMetrics = {
    broker_clients_connected: 0,
    broker_auth_denied_total: 0,
    broker_publish_denied_total: 0,
    broker_subscribe_denied_total: 0,
    broker_publish_total: 0,
  }
  #port = 0
  #host: string
  #publishHook: SwitchPublishHook | undefined
  #deliveryHook: SwitchDeliveryHook | undefined
  #closing: Promise<void> | undefined

  private constructor(aedes: Aedes, config: EmbeddedBrokerConfig) {
    this.aedes = aedes
    this.#prefix = validateTopicPrefix(config.topicPrefix ?? DEFAULT_TOPIC_PREFIX)
    this.#log = config.log ?? noLog
    this.#host = config.host ?? '127.0.0.1'
    for (const a of config.accounts) this.setAccount(a)
    aedes.authenticate = (client, username, password, done) => {
      const account = username === undefined ? undefined : this.#accounts.get(username)
      const check =
        account !== undefined && (account.role === 'service' || client.id === account.username)
          ? checkPassword(account, password, this.#verified)
          : Promise.resolve(false)
      check.then(
        (ok) => {
          if (!ok || account === undefined) {
            this.#m.broker_auth_denied_total++
            this.#log.warn('MQTT client refused: bad username, password or clientId', {
              clientId: client.id,
              username: username ?? null,
            })
            const err = Object.assign(new Error('Bad username or password'), { returnCode: 4 as const })
            done(err as Parameters<typeof done>[0], false)
            return
          }
          this.#roles.set(client, { role: account.role, username: account.username })
          done(null, true)
        },
        (err) => {
          this.#m.broker_auth_denied_total++
          this.#log.error('MQTT client refused: password check failed', { clientId: client.id, error: String(err) })
          done(Object.assign(new Error('Server unavailable'), { returnCode: 3 as const }) as Parameters<typeof done>[0], false)
        },
      )
    }
    aedes.authorizePublish = (client, packet, done) => {
      if (packet.topic.startsWith('$SYS/')) return done(new Error('$SYS/ topic is reserved'))
      if (client === null) return done(null)
      const who = this.#roles.get(client)
      if (who !== undefined && this.#mayPublish(who, packet.topic)) {
        this.#m.broker_publish_total++
        const hook = this.#publishHook
        if (hook === undefined || who.role !== 'switch') return done(null)
        // aedes writes the QoS 1 PUBACK right after this callback (before routing), so this is
        // the one place where the PUBACK can wait for the consumer's commit.
        const p = packet.payload
        const bytes = typeof p === 'string' ? new TextEncoder().encode(p) : new Uint8Array(p.buffer, p.byteOffset, p.byteLength)
        return hook(packet.topic, bytes, who.username, () => done(null))
      }
      this.#m.broker_publish_denied_total++
      this.#log.warn('MQTT publish denied', { clientId: client.id, topic: packet.topic.slice(0, 200) })
      done(new Error('Publish not authorized'))
    }
    aedes.authorizeSubscribe = (client, sub, done) => {
      const who = this.#roles.get(client)
      if (who !== undefined && this.#maySubscribe(who, sub.topic)) return done(null, sub)
      this.#m.broker_subscribe_denied_total++
      this.#log.warn('MQTT subscribe denied', { clientId: client.id, topic: sub.topic.slice(0, 200) })
      done(null, null)
    }
    aedes.on('ack', (packet, client) => {
      const hook = this.#deliveryHook
      const who = client ? this.#roles.get(client) : undefined
      if (hook === undefined || who?.role !== 'switch' || packet === undefined || packet === null || !('topic' in packet)) return
      const p = packet.payload
      const bytes = typeof p === 'string' ? new TextEncoder().encode(p) : new Uint8Array(p.buffer, p.byteOffset, p.byteLength)
      hook(packet.topic, bytes, who.username)
    })
    aedes.on('client', () => this.#m.broker_clients_connected++)
    aedes.on('clientDisconnect', () => this.#m.broker_clients_connected--)
    this.#server = createServer((socket) => {
      socket.setNoDelay(true)
      this.#sockets.add(socket)
      socket.on('close', () => this.#sockets.delete(socket))
      aedes.handle(socket)
    })
  }

  /**
   * Creates the broker and listens.
   * @example
   * ```ts
   * const broker = await EmbeddedBroker.start({ port: 1883, accounts: [
   *   { username: 'tor1', role: 'switch', passwordHash: hashBrokerPassword('s3cret') },
   *   { username: 'edge', role: 'service', password: servicePassword }] })
   * ```
   */
  static async start(config: EmbeddedBrokerConfig): Promise<EmbeddedBroker> {
    const options: AedesOptions = {
      maxClientsIdLength: config.clientIdLengthMax ?? 64,
      heartbeatInterval: 60_000,
      connectTimeout: 10_000,
      drainTimeout: 30_000,
      concurrency: 1000,
      queueLimit: 1000,
    } as AedesOptions
    const aedes = await Aedes.createBroker(options)
    const broker = new EmbeddedBroker(aedes, config)
    await broker.#listen(config.port ?? 1883)
    return broker
  }

  get port(): number {
    return this.#port
  }

  get url(): string {
    return `mqtt://${this.#host.includes(':') ? `[${this.#host}]` : this.#host}:${this.#port}`
  }

  /** Adds or replaces an account (existing connections keep their authorization). */
  setAccount(account: BrokerAccount): void {
    if (account.passwordHash === undefined && account.password === undefined) {
      throw new Error(`Cannot add broker account "${account.username}": no password or passwordHash`)
    }
    this.#accounts.set(account.username, account)
    this.#verified.clear()
  }

  /** Installs the in-process consumer of switch publications (see `SwitchPublishHook`). */
  setPublishHook(hook: SwitchPublishHook | undefined): void {
    this.#publishHook = hook
  }

  /** Installs the observer of switch acknowledgements (see `SwitchDeliveryHook`). */
  setDeliveryHook(hook: SwitchDeliveryHook | undefined): void {
    this.#deliveryHook = hook
  }

  /** Publishes from the edge itself (policy, commands), QoS 1. */
  publish(topic: string, payload: Uint8Array, options: { retain?: boolean } = {}): Promise<void> {
    return new Promise((resolve, reject) => {
      this.aedes.publish(
        {
          cmd: 'publish',
          topic,
          payload: Buffer.from(payload.buffer, payload.byteOffset, payload.byteLength),
          qos: 1,
          retain: options.retain ?? false,
          dup: false,
        },
        (err) => (err ? reject(err) : resolve()),
      )
    })
  }

  metrics(): Readonly<BrokerMetrics> {
    return { ...this.#m }
  }

  async #listen(port: number): Promise<void> {
    await new Promise<void>((resolve, reject) => {
      this.#server.once('error', reject)
      this.#server.listen(port, this.#host, () => {
        this.#server.off('error', reject)
        resolve()
      })
    })
    this.#port = (this.#server.address() as AddressInfo).port
    this.#log.info('Embedded MQTT broker listening', { host: this.#host, port: this.#port })
  }

  /** Stops listening, disconnects every client and closes aedes. */
  async close(): Promise<void> {
    if (this.#closing) return this.#closing
    this.#closing = this.#close()
    return this.#closing
  }

  async #close(): Promise<void> {
    const serverClosed = new Promise<void>((resolve) => this.#server.close(() => resolve()))
    for (const s of this.#sockets) s.destroy()
    await new Promise<void>((resolve) => this.aedes.close(() => resolve()))
    await serverClosed
  }

  #mayPublish(who: { role: BrokerRole; username: string }, topic: string): boolean {
    if (who.role === 'service') return topic.startsWith(this.#prefix + '/')
    const t = parseSwitchTopic(this.#prefix, topic)
    return t !== undefined && t.switchId === who.username && SWITCH_PUBLISH_CHANNELS.has(t.channel)
  }

  #maySubscribe(who: { role: BrokerRole; username: string }, filter: string): boolean {
    if (who.role === 'service') return filter.startsWith(this.#prefix + '/') || filter.startsWith(`$share/`)
    // Exact topics only: a wildcard could reach another switch's topics.
    const t = parseSwitchTopic(this.#prefix, filter)
    return t !== undefined && t.switchId === who.username && SWITCH_SUBSCRIBE_CHANNELS.has(t.channel)
  }
}
