/**
 * Baseline: an lldpad station against a bridge under test, measured on the wire at the switch
 * port (tcpdump in the switch namespace). Run as root:
 *
 *   npx tsx test/bench/lldpad-baseline.ts [--n 50] [--burst 200] [--issuers 2] [--runs 1]
 *        [--bridges lldpad] [--bridge-module ./path/to/module.ts] [--json out.json]
 *        [--rka 20] [--nice -10] [--keep DIR] [--capture buffered|immediate]
 *
 * Every bridge runs in its own fresh lab (two namespaces, veth, lldpad station) with the same
 * station settings, one after the other in the same process, and the table shows each bridge
 * and the ratio to the first one. Bridges: `lldpad` (built in) and any module given with
 * `--bridge-module` that exports `bridgeUnderTest: BridgeUnderTest` (e.g. one that starts
 * `vdp-agent --role bridge --port <lab.switchIf>` inside `lab.switchNs`). A module path may
 * carry a query (`module.ts?key=value`), which the module reads from `import.meta.url`: the
 * same module twice with different queries is two bridges (vdp-agent-bridge.ts: another build,
 * another data plane).
 *
 * Measured:
 * - sequential: N `vdptool -T -W` Associates, one after the other (VID 0, format 2), then N
 *   De-Associates (with the VID the bridge returned); wire request -> response, ECP
 *   request -> ACK, and the vdptool call time (incl. `ip netns exec`, ~2 ms);
 * - burst: B Associates issued by `--issuers` parallel shell loops of `vdptool -T` (no -W),
 *   then the same for De-Associate: responses on the wire, lost (no response), responses/s
 *   from the first request to the last response, ECP retransmissions;
 * - bridge RSS after the burst, if the bridge reports it;
 * - the bridge's own share of the sequential phase's responses, if it reports it (vdp-agent:
 *   `vdp_agent_vdp_response_seconds`, from reading a request to its response leaving, inside
 *   the process): what is left of the wire time is the kernel and the wake-up.
 *
 * The capture is tcpdump in the switch namespace. `--capture buffered` (the default) leaves out
 * tcpdump's `--immediate-mode`: the kernel stamps every frame as it reaches the capture socket
 * either way, but immediate mode wakes tcpdump for every frame, and on a 2-core machine that
 * wake-up competes with the processes measured (a C station's round trip to our agent went
 * from 0.12 to 0.24 ms with an immediate-mode tcpdump beside it; in this bench the difference
 * is smaller, 0.25 -> 0.22 ms median).
 * `--capture immediate` is the earlier method, for comparison with older figures.
 *
 * @module
 */
import { writeFileSync } from 'node:fs'
import { cpus, loadavg } from 'node:os'
import { join } from 'node:path'
import { pathToFileURL } from 'node:url'
import { run, runIn, sleep, type EvbSettings, type VsiSpec } from '../support/lldpad.ts'
import { startLldpadLab, type LldpadLab } from '../support/lldpad-lab.ts'
import { measureWire, summarize, type Stats, type WireTiming } from '../support/wire-timing.ts'

// ---------------------------------------------------------------------------------------------
// the bridge under test

export interface RunningBridge {
  stop(): Promise<void>
  /** Resident memory of the bridge process, kB. */
  rssKb?(): number | undefined
  /**
   * Data-plane commits since start, if the bridge reports them: how many and their mean time
   * from the responses leaving to the commit (not part of the wire response time).
   */
  dataplaneCommits?(): Promise<{ readonly dataplane: string; readonly count: number; readonly meanMs: number } | undefined>
  /**
   * The bridge's own share of its response time, if it reports one: responses since start and
   * their mean time from the request's read to the response leaving, inside the process.
   */
  agentResponses?(): Promise<{ readonly count: number; readonly meanMs: number } | undefined>
}

export interface BridgeUnderTest {
  readonly name: string
  /**
   * Starts a bridge on `lab.switchIf` inside `lab.switchNs` (the lab has no bridge of its own)
   * with these EVB settings, and resolves once it is ready to answer VDP.
   */
  start(lab: LldpadLab, evb: EvbSettings): Promise<RunningBridge>
}

export const lldpadBridge: BridgeUnderTest = {
  name: 'lldpad',
  start: async (lab, evb) => {
    const handle = await lab.startLldpadBridge(evb)
    await handle.waitForVdpParams() // "requests before EVB parameters" bug: never ask earlier
    return { stop: () => lab.stopLldpadBridge(), rssKb: () => handle.rssKb() }
  },
}

// ---------------------------------------------------------------------------------------------
// measurement

export interface BaselineOptions {
  /** Sequential associations. */
  readonly n: number
  /** Associations in the burst. */
  readonly burst: number
  /** Parallel vdptool issuers in the burst. */
  readonly issuers: number
  /** EVB settings of both ends (lldpad defaults when empty). */
  readonly evb: EvbSettings
  /** Keep pcaps and logs in this directory. */
  readonly keepDir?: string
  /**
   * Nice value for every process of the lab (station, bridge under test, burst issuers), e.g.
   * -10 on a shared machine; both bridges get the same. Default: unchanged.
   */
  readonly nice?: number
  /** tcpdump without (`buffered`, the default) or with `--immediate-mode`. */
  readonly capture?: 'buffered' | 'immediate'
}

/** Renices every process inside the lab's namespaces (pids as the root namespace sees them). */
async function reniceLab(lab: LldpadLab, nice: number): Promise<void> {
  for (const ns of [lab.hostNs, lab.switchNs]) {
    const pids = (await run('ip', ['netns', 'pids', ns])).stdout.split(/\s+/).filter((p) => /^\d+$/.test(p))
    if (pids.length > 0) await run('renice', ['-n', String(nice), '-p', ...pids])
  }
}

export interface BurstResult {
  readonly requested: number
  readonly refusedLocally: number
  readonly responses: number
  /** VSIs that got no response on the wire. */
  readonly lost: number
  readonly responsesPerSecond: number
  readonly latency: Stats
  readonly retransmissions: { readonly station: number; readonly bridge: number }
  readonly durationMs: number
}

export interface BaselineResult {
  readonly bridge: string
  /** 1-minute load average before and after the run, and the number of CPUs. */
  readonly load: { readonly before: number; readonly after: number; readonly cpus: number }
  readonly seqAssoc: Stats
  readonly seqAssocLost: number
  readonly seqDeassoc: Stats
  readonly bridgeAck: Stats
  readonly vdptoolCall: Stats
  readonly burstAssoc: BurstResult
  readonly burstDeassoc: BurstResult
  readonly bridgeRssKb: number | undefined
  readonly dataplaneCommits: { readonly dataplane: string; readonly count: number; readonly meanMs: number } | undefined
  /** Of the sequential phase (warm-up excluded): the bridge's in-process share, if reported. */
  readonly seqAgentResponses: { readonly count: number; readonly meanMs: number } | undefined
  readonly assignedVids: readonly number[]
}

const VSI_BASE = { mgrid2: 'vdplab', typeId: 5, typeVersion: 1 } as const

function spec(lab: LldpadLab, n: number, vid = 0): VsiSpec {
  return { ...VSI_BASE, uuid: lab.uuid(n), filters: [{ vid, mac: lab.vsiMac(n) }] }
}

async function sequential(lab: LldpadLab, first: number, n: number, keepDir: string | undefined, buffered: boolean) {
  const calls: number[] = []
  const vids = new Map<number, number>()
  const assoc = await measureWire(lab, async () => {
    for (let i = 0; i < n; i++) {
      const r = await lab.vdptool.associate(spec(lab, first + i), { wait: true })
      calls.push(r.elapsedMs)
      if (r.kind === 'response' && r.event.mode === 'assoc') vids.set(first + i, r.event.filters[0]?.vid ?? 0)
    }
  }, { buffered, ...(keepDir === undefined ? {} : { file: join(keepDir, 'seq-assoc.pcap') }) })
  const deassoc = await measureWire(lab, async () => {
    for (const [i, vid] of vids) {
      const r = await lab.vdptool.deAssociate(spec(lab, i, vid), { wait: true })
      calls.push(r.elapsedMs)
    }
  }, { buffered, ...(keepDir === undefined ? {} : { file: join(keepDir, 'seq-deassoc.pcap') }) })
  return { assoc: assoc.timing, deassoc: deassoc.timing, calls, vids }
}

/** `issuers` shell loops of `vdptool -T` (no -W) inside the host namespace, in parallel. */
async function burst(
  lab: LldpadLab,
  items: readonly VsiSpec[],
  mode: 'assoc' | 'deassoc',
  issuers: number,
  keepDir: string | undefined,
  nice: number | undefined,
  buffered: boolean,
): Promise<{ timing: WireTiming; refused: number; durationMs: number }> {
  const scripts: string[] = []
  for (let k = 0; k < issuers; k++) {
    const lines = items
      .filter((_, i) => i % issuers === k)
      .map((v) => `vdptool ${lab.vdptool.commandArgs(mode, v).map((a) => `'${a}'`).join(' ')}`)
    const path = join(lab.dir, `burst-${mode}-${k}.sh`)
    writeFileSync(path, `${lines.join('\n')}\n`)
    scripts.push(path)
  }
  let refused = 0
  let durationMs = 0
  const { timing } = await measureWire(
    lab,
    async () => {
      const startedAt = performance.now()
      const shell = nice === undefined ? ['sh'] : ['nice', '-n', String(nice), 'sh']
      const outputs = await Promise.all(
        scripts.map((s) => runIn(lab.hostNs, shell[0] as string, [...shell.slice(1), s], { timeoutMs: 120_000 })),
      )
      durationMs = performance.now() - startedAt
      refused = outputs.reduce((sum, o) => sum + (o.stdout.match(/^FAILED/gm)?.length ?? 0), 0)
      // let the tail drain: ECP pacing ~390 ECPDUs/s, bridge answers within a few ms
      await sleep(1500)
    },
    { buffered, ...(keepDir === undefined ? {} : { file: join(keepDir, `burst-${mode}.pcap`) }) },
  )
  return { timing, refused, durationMs }
}

function burstResult(requested: number, b: { timing: WireTiming; refused: number; durationMs: number }, uuids: Set<string>): BurstResult {
  const answered = new Set(b.timing.exchanges.filter((x) => uuids.has(x.vsiid)).map((x) => x.vsiid))
  return {
    requested,
    refusedLocally: b.refused,
    responses: b.timing.exchanges.length,
    lost: requested - answered.size,
    responsesPerSecond: b.timing.responsesPerSecond,
    latency: b.timing.vdp,
    retransmissions: b.timing.retransmissions,
    durationMs: b.durationMs,
  }
}

/** Labs of runs in progress, stopped on SIGINT/SIGTERM. */
const activeLabs = new Set<LldpadLab>()

export async function runBaseline(bridge: BridgeUnderTest, labName: string, options: BaselineOptions): Promise<BaselineResult> {
  const loadBefore = loadavg()[0] ?? Number.NaN
  const lab = await startLldpadLab({ name: labName, bridge: 'none', evb: options.evb })
  activeLabs.add(lab)
  let running: RunningBridge | undefined
  try {
    running = await bridge.start(lab, { gpid: true, rrCap: true, ...options.evb })
    if (options.nice !== undefined) await reniceLab(lab, options.nice)
    await lab.waitForBridgeEvb()
    await sleep(1200) // one more LLDP tick on both ends
    // warm-up (not measured)
    for (let i = 0; i < 3; i++) {
      const r = await lab.vdptool.associate(spec(lab, 0x9000 + i), { wait: true })
      if (r.kind !== 'response' || r.event.mode !== 'assoc') {
        throw new Error(`${bridge.name}: warm-up Associate got ${r.kind}: ${r.stdout.trim()}`)
      }
      const vid = r.event.filters[0]?.vid ?? 0
      await lab.vdptool.deAssociate(spec(lab, 0x9000 + i, vid), { wait: true })
    }
    const buffered = options.capture !== 'immediate'
    const agentBefore = await running.agentResponses?.()
    const seq = await sequential(lab, 1, options.n, options.keepDir, buffered)
    const agentAfter = await running.agentResponses?.()
    const seqAgentResponses =
      agentBefore && agentAfter && agentAfter.count > agentBefore.count
        ? {
            count: agentAfter.count - agentBefore.count,
            meanMs: (agentAfter.meanMs * agentAfter.count - agentBefore.meanMs * agentBefore.count) / (agentAfter.count - agentBefore.count),
          }
        : undefined
    const seqAssoc = seq.assoc.exchanges.filter((x) => x.requestType === 3)
    const seqUuids = new Set(Array.from({ length: options.n }, (_, i) => lab.uuid(1 + i)))
    const seqAnswered = new Set(seqAssoc.filter((x) => seqUuids.has(x.vsiid)).map((x) => x.vsiid))

    const first = 0x1000
    const assocItems = Array.from({ length: options.burst }, (_, i) => spec(lab, first + i))
    const uuids = new Set(assocItems.map((v) => v.uuid))
    const bAssoc = await burst(lab, assocItems, 'assoc', options.issuers, options.keepDir, options.nice, buffered)
    // de-associate what the station holds, with the VID it holds (query by uuid, gotcha 7)
    const held: VsiSpec[] = []
    for (const v of assocItems) {
      const record = await lab.vdptool.query(v.uuid)
      if (record?.mode === 'assoc') held.push({ ...v, filters: [{ vid: record.filters[0]?.vid ?? 0, mac: v.filters[0]?.mac ?? '' }] })
    }
    const bDeassoc = await burst(lab, held, 'deassoc', options.issuers, options.keepDir, options.nice, buffered)
    const bridgeRssKb = running.rssKb?.()
    const dataplaneCommits = await running.dataplaneCommits?.()
    return {
      bridge: bridge.name,
      load: { before: loadBefore, after: loadavg()[0] ?? Number.NaN, cpus: cpus().length },
      seqAssoc: summarize(seqAssoc.map((x) => x.latencyMs)),
      seqAssocLost: options.n - seqAnswered.size,
      seqDeassoc: summarize(seq.deassoc.exchanges.map((x) => x.latencyMs)),
      bridgeAck: summarize([...seq.assoc.bridgeAckSamplesMs, ...seq.deassoc.bridgeAckSamplesMs]),
      vdptoolCall: summarize(seq.calls),
      burstAssoc: burstResult(options.burst, bAssoc, uuids),
      burstDeassoc: burstResult(held.length, bDeassoc, new Set(held.map((v) => v.uuid))),
      bridgeRssKb,
      dataplaneCommits,
      seqAgentResponses,
      assignedVids: [...new Set(seq.vids.values())].sort((a, b) => a - b),
    }
  } finally {
    await running?.stop()
    await lab.stop({ keepFiles: options.keepDir !== undefined })
    activeLabs.delete(lab)
  }
}

// ---------------------------------------------------------------------------------------------
// report

interface Row {
  readonly label: string
  readonly value: (r: BaselineResult) => number | undefined
  /** Decimals. */
  readonly digits: number
  /** Print a ratio column value (default true). */
  readonly ratio?: boolean
}

const ROWS: readonly Row[] = [
  { label: 'seq Assoc wire req->resp median ms', value: (r) => r.seqAssoc.median, digits: 2 },
  { label: 'seq Assoc wire p10 ms', value: (r) => r.seqAssoc.p10, digits: 2 },
  { label: 'seq Assoc wire p90 ms', value: (r) => r.seqAssoc.p90, digits: 2 },
  { label: 'seq Assoc wire max ms', value: (r) => r.seqAssoc.max, digits: 2 },
  { label: 'seq Assoc lost', value: (r) => r.seqAssocLost, digits: 0 },
  { label: 'seq De-Assoc wire median ms', value: (r) => r.seqDeassoc.median, digits: 2 },
  { label: 'ECP req->ACK (bridge) median ms', value: (r) => r.bridgeAck.median, digits: 3 },
  { label: 'ECP req->ACK (bridge) p90 ms', value: (r) => r.bridgeAck.p90, digits: 3 },
  { label: 'vdptool -W call median ms', value: (r) => r.vdptoolCall.median, digits: 2 },
  { label: 'burst Assoc responses', value: (r) => r.burstAssoc.responses, digits: 0 },
  { label: 'burst Assoc lost', value: (r) => r.burstAssoc.lost, digits: 0 },
  { label: 'burst Assoc refused by station', value: (r) => r.burstAssoc.refusedLocally, digits: 0 },
  { label: 'burst Assoc responses/s', value: (r) => r.burstAssoc.responsesPerSecond, digits: 0 },
  { label: 'burst Assoc wire median ms', value: (r) => r.burstAssoc.latency.median, digits: 2 },
  { label: 'burst Assoc wire p90 ms', value: (r) => r.burstAssoc.latency.p90, digits: 2 },
  { label: 'burst Assoc ECP retransmissions', value: (r) => r.burstAssoc.retransmissions.station + r.burstAssoc.retransmissions.bridge, digits: 0 },
  { label: 'burst De-Assoc sent', value: (r) => r.burstDeassoc.requested, digits: 0 },
  { label: 'burst De-Assoc responses', value: (r) => r.burstDeassoc.responses, digits: 0 },
  { label: 'burst De-Assoc lost', value: (r) => r.burstDeassoc.lost, digits: 0 },
  { label: 'burst De-Assoc responses/s', value: (r) => r.burstDeassoc.responsesPerSecond, digits: 0 },
  { label: 'burst De-Assoc ECP retransmissions', value: (r) => r.burstDeassoc.retransmissions.station + r.burstDeassoc.retransmissions.bridge, digits: 0 },
  { label: 'bridge RSS kB', value: (r) => r.bridgeRssKb, digits: 0 },
  { label: 'seq responses timed in the bridge', value: (r) => r.seqAgentResponses?.count, digits: 0, ratio: false },
  { label: 'seq read -> response in the bridge, mean ms', value: (r) => r.seqAgentResponses?.meanMs, digits: 3, ratio: false },
  { label: 'data-plane commits (apart from the wire)', value: (r) => r.dataplaneCommits?.count, digits: 0, ratio: false },
  { label: 'data-plane commit mean ms', value: (r) => r.dataplaneCommits?.meanMs, digits: 3, ratio: false },
  { label: 'load average (1 min) before', value: (r) => r.load.before, digits: 1, ratio: false },
  { label: 'load average (1 min) after', value: (r) => r.load.after, digits: 1, ratio: false },
]

function fmt(value: number | undefined, digits: number): string {
  return value === undefined || Number.isNaN(value) ? '-' : value.toFixed(digits)
}

/** The side-by-side table: one column per bridge (per run), ratio of each to the first bridge. */
export function formatTable(results: readonly BaselineResult[]): string {
  const columns = results.map((r) => r.bridge)
  const baseline = results[0]
  const ratioColumns = results.slice(1).map((r) => `${r.bridge}/${baseline?.bridge ?? ''}`)
  const header = ['metric', ...columns, ...ratioColumns]
  const body = ROWS.map((row) => {
    const values = results.map((r) => row.value(r))
    const base = values[0]
    const ratios = values.slice(1).map((v) =>
      row.ratio === false || v === undefined || base === undefined || base === 0 || Number.isNaN(v) || Number.isNaN(base) ? '-' : (v / base).toFixed(2),
    )
    return [row.label, ...values.map((v) => fmt(v, row.digits)), ...ratios]
  })
  const widths = header.map((h, i) => Math.max(h.length, ...body.map((line) => (line[i] ?? '').length)))
  const line = (cells: readonly string[]): string =>
    cells.map((c, i) => (i === 0 ? c.padEnd(widths[i] ?? 0) : c.padStart(widths[i] ?? 0))).join('  ')
  return [line(header), line(widths.map((w) => '-'.repeat(w))), ...body.map(line)].join('\n')
}

// ---------------------------------------------------------------------------------------------
// command line

interface Cli {
  readonly options: BaselineOptions
  readonly bridges: readonly string[]
  readonly bridgeModules: readonly string[]
  readonly runs: number
  readonly json: string | undefined
}

function parseCli(argv: readonly string[]): Cli {
  const values = new Map<string, string[]>()
  for (let i = 0; i < argv.length; i++) {
    const key = argv[i] ?? ''
    if (!key.startsWith('--')) throw new Error(`unexpected argument ${key}`)
    const value = argv[i + 1]
    if (value === undefined) throw new Error(`${key} needs a value`)
    values.set(key.slice(2), [...(values.get(key.slice(2)) ?? []), value])
    i++
  }
  const known = new Set(['n', 'burst', 'issuers', 'runs', 'bridges', 'bridge-module', 'json', 'rka', 'keep', 'nice', 'capture'])
  for (const k of values.keys()) if (!known.has(k)) throw new Error(`unknown option --${k}`)
  const int = (k: string, d: number): number => {
    const v = values.get(k)?.at(-1)
    if (v === undefined) return d
    const n = Number(v)
    if (!Number.isInteger(n) || n < 0) throw new Error(`--${k} must be a non-negative integer, got ${v}`)
    return n
  }
  const rka = values.get('rka')?.at(-1)
  const keep = values.get('keep')?.at(-1)
  const nice = values.get('nice')?.at(-1)
  if (nice !== undefined && !/^-?\d+$/.test(nice)) throw new Error(`--nice must be an integer, got ${nice}`)
  const capture = values.get('capture')?.at(-1) ?? 'buffered'
  if (capture !== 'buffered' && capture !== 'immediate') throw new Error(`--capture must be buffered or immediate, got ${capture}`)
  return {
    options: {
      n: int('n', 50),
      burst: int('burst', 200),
      issuers: Math.max(1, int('issuers', 2)),
      evb: rka === undefined ? {} : { vdpRka: Number(rka) },
      ...(keep === undefined ? {} : { keepDir: keep }),
      ...(nice === undefined ? {} : { nice: Number(nice) }),
      capture,
    },
    bridges: (values.get('bridges')?.at(-1) ?? 'lldpad').split(',').filter((b) => b !== ''),
    bridgeModules: values.get('bridge-module') ?? [],
    runs: Math.max(1, int('runs', 1)),
    json: values.get('json')?.at(-1),
  }
}

async function main(): Promise<void> {
  if (process.getuid?.() !== 0) throw new Error('run as root: the benchmark creates network namespaces')
  const cli = parseCli(process.argv.slice(2))
  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    process.once(signal, () => {
      process.stderr.write(`\n${signal}: removing the lab\n`)
      void Promise.all([...activeLabs].map((lab) => lab.stop())).finally(() => process.exit(130))
    })
  }
  const bridges: BridgeUnderTest[] = []
  for (const name of cli.bridges) {
    if (name !== 'lldpad') throw new Error(`unknown built-in bridge ${name}; use --bridge-module for others`)
    bridges.push(lldpadBridge)
  }
  for (const path of cli.bridgeModules) {
    // A query (`module.ts?key=value`) stays a query: the module reads it as its variant.
    const [file, query] = path.split('?', 2) as [string, string | undefined]
    const mod = (await import(pathToFileURL(file).href + (query === undefined ? '' : `?${query}`))) as { bridgeUnderTest?: BridgeUnderTest }
    if (mod.bridgeUnderTest === undefined) throw new Error(`${path} does not export bridgeUnderTest`)
    bridges.push(mod.bridgeUnderTest)
  }
  const results: BaselineResult[] = []
  let k = 0
  for (let run = 0; run < cli.runs; run++) {
    for (const bridge of bridges) {
      k++
      const started = performance.now()
      process.stderr.write(`run ${run + 1}/${cli.runs}: ${bridge.name} ...`)
      const r = await runBaseline(bridge, `lbase${k}`, cli.options)
      results.push(cli.runs > 1 ? { ...r, bridge: `${r.bridge}#${run + 1}` } : r)
      process.stderr.write(` ${((performance.now() - started) / 1000).toFixed(1)} s\n`)
    }
  }
  const o = cli.options
  console.log(`lldpad station vs bridge under test: n=${o.n} sequential, burst=${o.burst} from ${o.issuers} issuers, ` +
    `EVB ${JSON.stringify(o.evb)}${o.nice === undefined ? '' : `, nice ${o.nice}`}; wire times at the switch port ` +
    `(tcpdump, ${o.capture === 'immediate' ? 'immediate mode' : 'buffered'})`)
  console.log(formatTable(results))
  const cpuCount = cpus().length
  if (results.some((r) => Math.max(r.load.before, r.load.after) > cpuCount)) {
    console.log(`warning: load average above ${cpuCount} CPUs. The lldpad station never cancels its ECP ack ` +
      'timer (qbg/ecp22.c registers one per transmission): stale timers fire while a newer ECPDU awaits an ACK ' +
      'that load delays, the ECPDU is retransmitted back to back until its retries run out, and burst requests ' +
      'are lost. Compare only runs made under similar load.')
  }
  for (const r of results) if (r.assignedVids.length > 0) console.log(`${r.bridge}: VIDs returned for VID 0: ${r.assignedVids.join(',')}`)
  for (const r of results) {
    if (r.dataplaneCommits) console.log(`${r.bridge}: data plane ${r.dataplaneCommits.dataplane}, ${r.dataplaneCommits.count} commits, mean ${r.dataplaneCommits.meanMs.toFixed(3)} ms after the responses left`)
  }
  if (cli.json !== undefined) writeFileSync(cli.json, JSON.stringify(results, null, 2))
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  main().catch((error: unknown) => {
    console.error(error instanceof Error ? error.message : error)
    process.exitCode = 1
  })
}
