import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest'
import type { Clock } from '../../../agent/runtime/clock.ts'
import { DeadlineTimer } from '../../../agent/runtime/deadline-timer.ts'

// Fake timers move Date.now(); the scheduler's clock follows it in µs.
const clock: Clock = { nowUs: () => Date.now() * 1000, wallMs: () => Date.now() }

describe('DeadlineTimer', () => {
  beforeEach(() => {
    vi.useFakeTimers({ now: 1_000 })
  })
  afterEach(() => {
    vi.useRealTimers()
  })

  it('calls onDue of each slot when its deadline comes, earliest first, the others later', () => {
    const t = new DeadlineTimer(clock)
    const due: string[] = []
    const a = t.slot(() => due.push('a'))
    const b = t.slot(() => due.push('b'))
    const c = t.slot(() => due.push('c'))
    t.set(a, 1_030_000)
    t.set(b, 1_010_000)
    t.set(c, 1_010_500)
    vi.advanceTimersByTime(9)
    expect(due).toEqual([])
    vi.advanceTimersByTime(2)
    expect(due).toEqual(['b', 'c'])
    expect(b.atUs).toBeUndefined()
    vi.advanceTimersByTime(20)
    expect(due).toEqual(['b', 'c', 'a'])
    expect(vi.getTimerCount()).toBe(0)
  })

  it('keeps the armed timer when the earliest deadline moves later, then re-arms for the real one', () => {
    const t = new DeadlineTimer(clock)
    const due: number[] = []
    const a = t.slot(() => due.push(Date.now()))
    t.set(a, 1_005_000) // an ECP ack timer...
    t.set(a, 1_050_000) // ...its ACK came: the keep-alive deadline is next
    expect(vi.getTimerCount()).toBe(1)
    vi.advanceTimersByTime(5) // the early timer fires, nothing is due
    expect(due).toEqual([])
    expect(vi.getTimerCount()).toBe(1)
    vi.advanceTimersByTime(45)
    expect(due).toEqual([1_050])
  })

  it('re-arms earlier for an earlier deadline, and clears the timer when no slot holds one', () => {
    const t = new DeadlineTimer(clock)
    const due: string[] = []
    const a = t.slot(() => due.push('a'))
    const b = t.slot(() => due.push('b'))
    t.set(a, 1_100_000)
    t.set(b, 1_002_000)
    vi.advanceTimersByTime(2)
    expect(due).toEqual(['b'])
    t.set(a, undefined)
    expect(vi.getTimerCount()).toBe(0)
    t.set(a, 1_010_000)
    t.close()
    expect(vi.getTimerCount()).toBe(0)
    expect(a.atUs).toBeUndefined()
  })

  it('rounds a deadline inside a millisecond up, never firing before it', () => {
    const t = new DeadlineTimer(clock)
    const due: number[] = []
    const a = t.slot(() => due.push(Date.now()))
    t.set(a, 1_000_001)
    vi.advanceTimersByTime(0)
    expect(due).toEqual([])
    vi.advanceTimersByTime(1)
    expect(due).toEqual([1_001])
  })
})
