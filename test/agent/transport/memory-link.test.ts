import { describe, expect, it } from 'vitest'
import { FrameLinkError } from '../../../agent/transport/frame-link.ts'
import { MemoryHub, createMemoryLinkPair, type MemoryLink } from '../../../agent/transport/memory-link.ts'
import { parseMac } from '../../../shared/ethernet/mac.ts'

const MAC_A = parseMac('02:00:00:00:00:0a')
const MAC_B = parseMac('02:00:00:00:00:0b')
const MAC_C = parseMac('02:00:00:00:00:0c')

/** An ECP-like frame: destination, source, 0x8940, and one payload byte `n`. */
function frame(dst: string, src: string, n = 0): Uint8Array {
  const bytes = [...dst.split(':'), ...src.split(':')].map((x) => parseInt(x, 16))
  return Uint8Array.from([...bytes, 0x89, 0x40, 0x10, 0x01, 0x00, n])
}
const NCB = '01:80:c2:00:00:00'

function collect(link: MemoryLink): Uint8Array[] {
  const got: Uint8Array[] = []
  link.onFrame((f) => got.push(f))
  return got
}

const settle = (): Promise<void> => new Promise((r) => setImmediate(r))

describe('createMemoryLinkPair', () => {
  it('delivers frames to the other end, in order, asynchronously', async () => {
    const [a, b] = createMemoryLinkPair(MAC_A, MAC_B)
    const got = collect(b)
    a.send(frame(NCB, MAC_A, 1))
    a.send(frame(NCB, MAC_A, 2))
    expect(got).toEqual([]) // never from inside send()
    await settle()
    expect(got).toEqual([frame(NCB, MAC_A, 1), frame(NCB, MAC_A, 2)])
    expect(a.stats()).toMatchObject({ txFrames: 2, rxFrames: 0, drops: 0, txErrors: 0 })
    expect(b.stats()).toMatchObject({ txFrames: 0, rxFrames: 2, drops: 0 })
  })

  it('carries names and MACs', () => {
    const [a, b] = createMemoryLinkPair(MAC_A, MAC_B, { nameA: 'sw0', nameB: 'h0' })
    expect([a.name, a.mac, b.name, b.mac]).toEqual(['sw0', MAC_A, 'h0', MAC_B])
    expect(a.hub).toBe(b.hub)
  })

  it('copies the frame when sent: the sender may reuse its buffer', async () => {
    const [a, b] = createMemoryLinkPair(MAC_A, MAC_B)
    const got = collect(b)
    const buf = frame(NCB, MAC_A, 7)
    a.send(buf)
    buf[buf.length - 1] = 99
    await settle()
    expect(got[0]![got[0]!.length - 1]).toBe(7)
  })

  it('never hands a link its own frames', async () => {
    const [a, b] = createMemoryLinkPair(MAC_A, MAC_B)
    const gotA = collect(a)
    collect(b)
    a.send(frame(NCB, MAC_A))
    await settle()
    expect(gotA).toEqual([])
  })

  it('works in both directions', async () => {
    const [a, b] = createMemoryLinkPair(MAC_A, MAC_B)
    const gotA = collect(a)
    const gotB = collect(b)
    a.send(frame(MAC_B, MAC_A, 1))
    b.send(frame(MAC_A, MAC_B, 2))
    await settle()
    expect(gotA).toEqual([frame(MAC_A, MAC_B, 2)])
    expect(gotB).toEqual([frame(MAC_B, MAC_A, 1)])
  })

  it("delivers with setImmediate when asked, after the current microtasks", async () => {
    const [a, b] = createMemoryLinkPair(MAC_A, MAC_B, { delivery: 'immediate' })
    const got = collect(b)
    a.send(frame(NCB, MAC_A))
    await Promise.resolve()
    await Promise.resolve()
    expect(got).toHaveLength(0)
    await settle()
    expect(got).toHaveLength(1)
  })

  it('rejects frames shorter than an Ethernet header, and sends on a closed link', () => {
    const [a] = createMemoryLinkPair(MAC_A, MAC_B)
    expect(() => a.send(new Uint8Array(13))).toThrow(FrameLinkError)
    expect(() => a.send(new Uint8Array(13))).toThrow('Cannot send frame on mem0: 13 bytes is shorter than an Ethernet header (14)')
    a.close()
    try {
      a.send(frame(NCB, MAC_A))
      expect.unreachable()
    } catch (e) {
      expect(e).toBeInstanceOf(FrameLinkError)
      expect((e as FrameLinkError).code).toBe('EBADF')
    }
  })

  it('calls no handler after close, even for frames already on the way', async () => {
    const [a, b] = createMemoryLinkPair(MAC_A, MAC_B)
    let calls = 0
    let errors = 0
    b.onFrame(() => calls++)
    b.onError(() => errors++)
    a.send(frame(NCB, MAC_A))
    b.injectError('ENETDOWN', false)
    b.close()
    b.close() // idempotent
    expect(b.closed).toBe(true)
    await settle()
    expect(calls).toBe(0)
    expect(errors).toBe(0)
    a.send(frame(NCB, MAC_A)) // the closed end is detached: nothing to deliver to
    await settle()
    expect(calls).toBe(0)
    expect(a.hub.links).toEqual([a])
  })

  it('counts frames that arrive before a handler is registered as drops', async () => {
    const [a, b] = createMemoryLinkPair(MAC_A, MAC_B)
    a.send(frame(NCB, MAC_A))
    await settle()
    expect(b.stats()).toMatchObject({ rxFrames: 0, drops: 1 })
  })

  it('lets a handler close its link mid-stream', async () => {
    const [a, b] = createMemoryLinkPair(MAC_A, MAC_B)
    let calls = 0
    b.onFrame(() => {
      calls++
      b.close()
    })
    for (let i = 0; i < 5; i++) a.send(frame(NCB, MAC_A, i))
    await settle()
    expect(calls).toBe(1)
  })

  it('reports injected errors asynchronously as FrameLinkError', async () => {
    const [, b] = createMemoryLinkPair(MAC_A, MAC_B)
    const errors: FrameLinkError[] = []
    b.onError((e) => errors.push(e))
    b.injectError('ENXIO', true, 'Cannot receive on mem1: interface no longer exists')
    expect(errors).toEqual([])
    await settle()
    expect(errors).toHaveLength(1)
    expect(errors[0]).toMatchObject({ code: 'ENXIO', fatal: true, name: 'FrameLinkError' })
    expect(b.stats().errors).toBe(1)
  })
})

describe('loss', () => {
  async function run(seed: number, lossRate: number, n: number): Promise<{ received: number[]; drops: number }> {
    const [a, b] = createMemoryLinkPair(MAC_A, MAC_B, { seed, lossRate })
    const received: number[] = []
    b.onFrame((f) => received.push(f[f.length - 1]!))
    for (let i = 0; i < n; i++) a.send(frame(NCB, MAC_A, i))
    await settle()
    return { received, drops: b.stats().drops }
  }

  it('loses frames at the given rate, reproducibly for a seed, and counts them', async () => {
    const first = await run(42, 0.3, 200)
    const again = await run(42, 0.3, 200)
    const other = await run(7, 0.3, 200)
    expect(again).toEqual(first)
    expect(other.received).not.toEqual(first.received)
    expect(first.received.length + first.drops).toBe(200)
    expect(first.drops).toBeGreaterThan(30)
    expect(first.drops).toBeLessThan(90)
  })

  it('loses everything at rate 1 and nothing at rate 0; the rate can change', async () => {
    const [a, b] = createMemoryLinkPair(MAC_A, MAC_B, { lossRate: 1 })
    const got = collect(b)
    a.send(frame(NCB, MAC_A, 1))
    a.hub.setLossRate(0)
    a.send(frame(NCB, MAC_A, 2))
    await settle()
    expect(got).toEqual([frame(NCB, MAC_A, 2)])
    expect(b.stats().drops).toBe(1)
  })

  it('rejects rates outside [0, 1]', () => {
    expect(() => new MemoryHub({ lossRate: 1.5 })).toThrow(RangeError)
    expect(() => new MemoryHub().setLossRate(-0.1)).toThrow('Cannot set loss rate: -0.1 is not within [0, 1]')
    expect(() => new MemoryHub().setLossRate(Number.NaN)).toThrow(RangeError)
  })

  it('drops exactly the frames a drop predicate picks', async () => {
    const [a, b] = createMemoryLinkPair(MAC_A, MAC_B, { drop: (f) => f[f.length - 1]! % 2 === 1 })
    const got = collect(b)
    for (let i = 0; i < 6; i++) a.send(frame(NCB, MAC_A, i))
    await settle()
    expect(got.map((f) => f[f.length - 1])).toEqual([0, 2, 4])
    expect(b.stats().drops).toBe(3)
  })
})

describe('MemoryHub', () => {
  it('floods every frame to all other links', async () => {
    const hub = new MemoryHub()
    const [a, b, c] = [hub.attach('a', MAC_A), hub.attach('b', MAC_B), hub.attach('c', MAC_C)]
    const [gotA, gotB, gotC] = [collect(a), collect(b), collect(c)]
    a.send(frame(MAC_B, MAC_A, 1)) // unicast, but a hub repeats it everywhere
    await settle()
    expect([gotA.length, gotB.length, gotC.length]).toEqual([0, 1, 1])
  })

  it('with filterUnicast, delivers unicast frames only to their destination, group frames to all', async () => {
    const hub = new MemoryHub({ filterUnicast: true })
    const [a, b, c] = [hub.attach('a', MAC_A), hub.attach('b', MAC_B), hub.attach('c', MAC_C)]
    const [gotA, gotB, gotC] = [collect(a), collect(b), collect(c)]
    a.send(frame(MAC_B, MAC_A, 1))
    a.send(frame(NCB, MAC_A, 2))
    c.send(frame(MAC_A, MAC_C, 3))
    await settle()
    expect(gotA).toEqual([frame(MAC_A, MAC_C, 3)])
    expect(gotB).toEqual([frame(MAC_B, MAC_A, 1), frame(NCB, MAC_A, 2)])
    expect(gotC).toEqual([frame(NCB, MAC_A, 2)])
  })

  it('gives each receiver its own copy', async () => {
    const hub = new MemoryHub()
    const a = hub.attach('a', MAC_A)
    const b = hub.attach('b', MAC_B)
    const c = hub.attach('c', MAC_C)
    b.onFrame((f) => f.fill(0))
    const gotC = collect(c)
    a.send(frame(NCB, MAC_A, 5))
    await settle()
    expect(gotC).toEqual([frame(NCB, MAC_A, 5)])
  })

  it('shows every sent frame to the tap, lost or not', async () => {
    const tapped: string[] = []
    const hub = new MemoryHub({ lossRate: 1, tap: (_f, from) => tapped.push(from.name) })
    const a = hub.attach('a', MAC_A)
    hub.attach('b', MAC_B)
    a.send(frame(NCB, MAC_A))
    await settle()
    expect(tapped).toEqual(['a'])
  })

  it('refuses two links of the same name', () => {
    const hub = new MemoryHub()
    hub.attach('a', MAC_A)
    expect(() => hub.attach('a', MAC_B)).toThrow('Cannot attach link "a": the hub already has one by that name')
  })
})
