/**
 * Pipeline benchmark: agents' uplinks -> broker -> edge ingest -> committed SQLite state.
 *
 *   npx tsx test/bench/pipeline.ts [--events 100000] [--agents 4] [--rate 5000] [--duration-s 10]
 *
 * 1. Baseline, mosquitto alone: `--agents` publishers in one process (QoS 1, window 1000 each)
 *    and a subscriber (QoS 1, mqtt.js acknowledging each message at once), persistent sessions
 *    as in the pipeline, payloads of the size of an encoded event; messages/s at the subscriber.
 * 2. Sustained throughput: `--agents` uplinks (outbox fsync, QoS 1) in a child process publish
 *    `--events` events as fast as they can; the edge (MqttIngest, SqliteFleetStore with
 *    synchronous=FULL) in this process commits them. Events/s from the first publish to the
 *    last commit, and the ratio to the baseline. Goal: 20 000/s.
 * 3. Latency at `--rate` events/s for `--duration-s`: event `time` (set at publish) to the
 *    commit callback, p50/p99/max. Goal: p99 < 50 ms.
 * Then 2 and 3 again with the embedded aedes broker (EmbeddedIngest, PUBACK after commit).
 *
 * Everything runs on this machine (2 cores shared by mosquitto, the agents' process and the
 * edge), on 127.0.0.1. Counts and durations are bounded by the flags.
 */
import { spawn } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { loadavg, tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { EmbeddedBroker } from '../../edge/broker/embedded-broker.ts'
import { EmbeddedIngest } from '../../edge/mqtt/embedded-ingest.ts'
import { MqttIngest, type EdgeMessaging, type IngestDeps } from '../../edge/mqtt/ingest.ts'
import { SqliteFleetStore } from '../../edge/store/sqlite-fleet-store.ts'
import { connectMqtt } from '../../agent/uplink/mqtt-connect.ts'
import { encodeEvent, type FleetEvent } from '../../shared/api/events.ts'
import { Mosquitto, freePort } from '../support/mosquitto.ts'

const ROOT = resolve(import.meta.dirname, '../..')

function flag(name: string, def: number): number {
  const i = process.argv.indexOf(`--${name}`)
  if (i < 0) return def
  const v = Number(process.argv[i + 1])
  if (!Number.isFinite(v) || v <= 0) throw new Error(`Cannot use --${name} "${process.argv[i + 1]}": expected a positive number`)
  return v
}

const EVENTS = Math.min(flag('events', 100_000), 2_000_000)
const AGENTS = Math.min(flag('agents', 4), 64)
const RATE = Math.min(flag('rate', 5000), 100_000)
const DURATION_S = Math.min(flag('duration-s', 10), 300)
const EDGE_USER = 'vdp-edge'
const EDGE_PASSWORD = 'bench-edge-secret'
const switchIds = Array.from({ length: AGENTS }, (_, i) => `bench${i + 1}`)
const passwords = Object.fromEntries(switchIds.map((s) => [s, `pw-${s}-secret`]))

const sampleEvent = encodeEvent({
  v: 1,
  kind: 'peer-up',
  switchId: 'bench1',
  bootId: 'bench-boot-00000001',
  bootTime: Date.now(),
  seq: 123456,
  time: Date.now(),
  port: 'Ethernet12',
  stationMac: '02:00:00:00:00:01',
  reason: 'bench-123456',
} as FleetEvent)
const PAYLOAD_BYTES = sampleEvent.byteLength

/** CPU time (user + system, ms) of a process from /proc; 0 when it is gone. */
function procCpuMs(pid: number | undefined): number {
  if (pid === undefined) return 0
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
    return ((Number(fields[11]) + Number(fields[12])) * 1000) / 100 // utime, stime in USER_HZ = 100
  } catch {
    return 0
  }
}
const selfCpuMs = () => {
  const u = process.cpuUsage()
  return (u.user + u.system) / 1000
}

/** CPU per event (µs) of each process over a phase. */
class CpuMeter {
  readonly #start: Record<string, number> = {}
  constructor(readonly pids: Record<string, () => number | undefined>) {
    for (const [k, pid] of Object.entries(pids)) this.#start[k] = k === 'edge' ? selfCpuMs() : procCpuMs(pid())
  }
  usPerEvent(events: number): Record<string, number> {
    const out: Record<string, number> = {}
    for (const [k, pid] of Object.entries(this.pids)) {
      const now = k === 'edge' ? selfCpuMs() : procCpuMs(pid())
      out[k] = Math.round(((now - this.#start[k]!) * 1000) / events)
    }
    return out
  }
}
const cpuText = (c: Record<string, number>) => {
  const total = Object.values(c).reduce((a, b) => a + b, 0)
  return `CPU/event ${Object.entries(c).map(([k, v]) => `${k} ${v} µs`).join(', ')}, total ${total} µs -> ${Math.round(2e6 / total)}/s on 2 idle cores`
}

const dirs: string[] = []
const tempDir = (name: string) => {
  const d = mkdtempSync(join(tmpdir(), `vdp-bench-${name}-`))
  dirs.push(d)
  return d
}

/** Child: `raw` publishers (baseline) or `uplink` agents; `count` events each, or `rate` events/s in total. */
const CHILD = `
process.stdin.on('end', () => process.exit(0)) // the benchmark process is gone
process.stdin.resume()
const e = process.env
const ids = JSON.parse(e.IDS), pw = JSON.parse(e.PASSWORDS)
const count = Number(e.COUNT), rate = Number(e.RATE), durationMs = Number(e.DURATION_MS)
const done = () => { process.stdout.write('done\\n') }
if (e.MODE === 'raw') {
  const { connectMqtt } = await import(e.ROOT + '/agent/uplink/mqtt-connect.ts')
  const payload = Buffer.alloc(Number(e.PAYLOAD_BYTES), 0xa5)
  let finished = 0, connected = 0
  const go = new Promise((r) => process.stdin.once('data', r))
  for (const id of ids) {
    const c = connectMqtt(e.URL, { clientId: id, username: id, password: pw[id], protocolVersion: 4, clean: false })
    c.once('connect', async () => {
      if (++connected === ids.length) process.stdout.write('ready\\n')
      await go
      let sent = 0, acked = 0
      const pump = () => {
        while (sent - acked < 1000 && sent < count) {
          sent++
          c.publish('vdp/switch/' + id + '/events', payload, { qos: 1 }, () => { acked++; if (acked === count) { if (++finished === ids.length) done() } else pump() })
        }
      }
      pump()
    })
  }
} else {
  const { MqttUplink } = await import(e.ROOT + '/agent/uplink/mqtt-uplink.ts')
  const ups = ids.map((id) => MqttUplink.open({ url: e.URL, switchId: id, password: pw[id], stateDir: e.STATE_DIR + '/' + id,
    bootId: 'bench-boot-' + Date.now(), bootTimeMs: Date.now(), agentVersion: 'bench', inflightMax: 1000 }))
  await new Promise((r) => { const t = setInterval(() => { if (ups.every((u) => u.connected)) { clearInterval(t); r() } }, 10) })
  process.stdout.write('ready\\n')
  await new Promise((r) => process.stdin.once('data', r))
  let i = 0
  const ev = () => ({ kind: 'peer-up', port: 'Ethernet' + (i % 64), stationMac: '02:00:00:00:00:01', reason: 'bench-' + i })
  if (rate > 0) {
    // Paced by elapsed time, not by timer ticks (which stretch under load).
    const startAt = Date.now(), endAt = startAt + durationMs
    let produced = 0
    const t = setInterval(() => {
      const now = Date.now()
      if (now >= endAt) { clearInterval(t); Promise.all(ups.map((u) => u.drained(60000))).then(done); return }
      const due = Math.floor(((now - startAt) / 1000) * rate)
      while (produced < due) { ups[produced % ups.length].publish(ev()); i++; produced++ }
    }, 5)
  } else {
    // As fast as the outboxes take them, 500 per agent per turn, bounded backlog.
    let produced = 0
    const step = () => {
      if (produced >= count * ups.length) { Promise.all(ups.map((u) => u.drained(120000))).then(done); return }
      for (const u of ups) {
        if (u.metrics().outbox_events > 20000) continue
        for (let k = 0; k < 500 && produced < count * ups.length; k++) { u.publish(ev()); i++; produced++ }
      }
      setImmediate(step)
    }
    step()
  }
}
`

function startChild(env: Record<string, string>): { pid: number | undefined; ready: Promise<void>; done: Promise<void>; go(): void; kill(): void } {
  const child = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', CHILD], {
    cwd: ROOT,
    env: { ...process.env, ROOT, ...env },
    stdio: ['pipe', 'pipe', 'inherit'],
  })
  let resolveReady!: () => void
  let resolveDone!: () => void
  const ready = new Promise<void>((r) => (resolveReady = r))
  const done = new Promise<void>((r, reject) => {
    resolveDone = r
    child.once('exit', (code) => reject(new Error(`bench child exited (${code})`)))
  })
  child.stdout!.on('data', (d: Buffer) => {
    const s = d.toString()
    if (s.includes('ready')) resolveReady()
    if (s.includes('done')) resolveDone()
  })
  return { pid: child.pid, ready, done, go: () => child.stdin!.write('go\n'), kill: () => child.kill('SIGKILL') }
}

async function baseline(mosq: Mosquitto): Promise<{ rate: number; cpu: Record<string, number> }> {
  const url = mosq.url
  const total = Math.ceil(EVENTS / AGENTS) * AGENTS
  // Same session semantics as the pipeline: persistent sessions (clean=false) on both sides.
  const sub = connectMqtt(url, { clientId: 'bench-sub', username: EDGE_USER, password: EDGE_PASSWORD, protocolVersion: 4, clean: false })
  await new Promise((r) => sub.once('connect', r))
  await sub.subscribeAsync('vdp/switch/+/events', { qos: 1 })
  let received = 0
  let t1 = 0
  const all = new Promise<void>((r) =>
    sub.on('message', () => {
      if (++received === total) {
        t1 = performance.now()
        r()
      }
    }),
  )
  const child = startChild({ MODE: 'raw', URL: url, IDS: JSON.stringify(switchIds), PASSWORDS: JSON.stringify(passwords), COUNT: String(total / AGENTS), PAYLOAD_BYTES: String(PAYLOAD_BYTES), RATE: '0', DURATION_MS: '0' })
  await child.ready
  const meter = new CpuMeter({ agents: () => child.pid, broker: () => mosq.pid, edge: () => undefined })
  const t0 = performance.now()
  child.go()
  await Promise.race([all, new Promise((_, rej) => setTimeout(() => rej(new Error('baseline timed out')), 300_000))])
  const cpu = meter.usPerEvent(total)
  await child.done.catch(() => undefined)
  child.kill()
  // Drop the session: a persistent subscriber left behind would make mosquitto queue every
  // later event for it (and snapshot that growing queue), slowing the pipeline runs.
  await sub.unsubscribeAsync('vdp/switch/+/events')
  await sub.endAsync()
  const gone = connectMqtt(url, { clientId: 'bench-sub', username: EDGE_USER, password: EDGE_PASSWORD, protocolVersion: 4, clean: true })
  await new Promise((r) => gone.once('connect', r))
  await gone.endAsync()
  return { rate: total / ((t1 - t0) / 1000), cpu }
}

interface Edge {
  url: string
  committed: number
  latenciesMs: number[]
  recordLatency: boolean
  close(): Promise<void>
  firstCommitAt: number
  lastCommitAt: number
}

async function startEdge(kind: 'mosquitto' | 'aedes', mosq: Mosquitto | undefined): Promise<Edge> {
  const store = new SqliteFleetStore({ path: join(tempDir('edge'), 'fleet.sqlite') })
  const edge: Edge = { url: '', committed: 0, latenciesMs: [], recordLatency: false, firstCommitAt: 0, lastCommitAt: 0, close: async () => {} }
  const deps: IngestDeps = {
    store,
    onCommitted: (events) => {
      const now = Date.now()
      if (edge.committed === 0) edge.firstCommitAt = performance.now()
      edge.committed += events.length
      edge.lastCommitAt = performance.now()
      if (edge.recordLatency) for (const e of events) edge.latenciesMs.push(now - e.time)
    },
  }
  let messaging: EdgeMessaging
  let broker: EmbeddedBroker | undefined
  if (kind === 'mosquitto') {
    messaging = await MqttIngest.start({ url: mosq!.url, username: EDGE_USER, password: EDGE_PASSWORD, clientId: 'bench-edge' }, deps)
    edge.url = mosq!.url
  } else {
    const accounts = switchIds.map((s) => ({ username: s, role: 'switch' as const, password: passwords[s]! }))
    broker = await EmbeddedBroker.start({ port: await freePort(), accounts })
    messaging = EmbeddedIngest.attach(broker, {}, deps)
    edge.url = broker.url
  }
  edge.close = async () => {
    await messaging.close()
    await broker?.close()
    store.close()
  }
  return edge
}

const pct = (sorted: number[], p: number) => sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? NaN

async function pipeline(kind: 'mosquitto' | 'aedes', mosq: Mosquitto | undefined): Promise<{ rate: number; cpu: Record<string, number>; p50: number; p99: number; max: number; n: number }> {
  // Throughput.
  let edge = await startEdge(kind, mosq)
  const perAgent = Math.ceil(EVENTS / AGENTS)
  let child = startChild({ MODE: 'uplink', URL: edge.url, IDS: JSON.stringify(switchIds), PASSWORDS: JSON.stringify(passwords), STATE_DIR: tempDir('agents'), COUNT: String(perAgent), RATE: '0', DURATION_MS: '0' })
  await child.ready
  const meter = new CpuMeter({ agents: () => child.pid, broker: () => mosq?.pid, edge: () => undefined })
  child.go()
  const t0 = performance.now()
  await Promise.race([child.done, new Promise((_, rej) => setTimeout(() => rej(new Error('throughput run timed out')), 600_000))])
  const until = Date.now() + 30_000
  while (edge.committed < perAgent * AGENTS && Date.now() < until) await new Promise((r) => setTimeout(r, 10))
  const rate = edge.committed / ((edge.lastCommitAt - t0) / 1000)
  const cpu = meter.usPerEvent(edge.committed)
  child.kill()
  await edge.close()

  // Latency at a steady rate.
  edge = await startEdge(kind, mosq)
  child = startChild({ MODE: 'uplink', URL: edge.url, IDS: JSON.stringify(switchIds), PASSWORDS: JSON.stringify(passwords), STATE_DIR: tempDir('agents'), COUNT: '0', RATE: String(RATE), DURATION_MS: String(DURATION_S * 1000) })
  await child.ready
  edge.recordLatency = true
  child.go()
  await Promise.race([child.done, new Promise((_, rej) => setTimeout(() => rej(new Error('latency run timed out')), DURATION_S * 1000 + 120_000))])
  await new Promise((r) => setTimeout(r, 200))
  child.kill()
  await edge.close()
  const sorted = edge.latenciesMs.sort((a, b) => a - b)
  return { rate, cpu, p50: pct(sorted, 50), p99: pct(sorted, 99), max: sorted[sorted.length - 1] ?? NaN, n: sorted.length }
}

async function main(): Promise<void> {
  const users = { ...passwords, [EDGE_USER]: EDGE_PASSWORD }
  const mosq = await Mosquitto.start({ users, serviceUsers: [EDGE_USER], extraConfig: (process.env.BENCH_MOSQ_EXTRA ?? '').split(';').filter(Boolean) })
  try {
    console.log(`load average: ${loadavg().map((l) => l.toFixed(1)).join(' ')} (2 cores; above 2 the figures are contention-bound)`)
    console.log(`pipeline bench: ${EVENTS} events, ${AGENTS} agents, payload ${PAYLOAD_BYTES} bytes, latency at ${RATE}/s for ${DURATION_S} s`)
    const b = await baseline(mosq)
    const base = b.rate
    console.log(`baseline mosquitto alone (QoS 1 pub -> sub): ${Math.round(base)} msg/s; ${cpuText(b.cpu)}`)
    if (process.argv.includes('--baseline-only')) return
    const kinds = process.argv.includes('--mosquitto-only') ? (['mosquitto'] as const) : (['mosquitto', 'aedes'] as const)
    for (const kind of kinds) {
      const r = await pipeline(kind, kind === 'mosquitto' ? mosq : undefined)
      console.log(
        `${kind === 'mosquitto' ? 'uplinks -> mosquitto -> MqttIngest -> SQLite' : 'uplinks -> embedded aedes + ingest -> SQLite'}: ` +
          `${Math.round(r.rate)} events/s (${(r.rate / base).toFixed(2)} x broker alone; goal 20000/s); ` +
          `latency at ${RATE}/s: p50 ${r.p50} ms, p99 ${r.p99} ms, max ${r.max} ms over ${r.n} events (goal p99 < 50 ms)`,
      )
      console.log(`  ${cpuText(r.cpu)}`)
    }
  } finally {
    await mosq.close()
    for (const d of dirs) rmSync(d, { recursive: true, force: true })
  }
}

await main()
process.exit(0)
