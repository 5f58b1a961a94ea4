/**
 * The write-ahead journal of the bridge's holdings, beside the coalesced state file.
 *
 * The state file (`resources.json`) is rewritten 20 ms to 1 s after a change. A process killed
 * inside that window would forget the newest VSIs, and a station that gave up on a keep-alive
 * during the outage (lldpad does) would lose them. So every change of what a VSI holds (a new
 * or changed VSI, a release) is appended here first, in the same synchronous step as the
 * decision and before the response is built: one `write()` of one JSON line, without `fsync`
 * (the page cache survives the death of the process; the state file's own save still syncs).
 *
 * Segments: `resources.journal.<n>`. Taking a snapshot for the state file starts a new segment
 * (`rotate()`, in the same turn as the snapshot); once the file is safely renamed, the segments
 * it covers are removed (`removeUpTo`). At start the file is read, then every segment in order
 * (`readJournal`). Records are whole VSIs or removals keyed by port and VSIID, so replaying a
 * segment the file already covers changes nothing.
 *
 * A torn last line (a kill inside `write()`) is skipped and counted; so is any line that does not
 * parse. Write errors are reported to `onError` and never stop the caller.
 *
 * @module
 */
import { closeSync, openSync, readdirSync, readFileSync, unlinkSync, writeSync } from 'node:fs'
import { join } from 'node:path'
import type { HeldVsi } from '../resources/resource-manager.ts'

export type JournalRecord =
  | { readonly hold: HeldVsi }
  | { readonly drop: { readonly port: string; readonly vsiId: string } }

const PREFIX = 'resources.journal.'

/** Segment numbers present in `dir`, ascending. */
function segments(dir: string): number[] {
  let names: string[]
  try {
    names = readdirSync(dir)
  } catch {
    return []
  }
  const out: number[] = []
  for (const name of names) {
    if (!name.startsWith(PREFIX)) continue
    const n = Number(name.slice(PREFIX.length))
    if (Number.isSafeInteger(n) && n >= 0) out.push(n)
  }
  return out.sort((a, b) => a - b)
}

function isRecord(v: unknown): v is JournalRecord {
  if (typeof v !== 'object' || v === null) return false
  const o = v as Record<string, unknown>
  if ('hold' in o) {
    const h = o['hold'] as Record<string, unknown> | null
    return typeof h === 'object' && h !== null && typeof h['port'] === 'string' && typeof h['vsiId'] === 'string'
  }
  if ('drop' in o) {
    const d = o['drop'] as Record<string, unknown> | null
    return typeof d === 'object' && d !== null && typeof d['port'] === 'string' && typeof d['vsiId'] === 'string'
  }
  return false
}

/** Every record of every segment in `dir`, oldest first, and how many lines were skipped. */
export function readJournal(dir: string): { records: JournalRecord[]; skipped: number; segments: number } {
  const records: JournalRecord[] = []
  let skipped = 0
  const found = segments(dir)
  for (const n of found) {
    let text: string
    try {
      text = readFileSync(join(dir, `${PREFIX}${n}`), 'utf8')
    } catch {
      continue
    }
    for (const line of text.split('\n')) {
      if (line === '') continue
      try {
        const v: unknown = JSON.parse(line)
        if (isRecord(v)) records.push(v)
        else skipped++
      } catch {
        skipped++
      }
    }
  }
  return { records, skipped, segments: found.length }
}

/**
 * Applies journal records to the VSI list of a state file (port|vsiId keys; a later record
 * wins; order of first appearance kept).
 */
export function applyJournal(vsis: readonly unknown[], records: readonly JournalRecord[]): unknown[] {
  const byKey = new Map<string, unknown>()
  let anonymous = 0
  for (const v of vsis) {
    const o = v as { port?: unknown; vsiId?: unknown } | null
    // Malformed entries are kept as they are: the snapshot check reports them.
    const key = typeof o === 'object' && o !== null && typeof o.port === 'string' && typeof o.vsiId === 'string' ? `${o.port}|${o.vsiId}` : `#${anonymous++}`
    byKey.set(key, v)
  }
  for (const r of records) {
    if ('hold' in r) byKey.set(`${r.hold.port}|${r.hold.vsiId}`, r.hold)
    else byKey.delete(`${r.drop.port}|${r.drop.vsiId}`)
  }
  return [...byKey.values()]
}

export class StateJournal {
  readonly #dir: string
  readonly #onError: (error: unknown) => void
  #segment: number
  #fd: number | undefined
  #failed = false

  /** Opens a new segment after the ones already in `dir` (they stay until a save covers them). */
  constructor(dir: string, onError: (error: unknown) => void) {
    this.#dir = dir
    this.#onError = onError
    this.#segment = (segments(dir).at(-1) ?? 0) + 1
  }

  /** Appends one record (opens the segment on first use). Errors go to `onError`, once per segment. */
  append(record: JournalRecord): void {
    try {
      this.#fd ??= openSync(join(this.#dir, `${PREFIX}${this.#segment}`), 'a', 0o600)
      writeSync(this.#fd, `${JSON.stringify(record)}\n`)
    } catch (e) {
      if (!this.#failed) this.#onError(e)
      this.#failed = true
    }
  }

  /**
   * Ends the current segment: a snapshot taken now covers it and every earlier one. Returns
   * its number, for `removeUpTo` once that snapshot is on disk.
   */
  rotate(): number {
    const done = this.#segment
    this.#closeFd()
    this.#segment++
    this.#failed = false
    return done
  }

  /** Removes segments up to `segment` (a snapshot on disk covers them). */
  removeUpTo(segment: number): void {
    for (const n of segments(this.#dir)) {
      if (n > segment) break
      try {
        unlinkSync(join(this.#dir, `${PREFIX}${n}`))
      } catch (e) {
        this.#onError(e)
      }
    }
  }

  close(): void {
    this.#closeFd()
  }

  #closeFd(): void {
    if (this.#fd === undefined) return
    try {
      closeSync(this.#fd)
    } catch (e) {
      this.#onError(e)
    }
    this.#fd = undefined
  }
}
