/**
 * The event pipeline on real parts: agent uplink (durable outbox) -> broker -> edge ingest ->
 * SQLite fleet store, with a private mosquitto (external-broker path, `MqttIngest`) and with
 * the embedded aedes broker (`EmbeddedIngest`, what `vdp-edge` runs by default).
 *
 * Outage length: `VDP_OUTAGE_MS` (default 30 000 ms for mosquitto, 5 000 ms for the embedded
 * broker, whose "outage" is a whole edge restart); the soak run of the benchmark script uses
 * 30 s as well.
 */
import { spawn, type ChildProcess } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import Database from 'better-sqlite3'
import mqtt from 'mqtt'
import { afterAll, describe, expect, it } from 'vitest'
import { MqttUplink, type UplinkEvent } from '../../agent/uplink/mqtt-uplink.ts'
import { encodeCbor } from '../../shared/api/cbor.ts'
import type { Command } from '../../shared/api/commands.ts'
import { encodeEvent, type FleetEvent } from '../../shared/api/events.ts'
import type { SwitchPolicy } from '../../shared/api/policy.ts'
import type { SwitchId } from '../../shared/ids.ts'
import { EmbeddedBroker, hashBrokerPassword, type BrokerAccount } from '../../edge/broker/embedded-broker.ts'
import { EmbeddedIngest } from '../../edge/mqtt/embedded-ingest.ts'
import { MqttIngest, type EdgeMessaging } from '../../edge/mqtt/ingest.ts'
import { SqliteFleetStore } from '../../edge/store/sqlite-fleet-store.ts'
import { Mosquitto, freePort } from '../support/mosquitto.ts'

const ROOT = resolve(import.meta.dirname, '../..')
const SWITCHES = ['tor1', 'tor2', 'tor3'] as const
const PASSWORDS: Record<string, string> = { tor1: 'pw-tor1-secret', tor2: 'pw-tor2-secret', tor3: 'pw-tor3-secret' }
const EDGE_USER = 'vdp-edge'
const EDGE_PASSWORD = 'edge-service-secret'

const dirs: string[] = []
const tempDir = (name: string): string => {
  const d = mkdtempSync(join(tmpdir(), `vdp-${name}-`))
  dirs.push(d)
  return d
}
afterAll(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true })
})

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

async function waitFor(what: string, cond: () => boolean, timeoutMs: number): Promise<void> {
  const until = Date.now() + timeoutMs
  while (!cond()) {
    if (Date.now() > until) throw new Error(`Timed out after ${timeoutMs} ms waiting for ${what}`)
    await sleep(20)
  }
}

const peerUp = (i: number): UplinkEvent => ({
  kind: 'peer-up',
  port: `Ethernet${i % 64}` as never,
  stationMac: '02:00:00:00:00:01' as never,
  reason: `test-${i}`,
})

/** Every (bootId, seq) stored for a switch, read through a separate connection. */
function storedKeys(dbPath: string, sw: string): { keys: string[]; rows: number } {
  const db = new Database(dbPath, { readonly: true, fileMustExist: true })
  try {
    const rows = db.prepare('SELECT boot_id, seq FROM events WHERE switch_id = ?').all(sw) as { boot_id: string; seq: number }[]
    return { keys: rows.map((r) => `${r.boot_id}/${r.seq}`), rows: rows.length }
  } finally {
    db.close()
  }
}

function accounts(): BrokerAccount[] {
  return [
    ...SWITCHES.map((s) => ({ username: s, role: 'switch' as const, passwordHash: hashBrokerPassword(PASSWORDS[s]!) })),
    { username: EDGE_USER, role: 'service' as const, password: EDGE_PASSWORD },
  ]
}

/** An edge (store + ingest + broker) in this process. */
interface Edge {
  kind: 'mosquitto' | 'aedes'
  url: string
  dbPath: string
  store: SqliteFleetStore
  messaging: EdgeMessaging
  /** The embedded broker, when that is the kind. */
  broker?: EmbeddedBroker
  /** Stops the broker (mosquitto) or the whole edge (embedded broker). */
  brokerDown(): Promise<void>
  brokerUp(): Promise<void>
  close(): Promise<void>
}

async function startEdge(kind: 'mosquitto' | 'aedes'): Promise<Edge> {
  const dbPath = join(tempDir('edge'), 'fleet.sqlite')
  if (kind === 'mosquitto') {
    const users = { ...PASSWORDS, [EDGE_USER]: EDGE_PASSWORD }
    const mosq = await Mosquitto.start({ users, serviceUsers: [EDGE_USER] })
    const store = new SqliteFleetStore({ path: dbPath })
    const messaging = await MqttIngest.start(
      { url: mosq.url, username: EDGE_USER, password: EDGE_PASSWORD, clientId: 'vdp-edge-test', reconnectPeriodMs: 200 },
      { store },
    )
    return {
      kind,
      url: mosq.url,
      dbPath,
      store,
      messaging,
      brokerDown: () => mosq.stop('SIGTERM'),
      brokerUp: () => mosq.start(),
      async close() {
        await messaging.close()
        store.close()
        await mosq.close()
      },
    }
  }
  const port = await freePort()
  let store = new SqliteFleetStore({ path: dbPath })
  let broker = await EmbeddedBroker.start({ port, accounts: accounts() })
  let messaging: EdgeMessaging = EmbeddedIngest.attach(broker, {}, { store })
  const edge: Edge = {
    kind,
    url: broker.url,
    dbPath,
    get store() {
      return store
    },
    get messaging() {
      return messaging
    },
    get broker() {
      return broker
    },
    async brokerDown() {
      await messaging.close()
      await broker.close()
      store.close()
    },
    async brokerUp() {
      store = new SqliteFleetStore({ path: dbPath })
      broker = await EmbeddedBroker.start({ port, accounts: accounts() })
      messaging = EmbeddedIngest.attach(broker, {}, { store })
    },
    async close() {
      await messaging.close()
      await broker.close()
      store.close()
    },
  }
  return edge
}

function openUplink(edge: Edge, sw: SwitchId, stateDir: string, handlers = {}, bootId = `boot-${sw}-1`): MqttUplink {
  return MqttUplink.open(
    {
      url: edge.url,
      switchId: sw,
      password: PASSWORDS[sw]!,
      stateDir,
      bootId,
      bootTimeMs: Date.now(),
      agentVersion: 'test',
      reconnectPeriodMs: 200,
    },
    handlers,
  )
}

/** The agent side in its own process: publishes `RATE` events/s, prints `p <bootId> <seq>` once durable. */
const CHILD_UPLINK = `
process.stdin.on('end', () => process.exit(0)) // the test process is gone
process.stdin.resume()
const { MqttUplink } = await import(process.env.UPLINK_MODULE)
const e = process.env
const uplink = MqttUplink.open({ url: e.URL, switchId: e.SWITCH_ID, password: e.PASSWORD, stateDir: e.STATE_DIR,
  bootId: e.BOOT_ID, bootTimeMs: Number(e.BOOT_TIME), agentVersion: 'child', reconnectPeriodMs: 200 })
const perTick = Math.max(1, Math.round(Number(e.RATE) / 100))
const endAt = Date.now() + Number(e.DURATION_MS)
let i = 0
const timer = setInterval(async () => {
  if (Date.now() >= endAt) {
    clearInterval(timer)
    const ok = await uplink.drained(60000)
    process.stdout.write((ok ? 'drained' : 'not-drained') + '\\n')
    return
  }
  const seqs = []
  for (let k = 0; k < perTick; k++) {
    const seq = uplink.publish({ kind: 'peer-up', port: 'Ethernet' + (i % 64), stationMac: '02:00:00:00:00:01', reason: 'child-' + i++ })
    if (seq !== undefined) seqs.push(seq)
  }
  uplink.flush()
  process.stdout.write(seqs.map((s) => 'p ' + e.BOOT_ID + ' ' + s).join('\\n') + '\\n')
}, 10)
`

interface ChildUplink {
  child: ChildProcess
  durable: Set<string>
  drained: Promise<boolean>
}

function startChildUplink(edge: Edge, opts: { sw: string; stateDir: string; bootId: string; rate: number; durationMs: number }): ChildUplink {
  const child = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', CHILD_UPLINK], {
    cwd: ROOT,
    env: {
      ...process.env,
      UPLINK_MODULE: join(ROOT, 'agent/uplink/mqtt-uplink.ts'),
      URL: edge.url,
      SWITCH_ID: opts.sw,
      PASSWORD: PASSWORDS[opts.sw]!,
      STATE_DIR: opts.stateDir,
      BOOT_ID: opts.bootId,
      BOOT_TIME: String(Date.now()),
      RATE: String(opts.rate),
      DURATION_MS: String(opts.durationMs),
    },
    stdio: ['pipe', 'pipe', 'inherit'],
  })
  const durable = new Set<string>()
  let buf = ''
  const drained = new Promise<boolean>((resolveDrained) => {
    child.stdout!.on('data', (d: Buffer) => {
      buf += d.toString()
      let nl: number
      while ((nl = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, nl)
        buf = buf.slice(nl + 1)
        if (line.startsWith('p ')) {
          const [, boot, seq] = line.split(' ')
          durable.add(`${boot}/${seq}`)
        } else if (line === 'drained') resolveDrained(true)
        else if (line === 'not-drained') resolveDrained(false)
      }
    })
    child.on('exit', () => resolveDrained(false))
  })
  return { child, durable, drained }
}

async function kill(child: ChildProcess, signal: NodeJS.Signals = 'SIGKILL'): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return
  const exited = new Promise((r) => child.once('exit', r))
  child.kill(signal)
  await exited
}

const OUTAGE_MS = {
  mosquitto: Number(process.env.VDP_OUTAGE_MS ?? 30_000),
  aedes: Number(process.env.VDP_OUTAGE_MS ?? 5_000),
}

describe.each(['mosquitto', 'aedes'] as const)('MQTT pipeline with %s', (kind) => {
  it(
    `events from several uplinks arrive in the store exactly once (${kind})`,
    async () => {
      const edge = await startEdge(kind)
      const uplinks = SWITCHES.map((sw) => openUplink(edge, sw as SwitchId, tempDir('agent')))
      try {
        const N = 500
        for (let i = 0; i < N; i++) for (const u of uplinks) expect(u.publish(peerUp(i))).toBe(i)
        for (const u of uplinks) expect(await u.drained(30_000)).toBe(true)
        await waitFor('all events stored', () => edge.store.counts().events >= N * SWITCHES.length, 10_000)
        for (const sw of SWITCHES) {
          const { keys } = storedKeys(edge.dbPath, sw)
          expect(keys.length).toBe(N)
          expect(new Set(keys)).toEqual(new Set(Array.from({ length: N }, (_, i) => `boot-${sw}-1/${i}`)))
        }
        // A redelivered event (same switchId, bootId, seq) is dropped by the store.
        const dup = mqtt.connect(edge.url, { clientId: 'tor1', username: 'tor1', password: PASSWORDS.tor1!, protocolVersion: 4 })
        await new Promise((r) => dup.once('connect', r))
        const first = edge.store.listEvents({ limit: 1, switchId: 'tor1' as SwitchId })[0]!.event
        await dup.publishAsync('vdp/switch/tor1/events', Buffer.from(encodeEvent(first)), { qos: 1 })
        await dup.endAsync()
        await waitFor('duplicate counted', () => edge.messaging.metrics().ingest_events_duplicate_total >= 1, 5000)
        expect(storedKeys(edge.dbPath, 'tor1').rows).toBe(N)
        expect(edge.messaging.metrics().ingest_events_applied_total).toBe(N * SWITCHES.length)
      } finally {
        for (const u of uplinks) await u.close()
        await edge.close()
      }
    },
    60_000,
  )

  it(
    `policy reaches the agent, survives an agent restart on disk, and commands get replies (${kind})`,
    async () => {
      const edge = await startEdge(kind)
      const stateDir = tempDir('agent')
      const policies: { revision: number; source: string }[] = []
      const commands: Command[] = []
      const handlers = {
        onPolicy: (p: SwitchPolicy, source: 'disk' | 'broker') => policies.push({ revision: p.revision, source }),
        onCommand: (c: Command) => {
          commands.push(c)
          return { status: 'done' as const, affected: 2 }
        },
      }
      let uplink = openUplink(edge, 'tor2' as SwitchId, stateDir, handlers)
      try {
        await waitFor('uplink connected', () => uplink.connected, 10_000)
        const policy: SwitchPolicy = {
          v: 1,
          switchId: 'tor2' as SwitchId,
          revision: 7,
          issuedAt: Date.now(),
          vns: [{ name: 'blue', vni: 5001, tenant: 'acme', allowedVsiTypes: [] }],
          vidPool: [{ first: 100, last: 199 }],
          hosts: [],
          lagGroups: [],
          unknownHosts: 'allow',
        }
        await edge.messaging.publishPolicy(policy)
        await waitFor('policy applied', () => policies.some((p) => p.revision === 7 && p.source === 'broker'), 10_000)
        const command: Command = {
          v: 1,
          kind: 'disconnect-vn',
          commandId: 'cmd-1',
          switchId: 'tor2' as SwitchId,
          issuedAt: Date.now(),
          reason: 'test',
          vni: 5001,
          port: 'Ethernet4' as never,
        }
        await edge.messaging.publishCommand(command)
        await waitFor('reply ingested', () => edge.messaging.metrics().ingest_replies_total >= 1, 10_000)
        expect(commands.map((c) => c.commandId)).toEqual(['cmd-1'])
        await uplink.close()
        // The edge is away: the agent applies the policy it kept on disk.
        await edge.brokerDown()
        policies.length = 0
        uplink = openUplink(edge, 'tor2' as SwitchId, stateDir, handlers, 'boot-tor2-2')
        expect(policies).toEqual([{ revision: 7, source: 'disk' }])
        await edge.brokerUp()
      } finally {
        await uplink.close()
        await edge.close()
      }
    },
    60_000,
  )

  it(
    `a broker outage under a steady stream with the agent SIGKILLed during it loses nothing and applies nothing twice (${kind}, outage ${OUTAGE_MS[kind]} ms)`,
    async () => {
      const edge = await startEdge(kind)
      const stateDir = tempDir('agent')
      const outageMs = OUTAGE_MS[kind]
      let a: ChildUplink | undefined
      let b: ChildUplink | undefined
      try {
        a = startChildUplink(edge, { sw: 'tor3', stateDir, bootId: 'boot-a-0001', rate: 200, durationMs: 600_000 })
        await sleep(1500)
        await edge.brokerDown()
        await sleep(outageMs / 2)
        await kill(a.child)
        b = startChildUplink(edge, { sw: 'tor3', stateDir, bootId: 'boot-b-0002', rate: 200, durationMs: outageMs / 2 + 1500 })
        await sleep(outageMs / 2)
        await edge.brokerUp()
        expect(await b.drained).toBe(true)
        const expected = new Set([...a.durable, ...b.durable])
        expect(expected.size).toBeGreaterThan(200)
        await waitFor(
          'every durable event stored',
          () => {
            const { keys } = storedKeys(edge.dbPath, 'tor3')
            const have = new Set(keys)
            return [...expected].every((k) => have.has(k))
          },
          30_000,
        )
        const { keys, rows } = storedKeys(edge.dbPath, 'tor3')
        expect(new Set(keys).size).toBe(rows) // none applied twice
        for (const k of expected) expect(keys).toContain(k)
      } finally {
        if (a) await kill(a.child)
        if (b) await kill(b.child)
        await edge.close()
      }
    },
    180_000,
  )

  it(
    `the retained status goes online at connect and offline by last will when the agent is SIGKILLed (${kind})`,
    async () => {
      const edge = await startEdge(kind)
      const a = startChildUplink(edge, { sw: 'tor1', stateDir: tempDir('agent'), bootId: 'boot-will-0001', rate: 10, durationMs: 600_000 })
      try {
        await waitFor('status online', () => edge.store.getSwitch('tor1' as SwitchId)?.status === 'online', 15_000)
        await kill(a.child)
        await waitFor('status offline (last will)', () => edge.store.getSwitch('tor1' as SwitchId)?.status === 'offline', 15_000)
      } finally {
        await kill(a.child)
        await edge.close()
      }
    },
    60_000,
  )

  it(
    `switches are confined to their own topics (${kind})`,
    async () => {
      const edge = await startEdge(kind)
      try {
        // tor2 publishes under tor1's topic: the broker drops it and closes the connection
        // (aedes: denial counted; mosquitto 2.0: ACL denial, then disconnect).
        const intruder = mqtt.connect(edge.url, { clientId: 'tor2', username: 'tor2', password: PASSWORDS.tor2!, protocolVersion: 4, reconnectPeriod: 0 })
        await new Promise((r) => intruder.once('connect', r))
        const closed = new Promise<void>((r) => intruder.once('close', () => r()))
        const spoofed = encodeEvent({
          v: 1, kind: 'peer-up', switchId: 'tor1' as SwitchId, bootId: 'boot-spoof-1', bootTime: 1, seq: 0, time: 1,
          port: 'Ethernet0' as never, stationMac: '02:00:00:00:00:09' as never, reason: 'spoof',
        } as FleetEvent)
        intruder.publish('vdp/switch/tor1/events', Buffer.from(spoofed), { qos: 1 })
        await closed
        intruder.end(true)
        if (edge.broker) expect(edge.broker.metrics().broker_publish_denied_total).toBe(1)
        // tor3 publishes on its own topic an event that claims to be tor1's: rejected by ingest.
        const other = mqtt.connect(edge.url, { clientId: 'tor3', username: 'tor3', password: PASSWORDS.tor3!, protocolVersion: 4, reconnectPeriod: 0 })
        await new Promise((r) => other.once('connect', r))
        await other.publishAsync('vdp/switch/tor3/events', Buffer.from(spoofed), { qos: 1 })
        await waitFor('switch-mismatch counted', () => edge.messaging.metrics().ingest_rejected_total['switch-mismatch'] >= 1, 5000)
        if (kind === 'aedes') {
          // Subscriptions outside its own policy/commands topics are refused (SUBACK 0x80).
          const outcome = async (filter: string) =>
            other.subscribeAsync(filter, { qos: 1 }).then(
              (g) => g[0]?.qos,
              () => 128,
            )
          expect(await outcome('vdp/switch/tor1/policy')).toBe(128)
          expect(await outcome('vdp/switch/+/commands')).toBe(128)
          expect(await outcome('vdp/switch/tor3/policy')).toBe(1)
          expect(edge.broker!.metrics().broker_subscribe_denied_total).toBe(2)
          // Wrong password, and a clientId that is not the username, are refused.
          for (const opts of [
            { clientId: 'tor1', username: 'tor1', password: 'wrong' },
            { clientId: 'tor1', username: 'tor2', password: PASSWORDS.tor2! },
          ]) {
            const bad = mqtt.connect(edge.url, { ...opts, protocolVersion: 4, reconnectPeriod: 0 })
            const err = await new Promise<Error>((r) => bad.once('error', r))
            expect(String(err)).toMatch(/Bad username or password|Not authorized/)
            bad.end(true)
          }
          expect(edge.broker!.metrics().broker_auth_denied_total).toBe(2)
        }
        other.end(true)
        expect(storedKeys(edge.dbPath, 'tor1').rows).toBe(0)
      } finally {
        await edge.close()
      }
    },
    30_000,
  )

  it(
    `malformed CBOR, a wrong schema version and oversized payloads are counted and dropped without a crash (${kind})`,
    async () => {
      const edge = await startEdge(kind)
      try {
        const c = mqtt.connect(edge.url, { clientId: 'tor1', username: 'tor1', password: PASSWORDS.tor1!, protocolVersion: 4 })
        await new Promise((r) => c.once('connect', r))
        const topic = 'vdp/switch/tor1/events'
        await c.publishAsync(topic, Buffer.from([0xff, 0x00, 0x13, 0x37]), { qos: 1 })
        await c.publishAsync(topic, Buffer.alloc(0), { qos: 1 })
        await c.publishAsync(topic, Buffer.from(encodeCbor({ v: 99, kind: 'peer-up', switchId: 'tor1' })), { qos: 1 })
        await c.publishAsync(topic, Buffer.from(encodeCbor({ v: 1, kind: 'peer-up', switchId: 'tor1', seq: -1 })), { qos: 1 })
        await c.publishAsync(topic, Buffer.alloc(20_000, 0xa0), { qos: 1 })
        const good = encodeEvent({
          v: 1, kind: 'peer-up', switchId: 'tor1' as SwitchId, bootId: 'boot-good-1', bootTime: 1, seq: 0, time: 1,
          port: 'Ethernet0' as never, stationMac: '02:00:00:00:00:09' as never, reason: 'ok',
        } as FleetEvent)
        await c.publishAsync(topic, Buffer.from(good), { qos: 1 })
        await waitFor('the valid event stored', () => storedKeys(edge.dbPath, 'tor1').rows === 1, 5000)
        const r = edge.messaging.metrics().ingest_rejected_total
        expect(r['malformed-cbor']).toBe(2)
        expect(r['unsupported-version']).toBe(1)
        expect(r.schema).toBe(1)
        expect(r['too-large']).toBe(1)
        await c.endAsync()
      } finally {
        await edge.close()
      }
    },
    30_000,
  )
})

/** The edge in its own process, for SIGKILL: embedded broker + EmbeddedIngest, or MqttIngest to mosquitto. */
const CHILD_EDGE = `
process.stdin.on('end', () => process.exit(0)) // the test process is gone
process.stdin.resume()
const e = process.env
const { SqliteFleetStore } = await import(e.ROOT + '/edge/store/sqlite-fleet-store.ts')
const store = new SqliteFleetStore({ path: e.DB })
if (e.KIND === 'aedes') {
  const { EmbeddedBroker } = await import(e.ROOT + '/edge/broker/embedded-broker.ts')
  const { EmbeddedIngest } = await import(e.ROOT + '/edge/mqtt/embedded-ingest.ts')
  const broker = await EmbeddedBroker.start({ port: Number(e.PORT), accounts: JSON.parse(e.ACCOUNTS) })
  EmbeddedIngest.attach(broker, {}, { store })
} else {
  const { MqttIngest } = await import(e.ROOT + '/edge/mqtt/ingest.ts')
  await MqttIngest.start({ url: e.URL, username: e.EDGE_USER, password: e.EDGE_PASSWORD, clientId: 'vdp-edge-child', reconnectPeriodMs: 200 }, { store })
}
process.stdout.write('ready\\n')
`

function startChildEdge(env: Record<string, string>): Promise<ChildProcess> {
  const child = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', CHILD_EDGE], {
    cwd: ROOT,
    env: { ...process.env, ROOT, ...env },
    stdio: ['pipe', 'pipe', 'inherit'],
  })
  return new Promise((resolveReady, reject) => {
    child.stdout!.on('data', (d: Buffer) => {
      if (d.toString().includes('ready')) resolveReady(child)
    })
    child.once('exit', (code) => reject(new Error(`edge child exited early (${code})`)))
  })
}

describe.each(['mosquitto', 'aedes'] as const)('Edge killed under load with %s', (kind) => {
  it(
    `the edge SIGKILLed under load restarts with every acknowledged event kept (${kind})`,
    async () => {
      const dbPath = join(tempDir('edge'), 'fleet.sqlite')
      let mosq: Mosquitto | undefined
      let env: Record<string, string>
      let url: string
      if (kind === 'mosquitto') {
        mosq = await Mosquitto.start({ users: { ...PASSWORDS, [EDGE_USER]: EDGE_PASSWORD }, serviceUsers: [EDGE_USER] })
        url = mosq.url
        env = { KIND: kind, DB: dbPath, URL: url, EDGE_USER, EDGE_PASSWORD }
      } else {
        const port = await freePort()
        url = `mqtt://127.0.0.1:${port}`
        env = { KIND: kind, DB: dbPath, PORT: String(port), ACCOUNTS: JSON.stringify(accounts()) }
      }
      let edgeChild = await startChildEdge(env)
      const fakeEdge = { url } as Edge
      const uplink = openUplink(fakeEdge, 'tor1' as SwitchId, tempDir('agent'))
      try {
        const N = 6000
        let i = 0
        // Steady load, 2 000 events/s for 3 s; the edge is killed after 1 s and back after 2 s.
        const producer = setInterval(() => {
          for (let k = 0; k < 20 && i < N; k++) uplink.publish(peerUp(i++))
        }, 10)
        await sleep(1000)
        await kill(edgeChild)
        await sleep(1000)
        edgeChild = await startChildEdge(env)
        await waitFor('all events produced', () => i >= N, 20_000)
        clearInterval(producer)
        expect(await uplink.drained(60_000)).toBe(true)
        // Every event the broker acknowledged (all of them: the outbox is empty) is in the store once.
        await waitFor('every acknowledged event stored', () => storedKeys(dbPath, 'tor1').rows >= N, 30_000)
        const { keys, rows } = storedKeys(dbPath, 'tor1')
        expect(rows).toBe(N)
        expect(new Set(keys)).toEqual(new Set(Array.from({ length: N }, (_, s) => `boot-tor1-1/${s}`)))
      } finally {
        await uplink.close()
        await kill(edgeChild)
        await mosq?.close()
      }
    },
    120_000,
  )
})

describe('Shared subscriptions with mosquitto', () => {
  it('two edge instances on $share/edge split the events and the store gets each exactly once', async () => {
    const mosq = await Mosquitto.start({ users: { ...PASSWORDS, [EDGE_USER]: EDGE_PASSWORD }, serviceUsers: [EDGE_USER] })
    const dbPath = join(tempDir('edge'), 'fleet.sqlite')
    const store = new SqliteFleetStore({ path: dbPath })
    const ingests = await Promise.all(
      ['vdp-edge-a', 'vdp-edge-b'].map((clientId) =>
        MqttIngest.start({ url: mosq.url, username: EDGE_USER, password: EDGE_PASSWORD, clientId, shared: 'edge' }, { store }),
      ),
    )
    const edge = { url: mosq.url } as Edge
    const uplinks = SWITCHES.map((sw) => openUplink(edge, sw as SwitchId, tempDir('agent')))
    try {
      const N = 400
      for (let i = 0; i < N; i++) for (const u of uplinks) u.publish(peerUp(i))
      for (const u of uplinks) expect(await u.drained(30_000)).toBe(true)
      await waitFor('all stored', () => store.counts().events >= N * SWITCHES.length, 10_000)
      const applied = ingests.map((i) => i.metrics().ingest_events_applied_total)
      expect(applied[0]! + applied[1]!).toBe(N * SWITCHES.length)
      expect(Math.min(...applied)).toBeGreaterThan(0) // both instances took a share
      for (const sw of SWITCHES) expect(storedKeys(dbPath, sw).rows).toBe(N)
    } finally {
      for (const u of uplinks) await u.close()
      for (const i of ingests) await i.close()
      store.close()
      await mosq.close()
    }
  }, 60_000)
})

describe('MQTT 5 with mosquitto', () => {
  it('an MQTT 5 uplink and an MQTT 5 ingest on a shared subscription deliver every event once', async () => {
    const mosq = await Mosquitto.start({ users: { ...PASSWORDS, [EDGE_USER]: EDGE_PASSWORD }, serviceUsers: [EDGE_USER] })
    const dbPath = join(tempDir('edge'), 'fleet.sqlite')
    const store = new SqliteFleetStore({ path: dbPath })
    const ingest = await MqttIngest.start(
      { url: mosq.url, username: EDGE_USER, password: EDGE_PASSWORD, clientId: 'vdp-edge-v5', shared: 'edge', protocolVersion: 5 },
      { store },
    )
    const uplink = MqttUplink.open({
      url: mosq.url, switchId: 'tor2' as SwitchId, password: PASSWORDS.tor2!, stateDir: tempDir('agent'),
      bootId: 'boot-v5-0001', bootTimeMs: Date.now(), agentVersion: 'test', protocolVersion: 5,
    })
    try {
      for (let i = 0; i < 300; i++) uplink.publish(peerUp(i))
      expect(await uplink.drained(20_000)).toBe(true)
      await waitFor('all stored', () => storedKeys(dbPath, 'tor2').rows === 300, 10_000)
      expect(ingest.metrics().ingest_events_applied_total).toBe(300)
    } finally {
      await uplink.close()
      await ingest.close()
      store.close()
      await mosq.close()
    }
  }, 60_000)
})

describe('mosquitto configuration', () => {
  /** Messages a persistent subscriber gets after being away while `count` QoS 1 messages were published. */
  async function deliveredAfterAbsence(extraConfig: string[], count: number): Promise<number> {
    const mosq = await Mosquitto.start({ users: { tor1: PASSWORDS.tor1!, [EDGE_USER]: EDGE_PASSWORD }, serviceUsers: [EDGE_USER], extraConfig })
    try {
      const subOptions = { clientId: 'absent-edge', username: EDGE_USER, password: EDGE_PASSWORD, clean: false, protocolVersion: 4 as const }
      let sub = mqtt.connect(mosq.url, subOptions)
      await new Promise((r) => sub.once('connect', r))
      await sub.subscribeAsync('vdp/switch/+/events', { qos: 1 })
      await sub.endAsync()
      const pub = mqtt.connect(mosq.url, { clientId: 'tor1', username: 'tor1', password: PASSWORDS.tor1!, protocolVersion: 4 })
      await new Promise((r) => pub.once('connect', r))
      await Promise.all(Array.from({ length: count }, (_, i) => pub.publishAsync('vdp/switch/tor1/events', `m${i}`, { qos: 1 })))
      await pub.endAsync()
      let got = 0
      sub = mqtt.connect(mosq.url, subOptions)
      sub.on('message', () => got++)
      await new Promise((r) => sub.once('connect', r))
      let last = -1
      for (let i = 0; i < 100 && got !== last; i++) {
        last = got
        await sleep(100)
      }
      await sub.endAsync()
      return got
    } finally {
      await mosq.close()
    }
  }

  it('mosquitto drops QoS 1 messages for an absent subscriber at the default max_queued_messages, not with docs/mosquitto.conf', async () => {
    expect(await deliveredAfterAbsence(['max_queued_messages 1000'], 3000)).toBeLessThan(3000)
    expect(await deliveredAfterAbsence([], 3000)).toBe(3000)
  }, 60_000)
})
