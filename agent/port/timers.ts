/**
 * Timers of the port core as deadlines in a table, never callbacks (quinn's `TimerTable`),
 * and the pure formulas that turn the negotiated EVB exponents into durations.
 *
 * Durations are microseconds (`Us`); the exponent fields of the EVB TLV keep the standard's
 * names (`rte`, `rwd`, `rka`, `r`). Clause numbers are those of 802.1Qbg-2012 (the same in
 * 802.1Q-2014/2018); lldpad cites 41.5.5.7 and 41.5.5.9 for the VDP formulas
 * (`qbg/vdp22.c: data_from_evb`, `vdp22_timeout`) and computes them as below. Sub-clause
 * numbers other than those two are recalled, not checked against the IEEE text (vdp-spec §0,
 * tag [R]); the formulas themselves are verified against lldpad and the captures.
 *
 * Local rules:
 * 1. A name holds at most one deadline; `set` replaces it.
 * 2. `nextUs()` and `popExpired()` are O(log n) amortised: a binary heap with lazy deletion
 *    (stale heap nodes are skipped by generation), so a port with thousands of VSI timers
 *    stays cheap to poll. Moving a deadline later (every keep-alive does) touches no heap
 *    node: the old node surfaces first and is re-queued at the new time.
 *
 * @module
 */
import { usFromExponent, type Us } from '../../shared/time.ts'

/** ECP ackTimer: 10 µs · 2^RTE (802.1Qbg-2012 43.3.6.1 ackTimerInit, D.2.12.7 RTE). */
export const ackTimerUs = (rte: number): Us => usFromExponent(rte)

/** resourceWaitDelay: 10 µs · 2^RWD, the bridge's budget to obtain resources (41.5.5.7). */
export const resourceWaitDelayUs = (rwd: number): Us => usFromExponent(rwd)

/** reinitKeepAlive: 10 µs · 2^RKA, the station's keep-alive period (41.5.5.5, D.2.12.9). */
export const reinitKeepAliveUs = (rka: number): Us => usFromExponent(rka)

/**
 * Worst case ECP delivery time of one ULPDU: (2R + 1) · ackTimer (41.5.5.9 and 41.5.5.13 both
 * add this term).
 */
export const ecpWorstCaseUs = (retries: number, rte: number): Us =>
  (2 * retries + 1) * ackTimerUs(rte)

/**
 * respWaitDelay (station): 1.5 · (resourceWaitDelay + (2R + 1) · ackTimer) (802.1Qbg-2012
 * 41.5.5.9; lldpad `vdp22_timeout(rwd)`). Always an integer: every term is a multiple of 10.
 */
export function respWaitDelayUs(timing: { retries: number; rte: number; rwd: number }): Us {
  const waitUs = resourceWaitDelayUs(timing.rwd) + ecpWorstCaseUs(timing.retries, timing.rte)
  return waitUs + waitUs / 2
}

/**
 * toutKeepAlive (bridge): 1.5 · (reinitKeepAlive + (2R + 1) · ackTimer) (802.1Qbg-2012
 * 41.5.5.13; lldpad `vdp22br_start_katimer`; HPE "VDP keepalive time").
 */
export function toutKeepAliveUs(timing: { retries: number; rte: number; rka: number }): Us {
  const waitUs = reinitKeepAliveUs(timing.rka) + ecpWorstCaseUs(timing.retries, timing.rte)
  return waitUs + waitUs / 2
}

/** A name's deadline; `queuedUs` is the time of its live heap node (≤ `atUs`). */
interface Entry<Name> {
  readonly name: Name
  atUs: Us
  generation: number
  queuedUs: Us
  /** False once stopped or expired: its heap nodes are stale. */
  live: boolean
}

interface HeapNode<Name> {
  atUs: Us
  /** The entry it was queued for: staleness is checked without a lookup by name. */
  entry: Entry<Name>
  generation: number
}

/**
 * Named deadlines. Nothing here fires: the owner asks `popExpired(nowUs)` in `handleTimeout`.
 *
 * @example
 * ```ts
 * const timers = new TimerTable<'ack' | 'keepalive'>()
 * timers.set('ack', nowUs + ackTimerUs(8))
 * for (const name of timers.popExpired(laterUs)) handle(name)
 * ```
 */
export class TimerTable<Name extends string = string> {
  readonly #deadlines = new Map<Name, Entry<Name>>()
  readonly #heap: HeapNode<Name>[] = []
  #generation = 0

  set(name: Name, atUs: Us): void {
    const current = this.#deadlines.get(name)
    if (current !== undefined && current.queuedUs <= atUs) {
      // Pushed later (a keep-alive restarting its timer): the heap node already queued fires
      // no later than needed and is re-queued at the real deadline then (rule 2).
      current.atUs = atUs
      return
    }
    const generation = ++this.#generation
    if (current !== undefined) {
      // Moved earlier: the entry gets a new node; the old one is stale by its generation.
      current.atUs = atUs
      current.generation = generation
      current.queuedUs = atUs
      this.#push({ atUs, entry: current, generation })
      return
    }
    const entry: Entry<Name> = { name, atUs, generation, queuedUs: atUs, live: true }
    this.#deadlines.set(name, entry)
    this.#push({ atUs, entry, generation })
  }

  stop(name: Name): void {
    const entry = this.#deadlines.get(name)
    if (entry === undefined) return
    entry.live = false
    this.#deadlines.delete(name)
    // Stale heap nodes are dropped lazily; compact when they dominate.
    if (this.#heap.length > 64 && this.#heap.length > 4 * this.#deadlines.size) this.#rebuild()
  }

  get(name: Name): Us | undefined {
    return this.#deadlines.get(name)?.atUs
  }

  has(name: Name): boolean {
    return this.#deadlines.has(name)
  }

  isExpired(name: Name, nowUs: Us): boolean {
    const at = this.#deadlines.get(name)?.atUs
    return at !== undefined && at <= nowUs
  }

  get size(): number {
    return this.#deadlines.size
  }

  /** Earliest deadline, or undefined when no timer runs. */
  nextUs(): Us | undefined {
    this.#dropStale()
    return this.#heap[0]?.atUs
  }

  /** Removes and returns every timer due at `nowUs`, earliest first. */
  popExpired(nowUs: Us): Name[] {
    const out: Name[] = []
    for (;;) {
      this.#dropStale()
      const top = this.#heap[0]
      if (top === undefined || top.atUs > nowUs) return out
      this.#pop()
      top.entry.live = false
      this.#deadlines.delete(top.entry.name)
      out.push(top.entry.name)
    }
  }

  #isLive(node: HeapNode<Name>): boolean {
    return node.entry.live && node.entry.generation === node.generation
  }

  #dropStale(): void {
    for (;;) {
      const top = this.#heap[0]
      if (top === undefined) return
      const entry = top.entry
      if (!entry.live || entry.generation !== top.generation) {
        this.#pop()
      } else if (entry.atUs > top.atUs) {
        // The deadline moved later since this node was queued: queue it at the real time.
        // The node itself goes back (no new object per keep-alive for the GC to promote).
        this.#pop()
        entry.queuedUs = entry.atUs
        top.atUs = entry.atUs
        this.#push(top)
      } else {
        return
      }
    }
  }

  #rebuild(): void {
    const live = this.#heap.filter((n) => this.#isLive(n))
    this.#heap.length = 0
    for (const n of live) {
      n.entry.queuedUs = n.entry.atUs
      n.atUs = n.entry.atUs
      this.#push(n)
    }
  }

  #less(a: HeapNode<Name>, b: HeapNode<Name>): boolean {
    return a.atUs < b.atUs || (a.atUs === b.atUs && a.generation < b.generation)
  }

  #push(node: HeapNode<Name>): void {
    const h = this.#heap
    h.push(node)
    let i = h.length - 1
    while (i > 0) {
      const p = (i - 1) >> 1
      if (!this.#less(h[i]!, h[p]!)) break
      ;[h[i], h[p]] = [h[p]!, h[i]!]
      i = p
    }
  }

  #pop(): void {
    const h = this.#heap
    const last = h.pop()!
    if (h.length === 0) return
    h[0] = last
    let i = 0
    for (;;) {
      const l = 2 * i + 1
      const r = l + 1
      let m = i
      if (l < h.length && this.#less(h[l]!, h[m]!)) m = l
      if (r < h.length && this.#less(h[r]!, h[m]!)) m = r
      if (m === i) return
      ;[h[i], h[m]] = [h[m]!, h[i]!]
      i = m
    }
  }
}
