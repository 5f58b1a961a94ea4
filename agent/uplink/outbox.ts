/**
 * Durable event outbox of the agent: every event is on disk before the uplink publishes it, and
 * leaves the disk only when the broker has acknowledged it (PUBACK, QoS 1).
 *
 * On-disk format: one SQLite database `outbox.sqlite` in the agent's `--state-dir`
 * (better-sqlite3, `journal_mode=WAL`, `synchronous=FULL`). Chosen over a hand-written segment
 * log because SQLite's WAL already is a length-and-checksum framed append-only log with an
 * atomic commit marker: every WAL frame carries a cumulative checksum over its header and page,
 * and recovery replays frames only up to the last valid commit frame. A record torn by SIGKILL
 * or power loss therefore invalidates only the transaction being written, never an earlier
 * one (tested by truncating and corrupting the WAL at random offsets). `synchronous=FULL`
 * makes each commit fsync the WAL before `commit()` returns; deletes on PUBACK and the
 * sequence counter live in the same transactions, so there is no separate ack pointer that
 * could disagree with the log. Measured on the 2-core CI machine: a 200-row commit with fsync
 * takes about 0.7 ms.
 *
 * Local rules:
 * 1. `append()` stages a record in memory and schedules a group commit at the end of the
 *    current event-loop turn (one transaction, one fsync for everything staged). A record is
 *    handed to the uplink (`onCommitted`) only after that fsync: nothing unsynced is ever
 *    published. A caller that must have the event on disk before it acts (for example before
 *    answering the hypervisor) calls `commit()` synchronously.
 * 2. `ack(seq)` is staged and written by the next commit, or at the latest `ackCommitDelayMs`
 *    later (PUBACKs arrive one per event-loop turn; committing each alone would cost a
 *    transaction per event). A commit that only deletes runs with `synchronous=NORMAL`: it
 *    survives SIGKILL, and an ack lost in a power cut only means the record is published
 *    again; the consumer deduplicates by `(switchId, bootId, seq)`. The next commit with
 *    records fsyncs the WAL, acks included.
 * 3. Sequence numbers are allocated here, strictly increasing for the life of the state
 *    directory (so also within one boot), and persisted in the commit that stores the record.
 *    A seq allocated to a record lost before its commit may be reused after a crash; such a
 *    record was never published, so no consumer has seen it.
 * 4. Bounded: at most `outboxEventsMax` records and `outboxBytesMax` bytes of payload plus
 *    `RECORD_OVERHEAD_BYTES` each. When full, new events are refused (not the oldest dropped):
 *    `append()` returns `undefined`, `outbox_dropped_total` counts them, one warning is logged
 *    when the outbox becomes full and one info line when it has room again. Keeping the oldest
 *    keeps the stream a gap-free prefix; the agent's association snapshot, re-sent when the
 *    uplink reconnects or when `onResyncNeeded` fires (after an overflow), restores the state
 *    the refused events described. Nothing essential is lost, only intermediate history.
 *    The bound is on records; the files on disk are larger by SQLite's page overhead, by free
 *    pages (reused, never returned: no VACUUM) and by the WAL (checkpointed every 1000 pages,
 *    truncated to 16 MiB afterwards).
 *
 * @module
 */
import { mkdirSync } from 'node:fs'
import { join } from 'node:path'
import Database from 'better-sqlite3'

/** Fixed per-record allowance (row header, seq, index entry) counted against `outboxBytesMax`. */
export const RECORD_OVERHEAD_BYTES = 32

export interface OutboxConfig {
  /** Directory holding `outbox.sqlite` (the agent's `--state-dir`). */
  stateDir: string
  /** Bound on stored payload bytes (plus `RECORD_OVERHEAD_BYTES` per record). */
  outboxBytesMax?: number
  /** Bound on stored records. */
  outboxEventsMax?: number
  /** Commit staged records automatically at the end of the event-loop turn (default true). */
  autoCommit?: boolean
  /** Longest delay before staged acks alone are written (ms). */
  ackCommitDelayMs?: number
}

export const defaultOutboxConfig: Required<Omit<OutboxConfig, 'stateDir'>> = {
  outboxBytesMax: 256 * 1024 * 1024,
  outboxEventsMax: 1_000_000,
  autoCommit: true,
  ackCommitDelayMs: 20,
}

export function validateOutboxConfig(config: OutboxConfig): Required<OutboxConfig> {
  const c = { ...defaultOutboxConfig, ...config }
  if (typeof c.stateDir !== 'string' || c.stateDir === '') {
    throw new Error('Cannot open outbox: stateDir is empty')
  }
  if (!Number.isSafeInteger(c.outboxBytesMax) || c.outboxBytesMax < 1024) {
    throw new Error(`Cannot open outbox: outboxBytesMax ${c.outboxBytesMax} is not an integer >= 1024`)
  }
  if (!Number.isFinite(c.ackCommitDelayMs) || c.ackCommitDelayMs < 0 || c.ackCommitDelayMs > 10_000) {
    throw new Error(`Cannot open outbox: ackCommitDelayMs ${c.ackCommitDelayMs} is not in 0..10000`)
  }
  if (!Number.isSafeInteger(c.outboxEventsMax) || c.outboxEventsMax < 1) {
    throw new Error(`Cannot open outbox: outboxEventsMax ${c.outboxEventsMax} is not an integer >= 1`)
  }
  return c
}

/** Structured logger the uplink modules write to (the agent's logger fits). */
export interface UplinkLogger {
  debug?(msg: string, fields?: Record<string, unknown>): void
  info(msg: string, fields?: Record<string, unknown>): void
  warn(msg: string, fields?: Record<string, unknown>): void
  error(msg: string, fields?: Record<string, unknown>): void
}

export const silentLogger: UplinkLogger = { info() {}, warn() {}, error() {} }

export interface OutboxRecord {
  /** Outbox sequence number; the event inside `payload` carries the same value. */
  readonly seq: number
  /** The encoded event, opaque to the outbox. */
  readonly payload: Uint8Array
}

export interface OutboxMetrics {
  /** Gauge: records stored and not yet acknowledged (staged ones included). */
  outbox_events: number
  /** Gauge: bytes counted against `outboxBytesMax`. */
  outbox_bytes: number
  outbox_appended_total: number
  outbox_acked_total: number
  /** Events refused because the outbox was full. */
  outbox_dropped_total: number
  outbox_commits_total: number
  /** Gauge: 1 while the outbox refuses events. */
  outbox_full: number
}

const SCHEMA = `
CREATE TABLE IF NOT EXISTS events (seq INTEGER PRIMARY KEY, payload BLOB NOT NULL) STRICT;
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value ANY NOT NULL) STRICT;
CREATE TABLE IF NOT EXISTS replies (n INTEGER PRIMARY KEY, command_id TEXT NOT NULL UNIQUE, payload BLOB NOT NULL) STRICT;
`

/** Command replies kept on disk (the newest; older ones are deleted as new ones come). */
export const COMMAND_REPLIES_KEPT = 1024

export class Outbox {
  readonly #db: Database.Database
  readonly #config: Required<OutboxConfig>
  readonly #log: UplinkLogger
  readonly #insert: Database.Statement
  readonly #delete: Database.Statement
  readonly #setNextSeq: Database.Statement
  readonly #commitTx: (records: OutboxRecord[], acks: number[], nextSeq: number) => void
  /** Committed and not acknowledged, in seq order (Map keeps insertion order). */
  readonly #committed = new Map<number, Uint8Array>()
  #staged: OutboxRecord[] = []
  #stagedAcks: number[] = []
  #nextSeq: number
  #bytes = 0
  #commitScheduled = false
  #ackTimer: NodeJS.Timeout | undefined
  #closed = false
  #full = false
  #droppedSinceFull = 0
  readonly #metrics: OutboxMetrics = {
    outbox_events: 0,
    outbox_bytes: 0,
    outbox_appended_total: 0,
    outbox_acked_total: 0,
    outbox_dropped_total: 0,
    outbox_commits_total: 0,
    outbox_full: 0,
  }
  #onCommitted: ((records: readonly OutboxRecord[]) => void) | undefined
  #onResyncNeeded: (() => void) | undefined

  private constructor(config: Required<OutboxConfig>, log: UplinkLogger) {
    this.#config = config
    this.#log = log
    mkdirSync(config.stateDir, { recursive: true })
    this.#db = new Database(join(config.stateDir, 'outbox.sqlite'))
    this.#db.pragma('journal_mode = WAL')
    this.#db.pragma('synchronous = FULL')
    // After a checkpoint the WAL file is truncated to this size (it grows during an outage).
    this.#db.pragma('journal_size_limit = 16777216')
    this.#db.exec(SCHEMA)
    this.#insert = this.#db.prepare('INSERT OR REPLACE INTO events (seq, payload) VALUES (?, ?)')
    this.#delete = this.#db.prepare('DELETE FROM events WHERE seq = ?')
    this.#setNextSeq = this.#db.prepare(
      "INSERT INTO meta (key, value) VALUES ('next_seq', ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
    )
    this.#commitTx = this.#db.transaction((records: OutboxRecord[], acks: number[], nextSeq: number) => {
      for (const r of records) this.#insert.run(r.seq, r.payload)
      for (const seq of acks) this.#delete.run(seq)
      this.#setNextSeq.run(nextSeq)
    })
    const meta = this.#db.prepare("SELECT value FROM meta WHERE key = 'next_seq'").get() as
      | { value: number }
      | undefined
    const maxRow = this.#db.prepare('SELECT MAX(seq) AS m FROM events').get() as { m: number | null }
    this.#nextSeq = Math.max(meta?.value ?? 1, (maxRow.m ?? 0) + 1)
    for (const row of this.#db.prepare('SELECT seq, payload FROM events ORDER BY seq').iterate() as Iterable<{
      seq: number
      payload: Buffer
    }>) {
      const payload = new Uint8Array(row.payload.buffer, row.payload.byteOffset, row.payload.byteLength)
      this.#committed.set(row.seq, payload)
      this.#bytes += payload.byteLength + RECORD_OVERHEAD_BYTES
    }
    this.#updateGauges()
    if (this.#committed.size > 0) {
      log.info('Outbox opened with unacknowledged events', {
        events: this.#committed.size,
        bytes: this.#bytes,
        nextSeq: this.#nextSeq,
      })
    }
  }

  /**
   * Opens (or creates) the outbox in `config.stateDir`.
   * @example
   * ```ts
   * const outbox = Outbox.open({ stateDir: '/var/lib/vdp-agent' })
   * const seq = outbox.append((seq) => encodeEvent({ ...event, switchId, bootId, seq }))
   * ```
   */
  static open(config: OutboxConfig, log: UplinkLogger = silentLogger): Outbox {
    return new Outbox(validateOutboxConfig(config), log)
  }

  /** Called with the records of each commit, after their fsync, in seq order. */
  onCommitted(handler: (records: readonly OutboxRecord[]) => void): void {
    this.#onCommitted = handler
  }

  /** Called once when the outbox has room again after refusing events: re-send a snapshot. */
  onResyncNeeded(handler: () => void): void {
    this.#onResyncNeeded = handler
  }

  /** A small value kept beside the records (e.g. the uplink's boot and first seq of the boot). */
  getMeta(key: string): string | number | undefined {
    this.#assertOpen()
    const row = this.#db.prepare('SELECT value FROM meta WHERE key = ?').get(key) as { value: string | number } | undefined
    return row?.value
  }

  /** Stores a meta value durably now (own transaction and fsync; for rare changes only). */
  setMeta(key: string, value: string | number): void {
    this.#assertOpen()
    if (key === 'next_seq') throw new Error('Cannot set meta "next_seq": it is owned by the outbox')
    this.#db
      .prepare('INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value')
      .run(key, value)
  }

  /** The reply kept for a command id (`putReply`), if any. */
  getReply(commandId: string): Uint8Array | undefined {
    this.#assertOpen()
    const row = this.#db.prepare('SELECT payload FROM replies WHERE command_id = ?').get(commandId) as { payload: Buffer } | undefined
    return row === undefined ? undefined : new Uint8Array(row.payload.buffer, row.payload.byteOffset, row.payload.byteLength)
  }

  /**
   * Keeps a command's reply durably now (own transaction and fsync): a command executed once
   * is answered from here after an agent restart. Keeps the newest `COMMAND_REPLIES_KEPT`.
   */
  putReply(commandId: string, payload: Uint8Array): void {
    this.#assertOpen()
    this.#db.transaction(() => {
      const r = this.#db.prepare('INSERT OR REPLACE INTO replies (command_id, payload) VALUES (?, ?)').run(commandId, payload)
      this.#db.prepare('DELETE FROM replies WHERE n <= ?').run(Number(r.lastInsertRowid) - COMMAND_REPLIES_KEPT)
    })()
  }

  /** The next sequence number `append()` will allocate. */
  get nextSeq(): number {
    return this.#nextSeq
  }

  /** True while new events are refused. */
  get full(): boolean {
    return this.#full
  }

  /**
   * Allocates the next seq, builds the payload with it and stages the record for the next
   * group commit. Returns the seq, or `undefined` when the outbox is full (event refused).
   */
  append(build: (seq: number) => Uint8Array): number | undefined {
    this.#assertOpen()
    const seq = this.#nextSeq
    const payload = build(seq)
    const size = payload.byteLength + RECORD_OVERHEAD_BYTES
    if (
      this.#committed.size + this.#staged.length >= this.#config.outboxEventsMax ||
      this.#bytes + size > this.#config.outboxBytesMax
    ) {
      this.#refuse()
      return undefined
    }
    this.#nextSeq = seq + 1
    this.#staged.push({ seq, payload })
    this.#bytes += size
    this.#metrics.outbox_appended_total++
    this.#schedule()
    return seq
  }

  /** Marks a record acknowledged by the broker; removed from disk with the next commit. */
  ack(seq: number): void {
    this.#assertOpen()
    const payload = this.#committed.get(seq)
    if (payload === undefined) return
    this.#committed.delete(seq)
    this.#bytes -= payload.byteLength + RECORD_OVERHEAD_BYTES
    this.#stagedAcks.push(seq)
    this.#metrics.outbox_acked_total++
    this.#scheduleAcks()
    if (this.#full && this.#hasRoomAfterOverflow()) this.#clearFull()
  }

  /** Writes everything staged in one transaction and fsyncs it; then notifies `onCommitted`. */
  commit(): void {
    this.#assertOpen()
    this.#commitScheduled = false
    if (this.#ackTimer !== undefined) {
      clearTimeout(this.#ackTimer)
      this.#ackTimer = undefined
    }
    if (this.#staged.length === 0 && this.#stagedAcks.length === 0) return
    const records = this.#staged
    const acks = this.#stagedAcks
    this.#staged = []
    this.#stagedAcks = []
    try {
      if (records.length === 0) {
        // Deletes only: no fsync needed (rule 2).
        this.#db.pragma('synchronous = NORMAL')
        try {
          this.#commitTx(records, acks, this.#nextSeq)
        } finally {
          this.#db.pragma('synchronous = FULL')
        }
      } else {
        this.#commitTx(records, acks, this.#nextSeq)
      }
    } catch (err) {
      // Nothing of the transaction is on disk: keep everything staged, in order, for a retry.
      this.#staged = records.concat(this.#staged)
      this.#stagedAcks = acks.concat(this.#stagedAcks)
      throw err
    }
    this.#metrics.outbox_commits_total++
    for (const r of records) this.#committed.set(r.seq, r.payload)
    this.#updateGauges()
    if (records.length > 0) this.#onCommitted?.(records)
  }

  /** Committed, unacknowledged records in seq order (what to publish after a restart). */
  unacked(): OutboxRecord[] {
    const out: OutboxRecord[] = []
    for (const [seq, payload] of this.#committed) out.push({ seq, payload })
    return out
  }

  /** True if `seq` is committed and not acknowledged. */
  has(seq: number): boolean {
    return this.#committed.has(seq)
  }

  metrics(): Readonly<OutboxMetrics> {
    this.#updateGauges()
    return { ...this.#metrics }
  }

  /** Commits what is staged and closes the database (checkpointing the WAL). */
  close(): void {
    if (this.#closed) return
    this.commit()
    this.#closed = true
    this.#db.close()
  }

  #schedule(): void {
    if (!this.#config.autoCommit || this.#commitScheduled) return
    this.#commitScheduled = true
    setImmediate(() => {
      if (this.#closed || !this.#commitScheduled) return
      try {
        this.commit()
      } catch (err) {
        // A failing disk: keep the records staged in memory and retry on the next append/ack.
        this.#log.error('Cannot commit outbox: write failed', { error: String(err) })
      }
    })
  }

  #scheduleAcks(): void {
    if (!this.#config.autoCommit || this.#ackTimer !== undefined || this.#commitScheduled) return
    if (this.#stagedAcks.length >= 4096) {
      this.#schedule()
      return
    }
    this.#ackTimer = setTimeout(() => {
      this.#ackTimer = undefined
      if (this.#closed) return
      try {
        this.commit()
      } catch (err) {
        this.#log.error('Cannot commit outbox: write failed', { error: String(err) })
      }
    }, this.#config.ackCommitDelayMs)
  }

  #refuse(): void {
    this.#metrics.outbox_dropped_total++
    this.#droppedSinceFull++
    if (!this.#full) {
      this.#full = true
      this.#log.warn('Outbox full: refusing new events until the broker acknowledges some', {
        events: this.#committed.size + this.#staged.length,
        bytes: this.#bytes,
        outboxEventsMax: this.#config.outboxEventsMax,
        outboxBytesMax: this.#config.outboxBytesMax,
      })
    }
  }

  /** Hysteresis: leave the full state only at 90 % so the warning does not flap. */
  #hasRoomAfterOverflow(): boolean {
    const events = this.#committed.size + this.#staged.length
    return events <= this.#config.outboxEventsMax * 0.9 && this.#bytes <= this.#config.outboxBytesMax * 0.9
  }

  #clearFull(): void {
    this.#full = false
    this.#log.info('Outbox has room again: events are accepted; association snapshot needed', {
      refusedEvents: this.#droppedSinceFull,
    })
    this.#droppedSinceFull = 0
    this.#onResyncNeeded?.()
  }

  #updateGauges(): void {
    this.#metrics.outbox_events = this.#committed.size + this.#staged.length
    this.#metrics.outbox_bytes = this.#bytes
    this.#metrics.outbox_full = this.#full ? 1 : 0
  }

  #assertOpen(): void {
    if (this.#closed) throw new Error('Cannot use outbox: it is closed')
  }
}
