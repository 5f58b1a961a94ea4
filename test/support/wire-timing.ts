/**
 * Request -> response time ON THE WIRE, measured at the switch-side interface: tcpdump (or
 * dumpcap) inside the namespace writes a classic pcap (microsecond timestamps), {@link analyzeWire}
 * pairs each station VDP request with the bridge's VDP response for the same VSIID, and each
 * ECPDU with its ECP ACK.
 *
 * The ECP/VDP decoding here is deliberately minimal and independent of `shared/`: it is the
 * yardstick for our own codecs and agent, so it must not share their bugs. It reads the ECP
 * header (802.1Q 43.3), walks the VDP TLVs (7-bit type, 9-bit length) and takes from each
 * association TLV (types 1..4) the status octet, type id/version and the VSIID.
 *
 * @module
 */
import { spawn } from 'node:child_process'
import { closeSync, existsSync, mkdtempSync, openSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { decodePcap, type PcapRecord } from '../../shared/pcap/pcap.ts'
import { killGroup, waitFor } from './lldpad.ts'

export const ETHERTYPE_ECP = 0x8940
export const ETHERTYPE_LLDP = 0x88cc
const ETHERTYPE_VLAN = 0x8100
const ECP_SUBTYPE_VDP = 1
const VDP_STATUS_RESPONSE = 0x40
const TCPDUMP = '/usr/bin/tcpdump'

// ---------------------------------------------------------------------------------------------
// capture

export interface WireCapture {
  readonly file: string
  /** Stops the capture (SIGINT: it flushes and closes the file) and returns the frames. */
  stop(): Promise<PcapRecord[]>
}

export interface StartCaptureOptions {
  readonly netns: string
  readonly ifname: string
  /** pcap path; default: a file in a new temp dir (removed by stop() unless `keep`). */
  readonly file?: string
  /** Capture filter (default: ECP and LLDP only). */
  readonly filter?: string
  readonly keep?: boolean
  /** Capture program (default: tcpdump when installed, else dumpcap). */
  readonly tool?: 'tcpdump' | 'dumpcap'
  /**
   * tcpdump only: capture without `--immediate-mode`. The kernel still stamps each frame when
   * it reaches the capture socket, but hands frames to tcpdump a ring block at a time (at the
   * latest after libpcap's 1 s block timeout) instead of waking it for every frame; `stop()`
   * waits for that timeout. Use it for timing: on this project's 2-core machine a per-frame
   * capture wake-up doubled a C station's round trip to the agent (0.12 -> 0.24 ms).
   */
  readonly buffered?: boolean
}

/** libpcap's ring-block timeout under tcpdump (its 1000 ms read timeout), plus margin. */
const BUFFERED_FLUSH_MS = 1300

/**
 * Starts a capture on `ifname` inside `netns` and resolves once it captures. Uses
 * `tcpdump -U --immediate-mode` when installed: every frame is in the file at once. `dumpcap -P`
 * (Debian package tshark) hands frames to its file only some time later (no immediate mode;
 * frames of the last ~1 s before SIGINT were missing from the file), so with dumpcap `stop()`
 * first waits 2.5 s.
 */
export async function startCapture(options: StartCaptureOptions): Promise<WireCapture> {
  const ownDir = options.file === undefined ? mkdtempSync(join(tmpdir(), `wire-${options.netns}-`)) : undefined
  const file = options.file ?? join(ownDir as string, `${options.ifname}.pcap`)
  const errPath = `${file}.stderr`
  const errFd = openSync(errPath, 'w')
  const filter = options.filter ?? `ether proto 0x${ETHERTYPE_ECP.toString(16)} or ether proto 0x${ETHERTYPE_LLDP.toString(16)}`
  const useTcpdump = options.tool === undefined ? existsSync(TCPDUMP) : options.tool === 'tcpdump'
  const command = useTcpdump
    ? [TCPDUMP, '-i', options.ifname, '-n', '-s', '0', '-U', ...(options.buffered === true ? [] : ['--immediate-mode']), '-Z', 'root', '-w', file, filter]
    : ['dumpcap', '-i', options.ifname, '-P', '-q', '-f', filter, '-w', file]
  const child = spawn('ip', ['netns', 'exec', options.netns, ...command], {
    detached: true,
    stdio: ['ignore', 'ignore', errFd],
  })
  closeSync(errFd)
  const stderr = (): string => {
    try {
      return readFileSync(errPath, 'utf8')
    } catch {
      return ''
    }
  }
  let exited = false
  child.once('exit', () => {
    exited = true
  })
  try {
    await waitFor(`capture on ${options.netns}/${options.ifname}`, () => {
      const text = stderr()
      if (exited) throw new Error(`capture exited: ${text.trim()}`)
      return /listening on|Capturing on/.test(text) ? true : undefined
    }, 10_000, 10)
    await new Promise((resolve) => setTimeout(resolve, 100))
    if (exited) throw new Error(`capture exited: ${stderr().trim()}`)
  } catch (error) {
    await killGroup(child, 1000)
    throw error
  }
  return {
    file,
    stop: async () => {
      if (!useTcpdump) await new Promise((resolve) => setTimeout(resolve, 2500))
      else if (options.buffered === true) await new Promise((resolve) => setTimeout(resolve, BUFFERED_FLUSH_MS))
      await killGroup(child, 5000, 'SIGINT')
      const records = decodePcap(new Uint8Array(readFileSync(file))).records
      if (ownDir !== undefined && options.keep !== true) rmSync(ownDir, { recursive: true, force: true })
      return records
    },
  }
}

// ---------------------------------------------------------------------------------------------
// minimal ECP / VDP decoding

export interface VsiTlvSummary {
  /** 1 Pre-Assoc, 2 Pre-Assoc-RR, 3 Assoc, 4 De-Assoc. */
  readonly tlvType: number
  readonly status: number
  /** R bit (0x40): a response. */
  readonly response: boolean
  readonly typeId: number
  readonly typeVersion: number
  readonly vsiidFormat: number
  /** VSIID as lower-case hex; UUIDs (format 5) in 8-4-4-4-12 form. */
  readonly vsiid: string
  readonly filterFormat: number
  /** 12-bit VIDs of the filter entries. */
  readonly vids: readonly number[]
}

export interface EcpFrame {
  readonly timeUs: number
  readonly src: string
  readonly dst: string
  readonly operation: 'request' | 'ack'
  readonly subtype: number
  readonly seq: number
  /** Association TLVs of a VDP request ECPDU (empty for ACKs). */
  readonly vsis: readonly VsiTlvSummary[]
}

const FILTER_ENTRY_LENGTH: Readonly<Record<number, number>> = { 1: 2, 2: 8, 3: 6, 4: 12 }
const VID_OFFSET_IN_ENTRY: Readonly<Record<number, number>> = { 1: 0, 2: 6, 3: 4, 4: 10 }

function mac(bytes: Uint8Array, at: number): string {
  return Array.from(bytes.subarray(at, at + 6), (b) => b.toString(16).padStart(2, '0')).join(':')
}

function hex(bytes: Uint8Array): string {
  return Array.from(bytes, (b) => b.toString(16).padStart(2, '0')).join('')
}

function vsiidText(format: number, id: Uint8Array): string {
  const h = hex(id)
  if (format !== 5) return h
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`
}

/** Decodes an Ethernet frame carrying an ECPDU; `undefined` for anything else or garbage. */
export function decodeEcpFrame(timeUs: number, data: Uint8Array): EcpFrame | undefined {
  if (data.length < 14) return undefined
  const view = new DataView(data.buffer, data.byteOffset, data.byteLength)
  let at = 12
  let ethertype = view.getUint16(at)
  if (ethertype === ETHERTYPE_VLAN) {
    at += 4
    if (data.length < at + 2) return undefined
    ethertype = view.getUint16(at)
  }
  at += 2
  if (ethertype !== ETHERTYPE_ECP || data.length < at + 4) return undefined
  const word = view.getUint16(at)
  const op = (word >> 10) & 0x3
  const subtype = word & 0x3ff
  const seq = view.getUint16(at + 2)
  at += 4
  const vsis: VsiTlvSummary[] = []
  if (op === 0 && subtype === ECP_SUBTYPE_VDP) {
    while (at + 2 <= data.length) {
      const header = view.getUint16(at)
      const type = header >> 9
      const length = header & 0x1ff
      const body = at + 2
      if (type === 0 || body + length > data.length) break // End TLV or padding
      if (type >= 1 && type <= 4 && length >= 26) {
        const vsiidFormat = data[body + 5] as number
        const filterFormat = data[body + 22] as number
        const count = view.getUint16(body + 23)
        const entryLength = FILTER_ENTRY_LENGTH[filterFormat]
        const vidOffset = VID_OFFSET_IN_ENTRY[filterFormat]
        const vids: number[] = []
        if (entryLength !== undefined && vidOffset !== undefined) {
          for (let i = 0; i < count; i++) {
            const entry = body + 25 + i * entryLength
            if (entry + entryLength > body + length) break
            vids.push(view.getUint16(entry + vidOffset) & 0xfff)
          }
        }
        const status = data[body] as number
        vsis.push({
          tlvType: type,
          status,
          response: (status & VDP_STATUS_RESPONSE) !== 0,
          typeId: ((data[body + 1] as number) << 16) | ((data[body + 2] as number) << 8) | (data[body + 3] as number),
          typeVersion: data[body + 4] as number,
          vsiidFormat,
          vsiid: vsiidText(vsiidFormat, data.subarray(body + 6, body + 22)),
          filterFormat,
          vids,
        })
      }
      at = body + length
    }
  }
  return {
    timeUs,
    src: mac(data, 6),
    dst: mac(data, 0),
    operation: op === 1 ? 'ack' : 'request',
    subtype,
    seq,
    vsis,
  }
}

// ---------------------------------------------------------------------------------------------
// statistics

export interface Stats {
  readonly count: number
  readonly min: number
  readonly p10: number
  readonly median: number
  readonly p90: number
  readonly max: number
  readonly mean: number
}

/** Percentile by linear interpolation between closest ranks (`q` in 0..1). */
export function percentile(sorted: readonly number[], q: number): number {
  if (sorted.length === 0) return Number.NaN
  const pos = (sorted.length - 1) * q
  const lo = Math.floor(pos)
  const hi = Math.ceil(pos)
  const a = sorted[lo] as number
  const b = sorted[hi] as number
  return a + (b - a) * (pos - lo)
}

export function summarize(values: readonly number[]): Stats {
  const sorted = [...values].sort((a, b) => a - b)
  return {
    count: sorted.length,
    min: sorted[0] ?? Number.NaN,
    p10: percentile(sorted, 0.1),
    median: percentile(sorted, 0.5),
    p90: percentile(sorted, 0.9),
    max: sorted.at(-1) ?? Number.NaN,
    mean: sorted.length === 0 ? Number.NaN : sorted.reduce((s, v) => s + v, 0) / sorted.length,
  }
}

// ---------------------------------------------------------------------------------------------
// pairing

export interface VdpExchange {
  readonly vsiid: string
  /** TLV type of the request (1..4) and of the response (4 for a reject). */
  readonly requestType: number
  readonly responseType: number
  /** Request status octet (M bit 0x10 = hints `to`, S bit 0x20 = `from`). */
  readonly requestStatus: number
  readonly responseStatus: number
  readonly requestUs: number
  readonly responseUs: number
  readonly latencyMs: number
  /** VIDs the bridge returned. */
  readonly responseVids: readonly number[]
}

export interface WireTiming {
  /** Station VDP request -> bridge VDP response for the same VSIID, from the first transmissions. */
  readonly exchanges: readonly VdpExchange[]
  /** Latency of {@link exchanges}, ms. */
  readonly vdp: Stats
  /** Station requests with no bridge response in the capture. */
  readonly unanswered: readonly {
    readonly vsiid: string
    readonly requestType: number
    readonly requestStatus: number
    readonly requestUs: number
  }[]
  /** Bridge responses with no outstanding request for that VSIID (e.g. answered twice). */
  readonly unmatchedResponses: number
  /** Bridge TLVs with the R bit clear (bridge-initiated De-Associate). */
  readonly bridgeInitiated: readonly { readonly vsiid: string; readonly timeUs: number }[]
  /** Station ECPDU -> bridge ECP ACK, ms. */
  readonly bridgeAck: Stats
  /** Bridge ECPDU -> station ECP ACK, ms. */
  readonly stationAck: Stats
  /** The samples behind {@link bridgeAck} and {@link stationAck}, ms. */
  readonly bridgeAckSamplesMs: readonly number[]
  readonly stationAckSamplesMs: readonly number[]
  /** ECPDUs sent again with the same sequence number, per sender. */
  readonly retransmissions: { readonly station: number; readonly bridge: number }
  /** Station ECPDUs / bridge ECPDUs (first transmissions). */
  readonly ecpdus: { readonly station: number; readonly bridge: number }
  /** First station VDP request and last bridge VDP response, µs (pcap clock). */
  readonly firstRequestUs: number | undefined
  readonly lastResponseUs: number | undefined
  /** Responses per second from the first request to the last response. */
  readonly responsesPerSecond: number
}

export interface AnalyzeOptions {
  readonly stationMac: string
  readonly bridgeMac: string
  /** Only frames at or after this pcap time (µs). */
  readonly fromUs?: number
}

export function analyzeWire(records: readonly PcapRecord[], options: AnalyzeOptions): WireTiming {
  const stationMac = options.stationMac.toLowerCase()
  const bridgeMac = options.bridgeMac.toLowerCase()
  const frames = records
    .filter((r) => options.fromUs === undefined || r.timeUs >= options.fromUs)
    .map((r) => decodeEcpFrame(r.timeUs, r.data))
    .filter((f): f is EcpFrame => f !== undefined)

  const pending = new Map<string, { requestType: number; requestStatus: number; requestUs: number }[]>()
  const exchanges: VdpExchange[] = []
  const bridgeInitiated: { vsiid: string; timeUs: number }[] = []
  let unmatchedResponses = 0
  // ECP: first transmission of each (sender, seq) awaiting its ACK
  const lastSeq = new Map<string, number>()
  const awaitingAck = new Map<string, number>() // `${sender}/${seq}` -> first tx time
  const bridgeAcks: number[] = []
  const stationAcks: number[] = []
  const retransmissions = { station: 0, bridge: 0 }
  const ecpdus = { station: 0, bridge: 0 }
  let firstRequestUs: number | undefined
  let lastResponseUs: number | undefined

  for (const f of frames) {
    const from = f.src === stationMac ? 'station' : f.src === bridgeMac ? 'bridge' : undefined
    if (from === undefined) continue
    if (f.operation === 'ack') {
      const sender = from === 'station' ? bridgeMac : stationMac
      const key = `${sender}/${f.seq}`
      const sentUs = awaitingAck.get(key)
      if (sentUs !== undefined) {
        awaitingAck.delete(key)
        ;(from === 'bridge' ? bridgeAcks : stationAcks).push((f.timeUs - sentUs) / 1000)
      }
      continue
    }
    // a request ECPDU: a repeat of the previous sequence number is a retransmission
    if (lastSeq.get(f.src) === f.seq) {
      retransmissions[from]++
      continue
    }
    lastSeq.set(f.src, f.seq)
    ecpdus[from]++
    awaitingAck.set(`${f.src}/${f.seq}`, f.timeUs)
    if (f.subtype !== ECP_SUBTYPE_VDP) continue
    for (const v of f.vsis) {
      if (from === 'station' && !v.response) {
        const queue = pending.get(v.vsiid) ?? []
        queue.push({ requestType: v.tlvType, requestStatus: v.status, requestUs: f.timeUs })
        pending.set(v.vsiid, queue)
        firstRequestUs ??= f.timeUs
      } else if (from === 'bridge' && v.response) {
        const request = pending.get(v.vsiid)?.shift()
        if (request === undefined) {
          unmatchedResponses++
          continue
        }
        lastResponseUs = f.timeUs
        exchanges.push({
          vsiid: v.vsiid,
          requestType: request.requestType,
          responseType: v.tlvType,
          requestStatus: request.requestStatus,
          responseStatus: v.status,
          requestUs: request.requestUs,
          responseUs: f.timeUs,
          latencyMs: (f.timeUs - request.requestUs) / 1000,
          responseVids: v.vids,
        })
      } else if (from === 'bridge') {
        bridgeInitiated.push({ vsiid: v.vsiid, timeUs: f.timeUs })
      }
    }
  }
  const unanswered = [...pending.entries()].flatMap(([vsiid, queue]) => queue.map((q) => ({ vsiid, ...q })))
  const spanUs = firstRequestUs !== undefined && lastResponseUs !== undefined ? lastResponseUs - firstRequestUs : 0
  return {
    exchanges,
    vdp: summarize(exchanges.map((e) => e.latencyMs)),
    unanswered,
    unmatchedResponses,
    bridgeInitiated,
    bridgeAck: summarize(bridgeAcks),
    stationAck: summarize(stationAcks),
    bridgeAckSamplesMs: bridgeAcks,
    stationAckSamplesMs: stationAcks,
    retransmissions,
    ecpdus,
    firstRequestUs,
    lastResponseUs,
    responsesPerSecond: spanUs > 0 ? (exchanges.length * 1e6) / spanUs : Number.NaN,
  }
}

/** Captures on the switch-side interface of a lab while `body` runs, then analyses the frames. */
export async function measureWire<T>(
  lab: { readonly switchNs: string; readonly switchIf: string; readonly hostMac: string; readonly switchMac: string },
  body: () => Promise<T>,
  options: { readonly settleMs?: number; readonly file?: string; readonly tool?: 'tcpdump' | 'dumpcap'; readonly buffered?: boolean } = {},
): Promise<{ readonly result: T; readonly timing: WireTiming; readonly records: readonly PcapRecord[] }> {
  const capture = await startCapture({
    netns: lab.switchNs,
    ifname: lab.switchIf,
    ...(options.file === undefined ? {} : { file: options.file, keep: true }),
    ...(options.tool === undefined ? {} : { tool: options.tool }),
    ...(options.buffered === undefined ? {} : { buffered: options.buffered }),
  })
  let result: T
  try {
    result = await body()
    await new Promise((resolve) => setTimeout(resolve, options.settleMs ?? 100))
  } catch (error) {
    await capture.stop()
    throw error
  }
  const records = await capture.stop()
  return { result, timing: analyzeWire(records, { stationMac: lab.hostMac, bridgeMac: lab.switchMac }), records }
}

/** Formats milliseconds with 2 decimals (NaN as '-'). */
export function ms(value: number): string {
  return Number.isNaN(value) ? '-' : value.toFixed(2)
}
