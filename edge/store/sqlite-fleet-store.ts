/**
 * `FleetStore` on embedded SQLite (better-sqlite3): WAL journal, prepared statements, one
 * transaction per event batch. Records are JSON text; lookups go through narrow index tables
 * (MAC, IP, place) kept in the same transaction as the record.
 *
 * Durability: with `synchronous = FULL` (the default) a batch that `applyEvents` returned
 * from is on disk, across a kill -9 of the process and a power loss; `NORMAL` keeps it across
 * a process kill only (WAL mode) and is faster.
 *
 * @module
 */
import { mkdirSync } from 'node:fs'
import { dirname } from 'node:path'
import Database from 'better-sqlite3'
import { isVsiEvent, type FleetEvent } from '../../shared/api/events.ts'
import type { SwitchId, VsiIdHex } from '../../shared/ids.ts'
import type { SwitchRecord, VsiRecord } from './model.ts'
import {
  BaseFleetStore,
  type Collection,
  type CommandQuery,
  type CommandRecord,
  type EventQuery,
  type MigrationEntry,
  type StoredEvent,
  type VsiIndex,
  type VsiQuery,
} from './fleet-store.ts'
import { defaultReducerLimits, type ReducerLimits } from './reducers.ts'

export interface SqliteFleetStoreOptions {
  /** Database file, or ':memory:'. */
  path: string
  synchronous?: 'FULL' | 'NORMAL'
  /** SQLite page cache (default 64 MiB). */
  cacheSizeMb?: number
  /** Memory-mapped reads (default 2048 MiB): lookups skip a read() per page. */
  mmapSizeMb?: number
  limits?: ReducerLimits
  /**
   * Open an existing database read-only (an HTTP worker beside the writer process): no
   * schema changes, no pragmas that write, and every write throws `SQLITE_READONLY`. The
   * switch cache is then checked against `PRAGMA data_version`, which changes when another
   * connection commits.
   */
  readonly?: boolean
}

const SCHEMA = `
CREATE TABLE IF NOT EXISTS events (
  cursor INTEGER PRIMARY KEY AUTOINCREMENT,
  switch_id TEXT NOT NULL, boot_id TEXT NOT NULL, seq INTEGER NOT NULL,
  kind TEXT NOT NULL, vsi_id TEXT, received_at INTEGER NOT NULL, body TEXT NOT NULL,
  UNIQUE (switch_id, boot_id, seq)
);
CREATE INDEX IF NOT EXISTS events_vsi ON events (vsi_id, cursor) WHERE vsi_id IS NOT NULL;
CREATE INDEX IF NOT EXISTS events_switch ON events (switch_id, cursor);
CREATE TABLE IF NOT EXISTS vsis (
  vsi_id TEXT PRIMARY KEY, state TEXT NOT NULL, vni INTEGER, due_at INTEGER, record TEXT NOT NULL,
  ix TEXT -- the MACs, IPs and places last written to the index tables (JSON)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS vsis_vni ON vsis (vni, vsi_id);
CREATE INDEX IF NOT EXISTS vsis_due ON vsis (due_at) WHERE due_at IS NOT NULL;
CREATE TABLE IF NOT EXISTS vsi_macs (mac TEXT NOT NULL, vsi_id TEXT NOT NULL, PRIMARY KEY (mac, vsi_id)) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS vsi_macs_vsi ON vsi_macs (vsi_id);
CREATE TABLE IF NOT EXISTS vsi_ips (ip TEXT NOT NULL, vsi_id TEXT NOT NULL, PRIMARY KEY (ip, vsi_id)) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS vsi_ips_vsi ON vsi_ips (vsi_id);
CREATE TABLE IF NOT EXISTS vsi_places (
  switch_id TEXT NOT NULL, port TEXT NOT NULL, vsi_id TEXT NOT NULL, PRIMARY KEY (switch_id, port, vsi_id)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS vsi_places_vsi ON vsi_places (vsi_id);
CREATE TABLE IF NOT EXISTS migrations (
  vsi_id TEXT NOT NULL, ordinal INTEGER NOT NULL, started_at INTEGER NOT NULL, record TEXT NOT NULL,
  PRIMARY KEY (vsi_id, ordinal)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS migrations_started ON migrations (started_at);
CREATE TABLE IF NOT EXISTS switches (switch_id TEXT PRIMARY KEY, record TEXT NOT NULL) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS docs (collection TEXT NOT NULL, id TEXT NOT NULL, body TEXT NOT NULL, PRIMARY KEY (collection, id)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS commands (
  command_id TEXT PRIMARY KEY, issued_at INTEGER NOT NULL, body TEXT NOT NULL
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS commands_issued ON commands (issued_at);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL) WITHOUT ROWID;
`

/**
 * A bound row count: never a bare `LIMIT ?`. SQLite (3.53) plans with the value bound to a bare
 * `LIMIT ?`, so every new binding expires the statement and the next run prepares it again;
 * that re-prepare was half of SQLite's time in a lookup by MAC (edge-lookup bench, 1,000,000
 * VSIs). It does not look into an expression. Callers bind integers, which the cast keeps.
 */
const LIMIT_BOUND = 'LIMIT CAST(? AS INTEGER)'

export class SqliteFleetStore extends BaseFleetStore {
  readonly db: Database.Database
  private readonly s
  /**
   * Switch records (a few hundred at most), read through: records are never mutated in
   * place, and a failed transaction clears it. A writer is the database's only writer; a
   * read-only store drops it whenever `data_version` says another connection committed.
   */
  private readonly switches = new Map<string, SwitchRecord>()
  private readonly dataVersion: Database.Statement | undefined
  private seenDataVersion = -1
  /** Statements of the filter combinations seen so far (a few dozen at most). */
  private readonly adHoc = new Map<string, Database.Statement>()

  private prepared(sql: string): Database.Statement {
    let st = this.adHoc.get(sql)
    if (!st) this.adHoc.set(sql, (st = this.db.prepare(sql)))
    return st
  }

  constructor(options: SqliteFleetStoreOptions) {
    super(options.limits ?? defaultReducerLimits)
    if (options.path !== ':memory:') mkdirSync(dirname(options.path), { recursive: true })
    if (options.readonly && options.path === ':memory:') throw new Error('Cannot open :memory: read-only: it has no writer to share it with')
    this.db = new Database(options.path, options.readonly ? { readonly: true, fileMustExist: true } : {})
    if (!options.readonly) {
      this.db.pragma('journal_mode = WAL')
      this.db.pragma(`synchronous = ${options.synchronous ?? 'FULL'}`)
    }
    this.db.pragma(`cache_size = ${-1024 * (options.cacheSizeMb ?? 64)}`)
    this.db.pragma(`mmap_size = ${1024 * 1024 * (options.mmapSizeMb ?? 2048)}`)
    this.db.pragma('foreign_keys = OFF')
    if (!options.readonly) {
      this.db.exec(SCHEMA)
      const columns = this.db.prepare('PRAGMA table_info(vsis)').all() as { name: string }[]
      if (!columns.some((c) => c.name === 'ix')) this.db.exec('ALTER TABLE vsis ADD COLUMN ix TEXT')
      migrateCommandStates(this.db)
    } else {
      this.dataVersion = this.db.prepare('PRAGMA data_version').pluck()
    }
    const db = this.db
    this.s = {
      hasEvent: db.prepare('SELECT 1 FROM events WHERE switch_id = ? AND boot_id = ? AND seq = ?').pluck(),
      insertEvent: db.prepare(
        'INSERT INTO events (switch_id, boot_id, seq, kind, vsi_id, received_at, body) VALUES (?, ?, ?, ?, ?, ?, ?)',
      ),
      loadVsi: db.prepare('SELECT record FROM vsis WHERE vsi_id = ?').pluck(),
      upsertVsi: db.prepare(
        'INSERT INTO vsis (vsi_id, state, vni, due_at, record, ix) VALUES (?, ?, ?, ?, ?, ?) ' +
          'ON CONFLICT (vsi_id) DO UPDATE SET state = excluded.state, vni = excluded.vni, due_at = excluded.due_at, ' +
          'record = excluded.record, ix = excluded.ix',
      ),
      indexOf: db.prepare('SELECT ix FROM vsis WHERE vsi_id = ?').raw(),
      delMacs: db.prepare('DELETE FROM vsi_macs WHERE vsi_id = ?'),
      delIps: db.prepare('DELETE FROM vsi_ips WHERE vsi_id = ?'),
      delPlaces: db.prepare('DELETE FROM vsi_places WHERE vsi_id = ?'),
      insMac: db.prepare('INSERT OR IGNORE INTO vsi_macs (mac, vsi_id) VALUES (?, ?)'),
      insIp: db.prepare('INSERT OR IGNORE INTO vsi_ips (ip, vsi_id) VALUES (?, ?)'),
      insPlace: db.prepare('INSERT OR IGNORE INTO vsi_places (switch_id, port, vsi_id) VALUES (?, ?, ?)'),
      upsertMigration: db.prepare(
        'INSERT INTO migrations (vsi_id, ordinal, started_at, record) VALUES (?, ?, ?, ?) ' +
          'ON CONFLICT (vsi_id, ordinal) DO UPDATE SET record = excluded.record',
      ),
      loadSwitch: db.prepare('SELECT record FROM switches WHERE switch_id = ?').pluck(),
      saveSwitch: db.prepare(
        'INSERT INTO switches (switch_id, record) VALUES (?, ?) ON CONFLICT (switch_id) DO UPDATE SET record = excluded.record',
      ),
      allSwitches: db.prepare('SELECT record FROM switches').pluck(),
      onSwitch: db.prepare('SELECT DISTINCT vsi_id FROM vsi_places WHERE switch_id = ?').pluck(),
      due: db.prepare(`SELECT vsi_id FROM vsis WHERE due_at IS NOT NULL AND due_at <= ? ORDER BY due_at ${LIMIT_BOUND}`).pluck(),
      byMac: db
        .prepare(
          `SELECT v.record FROM vsi_macs m JOIN vsis v ON v.vsi_id = m.vsi_id WHERE m.mac = ? AND m.vsi_id > ? ORDER BY m.vsi_id ${LIMIT_BOUND}`,
        )
        .pluck(),
      byIp: db
        .prepare(
          `SELECT v.record FROM vsi_ips i JOIN vsis v ON v.vsi_id = i.vsi_id WHERE i.ip = ? AND i.vsi_id > ? ORDER BY i.vsi_id ${LIMIT_BOUND}`,
        )
        .pluck(),
      recentMigrations: db.prepare(`SELECT vsi_id, record FROM migrations ORDER BY started_at DESC ${LIMIT_BOUND}`).raw(),
      getDoc: db.prepare('SELECT body FROM docs WHERE collection = ? AND id = ?').pluck(),
      putDoc: db.prepare(
        'INSERT INTO docs (collection, id, body) VALUES (?, ?, ?) ON CONFLICT (collection, id) DO UPDATE SET body = excluded.body',
      ),
      deleteDoc: db.prepare('DELETE FROM docs WHERE collection = ? AND id = ?'),
      listDocs: db.prepare('SELECT body FROM docs WHERE collection = ?').pluck(),
      incMeta: db.prepare(
        'INSERT INTO meta (key, value) VALUES (?, 1) ON CONFLICT (key) DO UPDATE SET value = value + 1 RETURNING value',
      ).pluck(),
      putCommand: db.prepare(
        'INSERT INTO commands (command_id, issued_at, body, switch_id, state) VALUES (?, ?, ?, ?, ?) ' +
          'ON CONFLICT (command_id) DO UPDATE SET body = excluded.body, state = excluded.state',
      ),
      getCommand: db.prepare('SELECT body FROM commands WHERE command_id = ?').pluck(),
      openCommands: db
        .prepare(`SELECT body FROM commands WHERE state IN ('pending', 'delivered') ORDER BY issued_at ${LIMIT_BOUND}`)
        .pluck(),
      openCommandsOf: db
        .prepare(`SELECT body FROM commands WHERE state IN ('pending', 'delivered') AND switch_id = ? ORDER BY issued_at ${LIMIT_BOUND}`)
        .pluck(),
      countVsis: db.prepare('SELECT count(*) FROM vsis').pluck(),
      countSwitches: db.prepare('SELECT count(*) FROM switches').pluck(),
      maxCursor: db.prepare("SELECT coalesce(max(cursor), 0) FROM events").pluck(),
    }
  }

  protected transaction<T>(fn: () => T): T {
    if (this.db.inTransaction) return fn()
    try {
      return this.db.transaction(fn).immediate()
    } catch (err) {
      this.switches.clear() // may hold records of the rolled-back transaction
      throw err
    }
  }

  protected appendEvent(e: FleetEvent, receivedAt: number): boolean {
    // A lookup first, not INSERT OR IGNORE: an ignored insert still advances AUTOINCREMENT.
    if (this.s.hasEvent.get(e.switchId, e.bootId, e.seq) !== undefined) return false
    this.s.insertEvent.run(e.switchId, e.bootId, e.seq, e.kind, isVsiEvent(e) ? e.vsiId : null, receivedAt, JSON.stringify(e))
    return true
  }

  protected loadVsi(vsiId: VsiIdHex): VsiRecord | undefined {
    const text = this.s.loadVsi.get(vsiId) as string | undefined
    return text === undefined ? undefined : (JSON.parse(text) as VsiRecord)
  }

  protected saveVsi(record: VsiRecord, ix: VsiIndex): void {
    const id = record.vsiId
    const wanted: IndexKeys = [
      [...ix.macs].sort(),
      [...ix.ips].sort(),
      ix.places.map(([sw, port]) => `${sw}\u0000${port}`).sort(),
    ]
    const wantedText = JSON.stringify(wanted)
    const row = this.s.indexOf.get(id) as [string | null] | undefined
    this.s.upsertVsi.run(id, ix.state, ix.vni ?? null, ix.dueAt ?? null, JSON.stringify(record), wantedText)
    // Rewrite an index table only when its part changed: most events (keep-alives,
    // re-associations) leave MACs, IPs and places as they were.
    if (row?.[0] !== wantedText) {
      const prior: IndexKeys | undefined = row === undefined ? [[], [], []] : row[0] === null ? undefined : JSON.parse(row[0])
      const changed = (i: 0 | 1 | 2) => prior === undefined || JSON.stringify(prior[i]) !== JSON.stringify(wanted[i])
      if (changed(0)) {
        if (row) this.s.delMacs.run(id)
        for (const m of ix.macs) this.s.insMac.run(m, id)
      }
      if (changed(1)) {
        if (row) this.s.delIps.run(id)
        for (const ip of ix.ips) this.s.insIp.run(ip, id)
      }
      if (changed(2)) {
        if (row) this.s.delPlaces.run(id)
        for (const [sw, port] of ix.places) this.s.insPlace.run(sw, port, id)
      }
    }
    for (const m of record.migrations) this.s.upsertMigration.run(id, m.ordinal, m.startedAt, JSON.stringify(m))
  }

  protected loadSwitch(switchId: SwitchId): SwitchRecord | undefined {
    if (this.dataVersion) {
      const version = this.dataVersion.get() as number
      if (version !== this.seenDataVersion) {
        this.switches.clear()
        this.seenDataVersion = version
      }
    }
    let r = this.switches.get(switchId)
    if (r === undefined) {
      const text = this.s.loadSwitch.get(switchId) as string | undefined
      if (text === undefined) return undefined
      r = JSON.parse(text) as SwitchRecord
      this.switches.set(switchId, r)
    }
    return r
  }

  protected saveSwitch(record: SwitchRecord): void {
    this.s.saveSwitch.run(record.switchId, JSON.stringify(record))
    this.switches.set(record.switchId, record)
  }

  protected allSwitches(): SwitchRecord[] {
    return (this.s.allSwitches.all() as string[]).map((t) => JSON.parse(t) as SwitchRecord)
  }

  protected vsiIdsOnSwitch(switchId: SwitchId): VsiIdHex[] {
    return this.s.onSwitch.all(switchId) as VsiIdHex[]
  }

  protected dueVsiIds(nowMs: number, limit: number): VsiIdHex[] {
    return this.s.due.all(nowMs, limit) as VsiIdHex[]
  }

  protected findVsiRecords(q: VsiQuery): VsiRecord[] {
    const after = q.after ?? ''
    const parse = (rows: unknown[]) => (rows as string[]).map((t) => JSON.parse(t) as VsiRecord)
    // Fast paths for the common single-key lookups.
    if (q.mac !== undefined && q.ip === undefined && q.vni === undefined && q.switchId === undefined && q.state === undefined) {
      return parse(this.s.byMac.all(q.mac, after, q.limit))
    }
    if (q.ip !== undefined && q.mac === undefined && q.vni === undefined && q.switchId === undefined && q.state === undefined) {
      return parse(this.s.byIp.all(q.ip, after, q.limit))
    }
    const where = ['v.vsi_id > ?']
    const args: unknown[] = [after]
    if (q.mac !== undefined) {
      where.push('v.vsi_id IN (SELECT vsi_id FROM vsi_macs WHERE mac = ?)')
      args.push(q.mac)
    }
    if (q.ip !== undefined) {
      where.push('v.vsi_id IN (SELECT vsi_id FROM vsi_ips WHERE ip = ?)')
      args.push(q.ip)
    }
    if (q.vni !== undefined) {
      where.push('v.vni = ?')
      args.push(q.vni)
    }
    if (q.switchId !== undefined) {
      where.push(
        q.port !== undefined
          ? 'v.vsi_id IN (SELECT vsi_id FROM vsi_places WHERE switch_id = ? AND port = ?)'
          : 'v.vsi_id IN (SELECT vsi_id FROM vsi_places WHERE switch_id = ?)',
      )
      args.push(q.switchId)
      if (q.port !== undefined) args.push(q.port)
    }
    if (q.state !== undefined) {
      where.push('v.state = ?')
      args.push(q.state)
    }
    args.push(q.limit)
    const sql = `SELECT v.record FROM vsis v WHERE ${where.join(' AND ')} ORDER BY v.vsi_id ${LIMIT_BOUND}`
    return parse(this.prepared(sql).pluck().all(...args))
  }

  recentMigrations(limit: number): MigrationEntry[] {
    return (this.s.recentMigrations.all(limit) as [VsiIdHex, string][]).map(([vsiId, r]) => ({
      vsiId,
      migration: JSON.parse(r),
    }))
  }

  listEvents(q: EventQuery): StoredEvent[] {
    const where = ['cursor > ?']
    const args: unknown[] = [q.after ?? 0]
    if (q.switchId !== undefined) {
      where.push('switch_id = ?')
      args.push(q.switchId)
    }
    if (q.vsiId !== undefined) {
      where.push('vsi_id = ?')
      args.push(q.vsiId)
    }
    if (q.kind !== undefined) {
      where.push('kind = ?')
      args.push(q.kind)
    }
    args.push(q.limit)
    const rows = this.prepared(`SELECT cursor, received_at, body FROM events WHERE ${where.join(' AND ')} ORDER BY cursor ${LIMIT_BOUND}`)
      .raw()
      .all(...args) as [number, number, string][]
    return rows.map(([cursor, receivedAt, body]) => ({ cursor, receivedAt, event: JSON.parse(body) as FleetEvent }))
  }

  counts(): { vsis: number; switches: number; events: number } {
    return {
      vsis: this.s.countVsis.get() as number,
      switches: this.s.countSwitches.get() as number,
      events: this.s.maxCursor.get() as number,
    }
  }

  protected getDoc<T>(collection: Collection, id: string): T | undefined {
    const t = this.s.getDoc.get(collection, id) as string | undefined
    return t === undefined ? undefined : (JSON.parse(t) as T)
  }
  protected putDoc(collection: Collection, id: string, doc: unknown): void {
    this.s.putDoc.run(collection, id, JSON.stringify(doc))
  }
  protected deleteDoc(collection: Collection, id: string): boolean {
    return this.s.deleteDoc.run(collection, id).changes > 0
  }
  protected listDocs<T>(collection: Collection): T[] {
    return (this.s.listDocs.all(collection) as string[]).map((t) => JSON.parse(t) as T)
  }
  protected incrementMeta(key: string): number {
    return this.s.incMeta.get(key) as number
  }

  protected saveCommand(r: CommandRecord): void {
    this.s.putCommand.run(r.command.commandId, r.command.issuedAt, JSON.stringify(r), r.command.switchId, r.state)
  }
  protected loadCommand(commandId: string): CommandRecord | undefined {
    const t = this.s.getCommand.get(commandId) as string | undefined
    return t === undefined ? undefined : (JSON.parse(t) as CommandRecord)
  }
  openCommands(switchId?: SwitchId, limit = -1): CommandRecord[] {
    const rows = switchId === undefined ? this.s.openCommands.all(limit) : this.s.openCommandsOf.all(switchId, limit)
    return (rows as string[]).map((t) => JSON.parse(t) as CommandRecord)
  }
  listCommands(q: CommandQuery): CommandRecord[] {
    const where: string[] = []
    const args: unknown[] = []
    if (q.state !== undefined) {
      where.push('state = ?')
      args.push(q.state)
    }
    if (q.switchId !== undefined) {
      where.push('switch_id = ?')
      args.push(q.switchId)
    }
    const sql = `SELECT body FROM commands ${where.length ? `WHERE ${where.join(' AND ')}` : ''} ORDER BY issued_at DESC ${LIMIT_BOUND}`
    return (this.prepared(sql).pluck().all(...args, q.limit) as string[]).map((t) => JSON.parse(t) as CommandRecord)
  }

  close(): void {
    if (this.db.open) this.db.close()
  }
}

/**
 * Commands gained a state (pending, delivered, answered, expired) with the switch id beside
 * it for the re-send query. A database from before gets the columns; its commands without a
 * reply become `pending` (and expire at the first sweep when old), answered ones `answered`.
 */
function migrateCommandStates(db: Database.Database): void {
  const columns = db.prepare('PRAGMA table_info(commands)').all() as { name: string }[]
  if (!columns.some((c) => c.name === 'state')) {
    db.exec(`
      ALTER TABLE commands ADD COLUMN switch_id TEXT;
      ALTER TABLE commands ADD COLUMN state TEXT;
      UPDATE commands SET
        switch_id = json_extract(body, '$.command.switchId'),
        state = CASE WHEN json_extract(body, '$.reply') IS NULL THEN 'pending' ELSE 'answered' END,
        body = json_set(body,
          '$.state', CASE WHEN json_extract(body, '$.reply') IS NULL THEN 'pending' ELSE 'answered' END,
          '$.stateAt', issued_at, '$.resends', 0);
    `)
  }
  db.exec("CREATE INDEX IF NOT EXISTS commands_open ON commands (switch_id, issued_at) WHERE state IN ('pending', 'delivered')")
}

/** Sorted MACs, IPs and `switch\0port` places, as kept in `vsis.ix`. */
type IndexKeys = [string[], string[], string[]]
