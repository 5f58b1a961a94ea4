/**
 * `vdp-agent` configuration: flags for the common case, a JSON file (`--config`) for the rest;
 * flags win over the file, the file over `defaultAgentConfig`. `loadAgentConfig()` validates
 * everything at start-up and throws `ConfigError` with the path of the offending value, so a
 * bad config stops the agent before it touches a port.
 *
 * @module
 */
import { readFileSync } from 'node:fs'
import { parseArgs } from 'node:util'
import { isGroupMac, isMac, type Mac } from '../shared/ethernet/mac.ts'
import { isLogLevel, type LogLevel } from './runtime/logger.ts'

export class ConfigError extends Error {
  override readonly name = 'ConfigError'
  constructor(readonly path: string, message: string) {
    super(message)
  }
}

export interface PortSpec {
  /** Interface name (IFNAMSIZ: at most 15 characters). */
  name: string
  /** Overrides the interface's own MAC (memory links have none). */
  mac?: Mac
  /** Destination of ECPDUs to known peers: `ncb-group` (lldpad's way) or `peer-unicast`. */
  ecpDestination?: 'ncb-group' | 'peer-unicast'
}

export interface EvbFileConfig {
  retries: number
  rte: number
  rwd: number
  rka: number
  groupId: boolean
  reflectiveRelay: boolean
}

export interface AgentConfig {
  role: 'bridge' | 'station'
  switchId: string
  ports: PortSpec[]
  /** VID pool of this switch, e.g. `100-199,300`. */
  vidPool: string
  stateDir: string
  dataplane: 'sonic' | 'linux' | 'dry-run'
  /** How ports are opened: raw AF_PACKET sockets (real) or in-process links (demo). */
  link: 'af-packet' | 'memory'
  sonic: { redisUrl: string; vxlanTunnel: string }
  linux: { bridge: string; vxlanDevice: string }
  /** MQTT uplink; empty URL = no fleet (standalone). */
  mqtt: { url: string; username: string; password: string; topicPrefix: string; outboxEventsMax: number }
  controlSocket: string
  /** Prometheus endpoint, `127.0.0.1:9464`; empty = off. */
  metricsListen: string
  evb: EvbFileConfig
  /** LLDP msgTxInterval, seconds. */
  lldpTxIntervalS: number
  /**
   * Least time between two new ECPDUs to one peer, µs. lldpad parses received VDP 2 ms after
   * the frame, into one buffer per port, so closer ECPDUs overwrite each other there, and a
   * busy lldpad runs that timer late; what queues meanwhile is packed into the next ECPDU.
   * 0 = no pacing.
   */
  ecpTxGapUs: number
  /** Gap between ECPDUs once they queue up behind `ecpTxGapUs` (a burst), µs. */
  ecpTxBurstGapUs: number
  /**
   * Take ECP ACKs in with an eBPF socket filter where the kernel allows it (ACKs for ECPDUs
   * with nothing queued behind them then wake nobody; docs/protocol.md). false = every ACK
   * is read as a frame.
   */
  ecpAckAbsorb: boolean
  /**
   * Bridge: let the raw socket answer keep-alives that repeat a confirmed request octet for
   * octet with the stored response, in C (docs/protocol.md). false = the port core answers
   * every request.
   */
  keepAliveAnswers: boolean
  /**
   * Bridge, with `keepAliveAnswers`: let the raw socket answer requests for new VSIs whose
   * decision the port core already made for their kind (VSI type, filter format, GroupID, null
   * VIDs), in C, ahead of the core (docs/protocol.md). false = the core answers them.
   */
  answerOffers: boolean
  /**
   * Least delay before the state file is rewritten after a change, ms (it grows with the
   * file's size, to 1 s or this). Changes are journaled before each answer in between, so a
   * larger value only means fewer rewrites (flash wear), not a larger window of loss.
   */
  stateSaveDelayMs: number
  logLevel: LogLevel
  /** Local policy document (same shape as the fleet's); absent = open lab policy. */
  policy?: unknown
}

export const defaultAgentConfig: Readonly<AgentConfig> = Object.freeze({
  role: 'bridge',
  switchId: '',
  ports: [],
  vidPool: '100-199',
  stateDir: '/var/lib/vdp-agent',
  dataplane: 'dry-run',
  link: 'af-packet',
  sonic: { redisUrl: 'redis://127.0.0.1:6379', vxlanTunnel: 'vtep' },
  linux: { bridge: 'br0', vxlanDevice: 'vxlan0' },
  mqtt: { url: '', username: '', password: '', topicPrefix: 'vdp', outboxEventsMax: 1_000_000 },
  controlSocket: '/run/vdp-agent/control.sock',
  metricsListen: '127.0.0.1:9464',
  evb: { retries: 3, rte: 8, rwd: 20, rka: 20, groupId: true, reflectiveRelay: false },
  lldpTxIntervalS: 30,
  ecpTxGapUs: 5000,
  ecpTxBurstGapUs: 10_000,
  ecpAckAbsorb: true,
  keepAliveAnswers: true,
  answerOffers: true,
  stateSaveDelayMs: 20,
  logLevel: 'info',
})

export const AGENT_USAGE = `Usage: vdp-agent [options]

Terminates VDP (IEEE 802.1Qbg) on the given ports: LLDP EVB TLV, ECP, VDP bridge (switch)
or station (hypervisor) state machines, VID negotiation and the data plane.

Options:
  --role bridge|station      Role on every port (default: bridge)
  --port NAME                A port to run on; repeat for several ports
  --vid-pool RANGES          VIDs this switch may assign, e.g. 100-199,300 (default: 100-199)
  --switch-id ID             Fleet-wide name of this switch (default: the host name)
  --state-dir DIR            Association state, outbox and last policy (default: /var/lib/vdp-agent)
  --dataplane KIND           sonic | linux | dry-run (default: dry-run)
  --mqtt URL                 Fleet broker, e.g. mqtt://edge:1883 (default: none, standalone)
  --control-socket PATH      Local socket for vdpctl (default: /run/vdp-agent/control.sock)
  --metrics HOST:PORT        Prometheus endpoint, "" to disable (default: 127.0.0.1:9464)
  --config FILE              JSON file with any of the settings below (flags win)
  --log-level LEVEL          debug | info | warn | error (default: info)
  --version                  Print the version and exit
  --help                     Print this text and exit

JSON config keys: role, switchId, ports [{name, mac?, ecpDestination?}], vidPool, stateDir,
dataplane, link (af-packet|memory), sonic {redisUrl, vxlanTunnel}, linux {bridge, vxlanDevice},
mqtt {url, username, password, topicPrefix, outboxEventsMax}, controlSocket, metricsListen,
evb {retries, rte, rwd, rka, groupId, reflectiveRelay}, lldpTxIntervalS, ecpTxGapUs, ecpTxBurstGapUs, ecpAckAbsorb,
keepAliveAnswers, answerOffers, stateSaveDelayMs, logLevel, policy.
`

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v)

function expectType(path: string, v: unknown, type: 'string' | 'boolean' | 'number'): void {
  if (typeof v !== type) throw new ConfigError(path, `Invalid config: ${path} is ${Array.isArray(v) ? 'array' : typeof v}, expected ${type}`)
}

function intIn(path: string, v: unknown, min: number, max: number): number {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max) {
    throw new ConfigError(path, `Invalid config: ${path} is ${JSON.stringify(v)}, expected an integer in ${min}..${max}`)
  }
  return v
}

function oneOf<T extends string>(path: string, v: unknown, allowed: readonly T[]): T {
  if (typeof v !== 'string' || !allowed.includes(v as T)) {
    throw new ConfigError(path, `Invalid config: ${path} is ${JSON.stringify(v)}, expected one of ${allowed.join(', ')}`)
  }
  return v as T
}

/** Merges a partial document over defaults, rejecting unknown keys (typos stop the agent). */
function merge<T extends object>(path: string, base: T, patch: unknown): T {
  if (patch === undefined) return base
  if (!isObject(patch)) throw new ConfigError(path || '(root)', `Invalid config: ${path || 'the document'} must be a JSON object`)
  const out = { ...base } as Record<string, unknown>
  for (const [k, v] of Object.entries(patch)) {
    const p = path ? `${path}.${k}` : k
    if (!(k in base) && !(path === '' && k === 'policy')) throw new ConfigError(p, `Invalid config: unknown key ${p}`)
    const cur = (base as Record<string, unknown>)[k]
    out[k] = isObject(cur) ? merge(p, cur as Record<string, unknown>, v) : v
  }
  return out as T
}

export function validateAgentConfig(c: AgentConfig): AgentConfig {
  oneOf('role', c.role, ['bridge', 'station'] as const)
  expectType('switchId', c.switchId, 'string')
  if (!/^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/.test(c.switchId)) {
    throw new ConfigError('switchId', `Invalid config: switchId "${c.switchId}" must be 1..64 of A-Z a-z 0-9 . _ - (it names MQTT topics)`)
  }
  if (!Array.isArray(c.ports) || c.ports.length === 0) throw new ConfigError('ports', 'Invalid config: no ports; give --port NAME at least once')
  const seen = new Set<string>()
  c.ports.forEach((p, i) => {
    if (!isObject(p)) throw new ConfigError(`ports[${i}]`, `Invalid config: ports[${i}] must be an object`)
    if (typeof p.name !== 'string' || !/^[A-Za-z0-9_.:@-]{1,15}$/.test(p.name)) {
      throw new ConfigError(`ports[${i}].name`, `Invalid config: port name ${JSON.stringify(p.name)} must be 1..15 interface-name characters`)
    }
    if (seen.has(p.name)) throw new ConfigError(`ports[${i}].name`, `Invalid config: port ${p.name} is listed twice`)
    seen.add(p.name)
    if (p.mac !== undefined && (typeof p.mac !== 'string' || !isMac(p.mac.toLowerCase()) || isGroupMac(p.mac.toLowerCase() as Mac))) {
      throw new ConfigError(`ports[${i}].mac`, `Invalid config: ports[${i}].mac ${JSON.stringify(p.mac)} is not a unicast MAC`)
    }
    if (p.ecpDestination !== undefined) oneOf(`ports[${i}].ecpDestination`, p.ecpDestination, ['ncb-group', 'peer-unicast'] as const)
  })
  expectType('vidPool', c.vidPool, 'string')
  expectType('stateDir', c.stateDir, 'string')
  if (c.stateDir === '') throw new ConfigError('stateDir', 'Invalid config: stateDir is empty')
  oneOf('dataplane', c.dataplane, ['sonic', 'linux', 'dry-run'] as const)
  oneOf('link', c.link, ['af-packet', 'memory'] as const)
  expectType('sonic.redisUrl', c.sonic.redisUrl, 'string')
  expectType('mqtt.url', c.mqtt.url, 'string')
  if (c.mqtt.url !== '' && !/^(mqtts?|tcp|tls|wss?):\/\/[^/]+/.test(c.mqtt.url)) {
    throw new ConfigError('mqtt.url', `Invalid config: mqtt.url "${c.mqtt.url}" is not an mqtt://, mqtts://, ws:// or wss:// URL`)
  }
  expectType('mqtt.topicPrefix', c.mqtt.topicPrefix, 'string')
  if (!/^[A-Za-z0-9_/-]{1,64}$/.test(c.mqtt.topicPrefix) || c.mqtt.topicPrefix.startsWith('/') || c.mqtt.topicPrefix.endsWith('/')) {
    throw new ConfigError('mqtt.topicPrefix', `Invalid config: mqtt.topicPrefix "${c.mqtt.topicPrefix}" must be topic levels without wildcards or leading/trailing /`)
  }
  intIn('mqtt.outboxEventsMax', c.mqtt.outboxEventsMax, 1, 100_000_000)
  expectType('controlSocket', c.controlSocket, 'string')
  expectType('metricsListen', c.metricsListen, 'string')
  if (c.metricsListen !== '' && !/^[^:]+:\d{1,5}$|^\[[0-9a-f:]+\]:\d{1,5}$/i.test(c.metricsListen)) {
    throw new ConfigError('metricsListen', `Invalid config: metrics address "${c.metricsListen}" is not HOST:PORT`)
  }
  intIn('evb.retries', c.evb.retries, 0, 7)
  intIn('evb.rte', c.evb.rte, 0, 31)
  intIn('evb.rwd', c.evb.rwd, 0, 31)
  intIn('evb.rka', c.evb.rka, 0, 31)
  expectType('evb.groupId', c.evb.groupId, 'boolean')
  expectType('evb.reflectiveRelay', c.evb.reflectiveRelay, 'boolean')
  intIn('lldpTxIntervalS', c.lldpTxIntervalS, 1, 3600)
  intIn('ecpTxGapUs', c.ecpTxGapUs, 0, 1_000_000)
  intIn('ecpTxBurstGapUs', c.ecpTxBurstGapUs, 0, 1_000_000)
  expectType('ecpAckAbsorb', c.ecpAckAbsorb, 'boolean')
  expectType('keepAliveAnswers', c.keepAliveAnswers, 'boolean')
  expectType('answerOffers', c.answerOffers, 'boolean')
  intIn('stateSaveDelayMs', c.stateSaveDelayMs, 0, 3_600_000)
  if (!isLogLevel(String(c.logLevel))) throw new ConfigError('logLevel', `Invalid config: logLevel ${JSON.stringify(c.logLevel)} is not debug, info, warn or error`)
  return c
}

export type ParsedArgs = { kind: 'run'; config: AgentConfig } | { kind: 'help' } | { kind: 'version' }

/**
 * Parses argv (without node and script) into a validated config.
 * @example
 * ```ts
 * const r = loadAgentConfig(['--port', 'Ethernet0', '--vid-pool', '100-199'], { hostname: 'leaf1' })
 * ```
 */
export function loadAgentConfig(argv: string[], env: { hostname: string; readFile?: (p: string) => string }): ParsedArgs {
  let parsed
  try {
    parsed = parseArgs({
      args: argv,
      strict: true,
      allowPositionals: false,
      options: {
        role: { type: 'string' },
        port: { type: 'string', multiple: true },
        'vid-pool': { type: 'string' },
        'switch-id': { type: 'string' },
        'state-dir': { type: 'string' },
        dataplane: { type: 'string' },
        mqtt: { type: 'string' },
        'control-socket': { type: 'string' },
        metrics: { type: 'string' },
        config: { type: 'string' },
        'log-level': { type: 'string' },
        link: { type: 'string' },
        help: { type: 'boolean' },
        version: { type: 'boolean' },
      },
    })
  } catch (e) {
    throw new ConfigError('argv', `Invalid arguments: ${(e as Error).message}`)
  }
  const v = parsed.values
  if (v.help) return { kind: 'help' }
  if (v.version) return { kind: 'version' }
  let fileDoc: unknown
  if (v.config !== undefined) {
    const read = env.readFile ?? ((p: string) => readFileSync(p, 'utf8'))
    let text: string
    try {
      text = read(v.config)
    } catch (e) {
      throw new ConfigError('config', `Cannot read config file ${v.config}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`)
    }
    try {
      fileDoc = JSON.parse(text)
    } catch (e) {
      throw new ConfigError('config', `Cannot parse config file ${v.config}: ${(e as Error).message}`)
    }
  }
  const config = merge('', { ...defaultAgentConfig, switchId: env.hostname.split('.')[0] ?? 'switch' } as AgentConfig, fileDoc)
  if (v.role !== undefined) config.role = v.role as AgentConfig['role']
  if (v.port !== undefined) config.ports = v.port.map((name) => ({ name }))
  if (v['vid-pool'] !== undefined) config.vidPool = v['vid-pool']
  if (v['switch-id'] !== undefined) config.switchId = v['switch-id']
  if (v['state-dir'] !== undefined) config.stateDir = v['state-dir']
  if (v.dataplane !== undefined) config.dataplane = v.dataplane as AgentConfig['dataplane']
  if (v.mqtt !== undefined) config.mqtt = { ...config.mqtt, url: v.mqtt }
  if (v['control-socket'] !== undefined) config.controlSocket = v['control-socket']
  if (v.metrics !== undefined) config.metricsListen = v.metrics
  if (v['log-level'] !== undefined) config.logLevel = v['log-level'] as LogLevel
  if (v.link !== undefined) config.link = v.link as AgentConfig['link']
  config.ports = config.ports.map((p) => (p.mac ? { ...p, mac: p.mac.toLowerCase() as Mac } : p))
  return { kind: 'run', config: validateAgentConfig(config) }
}
