import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import {
  ackTimerUs,
  reinitKeepAliveUs,
  resourceWaitDelayUs,
  respWaitDelayUs,
  TimerTable,
  toutKeepAliveUs,
} from '../../../agent/port/timers.ts'

describe('timer formulas', () => {
  it('are integers in µs for every exponent and retry count', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: 7 }),
        fc.integer({ min: 0, max: 31 }),
        fc.integer({ min: 0, max: 31 }),
        (retries, rte, e) => {
          expect(ackTimerUs(rte)).toBe(10 * 2 ** rte)
          expect(resourceWaitDelayUs(e)).toBe(10 * 2 ** e)
          expect(reinitKeepAliveUs(e)).toBe(10 * 2 ** e)
          const resp = respWaitDelayUs({ retries, rte, rwd: e })
          expect(Number.isInteger(resp)).toBe(true)
          expect(resp).toBe(1.5 * (10 * 2 ** e + (2 * retries + 1) * 10 * 2 ** rte))
          expect(toutKeepAliveUs({ retries, rte, rka: e })).toBe(resp)
        },
      ),
    )
  })
})

describe('TimerTable', () => {
  it('agrees with a naive map under random set/stop/pop sequences', () => {
    const op = fc.oneof(
      fc.record({
        kind: fc.constant('set' as const),
        name: fc.integer({ min: 0, max: 20 }),
        atUs: fc.integer({ min: 0, max: 1000 }),
      }),
      fc.record({ kind: fc.constant('stop' as const), name: fc.integer({ min: 0, max: 20 }) }),
      fc.record({ kind: fc.constant('pop' as const), nowUs: fc.integer({ min: 0, max: 1000 }) }),
    )
    fc.assert(
      fc.property(fc.array(op, { maxLength: 300 }), (ops) => {
        const table = new TimerTable<string>()
        const naive = new Map<string, number>()
        for (const o of ops) {
          if (o.kind === 'set') {
            table.set(`t${o.name}`, o.atUs)
            naive.set(`t${o.name}`, o.atUs)
          } else if (o.kind === 'stop') {
            table.stop(`t${o.name}`)
            naive.delete(`t${o.name}`)
          } else {
            const due = [...naive].filter(([, at]) => at <= o.nowUs).sort((a, b) => a[1] - b[1])
            const popped = table.popExpired(o.nowUs)
            expect(popped.map((n) => naive.get(n))).toEqual(due.map(([, at]) => at))
            expect(new Set(popped)).toEqual(new Set(due.map(([n]) => n)))
            for (const [n] of due) naive.delete(n)
          }
          const min = [...naive.values()].reduce<number | undefined>(
            (m, v) => (m === undefined || v < m ? v : m),
            undefined,
          )
          expect(table.nextUs()).toBe(min)
          expect(table.size).toBe(naive.size)
        }
      }),
      { numRuns: 300 },
    )
  })

  it('isExpired() and get() read the current deadline', () => {
    const t = new TimerTable<'ack' | 'ka'>()
    t.set('ack', 10)
    t.set('ack', 30)
    expect(t.isExpired('ack', 20)).toBe(false)
    expect(t.isExpired('ack', 30)).toBe(true)
    expect(t.get('ka')).toBeUndefined()
    expect(t.popExpired(25)).toEqual([])
    expect(t.popExpired(30)).toEqual(['ack'])
    expect(t.nextUs()).toBeUndefined()
  })
})
