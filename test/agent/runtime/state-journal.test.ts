import { appendFileSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import { applyJournal, readJournal, StateJournal, type JournalRecord } from '../../../agent/runtime/state-journal.ts'
import type { HeldVsi } from '../../../agent/resources/resource-manager.ts'
import type { Mac } from '../../../shared/ethernet/mac.ts'
import { managerIdFromText, portName, vsiIdFromUuid } from '../../../shared/ids.ts'

const dirs: string[] = []
const freshDir = (): string => {
  const d = mkdtempSync(join(tmpdir(), 'state-journal-'))
  dirs.push(d)
  return d
}
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true })
})

const held = (n: number, vid = 100, mode: HeldVsi['mode'] = 'associate'): HeldVsi => ({
  port: portName('Ethernet0'),
  vsiId: vsiIdFromUuid(n.toString(16).padStart(32, '0')),
  vsiIdFormat: 5,
  station: '02:00:00:00:00:01' as Mac,
  managerId: managerIdFromText('vdplab'),
  mode,
  typeId: 1,
  typeVersion: 1,
  filterFormat: 3,
  entries: [{ vid, ps: false, pcp: 0, groupId: 5000 }],
})
const drop = (n: number): JournalRecord => ({ drop: { port: 'Ethernet0', vsiId: held(n).vsiId } })
const noErrors = (e: unknown): never => {
  throw e
}

describe('StateJournal', () => {
  it('reads back what was appended, across segments, in order', () => {
    const dir = freshDir()
    const j = new StateJournal(dir, noErrors)
    j.append({ hold: held(1) })
    j.append({ hold: held(2) })
    expect(j.rotate()).toBe(1)
    j.append(drop(1))
    j.close()
    expect(readJournal(dir)).toEqual({ records: [{ hold: held(1) }, { hold: held(2) }, drop(1)], skipped: 0, segments: 2 })
  })

  it('removes the segments a snapshot covers and keeps the newer one', () => {
    const dir = freshDir()
    const j = new StateJournal(dir, noErrors)
    j.append({ hold: held(1) })
    const covered = j.rotate()
    j.append({ hold: held(2) })
    j.removeUpTo(covered)
    expect(readJournal(dir).records).toEqual([{ hold: held(2) }])
    j.close()
  })

  it('a new journal starts after the segments already there (a restart), which stay until a save covers them', () => {
    const dir = freshDir()
    const a = new StateJournal(dir, noErrors)
    a.append({ hold: held(1) })
    a.close() // killed: nothing removed
    const b = new StateJournal(dir, noErrors)
    b.append({ hold: held(2) })
    expect(readJournal(dir).records).toEqual([{ hold: held(1) }, { hold: held(2) }])
    b.removeUpTo(b.rotate())
    expect(readdirSync(dir)).toEqual([])
    b.close()
  })

  it('skips a torn last line and lines that are not records, and counts them', () => {
    const dir = freshDir()
    const j = new StateJournal(dir, noErrors)
    j.append({ hold: held(1) })
    j.close()
    const file = join(dir, 'resources.journal.1')
    appendFileSync(file, '{"hold":{"port":"Ethernet0"}}\n[]\n{"drop":{"port":"Ethe')
    writeFileSync(join(dir, 'resources.journal.x'), 'not a segment')
    expect(readJournal(dir)).toEqual({ records: [{ hold: held(1) }], skipped: 3, segments: 1 })
  })

  it('reports a failed write once per segment and never throws', () => {
    const dir = join(freshDir(), 'missing')
    const errors: unknown[] = []
    const j = new StateJournal(dir, (e) => errors.push(e))
    j.append({ hold: held(1) })
    j.append({ hold: held(2) })
    expect(errors).toHaveLength(1)
    expect(String(errors[0])).toMatch(/ENOENT/)
    j.rotate()
    j.append({ hold: held(3) })
    expect(errors).toHaveLength(2)
    j.close()
  })
})

describe('applyJournal()', () => {
  it('later records win per VSI, removals remove, order of first appearance stays', () => {
    const file = [held(1), held(2), held(3)]
    const out = applyJournal(file, [{ hold: held(2, 101) }, drop(1), { hold: held(4) }, { hold: held(1, 102) }])
    expect(out).toEqual([held(2, 101), held(3), held(4), held(1, 102)])
  })

  it('replaying records the file already holds changes nothing (a crash between save and removal)', () => {
    const records: JournalRecord[] = [{ hold: held(1, 100, 'pre-associate') }, { hold: held(1) }, { hold: held(2) }, drop(2)]
    const once = applyJournal([], records)
    expect(once).toEqual([held(1)])
    expect(applyJournal(once, records)).toEqual(once)
  })

  it('keeps malformed file entries for the snapshot check to report', () => {
    expect(applyJournal([null, { port: 1 }], [{ hold: held(1) }])).toEqual([null, { port: 1 }, held(1)])
  })
})
