/**
 * VID ranges and the switch's VID pool (DESIGN §3 "VID negotiation"). The switch owns its VLAN
 * space: a pool is a set of VIDs written as ranges (`100-199,300`), VIDs 2..4094 only (802.1Q
 * reserves 0 and 4095; lldpad `check_vid` rejects VID 1, and SONiC's `config vlan add` refuses
 * VID 1 as the default VLAN). The pool hands out the lowest free VID, so allocation is
 * deterministic and a reconciled snapshot reproduces the same answers.
 *
 * Pure core: no I/O, no clock. Errors here are the caller's (operator's) fault: `VidPoolError`
 * with a `code`, messages in the "Cannot …: …" form.
 *
 * @module
 */

/** Lowest VID a VSI may use (802.1Q Table 9-2: 0 = null VID, 1 = default PVID, rejected by lldpad). */
export const VID_MIN = 2
/** Highest usable VID (4095 is reserved). */
export const VID_MAX = 4094

export type VidPoolErrorCode = 'bad-syntax' | 'out-of-range' | 'reversed-range' | 'overlap' | 'empty'

export class VidPoolError extends Error {
  override readonly name = 'VidPoolError'
  constructor(
    readonly code: VidPoolErrorCode,
    message: string,
  ) {
    super(message)
  }
}

/** An inclusive VID range. */
export interface VidRange {
  first: number
  last: number
}

const ITEM_RE = /^(\d{1,4})(?:\s*-\s*(\d{1,4}))?$/

/**
 * Parses `100-199,300` into sorted, non-overlapping ranges. Whitespace around items is allowed;
 * an empty string is an error (`empty`): a switch without VIDs cannot answer a null-VID request.
 * @example
 * ```ts
 * parseVidRanges('300,100-199') // [{ first: 100, last: 199 }, { first: 300, last: 300 }]
 * ```
 */
export function parseVidRanges(text: string): VidRange[] {
  const trimmed = text.trim()
  if (trimmed === '') throw new VidPoolError('empty', 'Cannot parse VID pool: it is empty')
  const ranges: VidRange[] = []
  for (const raw of trimmed.split(',')) {
    const item = raw.trim()
    const m = ITEM_RE.exec(item)
    if (!m) {
      throw new VidPoolError('bad-syntax', `Cannot parse VID pool "${text}": "${item}" is not N or N-M`)
    }
    const first = Number(m[1])
    const last = m[2] === undefined ? first : Number(m[2])
    for (const vid of [first, last]) {
      if (vid < VID_MIN || vid > VID_MAX) {
        throw new VidPoolError(
          'out-of-range',
          `Cannot parse VID pool "${text}": VID ${vid} is outside ${VID_MIN}..${VID_MAX}`,
        )
      }
    }
    if (last < first) {
      throw new VidPoolError('reversed-range', `Cannot parse VID pool "${text}": range "${item}" ends before it starts`)
    }
    ranges.push({ first, last })
  }
  ranges.sort((a, b) => a.first - b.first)
  for (let i = 1; i < ranges.length; i++) {
    const prev = ranges[i - 1]!
    const cur = ranges[i]!
    if (cur.first <= prev.last) {
      throw new VidPoolError(
        'overlap',
        `Cannot parse VID pool "${text}": ${formatVidRanges([prev])} overlaps ${formatVidRanges([cur])}`,
      )
    }
  }
  return ranges
}

/** The inverse of `parseVidRanges`. */
export function formatVidRanges(ranges: readonly VidRange[]): string {
  return ranges.map((r) => (r.first === r.last ? String(r.first) : `${r.first}-${r.last}`)).join(',')
}

export const isUsableVid = (vid: number): boolean => Number.isInteger(vid) && vid >= VID_MIN && vid <= VID_MAX

/**
 * The set of VIDs the resource manager may hand out, and which of them are taken. The owner
 * of a VID is an opaque key chosen by the caller (the resource manager uses `vn:<vni>` and
 * `type:<typeId>/<version>`). One VID has at most one owner; one owner at most one VID.
 */
export class VidPool {
  readonly ranges: readonly VidRange[]
  readonly #size: number
  /** VID -> owner key. Also holds out-of-pool VIDs taken by `take()` (static or restored). */
  readonly #ownerByVid = new Map<number, string>()
  readonly #vidByOwner = new Map<string, number>()
  /** VIDs never handed out by `allocate()` (static VN VIDs that fall inside the ranges). */
  readonly #reserved = new Set<number>()

  constructor(ranges: readonly VidRange[]) {
    this.ranges = ranges.map((r) => ({ ...r }))
    this.#size = ranges.reduce((n, r) => n + r.last - r.first + 1, 0)
  }

  /** `new VidPool(parseVidRanges(text))`. */
  static parse(text: string): VidPool {
    return new VidPool(parseVidRanges(text))
  }

  contains(vid: number): boolean {
    for (const r of this.ranges) if (vid >= r.first && vid <= r.last) return true
    return false
  }

  /** Number of VIDs in the ranges. */
  get size(): number {
    return this.#size
  }

  /** Number of in-range VIDs neither allocated nor reserved. */
  get freeCount(): number {
    let used = 0
    for (const vid of this.#ownerByVid.keys()) if (this.contains(vid)) used++
    for (const vid of this.#reserved) if (this.contains(vid) && !this.#ownerByVid.has(vid)) used++
    return this.#size - used
  }

  /** Keeps `vid` out of `allocate()` (a static VN VID inside the ranges). */
  reserve(vid: number): void {
    this.#reserved.add(vid)
  }

  ownerOf(vid: number): string | undefined {
    return this.#ownerByVid.get(vid)
  }

  vidOf(owner: string): number | undefined {
    return this.#vidByOwner.get(owner)
  }

  /** Lowest free in-range VID for `owner`, or the one it already has; `undefined` when exhausted. */
  allocate(owner: string): number | undefined {
    const have = this.#vidByOwner.get(owner)
    if (have !== undefined) return have
    for (const r of this.ranges) {
      for (let vid = r.first; vid <= r.last; vid++) {
        if (!this.#ownerByVid.has(vid) && !this.#reserved.has(vid)) {
          this.#bind(owner, vid)
          return vid
        }
      }
    }
    return undefined
  }

  /**
   * Gives `owner` exactly `vid` (explicit request, static VN VID, or a restored snapshot).
   * Returns false when another owner has it. The VID need not be in the ranges: the caller
   * decides whether an out-of-pool VID is acceptable.
   */
  take(owner: string, vid: number): boolean {
    const cur = this.#ownerByVid.get(vid)
    if (cur !== undefined) return cur === owner
    if (this.#vidByOwner.has(owner)) return false
    this.#bind(owner, vid)
    return true
  }

  /** Returns the owner's VID to the pool. */
  free(owner: string): void {
    const vid = this.#vidByOwner.get(owner)
    if (vid === undefined) return
    this.#vidByOwner.delete(owner)
    this.#ownerByVid.delete(vid)
  }

  /** Owner key per allocated VID, sorted by VID. */
  allocations(): Array<{ vid: number; owner: string }> {
    return [...this.#ownerByVid].map(([vid, owner]) => ({ vid, owner })).sort((a, b) => a.vid - b.vid)
  }

  #bind(owner: string, vid: number): void {
    this.#ownerByVid.set(vid, owner)
    this.#vidByOwner.set(owner, vid)
  }
}
