/**
 * Edge benchmark: (1) reducer + SQLite store apply rate, (2) HTTP lookups of a VSI by MAC
 * and by IP against `vdp-edge` (bin/vdp-edge.mjs, a separate process, optionally with HTTP
 * workers) on 127.0.0.1 with a store of 1,000,000 VSIs.
 *
 *   npx tsx test/bench/edge-lookup.ts [--http-workers 2] [--load wrk|node] [--connections 16]
 *                                     [--seconds 10] [--vsis 1000000] [--db PATH] [--fresh] [--skip-apply]
 *                                     [--edge DIR]
 *   node load only:                   [--requests 200000] [--concurrency 64] [--clients 1]
 *
 * The database is built once and reused (its VSI count is checked); `--fresh` rebuilds it.
 * Load is bounded and on loopback only. `--load wrk` (the default when wrk is installed) is
 * one wrk thread with `--connections` keep-alive connections for `--seconds`: a C load
 * generator leaves the 2 cores of a small machine to the server. `--load node` is the
 * earlier generator: `--clients` node:http processes, `--requests` in total,
 * `--concurrency` in flight each. The server's CPU time (vdp-edge and its workers, from
 * /proc) is reported per request, the figure that least depends on what else runs.
 * `--edge DIR` runs DIR/bin/vdp-edge.mjs instead of this checkout's (e.g. an older commit
 * unpacked with `git archive`, node_modules linked), for a same-run comparison.
 * Goal: 20,000 req/s with p99 < 5 ms.
 */
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { dirname, join, resolve } from 'node:path'
import { spawn, spawnSync } from 'node:child_process'
import { parseMac, type Mac } from '../../shared/ethernet/mac.ts'
import { parseIpv4 } from '../../shared/api/ip.ts'
import type { VsiEvent } from '../../shared/api/events.ts'
import { managerIdFromText, portName, switchId, vsiIdFromUuid } from '../../shared/ids.ts'
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
const HTTP_WORKERS = Number(arg('http-workers', '0'))
const HAVE_WRK = spawnSync('wrk', ['--version']).error === undefined
const LOAD = arg('load', HAVE_WRK ? 'wrk' : 'node')
const CONNECTIONS = Number(arg('connections', '16'))
const SECONDS = Number(arg('seconds', '10'))
const EDGE_ROOT = resolve(arg('edge', resolve(import.meta.dirname, '../..')))
if (LOAD !== 'wrk' && LOAD !== 'node') throw new Error(`Cannot use --load "${LOAD}": expected wrk or node`)
if (LOAD === 'wrk' && !HAVE_WRK) throw new Error('Cannot use --load wrk: wrk is not installed (apt-get install wrk)')
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
if (!process.argv.includes('--skip-apply')) {
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

// ---- 2. HTTP lookups against vdp-edge ----
const tmp = mkdtempSync(join(tmpdir(), 'vdp-edge-lookup-'))
writeFileSync(join(tmp, 'tokens.json'), JSON.stringify([{ name: 'bench', token: TOKEN, scope: 'read' }]))
const edge = spawn(
  process.execPath,
  [
    join(EDGE_ROOT, 'bin/vdp-edge.mjs'),
    ...['--http', '127.0.0.1:0', '--mqtt-listen', '127.0.0.1:0', '--db', DB, '--tokens', join(tmp, 'tokens.json')],
    ...(HTTP_WORKERS > 0 ? ['--http-workers', String(HTTP_WORKERS)] : []),
    ...['--log-level', 'info'],
  ],
  { stdio: ['ignore', 'ignore', 'pipe'], env: { ...process.env, VDP_EDGE_KEK: '00'.repeat(32) } },
)
const edgePids = [edge.pid!]
const port = await new Promise<number>((resolveStarted, reject) => {
  let log = ''
  edge.once('exit', (code) => reject(new Error(`vdp-edge exited with ${code}: ${log}`)))
  edge.stderr!.on('data', (d: Buffer) => {
    log += d.toString()
    const lines = log.split('\n')
    log = lines.pop()!
    for (const line of lines) {
      if (!line.startsWith('{')) continue
      const l = JSON.parse(line) as { msg: string; pid?: number; http?: string }
      if (l.msg === 'HTTP worker started') edgePids.push(l.pid!)
      if (l.msg === 'vdp-edge started') resolveStarted(Number(l.http!.split(':')[1]))
    }
  })
})
edge.removeAllListeners('exit')

const USER_HZ = 100
const statFields = (pid: number | 'self') => readFileSync(`/proc/${pid}/stat`, 'utf8').replace(/^.*\) /, '').split(' ')
/** CPU time (µs) of this process's children that have exited: the load generators. */
const loadCpuUs = () => ((Number(statFields('self')[13]) + Number(statFields('self')[14])) * 1e6) / USER_HZ

/** CPU time (µs) of vdp-edge and its workers, from /proc (Linux). */
function serverCpuUs(): number {
  let ticks = 0
  for (const pid of edgePids) {
    try {
      const fields = statFields(pid)
      ticks += Number(fields[11]) + Number(fields[12]) // utime, stime
    } catch {
      // a worker that is gone
    }
  }
  return (ticks * 1e6) / USER_HZ
}

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

interface RunResult {
  requests: number
  seconds: number
  errors: number
  /** Latency quantiles, ms. */
  p50: number
  p99: number
  max: number
}

async function runNode(pathOf: (n: number) => string, total: number): Promise<RunResult> {
  const perClient = Math.ceil(total / CLIENTS)
  let seed = 12345
  // MINSTD: exact in doubles, so wrk's Lua draws the same sequence.
  const rnd = () => ((seed = (seed * 48271) % 2147483647) % VSIS)
  const results = await Promise.all(
    Array.from({ length: CLIENTS }, () => {
      const paths = Array.from({ length: perClient }, () => pathOf(rnd()))
      const child = spawn(process.execPath, ['-e', CLIENT], { stdio: ['pipe', 'pipe', 'inherit'] })
      child.stdin.end(JSON.stringify({ port, token: TOKEN, paths, concurrency: CONCURRENCY }))
      let out = ''
      child.stdout.on('data', (chunk: Buffer) => (out += chunk))
      return new Promise<{ lat: number[]; errors: number; seconds: number }>((resolveRun, reject) => {
        child.once('exit', (code) => (code === 0 ? resolveRun(JSON.parse(out)) : reject(new Error(`client exited with ${code}`))))
      })
    }),
  )
  const lat = Float64Array.from(results.flatMap((r) => r.lat)).sort()
  const q = (p: number) => lat[Math.min(lat.length - 1, Math.floor(p * lat.length))]!
  return {
    requests: lat.length,
    seconds: Math.max(...results.map((r) => r.seconds)),
    errors: results.reduce((a, r) => a + r.errors, 0),
    p50: q(0.5),
    p99: q(0.99),
    max: lat[lat.length - 1]!,
  }
}

/** wrk's Lua: the same pseudo-random VSIs as the node clients, MAC or IP. */
const wrkScript = (by: 'mac' | 'ip') => `
local seed = 12345
local h = "Bearer ${TOKEN}"
request = function()
  seed = (seed * 48271) % 2147483647
  local n = seed % ${VSIS}
  local a, b, c, d = math.floor(n / 16777216) % 256, math.floor(n / 65536) % 256, math.floor(n / 256) % 256, n % 256
  local path = ${
    by === 'mac'
      ? '"/api/v1/vsis?mac=" .. string.format("02:00:%02x:%02x:%02x:%02x", a, b, c, d)'
      : '"/api/v1/vsis?ip=" .. string.format("10.%d.%d.%d", b, c, d)'
  }
  return wrk.format("GET", path, { ["Authorization"] = h })
end
`

async function runWrk(by: 'mac' | 'ip', seconds: number): Promise<RunResult> {
  const script = join(tmp, `${by}.lua`)
  writeFileSync(script, wrkScript(by))
  const child = spawn('wrk', ['-t1', `-c${CONNECTIONS}`, `-d${seconds}s`, '--latency', '-s', script, `http://127.0.0.1:${port}`], {
    stdio: ['ignore', 'pipe', 'inherit'],
  })
  let out = ''
  child.stdout!.on('data', (d: Buffer) => (out += d))
  await new Promise<void>((ok, fail) => child.once('exit', (code) => (code === 0 ? ok() : fail(new Error(`wrk exited with ${code}: ${out}`)))))
  const ms = (text: string) => {
    const m = /^([\d.]+)(us|ms|s)$/.exec(text)
    if (!m) throw new Error(`Cannot read wrk latency "${text}"`)
    return Number(m[1]) * (m[2] === 'us' ? 1e-3 : m[2] === 's' ? 1e3 : 1)
  }
  const field = (re: RegExp) => re.exec(out)?.[1] ?? '0'
  const requests = Number(field(/(\d+) requests in/))
  const socketErrors = /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/.exec(out)
  return {
    requests,
    seconds: requests / Number(field(/Requests\/sec:\s+([\d.]+)/)),
    errors: Number(field(/Non-2xx or 3xx responses: (\d+)/)) + (socketErrors ? socketErrors.slice(1).reduce((a, v) => a + Number(v), 0) : 0),
    p50: ms(field(/ 50%\s+(\S+)/)),
    p99: ms(field(/ 99%\s+(\S+)/)),
    max: ms(field(/Latency\s+\S+\s+\S+\s+(\S+)/)),
  }
}

async function run(label: string, by: 'mac' | 'ip', pathOf: (n: number) => string, total: number, seconds: number): Promise<void> {
  const cpuBefore = serverCpuUs()
  const loadBefore = loadCpuUs()
  const r = LOAD === 'wrk' ? await runWrk(by, seconds) : await runNode(pathOf, total)
  const cpuUsPerRequest = (serverCpuUs() - cpuBefore) / r.requests
  const loadUsPerRequest = (loadCpuUs() - loadBefore) / r.requests
  const load = readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ')
  const how = LOAD === 'wrk' ? `wrk 1 thread, ${CONNECTIONS} connections, ${seconds} s` : `${CLIENTS}×${CONCURRENCY} node:http in flight`
  console.log(
    `${label.padEnd(10)} ${fmt(r.requests / r.seconds)} req/s  p50 ${r.p50.toFixed(2)} ms  p99 ${r.p99.toFixed(2)} ms  max ${r.max.toFixed(1)} ms  ` +
      `(${fmt(r.requests)} requests, ${how}, ${r.errors} errors, load average ${load})\n` +
      `${''.padEnd(10)} server CPU ${cpuUsPerRequest.toFixed(0)} µs/request = ${fmt(1e6 / cpuUsPerRequest)} req/s per server core; ` +
      `load generator CPU ${loadUsPerRequest.toFixed(0)} µs/request`,
  )
}

try {
  // A lookup answers the VSI asked for, before any load.
  const probe = await fetch(`http://127.0.0.1:${port}/api/v1/vsis?ip=${ipOf(4242)}`, { headers: { Authorization: `Bearer ${TOKEN}` } })
  const body = (await probe.json()) as { vsis: { current?: { macs: string[] } }[] }
  if (probe.status !== 200 || body.vsis[0]?.current?.macs[0] !== macOf(4242)) throw new Error(`Cannot look VSI 4242 up: ${probe.status}`)
  console.log(
    `HTTP lookups against ${fmt(VSIS)} VSIs on http://127.0.0.1:${port}, ${EDGE_ROOT}/bin/vdp-edge.mjs --http-workers ${HTTP_WORKERS}, load: ${LOAD}`,
  )
  await run('warm-up', 'mac', (n) => `/api/v1/vsis?mac=${macOf(n)}`, Math.min(20_000, REQUESTS), 3)
  await run('by MAC', 'mac', (n) => `/api/v1/vsis?mac=${macOf(n)}`, REQUESTS, SECONDS)
  await run('by IP', 'ip', (n) => `/api/v1/vsis?ip=${ipOf(n)}`, REQUESTS, SECONDS)
} finally {
  const exited = new Promise((r) => edge.once('exit', r))
  edge.kill('SIGTERM')
  await exited
  rmSync(tmp, { recursive: true, force: true })
}
