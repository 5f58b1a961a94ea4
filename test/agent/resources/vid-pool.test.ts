import { describe, expect, it } from 'vitest'
import fc from 'fast-check'
import { formatVidRanges, parseVidRanges, VidPool, VidPoolError } from '../../../agent/resources/vid-pool.ts'

function codeOf(f: () => unknown): string | undefined {
  try {
    f()
  } catch (e) {
    if (e instanceof VidPoolError) return e.code
    throw e
  }
  return undefined
}

describe('parseVidRanges()', () => {
  it('parses ranges and single VIDs, sorted', () => {
    expect(parseVidRanges('300, 100-199')).toEqual([
      { first: 100, last: 199 },
      { first: 300, last: 300 },
    ])
    expect(parseVidRanges('2-4094')).toEqual([{ first: 2, last: 4094 }])
  })

  it('rejects VID 0, 1, 4095 and beyond', () => {
    expect(codeOf(() => parseVidRanges('1-10'))).toBe('out-of-range')
    expect(codeOf(() => parseVidRanges('0'))).toBe('out-of-range')
    expect(codeOf(() => parseVidRanges('4000-4095'))).toBe('out-of-range')
    expect(codeOf(() => parseVidRanges('99999'))).toBe('bad-syntax')
  })

  it('rejects bad syntax, reversed and overlapping ranges, and an empty pool', () => {
    expect(codeOf(() => parseVidRanges('100-'))).toBe('bad-syntax')
    expect(codeOf(() => parseVidRanges('abc'))).toBe('bad-syntax')
    expect(codeOf(() => parseVidRanges('100,,200'))).toBe('bad-syntax')
    expect(codeOf(() => parseVidRanges('-5'))).toBe('bad-syntax')
    expect(codeOf(() => parseVidRanges('200-100'))).toBe('reversed-range')
    expect(codeOf(() => parseVidRanges('100-200,150'))).toBe('overlap')
    expect(codeOf(() => parseVidRanges('  '))).toBe('empty')
  })

  it('round-trips through formatVidRanges()', () => {
    fc.assert(
      fc.property(fc.uniqueArray(fc.integer({ min: 2, max: 4094 }), { minLength: 1, maxLength: 40 }), (vids) => {
        const text = vids.join(',')
        const ranges = parseVidRanges(text)
        expect(parseVidRanges(formatVidRanges(ranges))).toEqual(ranges)
      }),
    )
  })
})

describe('VidPool', () => {
  it('allocates the lowest free VID, one per owner, skipping reserved VIDs', () => {
    const pool = VidPool.parse('100-102')
    pool.reserve(100)
    expect(pool.allocate('a')).toBe(101)
    expect(pool.allocate('a')).toBe(101)
    expect(pool.allocate('b')).toBe(102)
    expect(pool.allocate('c')).toBeUndefined()
    expect(pool.freeCount).toBe(0)
    pool.free('a')
    expect(pool.allocate('c')).toBe(101)
  })

  it('take() refuses a VID held by another owner', () => {
    const pool = VidPool.parse('10-20')
    expect(pool.take('a', 15)).toBe(true)
    expect(pool.take('b', 15)).toBe(false)
    expect(pool.take('a', 15)).toBe(true)
    expect(pool.ownerOf(15)).toBe('a')
  })
})
