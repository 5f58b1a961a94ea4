// Port-core throughput: VSI transactions (Associate, Pre-Associate, De-Associate requests
// answered) per second processed by the bridge core, in the in-memory bridge/station pair in
// virtual time. Two figures per workload: wall time of the whole pair (station core, link and
// codecs included) and time spent inside the bridge core's handle* calls only.
// Workloads: "burst" (N VSIs requested at once; ECP packs queued TLVs into full ECPDUs) and
// "sequential" (one request, wait for the answer, next: one TLV per ECPDU, the lldpad pattern).
// Run: npx tsx test/bench/core-pair.ts
import { PortCore } from '../../agent/port/port-core.ts'
import { BridgeStationPair, FakeResourceManager } from '../support/pair.ts'
import { associate, preAssociate, vsiIdOf } from '../agent/port/fixtures.ts'

const config = {
  lldp: { enabled: false },
  countersIntervalUs: 0,
  vsiCountMax: 1_000_000,
  pendingEcpduMax: 1_000_000,
  evb: { rte: 8, rka: 30 },
} as const

function instrument(core: PortCore): { ns: () => bigint } {
  let ns = 0n
  for (const name of ['handleFrame', 'handleTimeout', 'handleCommand'] as const) {
    const original = core[name].bind(core) as (...a: unknown[]) => void
    ;(core as unknown as Record<string, unknown>)[name] = (...args: unknown[]) => {
      const t0 = process.hrtime.bigint()
      original(...args)
      ns += process.hrtime.bigint() - t0
    }
  }
  return { ns: () => ns }
}

function newPair(): { pair: BridgeStationPair; bridgeNs: () => bigint } {
  const pair = new BridgeStationPair({
    resources: new FakeResourceManager({ first: 2, last: 4094 }),
    bridge: config,
    station: config,
  })
  pair.recordFrames = false
  return { pair, bridgeNs: instrument(pair.bridge).ns }
}

interface Run {
  transactions: number
  wallNs: bigint
  bridgeNs: bigint
}

/** Best and median of `runs` repetitions: the machine is shared, the best run is the cleanest. */
function report(name: string, runs: Run[]): void {
  const rate = (r: Run, ns: bigint) => (r.transactions / Number(ns)) * 1e9
  const pair = runs.map((r) => rate(r, r.wallNs)).sort((a, b) => a - b)
  const bridge = runs.map((r) => rate(r, r.bridgeNs)).sort((a, b) => a - b)
  const fmt = (x: number) => Math.round(x).toLocaleString('en-US').padStart(9)
  const mid = (xs: number[]) => xs[Math.floor(xs.length / 2)]!
  console.log(
    `${name.padEnd(30)} ${runs[0]!.transactions.toString().padStart(6)} tx  ` +
      `bridge core best ${fmt(bridge.at(-1)!)}/s median ${fmt(mid(bridge))}/s  ` +
      `pair best ${fmt(pair.at(-1)!)}/s median ${fmt(mid(pair))}/s`,
  )
}

function burst(vsis: number, rounds: number): Run {
  const { pair, bridgeNs } = newPair()
  const rm = pair.resources as FakeResourceManager
  const t0 = process.hrtime.bigint()
  for (let r = 0; r < rounds; r++) {
    for (let n = 1; n <= vsis; n++) pair.command(pair.station, preAssociate(n))
    pair.settle(10_000_000)
    for (let n = 1; n <= vsis; n++) pair.command(pair.station, associate(n))
    pair.settle(10_000_000)
    for (let n = 1; n <= vsis; n++)
      pair.command(pair.station, { kind: 'de-associate', vsiId: vsiIdOf(n) })
    pair.settle(10_000_000)
  }
  const wall = process.hrtime.bigint() - t0
  if (pair.bridge.vsiCount !== 0 || rm.requests !== 2 * vsis * rounds)
    throw new Error('Cannot trust the run: VSIs left over')
  return { transactions: 3 * vsis * rounds, wallNs: wall, bridgeNs: bridgeNs() }
}

function sequential(count: number): Run {
  const { pair, bridgeNs } = newPair()
  const t0 = process.hrtime.bigint()
  for (let n = 1; n <= count; n++) {
    pair.command(pair.station, associate(n))
    pair.settle()
    pair.command(pair.station, { kind: 'de-associate', vsiId: vsiIdOf(n) })
    pair.settle()
  }
  const wall = process.hrtime.bigint() - t0
  if (pair.bridge.vsiCount !== 0) throw new Error('Cannot trust the run: VSIs left over')
  return { transactions: 2 * count, wallNs: wall, bridgeNs: bridgeNs() }
}

function keepAlives(vsis: number, periods: number): Run {
  const { pair, bridgeNs } = newPair()
  for (let n = 1; n <= vsis; n++) pair.command(pair.station, associate(n))
  pair.settle(10_000_000)
  const before = pair.bridge.counters().keepalivesRx
  const ns0 = bridgeNs()
  const t0 = process.hrtime.bigint()
  pair.advanceBy(periods * pair.station.operational().reinitKeepAliveUs)
  pair.settle(10_000_000)
  const wall = process.hrtime.bigint() - t0
  const n = pair.bridge.counters().keepalivesRx - before
  if (n < vsis * (periods - 1)) throw new Error(`Cannot trust the run: only ${n} keep-alives`)
  return { transactions: n, wallNs: wall, bridgeNs: bridgeNs() - ns0 }
}

const REPEAT = 5
const repeat = (f: () => Run): Run[] => Array.from({ length: REPEAT }, f)
burst(1000, 2) // warm-up
console.log(
  `VSI transactions per second, ${REPEAT} runs each (goal >= 50,000/s for the bridge core)`,
)
report(
  'burst 4000 VSIs x 3 rounds',
  repeat(() => burst(4000, 3)),
)
report(
  'sequential 10000 VSIs',
  repeat(() => sequential(10_000)),
)
report(
  'keep-alives 4000 VSIs x 3',
  repeat(() => keepAlives(4000, 3)),
)
