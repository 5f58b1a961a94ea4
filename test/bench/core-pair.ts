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

function report(name: string, transactions: number, wallNs: bigint, bridgeNs: bigint): void {
  const pairRate = (transactions / Number(wallNs)) * 1e9
  const bridgeRate = (transactions / Number(bridgeNs)) * 1e9
  console.log(
    `${name.padEnd(34)} ${transactions.toString().padStart(7)} transactions  ` +
      `pair ${Math.round(pairRate).toLocaleString('en-US').padStart(9)}/s  ` +
      `bridge core ${Math.round(bridgeRate).toLocaleString('en-US').padStart(9)}/s`,
  )
}

function burst(vsis: number, rounds: number, print = true): void {
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
  if (print) report(`burst ${vsis} VSIs x ${rounds} rounds`, 3 * vsis * rounds, wall, bridgeNs())
}

function sequential(count: number): void {
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
  report(`sequential ${count} VSIs`, 2 * count, wall, bridgeNs())
}

function keepAlives(vsis: number, periods: number): void {
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
  report(`keep-alives ${vsis} VSIs x ${periods}`, n, wall, bridgeNs() - ns0)
}

burst(1000, 2, false) // warm-up
console.log('VSI transactions per second (goal >= 50,000/s for the bridge core)')
burst(4000, 5)
sequential(20_000)
keepAlives(4000, 5)
