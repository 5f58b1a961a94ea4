/**
 * One Node timer for the deadlines of many port drivers. Each driver keeps one slot holding
 * its core's next deadline; the timer is armed at the earliest slot.
 *
 * Why: a bridge port's next deadline flips at every keep-alive, to the ECP ack timer when
 * the response leaves and back to a VSI's keep-alive supervision when its ACK comes in a
 * fraction of a millisecond later. With a timer per port each flip was a clearTimeout and a
 * setTimeout (a Timeout object, often a new timer list and priority-queue work in Node). Across
 * 48 ports the earliest deadline rarely changes with one port's flip, so most flips now cost
 * a step in a small heap and no Node timer work.
 *
 * Local rules:
 * 1. A slot is due when its deadline is at or before the clock: the timer calls `onDue` of
 *    each due slot (which then holds no deadline until set again), earliest first.
 * 2. When the earliest deadline moves later, the armed timer stays: it fires early, finds
 *    nothing due and is armed again at the earliest deadline (lazy re-arming, at most one
 *    early fire per arming). When no slot holds a deadline the timer is cleared, so an idle
 *    process can exit.
 * 3. Delays are whole milliseconds, rounded up (`msCeil`), as the drivers' own timers were.
 *
 * @module
 */
import { msCeil } from '../../shared/time.ts'
import type { Clock } from './clock.ts'

export interface DeadlineSlot {
  /** The slot's deadline, µs on the scheduler's clock; undefined when none. */
  readonly atUs: number | undefined
}

interface Slot extends DeadlineSlot {
  atUs: number | undefined
  /** Position in the heap, -1 when not queued. */
  index: number
  readonly onDue: () => void
}

export class DeadlineTimer {
  readonly #clock: Clock
  readonly #heap: Slot[] = []
  #timer: NodeJS.Timeout | undefined
  /** When the armed timer fires (µs), undefined when none is armed. */
  #armedAtUs: number | undefined

  constructor(clock: Clock) {
    this.#clock = clock
  }

  /** A slot for one driver; `onDue` runs from the timer when its deadline has come. */
  slot(onDue: () => void): DeadlineSlot {
    const slot: Slot = { atUs: undefined, index: -1, onDue }
    return slot
  }

  /** Sets (or with undefined clears) a slot's deadline. */
  set(handle: DeadlineSlot, atUs: number | undefined): void {
    const slot = handle as Slot
    if (slot.atUs === atUs) return
    slot.atUs = atUs
    if (atUs === undefined) {
      if (slot.index >= 0) this.#remove(slot)
    } else if (slot.index < 0) {
      slot.index = this.#heap.length
      this.#heap.push(slot)
      this.#up(slot.index)
    } else {
      this.#down(this.#up(slot.index))
    }
    this.#arm()
  }

  /** Clears the timer and every slot. */
  close(): void {
    for (const s of this.#heap) {
      s.index = -1
      s.atUs = undefined
    }
    this.#heap.length = 0
    this.#arm()
  }

  #arm(): void {
    const earliest = this.#heap[0]?.atUs
    if (earliest === undefined) {
      if (this.#timer !== undefined) clearTimeout(this.#timer)
      this.#timer = undefined
      this.#armedAtUs = undefined
      return
    }
    // Rule 2: an armed timer that fires no later than needed stays.
    if (this.#armedAtUs !== undefined && this.#armedAtUs <= earliest) return
    if (this.#timer !== undefined) clearTimeout(this.#timer)
    const nowUs = this.#clock.nowUs()
    const delayMs = Math.max(0, msCeil(earliest - nowUs))
    this.#armedAtUs = nowUs + delayMs * 1000
    this.#timer = setTimeout(() => this.#fire(), delayMs)
  }

  #fire(): void {
    this.#timer = undefined
    this.#armedAtUs = undefined
    const nowUs = this.#clock.nowUs()
    for (let top = this.#heap[0]; top !== undefined && top.atUs! <= nowUs; top = this.#heap[0]) {
      this.#remove(top)
      top.atUs = undefined
      top.onDue()
    }
    this.#arm()
  }

  #remove(slot: Slot): void {
    const h = this.#heap
    const i = slot.index
    const last = h.pop()!
    slot.index = -1
    if (last === slot) return
    h[i] = last
    last.index = i
    this.#down(this.#up(i))
  }

  #less(a: Slot, b: Slot): boolean {
    return a.atUs! < b.atUs!
  }

  /** Sifts up; returns the final index. */
  #up(i: number): number {
    const h = this.#heap
    while (i > 0) {
      const p = (i - 1) >> 1
      if (!this.#less(h[i]!, h[p]!)) break
      this.#swap(i, p)
      i = p
    }
    return i
  }

  #down(i: number): void {
    const h = this.#heap
    for (;;) {
      const l = 2 * i + 1
      const r = l + 1
      let m = i
      if (l < h.length && this.#less(h[l]!, h[m]!)) m = l
      if (r < h.length && this.#less(h[r]!, h[m]!)) m = r
      if (m === i) return
      this.#swap(i, m)
      i = m
    }
  }

  #swap(i: number, j: number): void {
    const h = this.#heap
    const a = h[i]!
    const b = h[j]!
    h[i] = b
    h[j] = a
    a.index = j
    b.index = i
  }
}
