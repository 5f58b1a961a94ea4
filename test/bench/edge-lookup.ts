/**
 * Edge benchmark: (1) reducer + SQLite store apply rate, (2) HTTP lookups of a VSI by MAC
 * and by IP through @hono/node-server on 127.0.0.1 against a store of 1,000,000 VSIs.
 *
 *   npx tsx test/bench/edge-lookup.ts [--vsis 1000000] [--requests 200000] [--concurrency 64]
 *                                     [--clients 1] [--db /tmp/vdp-edge-bench/fleet.sqlite] [--fresh]
 *
 * The database is built once and reused (its VSI count is checked); `--fresh` rebuilds it.
 * Load is bounded: `--requests` in total, `--concurrency` in flight per client process. The
 * clients are separate processes (plain node:http with keep-alive), so the server's CPU time
 * per request is measured alone: on a shared or small machine, "req/s per server core" is
 * the figure that does not depend on what else runs. Goal: 20,000 req/s with p99 < 5 ms.
 */
import { mkdirSync, rmSync } from 'node:fs'
import { dirname } from 'node:path'
import type { AddressInfo } from 'node:net'
import { spawn } from 'node:child_process'
import { serve } from '@hono/node-server'
import { parseMac, type Mac } from '../../shared/ethernet/mac.ts'
import { parseIpv4 } from '../../shared/api/ip.ts'
import type { VsiEvent } from '../../shared/api/events.ts'
import { managerIdFromText, portName, switchId, vsiIdFromUuid } from '../../shared/ids.ts'
import { createApp } from '../../edge/app.ts'
import { silentLogger } from '../../edge/deps.ts'
import { createSecretBox } from '../../edge/secrets.ts'
import { SqliteFleetStore } from '../../edge/store/sqlite-fleet-store.ts'

const arg = (name: string, fallback: string): string => {
  const i = process.argv.indexOf(`--${name}`)
  return i >= 0 && process.argv[i + 1] ? process.argv[i + 1]! : fallback
}
const VSIS = Number(arg('vsis', '1000000'))
const REQUESTS = Number(arg('requests', '200000'))
const CONCURRENCY = Number(arg('concurrency', '64'))
const CLIENTS = Number(arg('clients', '1'))
const DB = arg('db', '/tmp/vdp-edge-bench/fleet.sqlite')
const T0 = 1_700_000_000_000
const TOKEN = 'bench-read-token-0123456789'
const MANAGER = managerIdFromText('bench')

const hex = (n: number, w: number) => n.toString(16).padStart(w, '0')
const macOf = (n: number): Mac => parseMac(`02:00:${hex((n >>> 24) & 255, 2)}:${hex((n >>> 16) & 255, 2)}:${hex((n >>> 8) & 255, 2)}:${hex(n & 255, 2)}`)
const ipOf = (n: number) => `10.${(n >>> 16) & 255}.${(n >>> 8) & 255}.${n & 255}`

/** VSI n on switch tor(n % 48), port Ethernet(n % 32 * 4), VN 5000 + n % 200. */
function eventOf(n: number, seq: number): VsiEvent {
  return {
    v: 1,
    kind: 'vsi-associated',
    switchId: switchId(`tor${n % 48}`),
    bootId: 'bench-boot-0001',
    bootTime: T0,
    seq,
    time: T0 + n,
    port: portName(`Ethernet${(n % 32) * 4}`),
    stationMac: macOf(0x7f000000 + (n % 4096)),
    managerId: MANAGER,
    typeId: 100,
    typeVersion: 1,
    vsiIdFormat: 5,
    vsiId: vsiIdFromUuid(`${hex(n, 8)}-0000-4000-8000-000000000000`),
    vni: 5000 + (n % 200),
    groupId: 5000 + (n % 200),
    vid: 100 + (n % 200),
    macs: [macOf(n)],
    ipv4: [parseIpv4(ipOf(n))],
    migration: 'none',
    reason: 'bench',
  }
}

function applyRate(store: SqliteFleetStore, from: number, count: number, batch: number, seqBase = from): { wall: number; cpu: number } {
  const seqBySwitch = new Map<number, number>()
  const started = performance.now()
  const cpuBefore = process.cpuUsage()
  for (let i = from; i < from + count; i += batch) {
    const events: VsiEvent[] = []
    for (let n = i; n < Math.min(i + batch, from + count); n++) {
      const sw = n % 48
      const seq = (seqBySwitch.get(sw) ?? seqBase) + 1
      seqBySwitch.set(sw, seq)
      events.push(eventOf(n, seq))
    }
    store.applyEvents(events, { nowMs: T0, migrationGraceMs: 30_000 })
  }
  const cpu = process.cpuUsage(cpuBefore)
  return { wall: count / ((performance.now() - started) / 1000), cpu: count / ((cpu.user + cpu.system) / 1e6) }
}
const rates = (r: { wall: number; cpu: number }) => `${fmt(r.wall)} events/s (${fmt(r.cpu)} per CPU-second)`

// ---- 1. apply rate ----
const fmt = (x: number) => Math.round(x).toLocaleString('en-US')
{
  const path = `${dirname(DB)}/apply.sqlite`
  mkdirSync(dirname(DB), { recursive: true })
  for (const sync of ['FULL', 'NORMAL'] as const) {
    for (const suffix of ['', '-wal', '-shm']) rmSync(path + suffix, { force: true })
    const s = new SqliteFleetStore({ path, synchronous: sync })
    const created = applyRate(s, 0, 50_000, 500)
    const updated = applyRate(s, 0, 50_000, 500, 1_000_000)
    s.close()
    console.log(`apply  synchronous=${sync.padEnd(6)} batch=500: ${rates(created)}, 50,000 new VSIs (reducer + SQLite, one transaction per batch)`)
    console.log(`apply  synchronous=${sync.padEnd(6)} batch=500: ${rates(updated)}, 50,000 re-associations of known VSIs`)
  }
}

if (process.argv.includes('--fresh')) for (const suffix of ['', '-wal', '-shm']) rmSync(DB + suffix, { force: true })
let store = new SqliteFleetStore({ path: DB, synchronous: 'NORMAL' })
const have = store.counts().vsis
if (have !== VSIS) {
  if (have !== 0) {
    store.close()
    for (const suffix of ['', '-wal', '-shm']) rmSync(DB + suffix, { force: true })
    store = new SqliteFleetStore({ path: DB, synchronous: 'NORMAL' })
  }
  console.log(`building ${fmt(VSIS)} VSIs in ${DB} …`)
  const rate = applyRate(store, 0, VSIS, 1000)
  console.log(`apply  synchronous=NORMAL batch=1000: ${rates(rate)} while loading ${fmt(VSIS)} VSIs`)
  store.db.pragma('wal_checkpoint(TRUNCATE)')
} else {
  console.log(`reusing ${DB} with ${fmt(have)} VSIs (--fresh rebuilds it)`)
}
store.close()
store = new SqliteFleetStore({ path: DB, synchronous: 'FULL' })

// ---- 2. HTTP lookups ----
const app = createApp({
  store,
  clock: { nowMs: () => Date.now() },
  logger: silentLogger,
  publish: { policy: async () => {}, command: async () => {} },
  tokens: [{ name: 'bench', token: TOKEN, scope: 'read' }],
  secrets: createSecretBox(new Uint8Array(32)),
})
const server = serve({ fetch: app.fetch, hostname: '127.0.0.1', port: 0 })
await new Promise((r) => server.once('listening', r))
const port = (server.address() as AddressInfo).port

const CLIENT = `
const http = require('node:http')
const { port, token, paths, concurrency } = JSON.parse(require('node:fs').readFileSync(0, 'utf8'))
const agent = new http.Agent({ keepAlive: true, maxSockets: concurrency })
const lat = new Float64Array(paths.length)
let next = 0, done = 0, errors = 0
const started = performance.now()
function one() {
  const i = next++
  if (i >= paths.length) return
  const t0 = performance.now()
  const req = http.get({ host: '127.0.0.1', port, path: paths[i], agent, headers: { Authorization: 'Bearer ' + token } }, (res) => {
    let n = 0
    res.on('data', (c) => { n += c.length })
    res.on('end', () => {
      lat[i] = performance.now() - t0
      if (res.statusCode !== 200 || n < 100) errors++
      if (++done === paths.length) finish(); else one()
    })
  })
  req.on('error', () => { errors++; lat[i] = performance.now() - t0; if (++done === paths.length) finish(); else one() })
}
function finish() {
  process.stdout.write(JSON.stringify({ lat: Array.from(lat), errors, seconds: (performance.now() - started) / 1000 }))
  agent.destroy()
}
for (let k = 0; k < concurrency; k++) one()
`

async function run(label: string, pathOf: (n: number) => string, total: number): Promise<void> {
  const perClient = Math.ceil(total / CLIENTS)
  let seed = 12345
  const rnd = () => ((seed = (seed * 1103515245 + 12345) >>> 0) % VSIS)
  const cpuBefore = process.cpuUsage()
  const results = await Promise.all(
    Array.from({ length: CLIENTS }, () => {
      const paths = Array.from({ length: perClient }, () => pathOf(rnd()))
      const child = spawn(process.execPath, ['-e', CLIENT], { stdio: ['pipe', 'pipe', 'inherit'] })
      child.stdin.end(JSON.stringify({ port, token: TOKEN, paths, concurrency: CONCURRENCY }))
      let out = ''
      child.stdout.on('data', (chunk: Buffer) => (out += chunk))
      return new Promise<{ lat: number[]; errors: number; seconds: number }>((resolve, reject) => {
        child.once('exit', (code) => (code === 0 ? resolve(JSON.parse(out)) : reject(new Error(`client exited with ${code}`))))
      })
    }),
  )
  const cpu = process.cpuUsage(cpuBefore)
  const lat = Float64Array.from(results.flatMap((r) => r.lat)).sort()
  const cpuUsPerRequest = (cpu.user + cpu.system) / lat.length
  const seconds = Math.max(...results.map((r) => r.seconds))
  const errors = results.reduce((a, r) => a + r.errors, 0)
  const q = (p: number) => lat[Math.min(lat.length - 1, Math.floor(p * lat.length))]!.toFixed(2)
  console.log(
    `${label.padEnd(10)} ${fmt(lat.length / seconds)} req/s  p50 ${q(0.5)} ms  p99 ${q(0.99)} ms  max ${lat[lat.length - 1]!.toFixed(1)} ms  ` +
      `(${fmt(lat.length)} requests, ${CLIENTS}×${CONCURRENCY} in flight, ${errors} errors)\n` +
      `${''.padEnd(10)} server CPU ${cpuUsPerRequest.toFixed(0)} µs/request = ${fmt(1e6 / cpuUsPerRequest)} req/s per server core`,
  )
}

console.log(`HTTP lookups against ${fmt(VSIS)} VSIs on http://127.0.0.1:${port}`)
await run('warm-up', (n) => `/api/v1/vsis?mac=${macOf(n)}`, Math.min(20_000, REQUESTS))
await run('by MAC', (n) => `/api/v1/vsis?mac=${macOf(n)}`, REQUESTS)
await run('by IP', (n) => `/api/v1/vsis?ip=${ipOf(n)}`, REQUESTS)
await new Promise((r) => server.close(r))
store.close()
