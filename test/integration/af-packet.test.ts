/**
 * The real AF_PACKET link on veth pairs in network namespaces (root required; without root
 * these tests fail with a message saying so). Each link is opened by a child process inside
 * the namespace of its interface (test/support/ns-child-link.ts).
 *
 * Lab: afp-<id>-a ── veth <p>a <──> <p>b ── afp-<id>-b, plus a bridge lab for the
 * bridge-port case. All names start with "afp"; everything is deleted in afterAll.
 */
import { copyFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { build } from 'esbuild'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { decodeVdpPdu } from '../../shared/vdp/codec.ts'
import {
  NetnsLab,
  NsChildError,
  REPO_ROOT,
  exec,
  listNamespaces,
  openLinkInNetns,
  requireRoot,
  sweepStaleNamespaces,
  type NsChild,
} from '../support/netns.ts'

const LINK_CHILD = fileURLToPath(new URL('../support/ns-child-link.ts', import.meta.url))

const MAC_A = '02:61:66:70:00:0a'
const MAC_B = '02:61:66:70:00:0b'

// Frames from /work/shared/captures (lldpad 1.1): an ECP VDP Associate request (71 bytes), the
// bridge's 18-byte ECP ACK, and an LLDP frame with the EVB TLV (padded to 60 bytes).
const ECP_ASSOCIATE =
  '0180c2000000027664700001894010010001' + // dst, src, 0x8940, ECP v1 request VDP, seq 1
  '0a107664706c61620000000000000000000006210000000501055644504c4142400080000000000000010200010276647100010000'
const ECP_ACK_18 = '0180c2000000027664700002' + '8940' + '1401' + '0001' // ECP ACK of seq 1
const LLDP_EVB =
  '0180c2000000027664700002' + '88cc' + // dst, src, LLDP
  '0402766470000204070302766470000206020078fe090080c20d060068541400000000000000000000000000'
// The ACK again, behind an 802.1Q tag (PCP 0, VID 100).
const ECP_ACK_TAGGED = '0180c2000000027664700002' + '81000064' + '894014010001'

const hexFrame = (h: string): string => h.toLowerCase()
/** An ECP frame (hex) with its sequence number (octets 16-17) replaced. */
const withSeq = (frame: string, seq: number) => frame.slice(0, 32) + seq.toString(16).padStart(4, '0') + frame.slice(36)
/** An 18-octet ECP VDP ACK (hex) of `seq` from `src`, to the nearest-customer-bridge group by default. */
const ecpAck = (seq: number, src: string, dst = '01:80:c2:00:00:00') =>
  dst.replace(/:/g, '') + src.replace(/:/g, '') + '89401401' + seq.toString(16).padStart(4, '0')

/**
 * A veth pair in two namespaces with a link child on each end: A (MAC_A) prints every frame
 * as an event, B (MAC_B) collects what it receives.
 */
async function linkPair(name: string): Promise<{ lab: NetnsLab; a: NsChild; b: NsChild }> {
  requireRoot('the AF_PACKET integration tests')
  const lab = await NetnsLab.create(name)
  const nsA = await lab.addNamespace('a')
  const nsB = await lab.addNamespace('b')
  await lab.addVethPair({ ns: nsA, ifname: lab.ifname('a'), mac: MAC_A }, { ns: nsB, ifname: lab.ifname('b'), mac: MAC_B })
  const a = await lab.spawnNode(nsA, LINK_CHILD)
  const b = await lab.spawnNode(nsB, LINK_CHILD)
  await a.request('open', { ifname: lab.ifname('a') })
  await b.request('open', { ifname: lab.ifname('b') })
  await a.request('listen', { mode: 'events' })
  await b.request('listen', { mode: 'collect' })
  return { lab, a, b }
}

/**
 * Sends `frames` from B, then a marker frame, and waits until A's handler saw the marker:
 * returns what A's handler saw before it (with the link's flags) and what came back to B.
 */
async function exchangeFromB(
  a: NsChild,
  b: NsChild,
  frames: string[],
): Promise<{ seen: Array<{ hex: string; acked: boolean; resync: boolean; answer?: string }>; back: string[] }> {
  const marker = withSeq(ECP_ACK_18, 0xbeef)
  const start = a.events.length
  for (const f of frames) await b.request('send', { hex: f })
  await b.request('send', { hex: marker })
  await a.waitForEvent((e) => e.event === 'frame' && e.hex === marker, 10_000, start)
  await b.request('waitQuiet', { ms: 100 })
  const seen = a.events.slice(start).filter((e) => e.event === 'frame' && e.hex !== marker)
  return {
    seen: seen.map((e) => ({ hex: String(e.hex), acked: e.acked === true, resync: e.resync === true, ...(e.answer === undefined ? {} : { answer: String(e.answer) }) })),
    back: (await b.request<{ frames: string[] }>('received')).frames,
  }
}

describe('AF_PACKET link on a veth pair', () => {
  let lab: NetnsLab
  let nsA: string
  let nsB: string
  let ifA: string
  let ifB: string
  let a: NsChild
  let b: NsChild

  beforeAll(async () => {
    requireRoot('the AF_PACKET integration tests')
    lab = await NetnsLab.create('afp')
    nsA = await lab.addNamespace('a')
    nsB = await lab.addNamespace('b')
    ifA = lab.ifname('a')
    ifB = lab.ifname('b')
    await lab.addVethPair({ ns: nsA, ifname: ifA, mac: MAC_A }, { ns: nsB, ifname: ifB, mac: MAC_B })
    a = await lab.spawnNode(nsA, LINK_CHILD)
    b = await lab.spawnNode(nsB, LINK_CHILD)
    expect(await a.request('open', { ifname: ifA })).toMatchObject({ mac: MAC_A, mtu: 1500 })
    expect(await b.request('open', { ifname: ifB })).toMatchObject({ mac: MAC_B, mtu: 1500 })
    await a.request('listen', { mode: 'collect' })
    await b.request('listen', { mode: 'events' })
  })

  afterAll(async () => {
    await lab?.cleanup()
  })

  /** Sends `frames` from A, then a marker, and returns what B received up to the marker. */
  async function throughAtoB(frames: string[]): Promise<string[]> {
    const marker = ECP_ACK_18.slice(0, -4) + 'beef'
    const start = b.events.length
    for (const f of frames) await a.request('send', { hex: f })
    await a.request('send', { hex: marker })
    await b.waitForEvent((e) => e.event === 'frame' && e.hex === marker, 10_000, start)
    return b.events.slice(start).filter((e) => e.event === 'frame' && e.hex !== marker).map((e) => String(e.hex))
  }

  it('delivers an ECP frame to 01-80-C2-00-00-00 byte for byte', async () => {
    expect(await throughAtoB([ECP_ASSOCIATE])).toEqual([hexFrame(ECP_ASSOCIATE)])
  })

  it('delivers an LLDP frame', async () => {
    expect(await throughAtoB([LLDP_EVB])).toEqual([hexFrame(LLDP_EVB)])
  })

  it('delivers an 802.1Q-tagged ECP frame with its tag back in place', async () => {
    // The kernel strips the tag into metadata before packet sockets see the frame; the addon
    // puts it back from PACKET_AUXDATA.
    expect(await throughAtoB([ECP_ACK_TAGGED])).toEqual([hexFrame(ECP_ACK_TAGGED)])
  })

  it('delivers an 802.1ad (S-tag) ECP frame and a double-tagged one with their tags', async () => {
    const sTagged = '0180c2000000027664700002' + '88a80064' + '894014010001'
    const qinq = '0180c2000000027664700002' + '88a80064' + '810000c8' + '894014010001'
    expect(await throughAtoB([sTagged, qinq])).toEqual([sTagged, qinq])
  })

  it('delivers an 18-byte frame (an ECP ACK, shorter than the Ethernet minimum)', async () => {
    const got = await throughAtoB([ECP_ACK_18])
    expect(got).toEqual([hexFrame(ECP_ACK_18)])
    expect(got[0]!.length / 2).toBe(18)
  })

  it('filters out other Ethertypes, tagged or not', async () => {
    const bcast = 'ffffffffffff' + MAC_A.replace(/:/g, '')
    const ipv4 = bcast + '0800' + '45000014000000004001' + '0000' + '0a000001' + '0a000002'
    const arp = bcast + '0806' + '0001080006040001' + MAC_A.replace(/:/g, '') + '0a000001' + '000000000000' + '0a000002'
    const ipv6 = '333300000001' + MAC_A.replace(/:/g, '') + '86dd' + '6000000000003bff' + '00'.repeat(32)
    const taggedIpv4 = bcast + '81000064' + '0800' + '45000014000000004001' + '0000'
    const nearMiss = '0180c2000000' + MAC_A.replace(/:/g, '') + '8941' + '10010001'
    const lldpTagOnly = '0180c2000000' + MAC_A.replace(/:/g, '') + '8100'
    expect(await throughAtoB([ipv4, arp, ipv6, taggedIpv4, nearMiss, lldpTagOnly])).toEqual([])
  })

  it('does not hand a link the frames it sent itself', async () => {
    await a.request('received') // forget what A saw so far
    await throughAtoB([ECP_ASSOCIATE, LLDP_EVB, ECP_ACK_TAGGED])
    expect((await a.request<{ frames: string[] }>('received')).frames).toEqual([])
    // ...while A does receive what B sends.
    await b.request('send', { hex: ECP_ACK_18 })
    await waitUntil(async () => (await a.request<{ frames: string[] }>('received')).frames.includes(hexFrame(ECP_ACK_18)))
  })

  it('counts a burst of 10,000 frames: received + kernel drops = sent', async () => {
    await b.request('listen', { mode: 'count' }) // B's per-frame events would only slow things down
    const c = await lab.spawnNode(nsB, LINK_CHILD)
    await c.request('open', { ifname: ifB })
    await c.request('listen', { mode: 'count', seqOffset: 18 })
    const frame = ECP_ASSOCIATE // seq at offset 18 overwrites the Manager ID TLV: fine here
    const sent = await a.request<{ sent: number; ms: number; stats: { txFrames: number; txErrors: number } }>('send', {
      hex: frame,
      count: 10_000,
      seqOffset: 18,
    })
    await c.request('waitQuiet', { ms: 300 })
    const st = await c.request<{ rxFrames: number; drops: number; seqErrors: number; kernel: { packets: number; drops: number } }>('stats')
    expect(sent.stats.txErrors).toBe(0)
    expect(st.rxFrames + st.drops).toBe(10_000)
    expect(st.kernel.packets).toBe(10_000)
    expect(st.seqErrors).toBe(0) // in order, no duplicates
    console.info(
      `burst: 10000 frames sent in ${sent.ms.toFixed(1)} ms (${Math.round(10_000 / (sent.ms / 1000))} frames/s), received ${st.rxFrames}, kernel drops ${st.drops}`,
    )
    await c.close()
  })

  it('counts kernel drops when the reader stalls during a burst', async () => {
    const c = await lab.spawnNode(nsB, LINK_CHILD)
    await c.request('open', { ifname: ifB, options: { rcvBufBytes: 65_536 } })
    await c.request('listen', { mode: 'count', seqOffset: 18 })
    // Stall C's event loop while A sends: C's small queue overflows, deterministically.
    const stalled = c.request('block', { ms: 1_500 })
    await new Promise((r) => setTimeout(r, 100))
    await a.request('send', { hex: ECP_ASSOCIATE, count: 10_000, seqOffset: 18 })
    await stalled
    await c.request('waitQuiet', { ms: 300 })
    const st = await c.request<{ rxFrames: number; drops: number; seqErrors: number }>('stats')
    expect(st.drops).toBeGreaterThan(0)
    expect(st.rxFrames).toBeGreaterThan(0)
    expect(st.rxFrames + st.drops).toBe(10_000)
    expect(st.seqErrors).toBe(0)
    console.info(`stalled reader (64 KiB queue): received ${st.rxFrames}, kernel drops ${st.drops}`)
    await c.close()
  })

  it('closes cleanly: no handler calls after close, and the process exits by itself', async () => {
    const c = await lab.spawnNode(nsB, LINK_CHILD)
    await c.request('open', { ifname: ifB })
    await c.request('listen', { mode: 'count' })
    await a.request('send', { hex: ECP_ACK_18, count: 200 })
    await c.request('waitQuiet', { ms: 100 })
    const atClose = await c.request<{ rx: number }>('close')
    await a.request('send', { hex: ECP_ACK_18, count: 200 })
    await new Promise((r) => setTimeout(r, 200))
    const after = await c.request<{ rx: number; handlerCallsAfterClose: number }>('stats')
    expect(after.handlerCallsAfterClose).toBe(0)
    expect(after.rx).toBe(atClose.rx)
    const exit = await c.close(3_000)
    expect(exit).toMatchObject({ code: 0, exitedByItself: true })
  })

  it('stops delivering mid-batch when the handler closes the link', async () => {
    const c = await lab.spawnNode(nsB, LINK_CHILD)
    await c.request('open', { ifname: ifB })
    await c.request('listen', { mode: 'count', closeAfter: 3 })
    // Stalled so that the 500 frames are read in full batches, then closed on the 3rd frame.
    const stalled = c.request('block', { ms: 300 })
    await a.request('send', { hex: ECP_ACK_18, count: 500 })
    await stalled
    await new Promise((r) => setTimeout(r, 200))
    const st = await c.request<{ rx: number; handlerCallsAfterClose: number }>('stats')
    expect(st.rx).toBe(3)
    expect(st.handlerCallsAfterClose).toBe(0)
    expect(await c.close(3_000)).toMatchObject({ code: 0, exitedByItself: true })
  })

  it('sends frames from inside the handler in order; a failed one is a send error, the rest go', async () => {
    // The agent answers an ECPDU from inside the handler (ACK, then response).
    const c = await lab.spawnNode(nsB, LINK_CHILD)
    await c.request('open', { ifname: ifB })
    const r1 = ECP_ACK_18.slice(0, -4) + 'a001'
    const r2 = hexFrame(ECP_ASSOCIATE)
    const jumbo = ECP_ACK_18 + '00'.repeat(1600)
    await c.request('listen', { mode: 'count', replies: [r1, jumbo, r2] })
    await a.request('received') // forget what A saw so far
    await a.request('send', { hex: ECP_ACK_TAGGED })
    const got: string[] = []
    await waitUntil(async () => {
      got.push(...(await a.request<{ frames: string[] }>('received')).frames)
      return got.length >= 2
    })
    expect(got).toEqual([r1, r2])
    const e = await c.waitForEvent((x) => x.event === 'link-error')
    expect(e).toMatchObject({ code: 'EMSGSIZE', fatal: false, syscall: 'send' })
    expect(await c.request('stats')).toMatchObject({ rx: 1, txFrames: 2, txErrors: 1 })
    await c.close()
  })

  it('keeps the process alive while reading, unless unref() was called', async () => {
    for (const unref of [false, true]) {
      const c = await lab.spawnNode(nsB, LINK_CHILD)
      await c.request('open', { ifname: ifB })
      await c.request('listen', { mode: 'count' })
      await c.request('keepOpenOnEnd')
      if (unref) await c.request('unref')
      const exit = await c.close(1_500)
      expect(exit.exitedByItself).toBe(unref)
    }
  })

  it('reports a frame longer than the MTU as a send error, not an exception', async () => {
    const c = await lab.spawnNode(nsB, LINK_CHILD)
    await c.request('open', { ifname: ifB })
    const jumbo = ECP_ACK_18 + '00'.repeat(1600)
    const r = await c.request<{ stats: { txErrors: number; txFrames: number } }>('send', { hex: jumbo })
    expect(r.stats).toMatchObject({ txErrors: 1, txFrames: 0 })
    const e = await c.waitForEvent((x) => x.event === 'link-error')
    expect(e).toMatchObject({ code: 'EMSGSIZE', fatal: false, syscall: 'send' })
    expect(e.message).toBe(`Cannot send frame on ${ifB}: frame is longer than the interface MTU allows`)
    await c.close()
  })

  it('gives a clear error for a missing interface', async () => {
    const c = await lab.spawnNode(nsB, LINK_CHILD)
    const err = await c.request('open', { ifname: 'nope0' }).catch((e: unknown) => e)
    expect(err).toBeInstanceOf(NsChildError)
    expect((err as NsChildError).code).toBe('ENODEV')
    expect((err as NsChildError).message).toBe('Cannot open raw socket on nope0: no such interface')
    await c.close()
  })

  it('gives a clear error without root or CAP_NET_RAW', async () => {
    // uid 65534 (nobody) with no capabilities; opening a raw socket fails before any I/O.
    const c = await lab.spawnNode(nsB, LINK_CHILD, [], { uid: 65534 })
    const err = await c.request('open', { ifname: ifB }).catch((e: unknown) => e)
    expect((err as NsChildError).code).toBe('EPERM')
    expect((err as NsChildError).message).toBe(
      `Cannot open raw socket on ${ifB}: operation not permitted (needs root or CAP_NET_RAW)`,
    )
    await c.close()
  })

  it('releases sockets of garbage-collected links', async () => {
    const c = await lab.spawnNode(nsB, LINK_CHILD, [], { nodeArgs: ['--expose-gc'] })
    const r = await c.request<{ before: number; opened: number; afterGc: number; afterClosedGc: number; absorbBefore: number; absorbOpened: number; afterAbsorbGc: number }>('gcProbe', { ifname: ifB })
    expect(r.opened).toBe(r.before + 20)
    expect(r.afterGc).toBe(r.before)
    expect(r.afterClosedGc).toBe(r.before)
    // With ACK absorption on as well (the BPF map's descriptor is the one that stays).
    expect(r.absorbBefore).toBe(r.before + 1)
    expect(r.absorbOpened).toBe(r.absorbBefore + 20)
    expect(r.afterAbsorbGc).toBe(r.absorbBefore)
    expect(await c.close(3_000)).toMatchObject({ code: 0, exitedByItself: true })
  })

  it('survives worker threads terminated while reading', async () => {
    const c = await lab.spawnNode(nsB, LINK_CHILD)
    const r = await c.request<{ exits: number[] }>('workerProbe', { ifname: ifB })
    expect(r.exits).toEqual([1, 1, 1, 1, 1]) // terminate() reports exit code 1
    // Workers that turned keep-alive answers on (a timer on their loop) end as cleanly.
    const answering = await c.request<{ exits: number[] }>('workerProbe', { ifname: ifB, answers: true })
    expect(answering.exits).toEqual([1, 1, 1, 1, 1])
    await a.request('send', { hex: ECP_ACK_18, count: 10 }) // frames while nothing reads
    expect(await c.close(3_000)).toMatchObject({ code: 0, exitedByItself: true })
  })

  it('surfaces a handler exception as uncaught, and still delivers the rest of the batch', async () => {
    const c = await lab.spawnNode(nsB, LINK_CHILD)
    await c.request('open', { ifname: ifB })
    await c.request('listen', { mode: 'throw' })
    const stalled = c.request('block', { ms: 200 }) // so that the frames arrive as one batch
    await a.request('send', { hex: ECP_ACK_18, count: 20 })
    await stalled
    await c.request('waitQuiet', { ms: 100 })
    const st = await c.request<{ rx: number; uncaught: string[] }>('stats')
    expect(st.rx).toBe(20)
    expect(st.uncaught).toEqual(['handler failed on frame 1'])
    await c.close()
  })

  it('reports an interface going down (not fatal), recovers when it is up again', async () => {
    const c = await lab.spawnNode(nsB, LINK_CHILD)
    await c.request('open', { ifname: ifB })
    await c.request('listen', { mode: 'events' })
    await lab.setDown(nsB, ifB)
    const down = await c.waitForEvent((e) => e.event === 'link-error')
    expect(down).toMatchObject({ code: 'ENETDOWN', fatal: false, message: `Cannot receive on ${ifB}: network is down` })
    await lab.setUp(nsB, ifB)
    await waitUntil(async () => {
      await a.request('send', { hex: ECP_ACK_18 })
      await new Promise((r) => setTimeout(r, 50))
      return c.events.some((e) => e.event === 'frame')
    })
    await c.close()
  })
})

describe('AF_PACKET link acknowledging ECP requests itself (ackEcp)', () => {
  // A is the bridge port that acknowledges; B is the station side and collects what A sends.
  let lab: NetnsLab
  let a: NsChild
  let b: NsChild
  const STATION = '02:76:64:70:00:01' // the source MAC of ECP_ASSOCIATE
  const OTHER = '02:76:64:70:00:09'
  const withSource = (frame: string, mac: string) => frame.slice(0, 12) + mac.replace(/:/g, '') + frame.slice(24)

  beforeAll(async () => {
    ;({ lab, a, b } = await linkPair('afpack'))
  })

  afterAll(async () => {
    await lab?.cleanup()
  })

  /** Sends `frames` from B; returns what A's handler saw (hex, acked) and what came back to B. */
  async function exchange(frames: string[]): Promise<{ seen: Array<{ hex: string; acked: boolean }>; back: string[] }> {
    const r = await exchangeFromB(a, b, frames)
    return { seen: r.seen.map(({ hex, acked }) => ({ hex, acked })), back: r.back }
  }

  it('acknowledges a request from a listed peer at once, with its sequence number, to the group address', async () => {
    await a.request('ackEcp', { offload: { source: MAC_A, unicast: false, peers: [OTHER, STATION] } })
    const request = withSeq(ECP_ASSOCIATE, 0x1234)
    const r = await exchange([request])
    expect(r.seen).toEqual([{ hex: request, acked: true }])
    expect(r.back).toEqual([ecpAck(0x1234, MAC_A, '01:80:c2:00:00:00')])
    const stats = await a.request<{ txFrames: number; kernel: { acksSent: number; ackErrors: number } }>('stats')
    expect(stats.kernel).toMatchObject({ acksSent: 1, ackErrors: 0 })
    expect(stats.txFrames).toBe(1)
  })

  it('acknowledges to the requester in unicast mode, and requests to the port\'s own MAC or behind a tag', async () => {
    await a.request('ackEcp', { offload: { source: MAC_A, unicast: true, peers: [STATION] } })
    const toPort = MAC_A.replace(/:/g, '') + withSeq(ECP_ASSOCIATE, 7).slice(12)
    const tagged = ECP_ASSOCIATE.slice(0, 24) + '81000064' + withSeq(ECP_ASSOCIATE, 8).slice(24)
    const r = await exchange([withSeq(ECP_ASSOCIATE, 6), toPort, tagged])
    expect(r.seen.map((f) => f.acked)).toEqual([true, true, true])
    expect(r.back).toEqual([ecpAck(6, MAC_A, STATION), ecpAck(7, MAC_A, STATION), ecpAck(8, MAC_A, STATION)])
  })

  it('leaves everything else to the handler: other sources, ACKs, other versions, subtypes and destinations', async () => {
    await a.request('ackEcp', { offload: { source: MAC_A, unicast: false, peers: [STATION] } })
    const ecp = withSeq(ECP_ASSOCIATE, 9)
    const frames = [
      withSource(ecp, OTHER), // not a listed peer: the port core decides
      withSource(ECP_ACK_18, STATION), // an ACK is not acknowledged
      ecp.slice(0, 28) + '20' + ecp.slice(30), // ECP version 2
      ecp.slice(0, 28) + '1002' + ecp.slice(32), // subtype 2 (not VDP)
      ecp.slice(0, 28) + '18' + ecp.slice(30), // reserved operation 2
      '02aabbccddee' + ecp.slice(12), // unicast to another station
      ecp.slice(0, 36), // 18 octets: header only, still a request
    ]
    const r = await exchange(frames)
    expect(r.seen.map((f) => f.acked)).toEqual([false, false, false, false, false, false, true])
    expect(r.back).toEqual([ecpAck(9, MAC_A, '01:80:c2:00:00:00')])
  })

  it('takes the port to be the MAC the core knows, which may differ from the NIC\'s', async () => {
    const configured = '02:61:66:70:00:aa'
    await a.request('ackEcp', { offload: { source: configured, unicast: false, peers: [STATION] } })
    const to = (mac: string, seq: number) => mac.replace(/:/g, '') + withSeq(ECP_ASSOCIATE, seq).slice(12)
    const r = await exchange([to(configured, 11), to(MAC_A, 12)])
    expect(r.seen.map((f) => f.acked)).toEqual([true, false])
    expect(r.back).toEqual(['0180c2000000' + configured.replace(/:/g, '') + '894014010' + '00b'])
  })

  it('stops when the offload is turned off', async () => {
    await a.request('ackEcp', { offload: undefined })
    const r = await exchange([withSeq(ECP_ASSOCIATE, 10)])
    expect(r.seen).toEqual([{ hex: withSeq(ECP_ASSOCIATE, 10), acked: false }])
    expect(r.back).toEqual([])
  })
})

describe('AF_PACKET link taking ECP ACKs in (absorbEcpAcks, eBPF socket filter)', () => {
  // A is the port awaiting ACKs; B plays its peer and sends them.
  let lab: NetnsLab
  let a: NsChild
  let b: NsChild
  const PEER = '02:76:64:70:00:02' // the source MAC of ECP_ACK_18
  const OTHER = '02:76:64:70:00:09'
  const ack = (seq: number, opts: { src?: string; dst?: string } = {}) => ecpAck(seq, opts.src ?? PEER, opts.dst)

  beforeAll(async () => {
    ;({ lab, a, b } = await linkPair('afabs'))
  })

  afterAll(async () => {
    await lab?.cleanup()
  })

  /** Sends `frames` from B; returns what reached A's handler and what A's collector took in. */
  async function exchange(frames: string[]): Promise<{ seen: string[]; absorbed: Array<{ own: boolean; peer: string; sequence: number }> }> {
    const marker = withSeq(ECP_ACK_18, 0xbeef)
    const start = a.events.length
    for (const f of frames) await b.request('send', { hex: f })
    await b.request('send', { hex: marker })
    await a.waitForEvent((e) => e.event === 'frame' && e.hex === marker, 10_000, start)
    const seen = a.events.slice(start).filter((e) => e.event === 'frame' && e.hex !== marker).map((e) => String(e.hex))
    return { seen, absorbed: (await a.request<{ acks: Array<{ own: boolean; peer: string; sequence: number }> }>('takeAbsorbed')).acks }
  }

  it('takes in the awaited ACK, to the group address or to the port, and hands every other frame over', async () => {
    await a.request('absorbEcpAcks', { absorb: { own: MAC_A, awaited: [{ peer: PEER, sequence: 0x1234 }, { peer: OTHER, sequence: 7 }] } })
    const longer = ack(0x1234) + '00'.repeat(42) // padded to the Ethernet minimum, as on a wire
    const handedOver = [
      ack(0x1235), // another sequence
      ack(0x1234, { src: OTHER }), // another peer's sequence
      ack(0x1234, { dst: '02:aa:bb:cc:dd:ee' }), // unicast to someone else
      ack(0x1234).slice(0, 28) + '2401' + ack(0x1234).slice(32), // ECP version 2
      ack(0x1234).slice(0, 28) + '1402' + ack(0x1234).slice(32), // subtype 2
      ack(0x1234).slice(0, 28) + '1001' + ack(0x1234).slice(32), // a request, not an ACK
      ack(0x1234).slice(0, 32), // 16 octets: too short to be an ACK
      ack(0x1234).slice(0, 24) + '81000064' + ack(0x1234).slice(24), // behind a tag
      LLDP_EVB,
    ]
    const r = await exchange([ack(0x1234), ...handedOver])
    expect(r.seen).toEqual(handedOver)
    expect(r.absorbed).toEqual([{ own: true, peer: PEER, sequence: 0x1234 }])
    // To the port's own MAC, padded: taken in too; the other awaited peer's as well.
    const r2 = await exchange([ack(0x1234, { dst: MAC_A }) + '00'.repeat(42), ack(7, { src: OTHER }), longer])
    expect(r2.seen).toEqual([])
    expect(r2.absorbed).toEqual(expect.arrayContaining([{ own: true, peer: PEER, sequence: 0x1234 }, { own: true, peer: OTHER, sequence: 7 }]))
    const stats = await a.request<{ absorbedAcks: number; kernel: { acksAbsorbed: number } }>('stats')
    expect(stats.absorbedAcks).toBe(4)
    expect(stats.kernel.acksAbsorbed).toBe(4)
  })

  it('follows the awaited set: a peer no longer awaited, or awaited with a new sequence, gets its ACK as a frame', async () => {
    await a.request('absorbEcpAcks', { absorb: { own: MAC_A, awaited: [{ peer: PEER, sequence: 20 }] } })
    let r = await exchange([ack(0x1234), ack(7, { src: OTHER }), ack(20)])
    expect(r.seen).toEqual([ack(0x1234), ack(7, { src: OTHER })])
    expect(r.absorbed).toEqual([{ own: true, peer: PEER, sequence: 20 }])
    await a.request('absorbEcpAcks', { absorb: { own: MAC_A, awaited: [] } })
    r = await exchange([ack(20)])
    expect(r.seen).toEqual([ack(20)])
    expect(r.absorbed).toEqual([])
  })

  it('takes the port to be the MAC the core knows, which may differ from the NIC\'s', async () => {
    const configured = '02:61:66:70:00:aa'
    await a.request('absorbEcpAcks', { absorb: { own: configured, awaited: [{ peer: PEER, sequence: 30 }] } })
    const r = await exchange([ack(30, { dst: MAC_A }), ack(30, { dst: configured })])
    expect(r.seen).toEqual([ack(30, { dst: MAC_A })])
    expect(r.absorbed).toEqual([{ own: true, peer: PEER, sequence: 30 }])
  })

  it('puts the classic filter back when turned off: every ECP and LLDP frame reaches the handler again', async () => {
    await a.request('absorbEcpAcks', { absorb: { own: MAC_A, awaited: [{ peer: PEER, sequence: 40 }] } })
    await a.request('absorbEcpAcks', { absorb: undefined })
    const other = '0180c2000000' + PEER.replace(/:/g, '') + '0800' + '45'.repeat(46)
    const r = await exchange([ack(40), other, LLDP_EVB])
    expect(r.seen).toEqual([ack(40), LLDP_EVB])
    expect(r.absorbed).toEqual([])
  })

  it('survives random and mutated frames with absorption on, and still takes in the awaited ACK after them', async () => {
    await a.request('absorbEcpAcks', { absorb: { own: MAC_A, awaited: [{ peer: PEER, sequence: 50 }] } })
    let seed = 0x5eed
    const rand = () => ((seed = (seed * 1103515245 + 12345) >>> 0) >>> 16) & 0xff
    const frames: string[] = []
    for (let i = 0; i < 200; i++) {
      const base = Buffer.from(ack(50), 'hex')
      const f = Buffer.concat([base, Buffer.alloc(rand() % 40)])
      for (let k = 0; k < 1 + (rand() % 4); k++) f[12 + (rand() % (f.length - 12))] = rand()
      f[12] = 0x89 // keep it ECP so the filter's ECP path runs
      f[13] = 0x40
      frames.push(f.subarray(0, Math.max(14, f.length - (rand() % 8))).toString('hex'))
    }
    const r = await exchange([...frames, ack(50)])
    // Whatever a mutation left an exact awaited ACK may be taken in; everything else arrives.
    expect(r.absorbed).toEqual([{ own: true, peer: PEER, sequence: 50 }])
    const arrived = new Set(r.seen)
    for (const f of frames) {
      const awaitedAck = f.length >= 36 && f.slice(0, 12) === '0180c2000000' && f.slice(12, 24) === PEER.replace(/:/g, '') && f.slice(28, 36) === '14010032'
      if (!awaitedAck) expect(arrived.has(f)).toBe(true)
    }
  })
})

describe('AF_PACKET link answering keep-alives itself (answers)', () => {
  // A is the bridge port: it acknowledges, takes ACKs in and answers stored requests; B is the
  // station side, sends requests and collects what A sends.
  let lab: NetnsLab
  let a: NsChild
  let b: NsChild
  const STATION = '02:76:64:70:00:01' // the source MAC of ECP_ASSOCIATE
  // The Associate's ULPDU: Manager ID TLV (18 octets), VSI TLV (35 octets), End TLV.
  const MANAGER_TLV = ECP_ASSOCIATE.slice(36, 72)
  const VSI_TLV = ECP_ASSOCIATE.slice(72, 142)
  const RESPONSE_TLV = VSI_TLV.slice(0, 4) + '40' + VSI_TLV.slice(6) // status 0x40: success
  const OTHER_TLV = VSI_TLV.slice(0, 40) + 'ff' + VSI_TLV.slice(42) // another VSIID
  const OTHER_RESPONSE = OTHER_TLV.slice(0, 4) + '40' + OTHER_TLV.slice(6)
  const request = (seq: number, tlvs = VSI_TLV) => withSeq(ECP_ASSOCIATE.slice(0, 36), seq) + MANAGER_TLV + tlvs + '0000'
  const answer = (seq: number, tlvs = RESPONSE_TLV) => withSeq('0180c2000000' + MAC_A.replace(/:/g, '') + '89401001' + '0000', seq) + MANAGER_TLV + tlvs
  const loan = (lastSequence: number, ackTimerUs = 200_000) => ({ lastSequence, ackTimerUs, holdUntilUs: 0, gapUs: 0 })
  interface PeerStats { peer: string; rxEcpdus: number; rxDuplicates: number; rxVdpTlvs: number; txEcpdus: number; txVdpTlvs: number; rxAcks: number; rxAcksAbsorbed: number }

  beforeAll(async () => {
    ;({ lab, a, b } = await linkPair('afpans'))
    await a.request('ackEcp', { offload: { source: MAC_A, unicast: false, peers: [STATION] } })
    await a.request('absorbEcpAcks', { absorb: { own: MAC_A, awaited: [] } })
    await a.request('answersStart', { capacity: 4 })
    await a.request('answerSet', { answer: 0, peer: STATION, request: MANAGER_TLV + VSI_TLV, response: RESPONSE_TLV })
  })

  afterAll(async () => {
    await lab?.cleanup()
  })

  const exchange = (frames: string[]) => exchangeFromB(a, b, frames)

  const statsOfStation = async (): Promise<{ peer: PeerStats | undefined; seen: number[]; nowUs: number }> => {
    const r = await a.request<{ peers: PeerStats[]; seen: number[]; nowUs: number }>('answerStats')
    return { peer: r.peers.find((p) => p.peer === STATION), seen: r.seen, nowUs: r.nowUs }
  }

  it('answers a stored request with the stored response and the next sequence number; the handler never sees it', async () => {
    await a.request('lend', { loan: loan(0x8001) })
    const r = await exchange([request(5)])
    expect(r.seen).toEqual([])
    expect(r.back).toEqual([ecpAck(5, MAC_A), answer(0x8002)])
    // B acknowledges the answer: the eBPF filter takes it in for the link.
    await exchange([ecpAck(0x8002, STATION)])
    const back = await a.request<{ sequence: number; outstanding: unknown[] }>('takeBack')
    expect(back).toMatchObject({ sequence: 0x8002, outstanding: [] })
    const s = await statsOfStation()
    expect(s.peer).toMatchObject({ rxEcpdus: 1, rxDuplicates: 0, rxVdpTlvs: 1, txEcpdus: 1, txVdpTlvs: 1, rxAcks: 1, rxAcksAbsorbed: 1 })
    // The link's own counters: the answer is a frame it sent, beside the ACKs.
    const link = await a.request<{ txFrames: number; answeredKeepalives: number; kernel: { acksSent: number; answersSent: number } }>('stats')
    expect(link.answeredKeepalives).toBe(1)
    expect(link.kernel.answersSent).toBe(1)
    expect(link.txFrames).toBe(link.kernel.acksSent + 1)
    // [last answered (the caller's clock, µs), times] for answer 0: moments ago.
    expect(s.nowUs - s.seen[0]!).toBeGreaterThan(0)
    expect(s.nowUs - s.seen[0]!).toBeLessThan(5_000_000)
    expect(s.seen[1]).toBe(1)
  })

  it('hands over what it may not answer: the side not lent, another request, a removed answer, a tag', async () => {
    // Not lent (taken back above): the core's, flagged new (5 was answered by the link).
    let r = await exchange([request(6)])
    expect(r.seen).toEqual([{ hex: request(6), acked: true, resync: true }])
    await a.request('lend', { loan: loan(0x9000) })
    const tagged = request(8).slice(0, 24) + '81000064' + request(8).slice(24)
    r = await exchange([request(7, OTHER_TLV), tagged, request(9, VSI_TLV + OTHER_TLV)])
    expect(r.seen.map((f) => f.hex)).toEqual([request(7, OTHER_TLV), tagged, request(9, VSI_TLV + OTHER_TLV)])
    expect(r.back).toEqual([ecpAck(7, MAC_A), ecpAck(8, MAC_A), ecpAck(9, MAC_A)])
    // Both TLVs stored: one ECPDU with both answers.
    await a.request('answerSet', { answer: 1, peer: STATION, request: MANAGER_TLV + OTHER_TLV, response: OTHER_RESPONSE })
    r = await exchange([request(10, VSI_TLV + OTHER_TLV)])
    expect(r.seen).toEqual([])
    expect(r.back).toEqual([ecpAck(10, MAC_A), answer(0x9001, RESPONSE_TLV + OTHER_RESPONSE)])
    await exchange([ecpAck(0x9001, STATION)])
    await a.request('answerRemove', { answer: 1 })
    r = await exchange([request(11, OTHER_TLV)])
    expect(r.seen.map((f) => f.hex)).toEqual([request(11, OTHER_TLV)])
    expect((await a.request<{ sequence: number; outstanding: unknown[] }>('takeBack')).outstanding).toEqual([])
  })

  it('takes a duplicate of an answered request as one, and flags the next request it hands over as new', async () => {
    await a.request('lend', { loan: loan(0x9100) })
    let r = await exchange([request(20)])
    expect(r.back).toEqual([ecpAck(20, MAC_A), answer(0x9101)])
    await exchange([ecpAck(0x9101, STATION)])
    // The same sequence again (the station lost our ACK): acknowledged again, not answered twice.
    r = await exchange([request(20)])
    expect(r.seen).toEqual([])
    expect(r.back).toEqual([ecpAck(20, MAC_A)])
    // The core's receive machine never saw 20: the next request it gets is new whatever its number.
    r = await exchange([request(21, OTHER_TLV), request(22, OTHER_TLV)])
    expect(r.seen.map((f) => [f.acked, f.resync])).toEqual([[true, true], [true, false]])
    // A duplicate of one the core got stays the core's to recognise.
    r = await exchange([request(22, OTHER_TLV)])
    expect(r.seen.map((f) => f.hex)).toEqual([request(22, OTHER_TLV)])
    expect((await statsOfStation()).peer?.rxDuplicates).toBe(1)
    // The core restarted its receive machine (link down, LLDP neighbour lost): the same number
    // after an answered request is a new request again.
    r = await exchange([request(23)])
    expect(r.back).toEqual([ecpAck(23, MAC_A), answer(0x9102)])
    await exchange([ecpAck(0x9102, STATION)])
    await a.request('answerForget', { peer: STATION })
    r = await exchange([request(23)])
    expect(r.back).toEqual([ecpAck(23, MAC_A), answer(0x9103)])
    await exchange([ecpAck(0x9103, STATION)])
    expect((await statsOfStation()).peer?.rxDuplicates).toBe(1)
    await a.request('takeBack')
  })

  it('calls back when an answer is not acknowledged in time, and hands it over with its deadline', async () => {
    await a.request('lend', { loan: loan(0x9200, 50_000) })
    const start = a.events.length
    let r = await exchange([request(30)])
    expect(r.back).toEqual([ecpAck(30, MAC_A), answer(0x9201)])
    await a.waitForEvent((e) => e.event === 'answers-return', 5_000, start)
    // Until the core takes the side back the link answers nothing.
    r = await exchange([request(31)])
    expect(r.seen.map((f) => f.hex)).toEqual([request(31)])
    const back = await a.request<{ sequence: number; outstanding: Array<{ peer: string; sequence: number; frame: string; deadlineUs: number }> }>('takeBack')
    expect(back.sequence).toBe(0x9201)
    expect(back.outstanding).toEqual([{ peer: STATION, sequence: 0x9201, frame: answer(0x9201), deadlineUs: expect.any(Number) }])
    expect(back.outstanding[0]!.deadlineUs).toBeLessThanOrEqual(performance.now() * 1000 + 60_000)
    // The ACK now comes late: the collector reports it (the slot stayed armed), for the core.
    await exchange([ecpAck(0x9201, STATION)])
    const acks = (await a.request<{ acks: Array<{ own: boolean; peer: string; sequence: number }> }>('takeAbsorbed')).acks
    expect(acks).toEqual([{ own: true, peer: STATION, sequence: 0x9201 }])
  })

  it('survives random and mutated requests while lent, answering only exact ones', async () => {
    await a.request('lend', { loan: loan(0xa000) })
    let seed = 0xa115
    const rand = () => ((seed = (seed * 1103515245 + 12345) >>> 0) >>> 16) & 0xff
    const frames: string[] = []
    for (let i = 0; i < 200; i++) {
      const f = Buffer.from(request(0x100 + i), 'hex')
      for (let k = 0; k < 1 + (rand() % 3); k++) f[18 + (rand() % (f.length - 18))] = rand()
      frames.push(f.subarray(0, f.length - (rand() % 12)).toString('hex'))
    }
    const r = await exchange(frames)
    const answered = r.back.filter((h) => h.slice(28, 32) === '1001')
    // Each frame is acknowledged; at most the few left intact are answered, one at a time
    // (stop-and-wait: B acknowledges none of them).
    expect(r.back.filter((h) => h.slice(28, 32) === '1401')).toHaveLength(200)
    expect(answered.length).toBeLessThanOrEqual(1)
    expect(r.seen.length + answered.length).toBe(200)
    await a.request('takeBack')
    await a.request('answersStop')
    const off = await exchange([request(0x400)])
    expect(off.seen.map((f) => f.hex)).toEqual([request(0x400)])
  })
})

describe('AF_PACKET link answering requests for new VSIs from offers (answers.offers)', () => {
  // A is the bridge port, B the station, as above. The offers say: VSI type 5 version 1,
  // filter format 2 (MAC/VID) gets VID 100 (0x064), format 4 with GroupID 5000 VID 200.
  let lab: NetnsLab
  let a: NsChild
  let b: NsChild
  const STATION = '02:76:64:70:00:01'
  const MANAGER_TLV = ECP_ASSOCIATE.slice(36, 72)
  const VSI_TLV = ECP_ASSOCIATE.slice(72, 142) // Associate, format 2, MAC 02:76:64:71:00:01, VID 0
  const VSIID = VSI_TLV.slice(16, 48)
  /** The Associate for another VSIID (its last octet) and MAC. */
  const assoc = (n: number, mac = '0276647100' + n.toString(16).padStart(2, '0')) =>
    VSI_TLV.slice(0, 46) + n.toString(16).padStart(2, '0') + VSI_TLV.slice(48, 54) + mac + '0000'
  const granted = (tlv: string, vid: number) => tlv.slice(0, 4) + '40' + tlv.slice(6, -4) + vid.toString(16).padStart(4, '0')
  // Associate, format 4 (GroupID/MAC/VID): GroupID 5000, MAC 02:76:64:71:00:33, VID 0.
  const GROUP_TLV = '0625' + '00' + '000005' + '01' + '05' + VSIID.slice(0, -2) + '33' + '04' + '0001' + '00001388' + '027664710033' + '0000'
  const request = (seq: number, tlvs: string) => withSeq(ECP_ASSOCIATE.slice(0, 36), seq) + MANAGER_TLV + tlvs + '0000'
  const answer = (seq: number, tlvs: string) => withSeq('0180c2000000' + MAC_A.replace(/:/g, '') + '89401001' + '0000', seq) + MANAGER_TLV + tlvs
  const loan = (lastSequence: number, offerCredit = 10, offerFormats = 0b11110) => ({ lastSequence, ackTimerUs: 500_000, holdUntilUs: 0, gapUs: 0, offerCredit, offerFormats })
  const offer = (filterFormat: number, groupId: number, vid: number, epoch = 7) => ({ typeId: 5, typeVersion: 1, filterFormat, groupId, vid, epoch })

  beforeAll(async () => {
    ;({ lab, a, b } = await linkPair('afpoff'))
    await a.request('ackEcp', { offload: { source: MAC_A, unicast: false, peers: [STATION] } })
    await a.request('absorbEcpAcks', { absorb: { own: MAC_A, awaited: [] } })
    await a.request('answersStart', { capacity: 4 })
    await a.request('offersStart', { epoch: 7, headroom: 50 })
    expect(await a.request('offerSet', { offer: offer(2, 0, 100) })).toEqual({ stored: true })
    expect(await a.request('offerSet', { offer: offer(4, 5000, 200) })).toEqual({ stored: true })
  })

  afterAll(async () => {
    await lab?.cleanup()
  })

  const exchange = (frames: string[]) => exchangeFromB(a, b, frames)

  it('answers a new VSI with its offer (ACK first), hands the request over with the answer, and knows the VSI from then on', async () => {
    await a.request('lend', { loan: loan(0x8001) })
    let r = await exchange([request(5, VSI_TLV)])
    const first = answer(0x8002, granted(VSI_TLV, 100))
    expect(r.back).toEqual([ecpAck(5, MAC_A), first])
    expect(r.seen).toEqual([{ hex: request(5, VSI_TLV), acked: true, resync: false, answer: first }])
    // One VSI fewer to spare, switch-wide and on the port.
    expect(await a.request('offerState', {})).toEqual({ epoch: 7, headroom: 49 })
    const link = await a.request<{ txFrames: number; answeredFromOffers: number; kernel: { acksSent: number; offersSent: number } }>('stats')
    expect(link.answeredFromOffers).toBe(1)
    expect(link.kernel.offersSent).toBe(1)
    expect(link.txFrames).toBe(link.kernel.acksSent + 1)
    await exchange([ecpAck(0x8002, STATION)])
    // The same VSI again is no longer new: the core's.
    r = await exchange([request(6, VSI_TLV)])
    expect(r.seen).toEqual([{ hex: request(6, VSI_TLV), acked: true, resync: false }])
    expect(r.back).toEqual([ecpAck(6, MAC_A)])
    // The core lets it go: new again. A GroupID format with its own offer, two TLVs in one.
    await a.request('offerKnown', { peer: STATION, vsiId: VSIID, held: false })
    r = await exchange([request(7, VSI_TLV + GROUP_TLV)])
    const both = answer(0x8003, granted(VSI_TLV, 100) + granted(GROUP_TLV, 200))
    expect(r.back).toEqual([ecpAck(7, MAC_A), both])
    expect(r.seen.map((f) => f.answer)).toEqual([both])
    await exchange([ecpAck(0x8003, STATION)])
    // A De-Associate: the request echoed with status 0x40, held or not.
    const deassoc = '08' + VSI_TLV.slice(2, -4) + '0064'
    r = await exchange([request(8, deassoc)])
    expect(r.back).toEqual([ecpAck(8, MAC_A), answer(0x8004, deassoc.slice(0, 4) + '40' + deassoc.slice(6))])
    await exchange([ecpAck(0x8004, STATION)])
    expect(await a.request('offerState', {})).toEqual({ epoch: 7, headroom: 47 })
    expect((await a.request<{ sequence: number; outstanding: unknown[] }>('takeBack')).outstanding).toEqual([])
  })

  it('leaves to the core what the offers do not decide', async () => {
    let seq = 0x20
    const handedOver = async (tlvs: string, lent = loan(0x9000)) => {
      await a.request('lend', { loan: lent })
      const s = seq++
      const r = await exchange([request(s, tlvs)])
      await a.request('takeBack')
      return r.seen.length === 1 && r.seen[0]!.answer === undefined && r.back.length === 1 && r.back[0] === ecpAck(s, MAC_A)
    }
    const vid = (tlv: string, v: number) => tlv.slice(0, -4) + v.toString(16).padStart(4, '0')
    const n = assoc(0x40)
    expect(await handedOver(vid(n, 100))).toBe(true) // an explicit VID
    expect(await handedOver(assoc(0x41, '017664710041'))).toBe(true) // a group MAC
    expect(await handedOver(assoc(0x42, '000000000000'))).toBe(true) // the zero MAC
    expect(await handedOver(n.slice(0, 4) + '40' + n.slice(6))).toBe(true) // a response
    const m = assoc(0x43)
    expect(await handedOver(m.slice(0, 4) + '20' + m.slice(6))).toBe(false) // migration hints: answered (the grant has none)
    expect(await handedOver(n + n)).toBe(true) // two TLVs for one VSI
    expect(await handedOver(n.slice(0, 6) + '000006' + n.slice(12))).toBe(true) // another type: no offer
    expect(await handedOver(n, loan(0x9000, 0))).toBe(true) // no room on the port
    expect(await handedOver(GROUP_TLV, loan(0x9000, 10, 0b00110))).toBe(true) // GroupID not negotiated
    await a.request('offerState', { headroom: 0 })
    expect(await handedOver(n)).toBe(true) // none on the switch
    await a.request('offerState', { epoch: 8, headroom: 50 })
    expect(await handedOver(n)).toBe(true) // the decisions' epoch is over
    await a.request('offerSet', { offer: offer(2, 0, 100, 8) })
    expect(await handedOver(n)).toBe(false) // stored again for the new epoch: answered
  })

  it('survives random and mutated requests while lent, and answers only what the core decodes', async () => {
    await a.request('offerState', { epoch: 9, headroom: 1000 })
    await a.request('offerSet', { offer: offer(2, 0, 100, 9) })
    await a.request('offerSet', { offer: offer(4, 5000, 200, 9) })
    let rnd = 0x0ff3
    const rand = () => ((rnd = (rnd * 1103515245 + 12345) >>> 0) >>> 16) & 0xff
    let answered = 0
    for (let round = 0; round < 20; round++) {
      await a.request('lend', { loan: loan(0xa000 + round * 16, 1000) })
      const frames: string[] = []
      for (let i = 0; i < 10; i++) {
        const f = Buffer.from(request(0x100 + round * 10 + i, i % 2 === 0 ? assoc(0x80 + i + round) : GROUP_TLV.slice(0, 46) + (0x80 + round).toString(16) + GROUP_TLV.slice(48)), 'hex')
        // Mostly small changes late in the TLV (entries, counts, formats), sometimes none.
        for (let k = 0; k < rand() % 3; k++) f[36 + (rand() % (f.length - 36))] = rand()
        frames.push(f.subarray(0, f.length - (rand() % 4 === 0 ? rand() % 12 : 0)).toString('hex'))
      }
      const r = await exchange(frames)
      expect(r.back.filter((h) => h.slice(28, 32) === '1401')).toHaveLength(10)
      for (const f of r.seen) {
        if (f.answer === undefined) continue
        answered++
        // The request decodes; the answer is it with status 0x40 and the offered VIDs.
        const req = decodeVdpPdu(Buffer.from(f.hex, 'hex').subarray(18))
        const ans = decodeVdpPdu(Buffer.from(f.answer, 'hex').subarray(18))
        expect(ans.tlvs).toHaveLength(req.tlvs.length)
        req.tlvs.forEach((t, k) => {
          const got = ans.tlvs[k]!
          if (t.kind !== 'vsi' || got.kind !== 'vsi') throw new Error('not a VSI TLV')
          expect(got.status).toEqual({ response: true, keep: false, hard: false, error: 0 })
          expect(got.mode).toBe(t.mode)
          if (t.mode === 'de-associate') expect(got.entries).toEqual(t.entries)
          else expect(got.entries.map((e) => e.vid)).toEqual(t.entries.map(() => (t.filterFormat === 4 ? 200 : 100)))
        })
        expect(r.back).toContain(f.answer)
      }
      await exchange(r.back.filter((h) => h.slice(28, 32) === '1001').map((h) => ecpAck(parseInt(h.slice(32, 36), 16), STATION)))
      await a.request('takeBack')
    }
    // Some survived intact, and were answered.
    expect(answered).toBeGreaterThan(0)
    await a.request('answersStop')
  })
})

describe('AF_PACKET link when the interface disappears', () => {
  let lab: NetnsLab

  afterAll(async () => {
    await lab?.cleanup()
  })

  it('reports ENXIO as a fatal error event, and sends then fail without a crash', async () => {
    lab = await NetnsLab.create('afpgone')
    const nsA = await lab.addNamespace('a')
    const nsB = await lab.addNamespace('b')
    const ifA = lab.ifname('a')
    const ifB = lab.ifname('b')
    await lab.addVethPair({ ns: nsA, ifname: ifA }, { ns: nsB, ifname: ifB })
    const c = await lab.spawnNode(nsB, LINK_CHILD)
    await c.request('open', { ifname: ifB })
    await c.request('listen', { mode: 'events' })
    await lab.deleteLink(nsA, ifA) // deletes both ends
    const gone = await c.waitForEvent((e) => e.event === 'link-error' && e.fatal === true, 5_000)
    expect(gone).toMatchObject({ code: 'ENXIO', message: `Cannot receive on ${ifB}: interface no longer exists` })
    const sent = await c.request<{ stats: { txErrors: number; txFrames: number } }>('send', { hex: ECP_ACK_18 })
    expect(sent.stats).toMatchObject({ txErrors: 1, txFrames: 0 })
    const sendError = await c.waitForEvent((e) => e.event === 'link-error' && e.syscall === 'send')
    expect(sendError).toMatchObject({ code: 'ENXIO', fatal: true, message: `Cannot send frame on ${ifB}: interface no longer exists` })
    expect(await c.close(3_000)).toMatchObject({ code: 0, exitedByItself: true })
  })
})

describe('AF_PACKET link on a Linux bridge port', () => {
  let lab: NetnsLab

  afterAll(async () => {
    await lab?.cleanup()
  })

  it('receives frames to 01-80-C2-00-00-00 that the bridge consumes (the reason for ETH_P_ALL)', async () => {
    lab = await NetnsLab.create('afpbr')
    const nsHost = await lab.addNamespace('h')
    const nsSw = await lab.addNamespace('s')
    const ifHost = lab.ifname('h')
    const ifPort = lab.ifname('p')
    const ifBr = lab.ifname('br')
    await lab.addVethPair({ ns: nsHost, ifname: ifHost, mac: MAC_A }, { ns: nsSw, ifname: ifPort, mac: MAC_B })
    await lab.addBridge(nsSw, ifBr, [ifPort])
    const port = await lab.spawnNode(nsSw, LINK_CHILD)
    await port.request('open', { ifname: ifPort })
    await port.request('listen', { mode: 'events' })
    const host = await lab.spawnNode(nsHost, LINK_CHILD)
    await host.request('open', { ifname: ifHost })

    // Contrast: a packet socket bound to 0x8940 only, on the same port, sees nothing: with
    // STP off the bridge forwards (consumes) the group-addressed frame before it is asked.
    const narrow = lab.exec(nsSw, 'python3', ['-c', NARROW_SOCKET_PY, ifPort, '1.5'], { timeoutMs: 10_000 })
    await new Promise((r) => setTimeout(r, 300))
    await host.request('send', { hex: ECP_ASSOCIATE })
    const got = await port.waitForEvent((e) => e.event === 'frame')
    expect(got.hex).toBe(hexFrame(ECP_ASSOCIATE))
    expect((await narrow).stdout.trim()).toBe('0')
  })
})

describe('tshark on a veth end', () => {
  let lab: NetnsLab
  const pcap = join(tmpdir(), `afp-tshark-${process.pid}.pcap`)

  afterAll(async () => {
    rmSync(pcap, { force: true })
    await lab?.cleanup()
  })

  it('captures a frame sent by the link and decodes it as ECP', async () => {
    lab = await NetnsLab.create('afpts')
    const nsA = await lab.addNamespace('a')
    const nsB = await lab.addNamespace('b')
    const ifA = lab.ifname('a')
    const ifB = lab.ifname('b')
    await lab.addVethPair({ ns: nsA, ifname: ifA, mac: MAC_A }, { ns: nsB, ifname: ifB, mac: MAC_B })
    const tshark = lab.spawn(nsB, '/usr/bin/tshark', ['-i', ifB, '-w', pcap, '-F', 'pcap', '-c', '1', '-a', 'duration:20', '-f', 'ether proto 0x8940'])
    let tsharkErr = ''
    tshark.stderr!.setEncoding('utf8').on('data', (d: string) => (tsharkErr += d))
    await waitUntil(async () => tsharkErr.includes('Capturing on'), 15_000)
    const a = await lab.spawnNode(nsA, LINK_CHILD)
    await a.request('open', { ifname: ifA })
    await a.request('send', { hex: ECP_ASSOCIATE })
    const code = await new Promise<number | null>((r) => tshark.on('exit', (c) => r(c)))
    expect(code).toBe(0)
    const decoded = await exec('/usr/bin/tshark', ['-r', pcap, '-V'])
    expect(decoded.stdout).toContain('Edge Control Protocol')
    expect(decoded.stdout).toContain('eth:ethertype:ecp21')
    expect(readFileSync(pcap).length).toBeGreaterThan(71)
  })
})

describe('AF_PACKET link from an esbuild bundle', () => {
  let lab: NetnsLab
  let dir = ''

  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'afp-bundle-'))
  })
  afterAll(async () => {
    if (dir !== '') rmSync(dir, { recursive: true, force: true })
    await lab?.cleanup()
  })

  it('loads af_packet.node from beside the bundle', async () => {
    lab = await NetnsLab.create('afpbun')
    const ns = await lab.addNamespace('a')
    const other = await lab.addNamespace('b')
    const ifA = lab.ifname('a')
    await lab.addVethPair({ ns, ifname: ifA, mac: MAC_A }, { ns: other, ifname: lab.ifname('b') })
    const entry = join(dir, 'entry.ts')
    const transport = fileURLToPath(new URL('../../agent/transport/af-packet.ts', import.meta.url))
    writeFileSync(
      entry,
      `import { loadAfPacketAddon, openAfPacketLink } from ${JSON.stringify(transport)}
const link = openAfPacketLink(process.argv[2])
console.log(JSON.stringify({ mac: link.mac, path: loadAfPacketAddon().path }))
link.close()
`,
    )
    const bundle = join(dir, 'dist', 'agent.mjs')
    await build({ entryPoints: [entry], bundle: true, platform: 'node', format: 'esm', target: 'node20', outfile: bundle, logLevel: 'silent' })
    copyFileSync(
      fileURLToPath(new URL(`../../prebuilds/linux-${process.arch}/af_packet.node`, import.meta.url)),
      join(dir, 'dist', 'af_packet.node'),
    )
    const r = await lab.exec(ns, process.execPath, [bundle, ifA])
    expect(JSON.parse(r.stdout)).toEqual({ mac: MAC_A, path: join(dir, 'dist', 'af_packet.node') })
  })
})

describe('netns lab helpers', () => {
  it('run commands and Node functions inside a namespace, and clean up idempotently', async () => {
    const lab = await NetnsLab.create('afpns')
    try {
      const ns = await lab.addNamespace('x')
      const other = await lab.addNamespace('y')
      const ifX = lab.ifname('x')
      const ifY = lab.ifname('y')
      expect(ifX.length).toBeLessThanOrEqual(15)
      expect(ifX.startsWith('afpns')).toBe(true)
      await lab.addVethPair({ ns, ifname: ifX, mac: MAC_A }, { ns: other, ifname: ifY, mac: MAC_B })
      const link = await lab.exec(ns, 'ip', ['-o', 'link', 'show', ifX])
      expect(link.stdout).toContain(MAC_A)
      expect(link.stdout).toContain('state UP')
      const v6 = await lab.exec(ns, 'sysctl', ['-n', `net.ipv6.conf.${ifX}.disable_ipv6`])
      expect(v6.stdout.trim()).toBe('1')
      const netnsModule = fileURLToPath(new URL('../support/netns.ts', import.meta.url))
      expect(await lab.runNode<string[]>(ns, netnsModule, 'listInterfaces')).toEqual([ifX, 'lo'].sort())
      expect(await listNamespaces(lab.prefix)).toEqual(expect.arrayContaining([ns, other]))
    } finally {
      await lab.cleanup()
      await lab.cleanup()
    }
    expect(await listNamespaces(lab.prefix)).toEqual([])
  })

  it('sweeps namespaces that a killed run of the same tests left behind', async () => {
    // A leftover "<test>-<id>-<suffix>" namespace (nsfs files cannot be back-dated, so the
    // age limit is lowered instead), and one of another test whose name merely starts alike.
    const leftover = 'afpsw-zzzz-a'
    const unrelated = 'afpswx-zzzz-a'
    try {
      for (const ns of [leftover, unrelated]) await exec('ip', ['netns', 'add', ns])
      expect(await sweepStaleNamespaces('afpsw')).toEqual([]) // young: kept
      expect(await sweepStaleNamespaces('afpsw', 0)).toEqual([leftover])
      expect(await listNamespaces('afpsw-')).toEqual([])
      expect(await listNamespaces(unrelated)).toEqual([unrelated])
    } finally {
      await exec('ip', ['netns', 'del', leftover], { allowFailure: true })
      await exec('ip', ['netns', 'del', unrelated], { allowFailure: true })
    }
  })

  it('gives the test process a FrameLink whose socket lives in a namespace', async () => {
    const lab = await NetnsLab.create('afprl')
    try {
      const nsA = await lab.addNamespace('a')
      const nsB = await lab.addNamespace('b')
      await lab.addVethPair({ ns: nsA, ifname: lab.ifname('a'), mac: MAC_A }, { ns: nsB, ifname: lab.ifname('b'), mac: MAC_B })
      const a = await openLinkInNetns(nsA, lab.ifname('a'), { lab })
      const b = await openLinkInNetns(nsB, lab.ifname('b'), { lab })
      expect([a.mac, b.mac]).toEqual([MAC_A, MAC_B])
      const got: string[] = []
      b.onFrame((f) => got.push(Buffer.from(f).toString('hex')))
      await b.flush() // listening before A sends
      a.send(Buffer.from(ECP_ASSOCIATE, 'hex'))
      a.send(Buffer.from(ECP_ACK_18, 'hex'))
      await waitUntil(() => got.length === 2)
      expect(got).toEqual([ECP_ASSOCIATE, ECP_ACK_18])
      expect(a.stats()).toMatchObject({ txFrames: 2, txErrors: 0 })
      expect(await b.remoteStats()).toMatchObject({ rxFrames: 2, drops: 0 })
      await a.closeAndWait()
      await b.closeAndWait()
      expect(() => a.send(Buffer.from(ECP_ACK_18, 'hex'))).toThrow(`Cannot send frame on ${lab.ifname('a')}: link is closed`)
    } finally {
      await lab.cleanup()
    }
  })

  it('fails, with a message saying why, when not root', async () => {
    const netnsModule = fileURLToPath(new URL('../support/netns.ts', import.meta.url))
    const script = `import(${JSON.stringify(netnsModule)}).then((m) => m.NetnsLab.create('afpx')).then(
      () => console.log('created'), (e) => console.log(e.message))`
    const r = await exec(
      'setpriv',
      ['--reuid=65534', '--regid=65534', '--clear-groups', process.execPath, '--import', 'tsx', '-e', script],
      { cwd: REPO_ROOT },
    )
    expect(r.stdout.trim()).toBe(
      'Cannot run the "afpx" integration tests: needs root for network namespaces and raw sockets (running as uid 65534); run the integration tests as root',
    )
  })

  it('rejects interface names longer than 15 characters', async () => {
    const lab = await NetnsLab.create('afpns')
    expect(() => lab.ifname('toolongsuffix')).toThrow(/^Cannot use interface name "afpns\w{4}toolongsuffix": needs 1\.\.15 characters/)
    await lab.cleanup()
  })
})

/** A packet socket bound to 0x8940 only; prints how many frames it got within argv[2] seconds. */
const NARROW_SOCKET_PY = `
import socket, sys, select, time
s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(0x8940))
s.bind((sys.argv[1], 0x8940))
n, end = 0, time.time() + float(sys.argv[2])
while time.time() < end:
    r, _, _ = select.select([s], [], [], max(0, end - time.time()))
    if r:
        s.recv(2048); n += 1
print(n)
`

async function waitUntil(check: () => Promise<boolean> | boolean, timeoutMs = 5_000): Promise<void> {
  const end = Date.now() + timeoutMs
  while (!(await check())) {
    if (Date.now() > end) throw new Error(`Cannot reach the expected state within ${timeoutMs} ms`)
    await new Promise((r) => setTimeout(r, 25))
  }
}
