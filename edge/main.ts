/**
 * `vdp-edge`: the fleet edge on Node. Composition root: flags -> fleet store (SQLite) ->
 * MQTT (embedded aedes broker with in-process ingest, or an external broker through
 * `MqttIngest`) -> `createApp(deps)` served by @hono/node-server.
 *
 * Start order matters for the embedded broker: the ingest hook is attached in the same turn
 * the broker starts listening, so no switch PUBLISH can reach the broker without it. At start,
 * every switch's policy is published again (retained): aedes keeps retained messages in memory
 * only. Commands live in the fleet store until answered or expired; the open ones are
 * published again at start and when their switch comes online (edge/command-dispatcher.ts).
 *
 * SIGTERM / SIGINT: stop accepting HTTP, commit what the ingest holds (its PUBACKs go out),
 * close the broker or the MQTT session (kept by the broker), close the store; bounded by
 * `SHUTDOWN_TIMEOUT_MS`, then exit.
 *
 * @module
 */
import cluster from 'node:cluster'
import { randomBytes } from 'node:crypto'
import { chmodSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { createServer, type Server } from 'node:http'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { fileURLToPath, pathToFileURL } from 'node:url'
import { getRequestListener } from '@hono/node-server'
import { createApp } from './app.ts'
import { CommandDispatcher, DEFAULT_COMMAND_TTL_MS } from './command-dispatcher.ts'
import { DEFAULT_MIGRATION_GRACE_MS, systemClock, type EdgeDeps, type Logger, type TokenConfig } from './deps.ts'
import { HTTP_WORKER_ENV, HTTP_WORKERS_MAX, runHttpWorker, startHttpWorkers, type HttpWorkerConfig, type HttpWorkerPool } from './http-workers.ts'
import { ingestEvents, sweepMigrations } from './ingest.ts'
import { createLookupShortcut } from './lookup-shortcut.ts'
import { bump, createEdgeMetrics } from './metrics.ts'
import { pushPolicies } from './policy.ts'
import { createSecretBox } from './secrets.ts'
import { SqliteFleetStore } from './store/sqlite-fleet-store.ts'
import { EmbeddedBroker, hashBrokerPassword, type BrokerAccount } from './broker/embedded-broker.ts'
import { EmbeddedIngest } from './mqtt/embedded-ingest.ts'
import { MqttIngest, type EdgeMessaging, type IngestDeps } from './mqtt/ingest.ts'
import { DEFAULT_TOPIC_PREFIX, validateTopicPrefix } from '../shared/api/topics.ts'

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..')
const SHUTDOWN_TIMEOUT_MS = 10_000
const SWEEP_INTERVAL_MS = 5_000

export const EDGE_HELP = `vdp-edge: fleet edge for VDP switch agents (HTTP API, embedded MQTT broker, SQLite store)

Usage: vdp-edge [options]
       vdp-edge hash-password          read a password on stdin, print its scrypt hash

Options:
  --http HOST:PORT          HTTP API and web page (default 127.0.0.1:8080)
  --http-workers N          serve HTTP from N worker processes that read the database
                            read-only (GET and HEAD; the rest is passed to this process,
                            which stays the only writer); 0 = this process serves it (default)
  --mqtt URL                use an external broker (mqtt://host:port, mqtts://host:port)
                            instead of the embedded one
  --mqtt-listen HOST:PORT   embedded broker address (default 127.0.0.1:1883)
  --mqtt-users FILE         embedded broker accounts, JSON:
                            [{"username":"tor1","passwordHash":"scrypt$..."}, ...]
                            (role "switch" by default; "service" for other edge tools)
  --mqtt-username NAME      external broker: the edge's service account (default vdp-edge)
  --mqtt-password-file FILE external broker: its password (or env VDP_EDGE_MQTT_PASSWORD)
  --mqtt-client-id ID       external broker: persistent session id (default vdp-edge)
  --mqtt-shared GROUP       external broker: shared subscriptions $share/GROUP/... so several
                            edge instances split the load (mosquitto 2, EMQX, HiveMQ)
  --mqtt-protocol 4|5       external broker: MQTT 3.1.1 (4, default) or MQTT 5 (HiveMQ shared
                            subscriptions need 5)
  --topic-prefix PREFIX     MQTT topic prefix (default vdp)
  --db PATH                 SQLite fleet store, or :memory: (default ./vdp-edge.sqlite)
  --tokens FILE             HTTP bearer tokens, JSON [{"name","token","scope":"read"|"admin"}]
                            (or env VDP_EDGE_TOKENS with the same JSON)
  --kek-file FILE           32-byte key that seals host keys at rest (or env VDP_EDGE_KEK, 64 hex);
                            default: <db>.kek, created with mode 0600 when missing
  --migration-grace-ms MS   how long a migration source may keep a VSI (default ${DEFAULT_MIGRATION_GRACE_MS})
  --command-ttl-ms MS       an unanswered command expires this long after issue; until then the
                            edge sends it again when its switch comes online (default ${DEFAULT_COMMAND_TTL_MS})
  --log-level LEVEL         debug | info | warn | error (default info)
  --help                    this text
  --version                 print the version
`

export interface EdgeOptions {
  httpHost: string
  httpPort: number
  httpWorkers: number
  mqttUrl: string | undefined
  mqttListenHost: string
  mqttListenPort: number
  mqttUsersFile: string | undefined
  mqttUsername: string
  mqttPasswordFile: string | undefined
  mqttClientId: string
  mqttShared: string | undefined
  mqttProtocol: 4 | 5
  topicPrefix: string
  db: string
  tokensFile: string | undefined
  kekFile: string | undefined
  migrationGraceMs: number
  commandTtlMs: number
  logLevel: 'debug' | 'info' | 'warn' | 'error'
}

export class UsageError extends Error {
  override readonly name = 'UsageError'
}

function hostPort(flag: string, value: string): [string, number] {
  const m = /^(\[[^\]]+\]|[^:]+):(\d{1,5})$/.exec(value)
  const port = m ? Number(m[2]) : NaN
  if (!m || port > 65535) throw new UsageError(`Cannot use ${flag} "${value}": expected HOST:PORT, e.g. 127.0.0.1:8080`)
  return [m[1]!.replace(/^\[(.*)\]$/, '$1'), port]
}

/** Parses the command line; throws `UsageError` with a message naming the flag. */
export function parseEdgeArgs(argv: readonly string[]): EdgeOptions | 'help' | 'version' | 'hash-password' {
  const o: EdgeOptions = {
    httpHost: '127.0.0.1',
    httpPort: 8080,
    httpWorkers: 0,
    mqttUrl: undefined,
    mqttListenHost: '127.0.0.1',
    mqttListenPort: 1883,
    mqttUsersFile: undefined,
    mqttUsername: 'vdp-edge',
    mqttPasswordFile: undefined,
    mqttClientId: 'vdp-edge',
    mqttShared: undefined,
    mqttProtocol: 4,
    topicPrefix: DEFAULT_TOPIC_PREFIX,
    db: 'vdp-edge.sqlite',
    tokensFile: undefined,
    kekFile: undefined,
    migrationGraceMs: DEFAULT_MIGRATION_GRACE_MS,
    commandTtlMs: DEFAULT_COMMAND_TTL_MS,
    logLevel: 'info',
  }
  if (argv[0] === 'hash-password') return 'hash-password'
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!
    const eq = arg.indexOf('=')
    const flag = arg.startsWith('--') && eq > 0 ? arg.slice(0, eq) : arg
    const inline = arg.startsWith('--') && eq > 0 ? arg.slice(eq + 1) : undefined
    const value = (): string => {
      if (inline !== undefined) return inline
      const v = argv[++i]
      if (v === undefined || v.startsWith('--')) throw new UsageError(`Cannot use ${flag}: it needs a value`)
      return v
    }
    switch (flag) {
      case '--help':
      case '-h':
        return 'help'
      case '--version':
        return 'version'
      case '--http':
        ;[o.httpHost, o.httpPort] = hostPort(flag, value())
        break
      case '--http-workers': {
        const v = value()
        const n = Number(v)
        if (!/^\d{1,2}$/.test(v) || n > HTTP_WORKERS_MAX) {
          throw new UsageError(`Cannot use --http-workers "${v}": expected a number of processes, 0..${HTTP_WORKERS_MAX}`)
        }
        o.httpWorkers = n
        break
      }
      case '--mqtt':
        o.mqttUrl = value()
        if (!/^(mqtt|mqtts|tcp):\/\/[^/]+/.test(o.mqttUrl)) {
          throw new UsageError(`Cannot use --mqtt "${o.mqttUrl}": expected mqtt://host:port or mqtts://host:port`)
        }
        break
      case '--mqtt-listen':
        ;[o.mqttListenHost, o.mqttListenPort] = hostPort(flag, value())
        break
      case '--mqtt-users':
        o.mqttUsersFile = value()
        break
      case '--mqtt-username':
        o.mqttUsername = value()
        break
      case '--mqtt-password-file':
        o.mqttPasswordFile = value()
        break
      case '--mqtt-client-id':
        o.mqttClientId = value()
        break
      case '--mqtt-shared':
        o.mqttShared = value()
        break
      case '--mqtt-protocol': {
        const v = value()
        if (v !== '4' && v !== '5') throw new UsageError(`Cannot use --mqtt-protocol "${v}": expected 4 (MQTT 3.1.1) or 5`)
        o.mqttProtocol = v === '5' ? 5 : 4
        break
      }
      case '--topic-prefix':
        o.topicPrefix = value()
        try {
          validateTopicPrefix(o.topicPrefix)
        } catch (err) {
          throw new UsageError((err as Error).message)
        }
        break
      case '--db':
        o.db = value()
        break
      case '--tokens':
        o.tokensFile = value()
        break
      case '--kek-file':
        o.kekFile = value()
        break
      case '--migration-grace-ms': {
        const v = value()
        const n = Number(v)
        if (!Number.isSafeInteger(n) || n < 0) throw new UsageError(`Cannot use --migration-grace-ms "${v}": expected ms >= 0`)
        o.migrationGraceMs = n
        break
      }
      case '--command-ttl-ms': {
        const v = value()
        const n = Number(v)
        if (!Number.isSafeInteger(n) || n < 1) throw new UsageError(`Cannot use --command-ttl-ms "${v}": expected ms >= 1`)
        o.commandTtlMs = n
        break
      }
      case '--log-level': {
        const v = value()
        if (v !== 'debug' && v !== 'info' && v !== 'warn' && v !== 'error') {
          throw new UsageError(`Cannot use --log-level "${v}": expected debug, info, warn or error`)
        }
        o.logLevel = v
        break
      }
      default:
        throw new UsageError(`Cannot use argument "${arg}": unknown (see vdp-edge --help)`)
    }
  }
  if (o.mqttUrl !== undefined && o.mqttUsersFile !== undefined) {
    throw new UsageError('Cannot use --mqtt-users with --mqtt: accounts of an external broker are configured there')
  }
  if (o.mqttUrl === undefined && o.mqttProtocol === 5) {
    throw new UsageError('Cannot use --mqtt-protocol 5 without --mqtt: the embedded broker (aedes 1.x) speaks MQTT 3.1.1')
  }
  if (o.mqttUrl === undefined && o.mqttShared !== undefined) {
    throw new UsageError('Cannot use --mqtt-shared without --mqtt: the embedded broker has no shared subscriptions')
  }
  if (o.httpWorkers > 0 && o.db === ':memory:') {
    throw new UsageError('Cannot use --http-workers with --db :memory:: the workers read the database file')
  }
  return o
}

const LEVELS = { debug: 10, info: 20, warn: 30, error: 40 } as const

/** JSON lines on stderr. */
export function jsonLogger(level: keyof typeof LEVELS, write: (line: string) => void = (l) => process.stderr.write(l)): Logger {
  const min = LEVELS[level]
  const at = (lvl: keyof typeof LEVELS) => (msg: string, fields?: Record<string, unknown>) => {
    if (LEVELS[lvl] < min) return
    write(JSON.stringify({ time: new Date().toISOString(), level: lvl, msg, ...fields }) + '\n')
  }
  return { debug: at('debug'), info: at('info'), warn: at('warn'), error: at('error') }
}

function loadTokens(file: string | undefined): TokenConfig[] {
  const text = file !== undefined ? readFileSync(file, 'utf8') : process.env.VDP_EDGE_TOKENS
  if (text === undefined) return []
  let parsed: unknown
  try {
    parsed = JSON.parse(text)
  } catch {
    throw new UsageError(`Cannot read tokens${file ? ` from ${file}` : ' from VDP_EDGE_TOKENS'}: not JSON`)
  }
  if (!Array.isArray(parsed)) throw new UsageError('Cannot read tokens: expected a JSON array of {name, token, scope}')
  return parsed.map((t: unknown, i) => {
    const r = t as Partial<TokenConfig>
    if (typeof r.name !== 'string' || typeof r.token !== 'string' || r.token.length < 16 || (r.scope !== 'read' && r.scope !== 'admin')) {
      throw new UsageError(`Cannot read token ${i}: expected {name, token (>= 16 characters), scope "read" or "admin"}`)
    }
    return { name: r.name, token: r.token, scope: r.scope }
  })
}

function loadAccounts(file: string | undefined): BrokerAccount[] {
  if (file === undefined) return []
  let parsed: unknown
  try {
    parsed = JSON.parse(readFileSync(file, 'utf8'))
  } catch (err) {
    throw new UsageError(`Cannot read --mqtt-users ${file}: ${(err as Error).message}`)
  }
  if (!Array.isArray(parsed)) throw new UsageError(`Cannot read --mqtt-users ${file}: expected a JSON array`)
  return parsed.map((a: unknown, i) => {
    const r = a as Partial<BrokerAccount>
    if (typeof r.username !== 'string' || (typeof r.passwordHash !== 'string' && typeof r.password !== 'string')) {
      throw new UsageError(`Cannot read --mqtt-users entry ${i}: expected {username, passwordHash}`)
    }
    const role = r.role ?? 'switch'
    if (role !== 'switch' && role !== 'service') throw new UsageError(`Cannot read --mqtt-users entry ${i}: bad role "${String(role)}"`)
    return {
      username: r.username,
      role,
      ...(r.passwordHash !== undefined ? { passwordHash: r.passwordHash } : {}),
      ...(r.password !== undefined ? { password: r.password } : {}),
    }
  })
}

function loadKek(o: EdgeOptions, log: Logger): Uint8Array {
  const env = process.env.VDP_EDGE_KEK
  if (o.kekFile === undefined && env !== undefined) {
    if (!/^[0-9a-fA-F]{64}$/.test(env)) throw new UsageError('Cannot use VDP_EDGE_KEK: expected 64 hex digits')
    return Buffer.from(env, 'hex')
  }
  if (o.kekFile === undefined && o.db === ':memory:') return randomBytes(32)
  const file = o.kekFile ?? `${o.db}.kek`
  if (!existsSync(file)) {
    if (o.kekFile !== undefined) throw new UsageError(`Cannot read --kek-file ${file}: it does not exist`)
    writeFileSync(file, randomBytes(32), { mode: 0o600 })
    chmodSync(file, 0o600)
    log.warn('Created a key-encryption key for host keys: back it up with the database', { file })
  }
  const key = readFileSync(file)
  if (key.length !== 32) throw new UsageError(`Cannot use key file ${file}: ${key.length} bytes, expected 32`)
  return key
}

export function edgeVersion(): string {
  // Set by scripts/build.mjs in the bundle, which has no package.json of the project beside it.
  if (process.env.VDP_EDGE_VERSION !== undefined) return process.env.VDP_EDGE_VERSION
  try {
    return (JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { version: string }).version
  } catch {
    return '0.0.0'
  }
}

export interface RunningEdge {
  httpPort: number
  mqttUrl: string
  /** Process ids of the HTTP workers (`--http-workers`), empty without them. */
  httpWorkerPids(): number[]
  stop(): Promise<void>
}

/** Starts everything; resolves once HTTP and MQTT are up. */
export async function startEdge(o: EdgeOptions, log: Logger): Promise<RunningEdge> {
  const tokens = loadTokens(o.tokensFile)
  if (tokens.length === 0) log.warn('No HTTP tokens configured: the API answers 401 to everything but /healthz and /')
  const store = new SqliteFleetStore({ path: o.db })
  const metrics = createEdgeMetrics()
  const clock = systemClock
  let messaging: EdgeMessaging | undefined
  let broker: EmbeddedBroker | undefined
  const deps: EdgeDeps = {
    store,
    clock,
    logger: log,
    metrics,
    migrationGraceMs: o.migrationGraceMs,
    commandTtlMs: o.commandTtlMs,
    tokens,
    secrets: createSecretBox(loadKek(o, log)),
    publish: {
      policy: (p) => (messaging ? messaging.publishPolicy(p) : Promise.reject(new Error('MQTT not started'))),
      command: (c) => (messaging ? messaging.publishCommand(c) : Promise.reject(new Error('MQTT not started'))),
    },
  }
  const commands = new CommandDispatcher(
    { store, clock, logger: log, publish: (c) => deps.publish.command(c) },
    { commandTtlMs: o.commandTtlMs },
  )
  const ingestCtx = { metrics, migrationGraceMs: o.migrationGraceMs, commandTtlMs: o.commandTtlMs }
  let pushing = false
  const ingestDeps: IngestDeps = {
    store,
    log,
    nowMs: () => clock.nowMs(),
    apply: (events) => ingestEvents(store, events, clock, ingestCtx),
    onRejected: (reason) => bump(metrics.eventsRejected, reason),
    // A switch that announced a new boot gets its policy (docs/api.md: the caller pushes the
    // policy of `bootedSwitches`), as `POST /api/v1/ingest/events` does: a switch new to the
    // fleet has none retained yet.
    onCommitted: (_events, result) => {
      if (result.bootedSwitches.length === 0) return
      pushPolicies(deps, result.bootedSwitches)
        .then((revision) => log.info('Policies published', { revision, switches: result.bootedSwitches }))
        .catch((err) => log.warn('Cannot publish policies', { switches: result.bootedSwitches, error: String(err) }))
    },
    onReady: () => {
      // Once per start: the embedded broker has no retained policy after a restart, and an
      // external broker keeps them (persistence), so reconnects need no new revision.
      if (pushing) return
      pushing = true
      // After the current turn: `messaging` is assigned by then.
      setImmediate(() => {
        pushPolicies(deps)
          .then((revision) => log.info('Policies published', { revision }))
          .catch((err) => {
            pushing = false // try again at the next (re)connect
            log.warn('Cannot publish policies', { error: String(err) })
          })
        void commands.resend()
      })
    },
    onSwitchOnline: (switchId) => void commands.resend(switchId),
  }
  const ingestOptions = { topicPrefix: o.topicPrefix, migrationGraceMs: o.migrationGraceMs }
  let mqttUrl: string
  try {
    if (o.mqttUrl === undefined) {
      const accounts = loadAccounts(o.mqttUsersFile)
      if (accounts.length === 0) log.warn('Embedded broker has no switch accounts: see --mqtt-users')
      broker = await EmbeddedBroker.start({
        host: o.mqttListenHost,
        port: o.mqttListenPort,
        topicPrefix: o.topicPrefix,
        accounts,
        log,
      })
      messaging = EmbeddedIngest.attach(broker, ingestOptions, ingestDeps)
      mqttUrl = broker.url
    } else {
      const password =
        o.mqttPasswordFile !== undefined ? readFileSync(o.mqttPasswordFile, 'utf8').trim() : process.env.VDP_EDGE_MQTT_PASSWORD
      messaging = await MqttIngest.start(
        {
          ...ingestOptions,
          url: o.mqttUrl,
          username: o.mqttUsername,
          ...(password !== undefined ? { password } : {}),
          clientId: o.mqttClientId,
          protocolVersion: o.mqttProtocol,
          ...(o.mqttShared !== undefined ? { shared: o.mqttShared } : {}),
        },
        ingestDeps,
      )
      mqttUrl = o.mqttUrl
    }
  } catch (err) {
    await broker?.close()
    store.close()
    throw err
  }

  const sweep = setInterval(() => {
    try {
      commands.expire()
      for (const c of sweepMigrations(store, clock, ingestCtx)) {
        messaging?.publishCommand(c).catch((err) => log.warn('Cannot publish command', { commandId: c.commandId, error: String(err) }))
      }
    } catch (err) {
      log.error('Migration sweep failed', { error: String(err) })
    }
  }, SWEEP_INTERVAL_MS)
  sweep.unref()

  const app = createApp(deps)
  let httpPort = o.httpPort
  // With workers, this process serves its full app on a private socket, for what they pass on.
  const socketDir = o.httpWorkers > 0 ? mkdtempSync(join(tmpdir(), 'vdp-edge-')) : undefined
  let workers: HttpWorkerPool | undefined
  const shortcut = createLookupShortcut({ store, tokens, metrics })
  const listener = getRequestListener(app.fetch)
  const server = await new Promise<Server>((resolve, reject) => {
    const s = createServer((req, res) => {
      if (!shortcut(req, res)) void listener(req, res)
    })
    s.once('error', reject)
    const listening = () => {
      const address = s.address()
      if (typeof address === 'object' && address) httpPort = address.port
      resolve(s)
    }
    if (socketDir !== undefined) s.listen(join(socketDir, 'writer.sock'), listening)
    else s.listen(o.httpPort, o.httpHost, listening)
  })
    .then(async (s) => {
      if (socketDir === undefined) return s
      try {
        workers = await startHttpWorkers({
          count: o.httpWorkers,
          workerScript: join(ROOT, 'bin/vdp-edge.mjs'),
          config: { writerSocket: join(socketDir, 'writer.sock'), host: o.httpHost, port: o.httpPort, options: o },
          metrics,
          log,
        })
      } catch (err) {
        s.close()
        throw err
      }
      httpPort = workers.port
      return s
    })
    .catch(async (err) => {
      clearInterval(sweep)
      await messaging?.close()
      await broker?.close()
      store.close()
      if (socketDir !== undefined) rmSync(socketDir, { recursive: true, force: true })
      throw err
    })
  log.info('vdp-edge started', {
    http: `${o.httpHost}:${httpPort}`,
    httpWorkers: o.httpWorkers,
    mqtt: mqttUrl,
    embeddedBroker: broker !== undefined,
    db: o.db,
  })

  let stopping: Promise<void> | undefined
  return {
    httpPort,
    mqttUrl,
    httpWorkerPids: () => workers?.pids() ?? [],
    stop() {
      stopping ??= (async () => {
        clearInterval(sweep)
        await workers?.stop()
        await new Promise<void>((resolve) => {
          server.close(() => resolve())
          ;(server as unknown as { closeAllConnections?: () => void }).closeAllConnections?.()
        })
        await messaging?.close()
        await broker?.close()
        store.close()
        if (socketDir !== undefined) rmSync(socketDir, { recursive: true, force: true })
        log.info('vdp-edge stopped')
      })()
      return stopping
    },
  }
}

/**
 * An HTTP worker (started by `startHttpWorkers` with `HTTP_WORKER_ENV` set): the same app
 * over a read-only store, with the writer's tokens and key; MQTT stays with the writer.
 */
function startEdgeHttpWorker(config: HttpWorkerConfig): void {
  const o = config.options
  const log = jsonLogger(o.logLevel)
  const store = new SqliteFleetStore({ path: o.db, readonly: true })
  const metrics = createEdgeMetrics()
  const tokens = loadTokens(o.tokensFile)
  const notHere = () => Promise.reject(new Error('Cannot publish from an HTTP worker: only the writer process talks MQTT'))
  const app = createApp({
    store,
    clock: systemClock,
    logger: log,
    metrics,
    migrationGraceMs: o.migrationGraceMs,
    tokens,
    secrets: createSecretBox(loadKek(o, log)),
    publish: { policy: notHere, command: notHere },
  })
  runHttpWorker(config, app, createLookupShortcut({ store, tokens, metrics }), metrics, () => store.close())
}

/** The CLI: returns the exit code. */
export async function main(argv: readonly string[]): Promise<number> {
  const workerConfig = process.env[HTTP_WORKER_ENV]
  if (cluster.isWorker && workerConfig !== undefined) {
    startEdgeHttpWorker(JSON.parse(workerConfig) as HttpWorkerConfig)
    return new Promise<number>(() => {}) // the worker exits by itself (see runHttpWorker)
  }
  let parsed: ReturnType<typeof parseEdgeArgs>
  try {
    parsed = parseEdgeArgs(argv)
  } catch (err) {
    process.stderr.write(`vdp-edge: ${(err as Error).message}\n`)
    return 2
  }
  if (parsed === 'help') {
    process.stdout.write(EDGE_HELP)
    return 0
  }
  if (parsed === 'version') {
    process.stdout.write(`vdp-edge ${edgeVersion()}\n`)
    return 0
  }
  if (parsed === 'hash-password') {
    const chunks: Buffer[] = []
    for await (const c of process.stdin) chunks.push(c as Buffer)
    const pw = Buffer.concat(chunks).toString('utf8').replace(/\r?\n$/, '')
    if (pw === '') {
      process.stderr.write('vdp-edge: hash-password: empty password on stdin\n')
      return 2
    }
    process.stdout.write(hashBrokerPassword(pw) + '\n')
    return 0
  }
  const log = jsonLogger(parsed.logLevel)
  let edge: RunningEdge
  try {
    edge = await startEdge(parsed, log)
  } catch (err) {
    log.error('Cannot start vdp-edge', { error: err instanceof Error ? err.message : String(err) })
    return 1
  }
  return new Promise<number>((resolve) => {
    const onSignal = (signal: string) => {
      log.info('Stopping', { signal })
      const force = setTimeout(() => {
        log.error('Shutdown took too long: exiting', { timeoutMs: SHUTDOWN_TIMEOUT_MS })
        resolve(1)
      }, SHUTDOWN_TIMEOUT_MS)
      force.unref()
      edge.stop().then(
        () => {
          clearTimeout(force)
          resolve(0)
        },
        (err) => {
          log.error('Shutdown failed', { error: String(err) })
          resolve(1)
        },
      )
    }
    process.once('SIGTERM', onSignal)
    process.once('SIGINT', onSignal)
  })
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  main(process.argv.slice(2)).then((code) => process.exit(code))
}
