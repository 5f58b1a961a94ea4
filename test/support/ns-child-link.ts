/**
 * A raw link served over JSON lines (see ns-child-runtime.ts), run by the integration tests
 * inside a namespace: `lab.spawnNode(ns, LINK_CHILD)`, then requests:
 *
 * - `open { ifname, options? }` → `{ mac, ifindex, mtu }`; errors carry the FrameLinkError code
 * - `listen { mode: 'events' | 'collect' | 'count' | 'throw', closeAfter? }`: 'events' prints
 *   each frame as `{ event: 'frame', hex }`; 'collect' keeps them for `received`; 'count' only
 *   counts; 'throw' counts and throws from the handler of the first frame
 *   (and checks a sequence number, see `send`). `closeAfter: n` closes the link from inside
 *   the handler of the n-th frame. Link errors are printed as `{ event: 'link-error', … }`.
 * - `send { hex, count?, seqOffset? }`: sends the frame `count` times; with `seqOffset`, the
 *   32-bit big-endian index is written at that offset of each copy
 * - `ackEcp { offload? }`: the link's ECP ACK offload (`FrameLink.ackEcp`); 'events' then say
 *   `acked: true` for a frame the addon acknowledged
 * - `absorbEcpAcks { absorb? }`: the link's ECP ACK absorption (`FrameLink.absorbEcpAcks`);
 *   errors carry the FrameLinkError code. `takeAbsorbed` → `{ acks: [{ own, peer, sequence }] }`
 *   (`takeAbsorbedEcpAcks`; `own` says whether the ACK was this child's link's)
 * - keep-alive answers (`FrameLink.answers`): `answersStart { capacity }` (calls back print
 *   `{ event: 'answers-return' }`), `answersStop`, `answerSet { answer, peer, request, response }`
 *   (hex), `answerRemove { answer }`, `lend { loan }`, `answerForget { peer }`, `takeBack` → the loan back (frames as hex),
 *   `answerStats` → `{ peers, seen, nowUs }` (the shared array, as numbers, and the child's clock); 'events' then say
 *   `resync: true` for a frame the link flagged so
 * - answers from offers (`answers.offers`): `offersStart { epoch, headroom }` (the shared
 *   [epoch, headroom] array lives in the child), `offerState { epoch?, headroom? }` → the array
 *   now, `offerSet { offer }` → `{ stored }`, `offerKnown { peer, vsiId, held }`; 'events' then
 *   carry `answer` (hex) for a frame the link answered
 * - `received` → `{ frames: hex[] }` (and forgets them); `waitQuiet { ms }` → resolves once no
 *   frame arrived for `ms`; `stats`; `block { ms }` (busy-waits: the loop cannot read);
 *   `close` → stats after close; `gcProbe { ifname }` (needs --expose-gc);
 *   `workerProbe { ifname, answers? }` (terminates workers that are reading, with keep-alive answers on); `unref`; `keepOpenOnEnd`
 *   (the link is not closed when stdin ends, to see whether it keeps the process alive)
 * - `runtime` → `{ arch, node, napi, addon }`: where the child runs and which addon file it
 *   loaded (the arm64 test runs this child, bundled, in an emulated arm64 machine)
 *
 * @module
 */
import { readdirSync } from 'node:fs'
import { Worker } from 'node:worker_threads'
import {
  loadAfPacketAddon,
  openAfPacketLink,
  takeAbsorbedEcpAcks,
  type AfPacketLink,
  type AfPacketLinkOptions,
} from '../../agent/transport/af-packet.ts'
import type { EcpAckAbsorb, EcpAckOffload } from '../../agent/transport/frame-link.ts'
import { serveJsonLines } from './ns-child-runtime.ts'

let link: AfPacketLink | undefined
let closed = false
let keepOpenOnEnd = false
let collected: string[] = []
let rx = 0
let handlerCallsAfterClose = 0
let lastSeq = -1
let seqErrors = 0
let seqOffset: number | undefined
let lastFrameAt = performance.now()
let answersSeen: Float64Array | undefined
let offerState: Int32Array | undefined
const uncaught: string[] = []
process.on('uncaughtException', (e) => uncaught.push(e.message))

const hex = (b: Uint8Array): string => Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('hex')

function need(): AfPacketLink {
  if (link === undefined) throw new Error('Cannot use the link: not opened')
  return link
}

function statsOf(l: AfPacketLink): Record<string, unknown> {
  return { ...l.stats(), kernel: l.kernelStats(), rx, handlerCallsAfterClose, seqErrors, lastSeq, uncaught }
}

const server = serveJsonLines(
  {
    open: (p) => {
      link = openAfPacketLink(String(p.ifname), (p.options ?? {}) as AfPacketLinkOptions)
      link.onError((e) => server.emit('link-error', { code: e.code, fatal: e.fatal, message: e.message, syscall: e.syscall ?? null }))
      return { mac: link.mac, ifindex: link.ifindex, mtu: link.mtu }
    },
    listen: (p) => {
      const l = need()
      const mode = String(p.mode ?? 'events')
      const closeAfter = typeof p.closeAfter === 'number' ? p.closeAfter : undefined
      seqOffset = typeof p.seqOffset === 'number' ? p.seqOffset : undefined
      // Frames to send from inside the handler for each frame received (an ACK and a response).
      const replies = Array.isArray(p.replies) ? p.replies.map((h) => Buffer.from(String(h), 'hex')) : []
      l.onFrame((frame, acked, resync, answer) => {
        for (const r of replies) l.send(r)
        if (closed) handlerCallsAfterClose++
        rx++
        lastFrameAt = performance.now()
        if (seqOffset !== undefined && frame.length >= seqOffset + 4) {
          const seq = new DataView(frame.buffer, frame.byteOffset, frame.byteLength).getUint32(seqOffset)
          if (seq <= lastSeq) seqErrors++
          lastSeq = seq
        }
        if (mode === 'throw' && rx === 1) throw new Error('handler failed on frame 1')
        if (mode === 'events') server.emit('frame', { hex: hex(frame), ...(acked ? { acked } : {}), ...(resync ? { resync } : {}), ...(answer ? { answer: hex(answer) } : {}) })
        else if (mode === 'collect') collected.push(hex(frame))
        if (closeAfter !== undefined && rx === closeAfter) {
          closed = true
          l.close()
        }
      })
      return null
    },
    send: (p) => {
      const l = need()
      const frame = Buffer.from(String(p.hex), 'hex')
      const count = typeof p.count === 'number' ? p.count : 1
      const offset = typeof p.seqOffset === 'number' ? p.seqOffset : undefined
      const t0 = performance.now()
      for (let i = 0; i < count; i++) {
        if (offset !== undefined) frame.writeUInt32BE(i, offset)
        l.send(frame)
      }
      return { sent: count, ms: performance.now() - t0, stats: l.stats() }
    },
    ackEcp: (p) => {
      need().ackEcp((p.offload ?? undefined) as EcpAckOffload | undefined)
      return null
    },
    absorbEcpAcks: (p) => {
      need().absorbEcpAcks((p.absorb ?? undefined) as EcpAckAbsorb | undefined)
      return null
    },
    answersStart: (p) => {
      answersSeen = need().answers.start(Number(p.capacity ?? 16), performance.now() * 1000, () => server.emit('answers-return', {}))
      return null
    },
    answersStop: () => {
      need().answers.stop()
      return null
    },
    answerSet: (p) => {
      need().answers.set(Number(p.answer), String(p.peer) as never, Buffer.from(String(p.request), 'hex'), Buffer.from(String(p.response), 'hex'))
      return null
    },
    answerRemove: (p) => {
      need().answers.remove(Number(p.answer))
      return null
    },
    lend: (p) => {
      need().answers.lend(p.loan as never)
      return null
    },
    takeBack: () => {
      const back = need().answers.takeBack()
      return { ...back, outstanding: back.outstanding.map((o) => ({ ...o, frame: hex(o.frame) })) }
    },
    answerForget: (p) => {
      need().answers.forget(String(p.peer) as never)
      return null
    },
    offersStart: (p) => {
      offerState = new Int32Array([Number(p.epoch ?? 1), Number(p.headroom ?? 100)])
      need().answers.offers!.start(offerState)
      return null
    },
    offerState: (p) => {
      if (typeof p.epoch === 'number') offerState![0] = p.epoch
      if (typeof p.headroom === 'number') offerState![1] = p.headroom
      return { epoch: offerState![0], headroom: offerState![1] }
    },
    offerSet: (p) => ({ stored: need().answers.offers!.set(p.offer as never) }),
    offerKnown: (p) => {
      need().answers.offers!.known(String(p.peer) as never, String(p.vsiId) as never, p.held === true)
      return null
    },
    answerStats: () => ({ peers: need().answers.peerStats(), seen: [...(answersSeen ?? [])], nowUs: performance.now() * 1000 }),
    takeAbsorbed: () => ({
      acks: takeAbsorbedEcpAcks().map((a) => ({ own: a.link === link, peer: a.peer, sequence: a.sequence })),
    }),
    received: () => {
      const frames = collected
      collected = []
      return { frames }
    },
    waitQuiet: async (p) => {
      const quietMs = typeof p.ms === 'number' ? p.ms : 200
      while (performance.now() - lastFrameAt < quietMs) await new Promise((r) => setTimeout(r, quietMs / 4))
      return { rx }
    },
    stats: () => statsOf(need()),
    runtime: () => ({
      arch: process.arch,
      node: process.version,
      napi: process.versions.napi,
      addon: loadAfPacketAddon().path,
    }),
    unref: () => {
      need().unref()
      return null
    },
    keepOpenOnEnd: () => {
      keepOpenOnEnd = true
      return null
    },
    block: (p) => {
      const until = performance.now() + Number(p.ms ?? 100)
      while (performance.now() < until) {
        // busy: the event loop cannot read the socket meanwhile
      }
      return null
    },
    close: () => {
      const l = need()
      closed = true
      l.close()
      l.close() // idempotent
      return statsOf(l)
    },
    workerProbe: async (p) => {
      // A worker that is reading when it is terminated: the env cleanup hook must close the
      // uv handle on the worker's own loop, and this process must carry on unharmed.
      const path = loadAfPacketAddon().path
      const code = `
        const { parentPort, workerData } = require('node:worker_threads')
        const { AfPacketSocket } = require(workerData.path)
        const s = new AfPacketSocket(workerData.ifname, {})
        s.start(() => {}, () => {})
        // Keep-alive answers too: their timer lives on the worker's loop and must close with it.
        if (workerData.answers) s.fastAnswers(new Float64Array(8), 0, () => {})
        parentPort.postMessage('reading')
        setInterval(() => {}, 1000)`
      const exits: number[] = []
      for (let i = 0; i < 5; i++) {
        const w = new Worker(code, { eval: true, workerData: { path, ifname: String(p.ifname), answers: p.answers === true } })
        await new Promise((resolve, reject) => {
          w.once('message', resolve)
          w.once('error', reject)
        })
        exits.push(await w.terminate())
      }
      return { exits }
    },
    gcProbe: async (p) => {
      const gc = (globalThis as { gc?: () => void }).gc
      if (gc === undefined) throw new Error('Cannot probe GC: start the child with --expose-gc')
      const fds = (): number => readdirSync('/proc/self/fd').length
      const settle = async (): Promise<void> => {
        for (let i = 0; i < 4; i++) {
          gc()
          await new Promise((r) => setImmediate(r))
          await new Promise((r) => setTimeout(r, 10))
        }
      }
      await settle()
      const before = fds()
      // Never read and never closed: only the finalizer can release these sockets.
      for (let i = 0; i < 20; i++) openAfPacketLink(String(p.ifname))
      const opened = fds()
      await settle()
      const afterGc = fds()
      // Read, closed, then dropped: the finalizer runs after the uv handle closed.
      for (let i = 0; i < 20; i++) {
        const l = openAfPacketLink(String(p.ifname))
        l.onFrame(() => {})
        l.close()
      }
      await settle()
      const afterClosedGc = fds()
      // Taking ACKs in, never closed, dropped: the links' registry holds them weakly. (One
      // link first creates the process's BPF map, whose descriptor stays.)
      const warm = openAfPacketLink(String(p.ifname))
      warm.absorbEcpAcks({ own: warm.mac, awaited: [] })
      warm.close()
      await settle()
      const absorbBefore = fds()
      // In a function of its own: a suspended async frame keeps its last loop value alive.
      const openAbsorbing = (): void => {
        for (let i = 0; i < 20; i++) {
          const l = openAfPacketLink(String(p.ifname))
          l.absorbEcpAcks({ own: l.mac, awaited: [{ peer: '02:00:00:00:00:01' as never, sequence: i + 1 }] })
        }
      }
      openAbsorbing()
      const absorbOpened = fds()
      await settle()
      return { before, opened, afterGc, afterClosedGc, absorbBefore, absorbOpened, afterAbsorbGc: fds() }
    },
  },
  {
    onEnd: () => {
      // Deliberately no process.exit(): an open link would keep this process alive.
      if (!closed && !keepOpenOnEnd) link?.close()
    },
  },
)
