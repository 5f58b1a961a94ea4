// CPU and allocation of the bridge's keep-alive path in process: 48 bridge port cores with
// 10,000 VSIs between them (as test/bench/agent-scale.ts), each keep-alive handled as the agent
// handles it (request frame in, ACK and response out, then the station's ACK of the response),
// VSIs visited in an order that touches a different one every time. No sockets, no event loop:
// what this measures is the JS of decode, the machines, timers and encode, warm.
//   npx tsx test/bench/keepalive-path.ts [--rounds 5] [--link-acks]
// --link-acks: requests arrive acknowledged by the link already (the raw socket's ECP ACK
// offload, FrameLink.ackEcp), as in the agent from a station's second request on.
import { parseArgs } from 'node:util'
import { PortCore } from '../../agent/port/port-core.ts'
import { encodeVdpFrame } from '../../shared/encode-frame.ts'
import { NCB_GROUP_MAC, type Mac } from '../../shared/ethernet/mac.ts'
import type { ManagerId, VsiIdHex } from '../../shared/ids.ts'
import type { VsiTlv } from '../../shared/vdp/types.ts'
import { portName } from '../../shared/ids.ts'
import { FakeResourceManager } from '../support/pair.ts'

const { values } = parseArgs({ options: { rounds: { type: 'string' }, ports: { type: 'string' }, vsis: { type: 'string' }, 'link-acks': { type: 'boolean' } } })
const LINK_ACKS = values['link-acks'] === true
const ROUNDS = Number(values.rounds ?? 5)
const PORTS = Number(values.ports ?? 48)
const VSIS = Number(values.vsis ?? 10_000)

const mac = (i: number, last: number): Mac => `02:00:00:00:${i.toString(16).padStart(2, '0')}:${last.toString(16).padStart(2, '0')}` as Mac
const rm = new FakeResourceManager({ first: 100, last: 3999 })
let nowUs = 1_000_000
const cores: PortCore[] = []
const sent: Uint8Array[][] = []
for (let p = 0; p < PORTS; p++) {
  const core = new PortCore({ port: portName(`s${p}`), mac: mac(p, 1), role: 'bridge', evb: { rte: 11, rka: 20 }, lldp: { enabled: false }, countersIntervalUs: 0, vsiCountMax: 65_536 }, rm, nowUs)
  const out: Uint8Array[] = []
  core.setTransmitSink((f) => out.push(f))
  cores.push(core)
  sent.push(out)
}
const managerId = '68760000000000000000000000000000' as ManagerId
const requests: { port: number; frame: Uint8Array }[] = []
const stationSeq = new Array<number>(PORTS).fill(0)
for (let i = 0; i < VSIS; i++) {
  const port = i % PORTS
  const tlv: VsiTlv = {
    kind: 'vsi', mode: 'associate', status: { response: false, migratingTo: false, migratingFrom: false },
    typeId: 5, typeVersion: 1, vsiId: { format: 5, id: BigInt(i).toString(16).padStart(32, '0') as VsiIdHex },
    filterFormat: 3, entries: [{ vid: 0, ps: false, pcp: 0, groupId: 10_000 + (i % 500) }],
  }
  requests.push({ port, frame: encodeVdpFrame({ destination: NCB_GROUP_MAC, source: mac(port, 2), sequence: 0, pdu: { managerId, tlvs: [tlv], endTlv: false } }) })
}
const ack = (port: number, seq: number): Uint8Array => {
  const f = new Uint8Array(18)
  f.set([0x01, 0x80, 0xc2, 0, 0, 0, 2, 0, 0, 0, port, 2, 0x89, 0x40, 0x14, 0x01, seq >> 8, seq & 0xff])
  return f
}
/** One keep-alive (or, the first time, the association): request in, ACK of the response in. */
function exchange(i: number): void {
  const { port, frame } = requests[i]!
  const core = cores[port]!
  const seq = (stationSeq[port] = ((stationSeq[port]! + 1) & 0xffff) || 1)
  frame[16] = seq >> 8
  frame[17] = seq & 0xff
  nowUs += 100
  core.handleFrame(nowUs, frame, LINK_ACKS)
  for (let e = core.pollEvent(); e !== undefined; e = core.pollEvent()) {}
  core.nextDeadlineUs()
  const out = sent[port]!
  const response = out[out.length - 1]!
  const rseq = (response[16]! << 8) | response[17]!
  out.length = 0
  nowUs += 100
  core.handleFrame(nowUs, ack(port, rseq))
  for (let e = core.pollEvent(); e !== undefined; e = core.pollEvent()) {}
  core.nextDeadlineUs()
}
for (let i = 0; i < VSIS; i++) exchange(i)
// Visit order: a stride that is coprime with VSIS, so consecutive keep-alives hit different
// ports and VSIs as the stations' timers do.
const order = Array.from({ length: VSIS }, (_, k) => (k * 7919) % VSIS)
const results: number[] = []
for (let r = 0; r < ROUNDS; r++) {
  const heap0 = process.memoryUsage().heapUsed
  const t0 = process.hrtime.bigint()
  for (const i of order) exchange(i)
  const ns = Number(process.hrtime.bigint() - t0)
  const us = ns / 1000 / VSIS
  results.push(us)
  console.log(`round ${r + 1}: ${us.toFixed(2)} µs per keep-alive (2 frames in, 2 out), heap ${((process.memoryUsage().heapUsed - heap0) / VSIS).toFixed(0)} B/keep-alive net`)
}
const c = cores.reduce((n, c) => n + c.counters().keepalivesRx, 0)
console.log(`median ${results.sort((a, b) => a - b)[Math.floor(results.length / 2)]!.toFixed(2)} µs; ${c} keep-alives answered, ${cores.reduce((n, c) => n + c.vsiCount, 0)} VSIs held`)
