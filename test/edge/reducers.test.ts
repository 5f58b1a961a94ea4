import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import type { FleetEvent, VsiEventKind } from '../../shared/api/events.ts'
import { applyVsiEvent, cleanupDueAt, sweepVsi, vsiView, type BootOf } from '../../edge/store/reducers.ts'
import type { VsiRecord } from '../../edge/store/model.ts'
import { agentStarted, T0, vsiEvent, vsiIdOf } from './support/events.ts'
import { fold, latestStates } from './support/fold.ts'

const noBoots: BootOf = () => undefined
const applyAll = (events: Parameters<typeof applyVsiEvent>[1][], bootOf: BootOf = noBoots): VsiRecord => {
  let r: VsiRecord | undefined
  for (const e of events) r = applyVsiEvent(r, e, bootOf).record
  return r!
}

describe('applyVsiEvent()', () => {
  it('keeps the newer state when an older event of the same place arrives late', () => {
    const r = applyAll([vsiEvent({ seq: 5 }), vsiEvent({ seq: 3, kind: 'vsi-de-associated' })])
    const v = vsiView(r, noBoots)
    expect(v.state).toBe('associated')
    expect(v.current?.seq).toBe(5)
  })

  it('reports an event not newer than its place as unchanged and leaves the input intact', () => {
    const r = applyAll([vsiEvent({ seq: 5 })])
    const before = structuredClone(r)
    const again = applyVsiEvent(r, vsiEvent({ seq: 5 }), noBoots)
    expect(again.changed).toBe(false)
    applyVsiEvent(r, vsiEvent({ seq: 6, kind: 'vsi-de-associated' }), noBoots)
    expect(r).toEqual(before)
  })

  it('records associate -> pre-associate (deactivate) as pre-associated', () => {
    const r = applyAll([vsiEvent({ seq: 1 }), vsiEvent({ seq: 2, kind: 'vsi-deactivated' })])
    expect(vsiView(r, noBoots).state).toBe('pre-associated')
  })

  it('ignores a rejection with Keep and removes the VSI on a rejection without it', () => {
    const kept = applyAll([vsiEvent({ seq: 1 }), { ...vsiEvent({ seq: 2, kind: 'vsi-rejected' }), keep: true } as never])
    expect(vsiView(kept, noBoots).state).toBe('associated')
    const refused = applyAll([vsiEvent({ seq: 1 }), vsiEvent({ seq: 2, kind: 'vsi-rejected' })])
    expect(vsiView(refused, noBoots).state).toBe('gone')
  })

  it('treats places of a boot older than the switch’s latest agent-started as gone', () => {
    const f = fold([
      agentStarted({ bootId: 'boot-aaaa', bootTime: T0 }),
      vsiEvent({ seq: 1, bootId: 'boot-aaaa', bootTime: T0 }),
      agentStarted({ bootId: 'boot-bbbb', bootTime: T0 + 60_000 }),
    ])
    const v = vsiView(f.vsis.get(vsiIdOf(1))!, f.bootOf)
    expect(v.state).toBe('gone')
    expect(v.current?.bootId).toBe('boot-aaaa')
    const again = fold([
      agentStarted({ bootId: 'boot-aaaa', bootTime: T0 }),
      vsiEvent({ seq: 1, bootId: 'boot-aaaa', bootTime: T0 }),
      agentStarted({ bootId: 'boot-bbbb', bootTime: T0 + 60_000 }),
      vsiEvent({ seq: 1, bootId: 'boot-bbbb', bootTime: T0 + 60_000, time: T0 + 60_010 }),
    ])
    expect(vsiView(again.vsis.get(vsiIdOf(1))!, again.bootOf).state).toBe('associated')
  })
})

describe('migration reconstruction', () => {
  const src = { sw: 'tor1', port: 'Ethernet8' }
  const dst = { sw: 'tor2', port: 'Ethernet4' }

  it('sees an associate at a new place while the old place holds the VSI as one move, completed when the source lets go', () => {
    let r = applyAll([vsiEvent({ seq: 1, ...src, time: T0 })])
    const moved = applyVsiEvent(r, vsiEvent({ seq: 1, ...dst, time: T0 + 100 }), noBoots)
    r = moved.record
    expect(moved.started).toHaveLength(1)
    expect(r.migrations[0]).toMatchObject({
      state: 'in-progress',
      overlapped: true,
      indicated: false,
      from: { switchId: 'tor1', port: 'Ethernet8' },
      to: { switchId: 'tor2', port: 'Ethernet4' },
      associatedAt: T0 + 100,
    })
    const v = vsiView(r, noBoots)
    expect(v.current?.switchId).toBe('tor2')
    expect(v.holding).toHaveLength(2)
    r = applyVsiEvent(r, vsiEvent({ seq: 2, ...src, kind: 'vsi-de-associated', time: T0 + 200 }), noBoots).record
    expect(r.migrations[0]).toMatchObject({ state: 'completed', endedAt: T0 + 200 })
    expect(r.places.map((p) => p.switchId)).toEqual(['tor1', 'tor2'])
  })

  it('links both ends by the migration id of the indicator', () => {
    const r = applyAll([
      vsiEvent({ seq: 1, ...src, time: T0 }),
      vsiEvent({ seq: 2, ...src, time: T0 + 50, migration: 'from', migrationId: 'mig-42' }),
      vsiEvent({ seq: 1, ...dst, kind: 'vsi-pre-associated', time: T0 + 60, migration: 'to', migrationId: 'mig-42' }),
      vsiEvent({ seq: 2, ...dst, time: T0 + 90, migration: 'to', migrationId: 'mig-42' }),
    ])
    expect(r.migrations).toHaveLength(1)
    expect(r.migrations[0]).toMatchObject({ migrationId: 'mig-42', indicated: true, startedAt: T0 + 60, associatedAt: T0 + 90 })
  })

  it('records a move without overlap only when an indicator says so', () => {
    const cold = applyAll([
      vsiEvent({ seq: 1, ...src, time: T0 }),
      vsiEvent({ seq: 2, ...src, kind: 'vsi-de-associated', time: T0 + 10 }),
      vsiEvent({ seq: 1, ...dst, time: T0 + 20, migration: 'to' }),
    ])
    expect(cold.migrations).toEqual([expect.objectContaining({ state: 'completed', overlapped: false, indicated: true })])
    const restart = applyAll([
      vsiEvent({ seq: 1, ...src, time: T0 }),
      vsiEvent({ seq: 2, ...src, kind: 'vsi-de-associated', time: T0 + 10 }),
      vsiEvent({ seq: 1, ...dst, time: T0 + 20 }),
    ])
    expect(restart.migrations).toEqual([])
  })

  it('orients a move by event time when the source’s associate arrives after the destination’s', () => {
    const r = applyAll([vsiEvent({ seq: 1, ...dst, time: T0 + 100 }), vsiEvent({ seq: 1, ...src, time: T0 })])
    expect(r.migrations).toEqual([
      expect.objectContaining({ from: expect.objectContaining({ switchId: 'tor1' }), to: expect.objectContaining({ switchId: 'tor2' }), state: 'in-progress', associatedAt: T0 + 100 }),
    ])
    expect(vsiView(r, noBoots).current?.switchId).toBe('tor2')
  })

  it('aborts a move whose destination lets go first', () => {
    const r = applyAll([
      vsiEvent({ seq: 1, ...src, time: T0 }),
      vsiEvent({ seq: 1, ...dst, kind: 'vsi-pre-associated', time: T0 + 10, migration: 'to' }),
      vsiEvent({ seq: 2, ...dst, kind: 'vsi-de-associated', time: T0 + 20 }),
    ])
    expect(r.migrations[0]).toMatchObject({ state: 'aborted' })
    expect(vsiView(r, noBoots).current?.switchId).toBe('tor1')
  })

  it('sweepVsi() issues one cleanup command to the source once the grace period after the associate has passed', () => {
    const grace = 30_000
    const r = applyAll([vsiEvent({ seq: 1, ...src, time: T0 }), vsiEvent({ seq: 1, ...dst, time: T0 + 100 })])
    expect(cleanupDueAt(r, grace)).toBe(T0 + 100 + grace)
    expect(sweepVsi(r, noBoots, T0 + 100 + grace - 1, grace).commands).toEqual([])
    const swept = sweepVsi(r, noBoots, T0 + 100 + grace, grace)
    expect(swept.commands).toEqual([
      expect.objectContaining({ kind: 'disconnect-vsi', switchId: 'tor1', port: 'Ethernet8', vsiId: vsiIdOf(1), mode: 'de-associate' }),
    ])
    expect(cleanupDueAt(swept.record, grace)).toBeUndefined()
    expect(sweepVsi(swept.record, noBoots, T0 + 10 * grace, grace).commands).toEqual([])
  })

  it('sweepVsi() issues nothing when the source let go in time', () => {
    const r = applyAll([
      vsiEvent({ seq: 1, ...src, time: T0 }),
      vsiEvent({ seq: 1, ...dst, time: T0 + 100 }),
      vsiEvent({ seq: 2, ...src, kind: 'vsi-timeout', time: T0 + 200 }),
    ])
    expect(cleanupDueAt(r, 1000)).toBeUndefined()
    expect(sweepVsi(r, noBoots, T0 + 1_000_000, 1000).commands).toEqual([])
  })
})

// ---- properties ----

const KINDS: VsiEventKind[] = ['vsi-associated', 'vsi-pre-associated', 'vsi-deactivated', 'vsi-de-associated', 'vsi-rejected', 'vsi-timeout']

const opArb = fc.record({
  sw: fc.integer({ min: 0, max: 2 }),
  port: fc.integer({ min: 0, max: 1 }),
  vsi: fc.integer({ min: 1, max: 4 }),
  kind: fc.constantFrom(...KINDS, 'agent-started' as const),
  keep: fc.boolean(),
  timeStep: fc.integer({ min: 0, max: 3 }),
})

/** A plausible history: per switch, seq grows by one and agent-started opens a new boot. */
const historyArb = fc.array(opArb, { minLength: 1, maxLength: 60 }).map((ops) => {
  const events: FleetEvent[] = []
  const boots = new Map<number, { n: number; seq: number; bootTime: number }>()
  let time = T0
  for (const op of ops) {
    time += op.timeStep * 5
    let b = boots.get(op.sw)
    if (!b || op.kind === 'agent-started') {
      b = { n: (b?.n ?? 0) + 1, seq: 0, bootTime: time }
      boots.set(op.sw, b)
    }
    const common = { sw: `tor${op.sw}`, bootId: `boot-${op.sw}-${b.n}-x`, bootTime: b.bootTime, seq: b.seq++, time }
    if (op.kind === 'agent-started') {
      events.push(agentStarted(common))
      continue
    }
    const e = vsiEvent({ ...common, kind: op.kind, port: `Ethernet${op.port}`, vsi: op.vsi })
    events.push(op.kind === 'vsi-rejected' ? ({ ...e, keep: op.keep } as FleetEvent) : e)
  }
  return events
})

describe('reducer properties', () => {
  it('a shuffled list with duplicates gives the same per-VSI latest state as the ordered list', () => {
    fc.assert(
      fc.property(
        historyArb.chain((events) =>
          fc.tuple(
            fc.constant(events),
            fc.shuffledSubarray(events, { minLength: 0 }).chain((dups) => fc.shuffledSubarray([...events, ...dups], { minLength: events.length + dups.length })),
          ),
        ),
        ([ordered, shuffled]) => {
          expect(latestStates(fold(shuffled))).toEqual(latestStates(fold(ordered)))
        },
      ),
      { numRuns: 300 },
    )
  })

  it('applying every event twice changes nothing (idempotence)', () => {
    fc.assert(
      fc.property(historyArb, (events) => {
        const once = fold(events)
        let twice: VsiRecord | undefined
        for (const [id, r] of once.vsis) {
          twice = r
          for (const e of events) if ('vsiId' in e && e.vsiId === id) twice = applyVsiEvent(twice, e, once.bootOf).record
          expect(twice).toEqual(r)
        }
      }),
      { numRuns: 200 },
    )
  })
})
