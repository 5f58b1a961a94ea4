/**
 * Keep-alive answers as the port core sees them (port-core rule 5, vdp-bridge rule 6): the core
 * stores confirmed (request, response) pairs at the link, lends the link its ECP transmit side
 * while idle, takes it back before any other input, supervises answered VSIs with one sweep,
 * adopts an answer still awaiting its ACK, and takes a frame flagged `resync` as new.
 *
 * `ModelLink` plays the raw socket's C code (af_packet.c, fast_take) in JavaScript, on the pair
 * harness: a request from the station that repeats stored requests octet for octet, while the
 * side is lent and nothing is in flight, is acknowledged and answered by it and never reaches
 * the bridge core. The C code itself is tested on veth pairs in
 * test/integration/af-packet.test.ts, and with real agents in agent-station.test.ts.
 */
import { describe, expect, it } from 'vitest'
import { macFromBytes, macToBytes, type Mac } from '../../../shared/ethernet/mac.ts'
import type {
  AnswerLoan,
  AnswerLoanReturn,
  AnswerOffer,
  AnswerOffers,
  AnswerPeerStats,
  KeepAliveAnswers,
} from '../../../agent/port/port-core.ts'
import { createResourceManager, defaultResourceManagerOptions } from '../../../agent/resources/resource-manager.ts'
import { defaultPolicy } from '../../../agent/resources/policy.ts'
import { VidPool } from '../../../agent/resources/vid-pool.ts'
import { isValidUnicastMac } from '../../../shared/ethernet/mac.ts'
import { decodeVdpPdu, encodeVdpPdu } from '../../../shared/vdp/codec.ts'
import type { VsiTlv } from '../../../shared/vdp/types.ts'
import { BridgeStationPair, BRIDGE_MAC, stationMac } from '../../support/pair.ts'
import { associate, groupCommand, preAssociate, vsiIdOf } from './fixtures.ts'

const hex = (b: Uint8Array) => Buffer.from(b).toString('hex')
const isEcp = (b: Uint8Array, op: number) => b[12] === 0x89 && b[13] === 0x40 && b[14] === ((1 << 4) | (op << 2)) && b[15] === 0x01
const seqOf = (b: Uint8Array) => (b[16]! << 8) | b[17]!

class ModelLink implements KeepAliveAnswers {
  seen = new Float64Array(0)
  readonly answers = new Map<number, { peer: Mac; request: string; response: Uint8Array }>()
  loan: AnswerLoan | undefined
  sequence = 0
  outstanding: { peer: Mac; sequence: number; frame: Uint8Array; deadlineUs: number } | undefined
  returned = false
  readonly stats = new Map<Mac, { rxEcpdus: number; rxDuplicates: number; rxVdpTlvs: number; txEcpdus: number; txVdpTlvs: number; rxAcks: number; rxAcksAbsorbed: number }>()
  lends = 0
  takeBacks = 0
  /** The peer's last request sequence and whether this link answered it. */
  last = new Map<Mac, { seq: number; taken: boolean }>()
  onReturn: () => void = () => {}
  /** Answers from offers (rule 6), as the C code gives them. */
  readonly offerTable = new Map<string, AnswerOffer>()
  readonly known = new Set<string>()
  offerState: Int32Array | undefined
  /** Every ECPDU this link sent (keep-alive answers and answers from offers). */
  readonly sentLog: Uint8Array[] = []
  /** Answers from offers, by request frame (hex), for the harness to hand over with it. */
  readonly offeredAnswers = new Map<string, Uint8Array>()
  readonly offers: AnswerOffers = {
    start: (state) => {
      this.offerState = state
      this.offerTable.clear()
      this.known.clear()
    },
    set: (o) => {
      this.offerTable.set(`${o.typeId}/${o.typeVersion}/${o.filterFormat}/${o.groupId}`, o)
      return true
    },
    known: (peer, vsiId, held) => {
      if (held) this.known.add(`${peer}|${vsiId}`)
      else this.known.delete(`${peer}|${vsiId}`)
    },
  }

  start(capacity: number, _nowUs: number, onReturn: () => void): Float64Array {
    this.seen = new Float64Array(2 * capacity)
    this.answers.clear()
    this.onReturn = onReturn
    return this.seen
  }
  stop(): void {
    this.answers.clear()
  }
  set(id: number, peer: Mac, request: Uint8Array, response: Uint8Array): void {
    this.answers.set(id, { peer, request: hex(request), response: response.slice() })
  }
  remove(id: number): void {
    this.answers.delete(id)
  }
  lend(loan: AnswerLoan): void {
    expect(this.loan).toBeUndefined()
    this.loan = loan
    this.sequence = loan.lastSequence
    this.returned = false
    this.lends++
  }
  takeBack(): AnswerLoanReturn {
    this.takeBacks++
    const back = { sequence: this.sequence, holdUntilUs: 0, outstanding: this.outstanding ? [this.outstanding] : [] }
    this.loan = undefined
    this.outstanding = undefined
    return back
  }
  forget(peer: Mac): void {
    this.last.delete(peer)
  }
  peerStats(): AnswerPeerStats[] {
    return [...this.stats].map(([peer, s]) => ({ peer, ...s }))
  }
  #stat(peer: Mac) {
    let s = this.stats.get(peer)
    if (s === undefined) this.stats.set(peer, (s = { rxEcpdus: 0, rxDuplicates: 0, rxVdpTlvs: 0, txEcpdus: 0, txVdpTlvs: 0, rxAcks: 0, rxAcksAbsorbed: 0 }))
    return s
  }

  /**
   * A frame from the station to the bridge: what the C code would do with it. Returns the
   * frames it sends back (ACK, answer) and whether it kept the frame from the core, and sets
   * `resync` for one it hands over.
   */
  receive(bytes: Uint8Array, nowUs: number): { kept: boolean; replies: Uint8Array[]; resync: boolean } {
    const peer = macFromBytes(bytes.subarray(6, 12))
    if (isEcp(bytes, 1)) {
      if (this.outstanding?.peer === peer && this.outstanding.sequence === seqOf(bytes)) {
        this.outstanding = undefined
        this.#stat(peer).rxAcks++
        return { kept: true, replies: [], resync: false }
      }
      return { kept: false, replies: [], resync: false }
    }
    if (!isEcp(bytes, 0)) return { kept: false, replies: [], resync: false }
    const seq = seqOf(bytes)
    const last = this.last.get(peer)
    if (last !== undefined && last.seq === seq) {
      if (!last.taken) return { kept: false, replies: [], resync: false }
      this.#stat(peer).rxEcpdus++
      this.#stat(peer).rxDuplicates++
      return { kept: true, replies: [this.#ack(seq)], resync: false }
    }
    const resync = last?.taken === true
    this.last.set(peer, { seq, taken: false })
    if (this.loan === undefined || this.returned || this.outstanding !== undefined) return { kept: false, replies: [], resync }
    // Manager ID TLV (18 octets) then VSI TLVs up to the End TLV.
    const u = bytes.subarray(18)
    const mgr = hex(u.subarray(0, 18))
    const hits: Uint8Array[] = []
    for (let at = 18; at + 2 <= u.length; ) {
      const type = u[at]! >> 1
      const len = ((u[at]! & 1) << 8) | u[at + 1]!
      if (type === 0) break
      const tlv = hex(u.subarray(at, at + 2 + len))
      const hit = [...this.answers.values()].find((a) => a.peer === peer && a.request === mgr + tlv)
      if (hit === undefined) return this.#fromOffers(peer, bytes, nowUs, resync)
      hits.push(hit.response)
      at += 2 + len
    }
    if (hits.length === 0) return { kept: false, replies: [], resync }
    this.sequence = this.sequence === 0xffff ? 1 : this.sequence + 1
    const frame = Buffer.concat([
      Buffer.from('0180c2000000', 'hex'),
      Buffer.from(macToBytes(BRIDGE_MAC)),
      Buffer.from([0x89, 0x40, 0x10, 0x01, this.sequence >> 8, this.sequence & 0xff]),
      u.subarray(0, 18),
      ...hits,
    ])
    this.outstanding = { peer, sequence: this.sequence, frame, deadlineUs: nowUs + this.loan.ackTimerUs }
    this.last.set(peer, { seq, taken: true })
    for (const [id, a] of this.answers) {
      if (a.peer === peer && hits.includes(a.response)) {
        this.seen[2 * id] = nowUs
        this.seen[2 * id + 1]!++
      }
    }
    const s = this.#stat(peer)
    s.rxEcpdus++
    s.rxVdpTlvs += hits.length
    s.txEcpdus++
    s.txVdpTlvs += hits.length
    return { kept: true, replies: [this.#ack(seq), frame], resync }
  }

  /** Rule 6: every TLV a new VSI (or a De-Associate) the offers decide, else the core's. */
  #fromOffers(peer: Mac, bytes: Uint8Array, nowUs: number, resync: boolean): { kept: boolean; replies: Uint8Array[]; resync: boolean } {
    const pass = { kept: false, replies: [], resync }
    const state = this.offerState
    const loan = this.loan
    if (state === undefined || loan === undefined) return pass
    let pdu
    try {
      pdu = decodeVdpPdu(bytes.subarray(18))
    } catch {
      return pass
    }
    const out: VsiTlv[] = []
    let fresh = 0
    for (const t of pdu.tlvs) {
      if (t.kind !== 'vsi' || t.status.response) return pass
      if (t.mode === 'de-associate') {
        out.push({ ...t, status: { response: true, keep: false, hard: false, error: 0 } })
        continue
      }
      if (this.known.has(`${peer}|${t.vsiId.id}`) || out.some((o) => o.vsiId.id === t.vsiId.id)) return pass
      if (!((loan.offerFormats ?? 0) & (1 << t.filterFormat))) return pass
      if (t.filterFormat === 1 && t.entries.length !== 1) return pass
      const entries = []
      for (const e of t.entries) {
        const o = this.offerTable.get(`${t.typeId}/${t.typeVersion}/${t.filterFormat}/${e.groupId ?? 0}`)
        if (e.vid !== 0 || (e.mac !== undefined && !isValidUnicastMac(e.mac)) || o === undefined || o.epoch !== state[0]! >>> 0) return pass
        entries.push({ ...e, vid: o.vid })
      }
      fresh++
      out.push({ ...t, status: { response: true, keep: false, hard: false, error: 0 }, entries })
    }
    if (out.length === 0 || fresh > (loan.offerCredit ?? 0) || fresh > state[1]!) return pass
    this.sequence = this.sequence === 0xffff ? 1 : this.sequence + 1
    const frame = Buffer.concat([
      Buffer.from('0180c2000000', 'hex'),
      Buffer.from(macToBytes(BRIDGE_MAC)),
      Buffer.from([0x89, 0x40, 0x10, 0x01, this.sequence >> 8, this.sequence & 0xff]),
      encodeVdpPdu({ managerId: pdu.managerId, tlvs: out, endTlv: false }),
    ])
    this.outstanding = { peer, sequence: this.sequence, frame, deadlineUs: nowUs + loan.ackTimerUs }
    for (const t of out) if (t.mode !== 'de-associate') this.known.add(`${peer}|${t.vsiId.id}`)
    state[1] = state[1]! - fresh
    this.offeredAnswers.set(hex(bytes), frame)
    this.sentLog.push(frame)
    const s = this.#stat(peer)
    s.txEcpdus++
    s.txVdpTlvs += out.length
    return { kept: false, replies: [this.#ack(seqOf(bytes)), frame], resync }
  }

  #ack(seq: number): Uint8Array {
    return Buffer.concat([Buffer.from('0180c2000000', 'hex'), Buffer.from(macToBytes(BRIDGE_MAC)), Buffer.from([0x89, 0x40, 0x14, 0x01, seq >> 8, seq & 0xff])])
  }
}

/** A bridge/station pair whose bridge link is `ModelLink`, driven as the port driver does. */
function answeringPair(options: ConstructorParameters<typeof BridgeStationPair>[0] = {}) {
  const pair = new BridgeStationPair({ ...options, bridge: { ecpTxGapUs: 0, ...options.bridge }, station: { ecpTxGapUs: 0, ...options.station } })
  const link = new ModelLink()
  const bridge = pair.bridge
  bridge.useAnswers(link, link.start(64, pair.nowUs, () => {}))
  /** The driver's rule: take the side back before the core does anything. */
  const takeBack = () => {
    if (link.loan !== undefined) bridge.takeBackLoan(pair.nowUs, link.takeBack())
  }
  const lend = () => {
    if (link.loan !== undefined) return
    const loan = bridge.answerLoan()
    if (loan !== undefined) link.lend(loan)
  }
  let dropAcks = false
  const replies: Uint8Array[] = []
  const resyncNext = new Set<string>()
  pair.dropIf = (bytes, _from, to) => {
    if (to !== bridge) return false
    if (dropAcks && isEcp(bytes, 1) && link.outstanding !== undefined) return true
    const r = link.receive(bytes, pair.nowUs)
    replies.push(...r.replies)
    // The harness delivers it later: flag it now, as the link would have.
    if (!r.kept && r.resync) resyncNext.add(hex(bytes))
    return r.kept
  }
  const station = pair.station
  const handleFrame = bridge.handleFrame.bind(bridge)
  bridge.handleFrame = (nowUs: number, frame: Uint8Array, acked?: boolean, resync?: boolean) => {
    takeBack()
    const answer = link.offeredAnswers.get(hex(frame))
    link.offeredAnswers.delete(hex(frame))
    handleFrame(nowUs, frame, acked === true || answer !== undefined, resync === true || resyncNext.delete(hex(frame)), answer)
  }
  const handleTimeout = bridge.handleTimeout.bind(bridge)
  bridge.handleTimeout = (nowUs: number) => {
    takeBack()
    handleTimeout(nowUs)
  }
  const run = (untilUs: number) => {
    for (let i = 0; i < 1_000_000; i++) {
      lend()
      for (const f of replies.splice(0)) pair.inject(station, f)
      // An answer's ack timer: the link calls back, the driver's timeout step takes it back.
      const o = link.outstanding
      const t = pair.nextEventUs()
      if (o !== undefined && o.deadlineUs <= (t ?? Infinity) && o.deadlineUs <= untilUs) {
        pair.nowUs = Math.max(pair.nowUs, o.deadlineUs)
        link.returned = true
        pair.apply(bridge, (c, nowUs) => c.handleTimeout(nowUs))
        continue
      }
      if (t === undefined || t > untilUs) break
      pair.step()
    }
    pair.nowUs = Math.max(pair.nowUs, untilUs)
  }
  return { pair, link, run, takeBack, setDropAcks: (v: boolean) => (dropAcks = v) }
}

const RKA14 = { bridge: { evb: { rka: 14 } }, station: { evb: { rka: 14 } } }

describe('keep-alive answers in the port core', () => {
  it('stores the confirmed pair and lends the side only while idle; the link then answers every keep-alive', () => {
    const { pair, link, run } = answeringPair(RKA14)
    pair.command(pair.station, associate(1))
    run(pair.nowUs + 20_000)
    expect(link.answers.size).toBe(1)
    const stored = [...link.answers.values()][0]!
    expect(stored.peer).toBe(stationMac(0))
    // The response: the bridge's confirmed TLV (status 0x40, the VID it granted).
    expect(stored.response[2]).toBe(0x40)
    expect(pair.bridge.answerLoan()).toBeDefined()
    run(pair.nowUs + 2_000_000) // ~12 keep-alives at RKA 14 (164 ms)
    const c = pair.bridge.counters()
    expect(c.keepalivesAnswered).toBeGreaterThanOrEqual(8)
    // The first keep-alive (the station's repeat, VID filled in) came to the core once.
    expect(c.keepalivesRx - c.keepalivesAnswered).toBeLessThanOrEqual(2)
    expect(c.rxEcpdus).toBe(pair.station.counters().txEcpdus)
    expect(pair.bridge.peerCounters(stationMac(0))?.rxVdpTlvs).toBe(c.rxVdpTlvs)
    expect(pair.eventsOf(pair.station, 'vsi-de-associated')).toHaveLength(0)
    expect(pair.eventsOf(pair.bridge, 'vsi-de-associated')).toHaveLength(0)
    // The VSI table shows the link's last answer.
    const row = pair.bridge.vsiSnapshot()[0]!
    expect(pair.nowUs - row.lastSeenUs).toBeLessThan(200_000)
  })

  it('does not lend while anything is queued or in flight, nor with ECPDUs sent to each peer', () => {
    const { pair, link, run } = answeringPair(RKA14)
    pair.command(pair.station, associate(1))
    run(pair.nowUs + 20_000)
    link.takeBack()
    // A command that makes the bridge send: a local De-Associate leaves the side with the core.
    pair.command(pair.bridge, { kind: 'de-associate', vsiId: associate(1).vsiId } as never)
    expect(pair.bridge.answerLoan()).toBeUndefined()
    const unicast = answeringPair({ ...RKA14, bridge: { evb: { rka: 14 }, ecpDestination: 'peer-unicast' } })
    unicast.pair.command(unicast.pair.station, associate(1))
    unicast.run(unicast.pair.nowUs + 500_000)
    expect(unicast.link.answers.size).toBe(1)
    expect(unicast.pair.bridge.answerLoan()).toBeUndefined()
    expect(unicast.link.lends).toBe(0)
  })

  it('times out a station gone silent although its VSI has no timer of its own, and withdraws the answer', () => {
    const { pair, link, run } = answeringPair(RKA14)
    pair.command(pair.station, associate(1))
    run(pair.nowUs + 1_000_000)
    expect(pair.bridge.counters().keepalivesAnswered).toBeGreaterThan(0)
    const tout = pair.bridge.operational().toutKeepAliveUs
    // The station goes away: nothing reaches the bridge any more.
    const silentAt = pair.nowUs
    pair.dropIf = (_b, _f, to) => to === pair.bridge
    run(pair.nowUs + tout + 1_000_000)
    const gone = pair.eventsOf(pair.bridge, 'vsi-de-associated')
    expect(gone).toHaveLength(1)
    expect(gone[0]).toMatchObject({ reason: 'keepalive-timeout' })
    // Within toutKeepAlive of the last answer, plus one sweep period (toutKeepAlive / 16).
    expect(gone[0]!.atUs - silentAt).toBeLessThanOrEqual(tout + tout / 16 + 1)
    expect(gone[0]!.atUs - silentAt).toBeGreaterThanOrEqual(tout - 200_000)
    expect(link.answers.size).toBe(0)
    expect(pair.bridge.answerLoan()).toBeUndefined()
  })

  it('replaces the answer on a mode change and withdraws it on a station De-Associate', () => {
    const { pair, link, run } = answeringPair(RKA14)
    pair.command(pair.station, preAssociate(1))
    run(pair.nowUs + 500_000)
    const before = [...link.answers.values()][0]!
    pair.command(pair.station, associate(1))
    run(pair.nowUs + 500_000)
    expect(link.answers.size).toBe(1)
    const after = [...link.answers.values()][0]!
    expect(after.request).not.toBe(before.request)
    expect(pair.bridge.vsiSnapshot()[0]!.confirmedMode).toBe('associate')
    pair.command(pair.station, { kind: 'de-associate', vsiId: associate(1).vsiId } as never)
    run(pair.nowUs + 500_000)
    expect(link.answers.size).toBe(0)
    expect(pair.bridge.vsiSnapshot()).toHaveLength(0)
  })

  it('adopts an answer whose ACK is late: retransmits it with its sequence number and takes the ACK then', () => {
    const { pair, link, run, setDropAcks } = answeringPair(RKA14)
    pair.command(pair.station, associate(1))
    run(pair.nowUs + 600_000)
    const answeredBefore = pair.bridge.counters().keepalivesAnswered
    expect(answeredBefore).toBeGreaterThan(0)
    setDropAcks(true) // the station's ACKs of the link's answers get lost
    run(pair.nowUs + 200_000)
    setDropAcks(false)
    run(pair.nowUs + 1_000_000)
    const c = pair.bridge.counters()
    expect(c.txRetransmits).toBeGreaterThan(0)
    expect(link.takeBacks).toBeGreaterThan(0)
    expect(pair.eventsOf(pair.bridge, 'vsi-de-associated')).toHaveLength(0)
    expect(pair.bridge.vsiSnapshot()).toHaveLength(1)
    expect(c.keepalivesAnswered).toBeGreaterThan(answeredBefore)
  })

  it('tells the link to forget a peer\'s sequence when the core restarts its receive machine', () => {
    const { pair, link, run } = answeringPair(RKA14)
    pair.command(pair.station, associate(1))
    run(pair.nowUs + 500_000)
    expect(link.last.has(stationMac(0))).toBe(true)
    pair.command(pair.bridge, { kind: 'link-down' })
    expect(link.last.has(stationMac(0))).toBe(false)
  })

  it('takes a frame flagged resync as new although the receive machine saw its sequence number last', () => {
    const pair = new BridgeStationPair(RKA14)
    pair.command(pair.station, associate(1))
    pair.settle()
    const last = pair.bridge.counters().rxEcpdus
    // The station's next request, delivered twice: the second is a duplicate...
    const frames: Uint8Array[] = []
    pair.dropIf = (bytes, _from, to) => {
      if (to === pair.bridge && isEcp(bytes, 0)) frames.push(bytes.slice())
      return to === pair.bridge && isEcp(bytes, 0)
    }
    pair.command(pair.station, associate(2))
    pair.dropIf = undefined
    const req = frames[0]!
    pair.apply(pair.bridge, (c, nowUs) => c.handleFrame(nowUs, req))
    pair.apply(pair.bridge, (c, nowUs) => c.handleFrame(nowUs, req))
    expect(pair.bridge.counters().rxDuplicates).toBe(1)
    // ...unless the link says it answered requests in between: then it is new.
    pair.apply(pair.bridge, (c, nowUs) => c.handleFrame(nowUs, req, false, true))
    expect(pair.bridge.counters().rxDuplicates).toBe(1)
    expect(pair.bridge.counters().rxEcpdus).toBe(last + 3)
    expect(pair.bridge.counters().keepalivesRx).toBe(1)
  })
})


describe('answers from offers in the port core (rule 6)', () => {
  /** A pair whose bridge decides with the real resource manager (open policy, VIDs 100-199). */
  const offeringPair = (options: ConstructorParameters<typeof BridgeStationPair>[0] = {}) => {
    const rm = createResourceManager(defaultPolicy, VidPool.parse('100-199'))
    return { rm, ...answeringPair({ ...RKA14, ...options, resources: rm }) }
  }
  /** Responses the station received for VSI `n`, by status octet. */
  const responsesFor = (frames: Uint8Array[], n: number) => {
    const id = vsiIdOf(n).id
    const out: number[] = []
    for (const f of frames) {
      if (!isEcp(f, 0)) continue
      for (const t of decodeVdpPdu(f.subarray(18)).tlvs) if (t.kind === 'vsi' && t.vsiId.id === id && t.status.response) out.push(t.mode === 'associate' ? 1 : 0)
    }
    return out
  }
  /** Frames the bridge sends to the station from now on: `sent()` has the link's, then the core's. */
  const tap = (pair: BridgeStationPair, link: ModelLink) => {
    const seen: Uint8Array[] = []
    const mark = link.sentLog.length
    const before = pair.dropIf
    pair.dropIf = (bytes, from, to) => {
      if (to === pair.station) seen.push(bytes.slice())
      return before?.(bytes, from, to) ?? false
    }
    return () => [...link.sentLog.slice(mark), ...seen]
  }

  it('answers the next VSI of a VN from the offer the first grant left; the core takes the answer as its own', () => {
    const { pair, link, run, rm } = offeringPair()
    pair.command(pair.station, associate(1))
    run(pair.nowUs + 50_000)
    // The grant of VSI 1 (null VID, type 5 v1, format 2) left an offer at the link.
    expect(pair.bridge.counters().offersAnswered).toBe(0)
    expect([...link.offerTable.values()]).toEqual([{ typeId: 5, typeVersion: 1, filterFormat: 2, groupId: 0, vid: 100, epoch: rm.offerState[0] }])
    expect(link.known).toEqual(new Set([`${stationMac(0)}|${vsiIdOf(1).id}`]))
    const loan = pair.bridge.answerLoan()
    expect(loan).toMatchObject({ offerFormats: 0b11110 }) // the pair negotiates GroupID
    expect(loan!.offerCredit).toBe(pair.bridge.config.vsiCountMax - 1)
    const sent = tap(pair, link)
    pair.command(pair.station, associate(2))
    run(pair.nowUs + 50_000)
    const c = pair.bridge.counters()
    expect(c.offersAnswered).toBe(1)
    expect(c.offerMismatches).toBe(0)
    // One answer on the wire (the link's); the core sent none of its own.
    expect(responsesFor(sent(), 2)).toEqual([1])
    expect(pair.eventsOf(pair.bridge, 'vsi-associated').map((e) => e.vsi.entries[0]?.vid)).toEqual([100, 100])
    expect(rm.heldVsis().map((v) => v.entries[0]!.vid)).toEqual([100, 100])
    // Room for new VSIs switch-wide: the manager's limit less the two held.
    expect(rm.offerState[1]).toBe(defaultResourceManagerOptions.vsiCountMax - 2)
    // The station holds it; keep-alives go on (answered by the link); the counters add up.
    run(pair.nowUs + 1_000_000)
    expect(pair.station.vsiSnapshot().map((v) => v.confirmedMode)).toEqual(['associate', 'associate'])
    expect(pair.bridge.counters().rxEcpdus).toBe(pair.station.counters().txEcpdus)
    expect(pair.bridge.counters().txVdpTlvs).toBe(pair.station.counters().rxVdpTlvs)
    // A GroupID VSI: its own offer once granted, for its VN only.
    for (const [n, vni] of [[3, 5000], [4, 5000], [5, 6000]] as const) {
      pair.command(pair.station, groupCommand('associate', n, vni))
      run(pair.nowUs + 100_000)
    }
    expect(pair.bridge.counters().offersAnswered).toBe(2)
    expect(pair.bridge.counters().offerMismatches).toBe(0)
    expect(rm.heldVsis().map((v) => v.entries[0]!.vid).sort()).toEqual([100, 100, 101, 101, 102])
  })

  it('stops answering from an offer once its VN lets go of the VID (the epoch moves)', () => {
    const { pair, link, run, rm } = offeringPair()
    pair.command(pair.station, associate(1))
    run(pair.nowUs + 50_000)
    const epoch = rm.offerState[0]
    pair.command(pair.station, { kind: 'de-associate', vsiId: associate(1).vsiId } as never)
    run(pair.nowUs + 50_000)
    expect(rm.offerState[0]).not.toBe(epoch)
    expect(link.known.size).toBe(0)
    pair.command(pair.station, associate(2))
    run(pair.nowUs + 50_000)
    // The core decided it (VID 100 again, from the pool), and left a fresh offer.
    expect(pair.bridge.counters().offersAnswered).toBe(1) // the De-Associate above, echoed by the link
    expect(rm.heldVsis().map((v) => v.entries[0]!.vid)).toEqual([100])
    expect([...link.offerTable.values()][0]!.epoch).toBe(rm.offerState[0])
  })

  it('sends its own response after an answer it disagrees with, and counts the mismatch', () => {
    const { pair, link, run } = offeringPair()
    pair.command(pair.station, associate(1))
    run(pair.nowUs + 50_000)
    // The link's table says VID 150 for the kind; the core gives 100.
    const o = [...link.offerTable.values()][0]!
    link.offers.set({ ...o, vid: 150 })
    const sent = tap(pair, link)
    pair.command(pair.station, associate(2))
    run(pair.nowUs + 50_000)
    expect(pair.bridge.counters().offerMismatches).toBe(1)
    expect(pair.bridge.counters().offersAnswered).toBe(0)
    // The station took the link's answer (VID 150), which the core did not give: the core ends
    // the VSI on both sides with an unsolicited De-Associate instead of holding another VID.
    expect(responsesFor(sent(), 2)).toEqual([1])
    run(pair.nowUs + 500_000)
    expect(pair.eventsOf(pair.bridge, 'vsi-de-associated')).toMatchObject([{ reason: 'answer-mismatch', initiator: 'bridge' }])
    expect(pair.station.vsiSnapshot().map((v) => v.vsi.vsiId.id)).toEqual([vsiIdOf(1).id])
    expect(pair.bridge.vsiSnapshot().map((v) => v.vsi.vsiId.id)).toEqual([vsiIdOf(1).id])
  })

  it('gives the link no offers without the resource manager\'s state or when turned off', () => {
    const plain = answeringPair(RKA14) // the fake resource manager has no offer state
    plain.pair.command(plain.pair.station, associate(1))
    plain.run(plain.pair.nowUs + 50_000)
    expect(plain.link.offerState).toBeUndefined()
    expect(plain.link.offerTable.size).toBe(0)
    const rm = createResourceManager(defaultPolicy, VidPool.parse('100-199'))
    const pair = new BridgeStationPair({ ...RKA14, resources: rm })
    const link = new ModelLink()
    pair.bridge.useAnswers(link, link.start(8, 0, () => {}), { offers: false })
    pair.command(pair.station, associate(1))
    pair.settle()
    expect(link.offerState).toBeUndefined()
    expect(link.offerTable.size).toBe(0)
    expect(pair.bridge.offersStored).toBe(0)
  })
})
