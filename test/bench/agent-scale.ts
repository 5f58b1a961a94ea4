// Scale of the switch agent: 48 ports, 10,000 VSIs kept alive by stations, on veth pairs in
// two network namespaces. The stations are one `vdp-agent --role station` process with 48
// ports; the bridge is the `vdp-agent` under test. Prints the bridge's RSS and CPU share over
// a window of steady keep-alives (goal: < 120 MB RSS, < 5% of a core), and the station's as a
// baseline of the same work from the other side.
//   npm run build && npx tsx test/bench/agent-scale.ts [--ports 48] [--vsis 10000] [--window-s 30] [--setup-rate 250] [--rte 8]
// Also prints the bridge's CPU per VDP TLV received in the window (user and system time apart):
// the figure to compare between runs, as the keep-alive count in a window varies a little.
// BRIDGE_BUNDLE=dir/vdp-agent.mjs runs the bridge from another build (`node scripts/build.mjs
// --only agent --out dir` in a checkout of the other commit), to compare two trees in turns.
import { spawn } from 'node:child_process'
import { existsSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { parseArgs } from 'node:util'
import { startAgentProcess, type AgentProcess } from '../support/agent-process.ts'
import { NetnsLab, REPO_ROOT } from '../support/netns.ts'

const { values } = parseArgs({ options: { ports: { type: 'string' }, vsis: { type: 'string' }, 'window-s': { type: 'string' }, rka: { type: 'string' }, 'setup-rate': { type: 'string' }, rte: { type: 'string' } } })
const PORTS = Number(values.ports ?? 48)
const VSIS = Number(values.vsis ?? 10_000)
const WINDOW_S = Number(values['window-s'] ?? 30)
const RKA = Number(values.rka ?? 20)
/** ECP retransmission exponent both agents propose: 8 (2.56 ms) is lldpad's default. */
const RTE = Number(values.rte ?? 8)
/** Associations per second while setting up (hypervisors do not start 10,000 VMs at once). */
const SETUP_RATE = Number(values['setup-rate'] ?? 250)
const bundle = join(REPO_ROOT, 'dist/vdp-agent/vdp-agent.mjs')
/** BRIDGE_BUNDLE=path: the bridge from another build (e.g. of the previous commit), for A/B runs taking turns. */
const bridgeBundle = process.env.BRIDGE_BUNDLE ?? bundle
const entry = existsSync(bridgeBundle) && !process.env.PROFILE_BRIDGE ? { entry: bridgeBundle } : {}
/**
 * PROFILE_BRIDGE / PROFILE_STATION=dir: CPU profile of that agent (from the sources, names kept);
 * HEAP_SNAPSHOT=dir: heap snapshots of both at the end of the window; BRIDGE_NODE_ARGS /
 * STATION_NODE_ARGS: more options for node (space-separated).
 */
const nodeArgsFor = (who: 'BRIDGE' | 'STATION'): string[] => [
  ...(process.env[`PROFILE_${who}`] ? ['--cpu-prof', `--cpu-prof-dir=${process.env[`PROFILE_${who}`]}`] : []),
  ...(process.env.HEAP_SNAPSHOT ? ['--heapsnapshot-signal=SIGUSR2', `--diagnostic-dir=${process.env.HEAP_SNAPSHOT}`] : []),
  ...(process.env[`${who}_NODE_ARGS`]?.split(' ').filter(Boolean) ?? []),
]

/** utime and stime, in clock ticks (100/s). */
const cpuTicksOf = (pid: number): { user: number; sys: number } => {
  const f = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ')
  return { user: Number(f[11]), sys: Number(f[12]) }
}
const cpuTicks = (pid: number): number => {
  const t = cpuTicksOf(pid)
  return t.user + t.sys
}
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

async function main(): Promise<void> {
  const lab = await NetnsLab.create('scale')
  let bridge: AgentProcess | undefined
  let station: AgentProcess | undefined
  try {
    const sw = await lab.addNamespace('sw')
    const hv = await lab.addNamespace('hv')
    const swPorts: string[] = []
    const hvPorts: string[] = []
    for (let p = 0; p < PORTS; p++) {
      const a = lab.ifname(`s${p}`)
      const b = lab.ifname(`h${p}`)
      await lab.addVethPair({ ns: hv, ifname: b }, { ns: sw, ifname: a })
      swPorts.push(a)
      hvPorts.push(b)
    }
    const evb = { retries: 3, rte: RTE, rwd: 20, rka: RKA, groupId: true, reflectiveRelay: false }
    bridge = await startAgentProcess({ netns: sw, ...entry, nodeArgs: nodeArgsFor('BRIDGE'), args: ['--vid-pool', '100-3999', '--switch-id', 'scale', '--log-level', 'info'], config: { evb, lldpTxIntervalS: 30, ports: swPorts.map((name) => ({ name })) } })
    station = await startAgentProcess({ netns: hv, ...(existsSync(bundle) && !process.env.PROFILE_STATION ? { entry: bundle } : {}), nodeArgs: nodeArgsFor('STATION'), args: ['--role', 'station', '--switch-id', 'hv', '--log-level', 'info'], config: { evb, lldpTxIntervalS: 30, ports: hvPorts.map((name) => ({ name })) } })
    await sleep(2000)
    const t0 = Date.now()
    for (let i = 0; i < VSIS; i++) {
      const due = t0 + (i * 1000) / SETUP_RATE
      if (Date.now() < due) await sleep(due - Date.now())
      const port = hvPorts[i % PORTS]!
      const id = (0x5644504c_4142_4000n * 0n + BigInt(i)).toString(16).padStart(32, '0')
      await station.call('associate', {
        port,
        waitMs: 0,
        command: {
          managerId: '68760000000000000000000000000000', typeId: 5, typeVersion: 1, vsiId: { format: 5, id },
          filterFormat: 3, entries: [{ vid: 0, ps: false, pcp: 0, groupId: 10_000 + (i % 500) }],
        },
      })
    }
    let held = 0
    while (Date.now() - t0 < 300_000) {
      held = ((await bridge.call('status')) as { vsis: number }).vsis
      if (held >= VSIS) break
      await sleep(500)
    }
    const setupS = (Date.now() - t0) / 1000
    console.log(`${held} VSIs on ${PORTS} ports associated in ${setupS.toFixed(1)} s (${Math.round(held / setupS)}/s through the station's control socket)`)
    await sleep(Math.max(2000, 2 ** RKA * 10 / 1000)) // one keep-alive round before measuring
    const sumCounters = async (a: AgentProcess) => ((await a.call('counters')) as Array<{ counters: Record<string, number> }>).reduce((acc, c) => { for (const [k, v] of Object.entries(c.counters)) acc[k] = (acc[k] ?? 0) + v; return acc }, {} as Record<string, number>)
    const bc0 = await sumCounters(bridge)
    const sc0 = await sumCounters(station)
    const bPid = bridge.child.pid!
    const sPid = station.child.pid!
    const b0 = cpuTicks(bPid)
    const bSplit0 = cpuTicksOf(bPid)
    const s0 = cpuTicks(sPid)
    // PERF_BRIDGE=file: `perf record -g` of the bridge over the window (kernel and native time too).
    const perf = process.env.PERF_BRIDGE ? spawn('perf', ['record', '-g', '-o', process.env.PERF_BRIDGE, '-p', String(bPid)], { stdio: 'ignore' }) : undefined
    const w0 = Date.now()
    await sleep(WINDOW_S * 1000)
    const wallS = (Date.now() - w0) / 1000
    const bSplit1 = cpuTicksOf(bPid)
    if (perf) {
      perf.kill('SIGINT')
      await new Promise((r) => perf.once('exit', r))
    }
    const bCpu = (cpuTicks(bPid) - b0) / 100 / wallS
    const sCpu = (cpuTicks(sPid) - s0) / 100 / wallS
    const rssOf = (pid: number) => readFileSync(`/proc/${pid}/status`, 'utf8').split('\n').filter((l) => /^Rss(Anon|File)/.test(l)).map((l) => l.replace(/\s+/g, ' ')).join(', ')
    const bRss = rssOf(bPid)
    const sRss = rssOf(sPid)
    const st = (await bridge.call('status')) as { vsis: number; vlans: number; memory: Record<string, number> }
    const mb = (m: Record<string, number>) => Object.entries(m).map(([k, v]) => `${k.replace(/Bytes$/, '')} ${(v / 1048576).toFixed(1)}`).join(', ')
    const bc1 = await sumCounters(bridge)
    const sc1 = await sumCounters(station)
    const d = (a: Record<string, number>, b: Record<string, number>, k: string) => (b[k] ?? 0) - (a[k] ?? 0)
    console.log(`window: bridge rx ${d(bc0, bc1, 'rxVdpTlvs')} TLVs (${d(bc0, bc1, 'keepalivesAnswered')} keep-alives answered by the raw socket), ${d(bc0, bc1, 'rxDuplicates')} duplicates, ${d(bc0, bc1, 'txErrors')} ECP tx errors, ${d(bc0, bc1, 'txRetransmits')} retransmissions; station ${d(sc0, sc1, 'txRetransmits')} retransmissions, ${d(sc0, sc1, 'txErrors')} ECP tx errors`)
    const counters = (await bridge.call('counters')) as Array<{ counters: { keepalivesRx: number; rxVdpTlvs: number } }>
    const tlvs = counters.reduce((n, c) => n + c.counters.rxVdpTlvs, 0)
    console.log(`bridge (${'entry' in entry ? (process.env.BRIDGE_BUNDLE ? process.env.BRIDGE_BUNDLE : 'bundle') : 'tsx'}): RSS ${((bridge.rssKb() ?? 0) / 1024).toFixed(1)} MB, CPU ${(bCpu * 100).toFixed(2)}% of a core over ${wallS.toFixed(0)} s, ${st.vsis} VSIs, ${st.vlans} VLANs, ${tlvs} VDP TLVs received in all`)
    const bUs = ((bSplit1.user + bSplit1.sys - bSplit0.user - bSplit0.sys) * 10_000) / Math.max(1, d(bc0, bc1, 'rxVdpTlvs'))
    console.log(`bridge CPU per VDP TLV received in the window: ${bUs.toFixed(1)} µs (user ${((bSplit1.user - bSplit0.user) / 100).toFixed(2)} s, system ${((bSplit1.sys - bSplit0.sys) / 100).toFixed(2)} s)`)
    console.log(`station (baseline, same keep-alives from the other side): RSS ${((station.rssKb() ?? 0) / 1024).toFixed(1)} MB, CPU ${(sCpu * 100).toFixed(2)}% of a core`)
    const sSt = (await station.call('status')) as { memory: Record<string, number> }
    console.log(`memory, MiB: bridge ${mb(st.memory)} (${bRss}); station ${mb(sSt.memory)} (${sRss})`)
    const byEvent = new Map<string, number>()
    for (const e of bridge.log()) {
      if (e.event === 'dataplane') continue
      const k = `${String(e.event)}${e.reason ? `(${String(e.reason)})` : ''}`
      byEvent.set(k, (byEvent.get(k) ?? 0) + 1)
    }
    if (process.env.SCALE_DEBUG) {
      const sEvents = new Map<string, number>()
      for (const e of station.log()) {
        if (e.event === 'dataplane') continue
        const k = `${String(e.event)}${e.reason ? `(${String(e.reason)})` : ''}`
        sEvents.set(k, (sEvents.get(k) ?? 0) + 1)
      }
      console.log('bridge log events:', JSON.stringify(Object.fromEntries(byEvent)))
      console.log('station log events:', JSON.stringify(Object.fromEntries(sEvents)))
      const sum = (cs: Array<{ counters: Record<string, number> }>) => cs.reduce((a, c) => { for (const [k, v] of Object.entries(c.counters)) a[k] = (a[k] ?? 0) + v; return a }, {} as Record<string, number>)
      console.log('bridge counters:', JSON.stringify(sum(counters as never)))
      console.log('station counters:', JSON.stringify(sum((await station.call('counters')) as never)))
    }
    console.log(`keep-alive rate: ${(VSIS / (2 ** RKA * 10 / 1e6)).toFixed(0)} TLVs/s expected (RKA ${RKA})`)
    if (process.env.HEAP_SNAPSHOT) {
      process.kill(bPid, 'SIGUSR2')
      process.kill(sPid, 'SIGUSR2')
      await sleep(15_000) // writing a snapshot stops the process for seconds
    }
  } finally {
    await station?.stop()
    await bridge?.stop()
    await lab.cleanup()
  }
}
await main()
