/**
 * SONiC data-plane driver: writes CONFIG_DB (Redis DB 4) exactly as SONiC's own tools do, and
 * live VSI state to STATE_DB (DB 6). orchagent/vlanmgrd/vxlanorch pick the changes up from
 * there; the agent never talks to the ASIC.
 *
 * Keys and fields, as written by sonic-utilities (read from sonic-net/sonic-utilities):
 *
 * | What | Key (separator `|`) | Fields | Source |
 * |------|---------------------|--------|--------|
 * | VLAN | `VLAN|Vlan100` | `vlanid` = `"100"` | `config/vlan.py` `add_vlan`: `set_entry('VLAN', 'Vlan{vid}', {'vlanid': str(vid)})` |
 * | tagged member | `VLAN_MEMBER|Vlan100|Ethernet0` | `tagging_mode` = `"tagged"` | `config/vlan.py` `add_vlan_member`: `set_entry('VLAN_MEMBER', (vlan, port), {'tagging_mode': 'tagged'})` |
 * | VLAN to VNI | `VXLAN_TUNNEL_MAP|vtep|map_5000_Vlan100` | `vni` = `"5000"`, `vlan` = `"Vlan100"` | `config/vxlan.py` `add_vxlan_map`: `mapname = vxlan_name + '|' + 'map_' + vni + '_' + vlan_name` |
 *
 * Value encoding is ConfigDBConnector's (`typed_to_raw` in sonic-net/sonic-swss-common
 * `common/configdb.h`): every field value is a string; a list is one field named `name@`
 * holding the comma-joined items; an entry with no fields is written as `NULL` = `"NULL"`.
 * `set_entry` replaces a whole entry (HSET the new fields, HDEL the others); we do the same,
 * so an unchanged field is never deleted and re-added.
 *
 * The VXLAN tunnel itself (`VXLAN_TUNNEL|vtep` with `src_ip`) is the operator's: the agent
 * only adds maps to it. As `config vlan del` and `config vxlan map add` require, a VLAN is
 * created before its map and members, and removed after them.
 *
 * STATE_DB table `VDP_VSI_TABLE` (ours; one row per VSI, key `VDP_VSI_TABLE|<port>|<vsiid>`,
 * the VSIID as 32 lowercase hex digits), fields in the same encoding:
 * `state` (`associated` | `pre-associated` | `pre-associated-rr`), `vn@` (VNIs, per filter
 * entry; absent for formats 1/2 without a VN), `vid@` (VIDs per entry), `macs@` (formats 2/4),
 * `station` (ECP peer MAC), `manager_id`, `vsi_type`, `vsi_type_version`, `updated` (ms since
 * the epoch). Read it with `redis-cli -n 6 hgetall 'VDP_VSI_TABLE|Ethernet0|<vsiid>'`.
 *
 * Ownership and writes: every batch runs under WATCH on the keys it reads, then MULTI/EXEC;
 * keys the agent does not own (ownership.ts) are never written or deleted. Connection policy:
 * ioredis reconnects in the background with backoff 100 ms doubling to 5 s; while Redis is
 * down every call fails at once with `DataplaneError('unavailable')` (no offline queue, so a
 * stale batch is never replayed behind the shell's back) and the shell retries with
 * `reconcile()`.
 *
 * @module
 */
import { Redis } from 'ioredis'
import type { PortName, VsiIdHex } from '../../shared/ids.ts'
import type { DataplaneOp, DataplaneState } from '../resources/dataplane-ops.ts'
import {
  DataplaneError,
  emptyReconcileReport,
  silentLogger,
  type ApplyReport,
  type DataplaneDriver,
  type DataplaneLogger,
  type ReconcileReport,
  type VsiStateChange,
  type VsiStateRow,
} from './driver.ts'
import type { OwnershipRecord } from './ownership.ts'

export const CONFIG_DB = 4
export const STATE_DB = 6
export const VSI_STATE_TABLE = 'VDP_VSI_TABLE'

export interface SonicDriverOptions {
  /** `redis://host:port` or a unix socket path (SONiC: `/var/run/redis/redis.sock`). */
  redis: string
  configDb?: number
  stateDb?: number
  /** Name of the operator's `VXLAN_TUNNEL` (e.g. `vtep`); absent: no VLAN-to-VNI maps. */
  vxlanTunnel?: string
  ownership: OwnershipRecord
  logger?: DataplaneLogger
  connectTimeoutMs?: number
  commandTimeoutMs?: number
  /** WATCH conflicts tolerated per batch before `conflict`. */
  watchRetriesMax?: number
  /** Fault injection for tests: runs between WATCH/read and EXEC of every attempt. */
  beforeExec?: (attempt: number) => Promise<void>
}

/** Raw CONFIG_DB field-value pairs. */
export type RawEntry = Record<string, string>
export type TypedValue = string | number | readonly string[]

/**
 * ConfigDBConnector `typed_to_raw`: strings as they are, numbers as decimal strings, lists as
 * `name@` = comma-joined, an empty entry as `NULL` = `"NULL"`.
 */
export function encodeConfigDbEntry(typed: Readonly<Record<string, TypedValue>>): RawEntry {
  const keys = Object.keys(typed)
  if (keys.length === 0) return { NULL: 'NULL' }
  const raw: RawEntry = {}
  for (const k of keys) {
    const v = typed[k]!
    if (Array.isArray(v)) raw[`${k}@`] = v.join(',')
    else raw[k] = String(v)
  }
  return raw
}

/** ConfigDBConnector `raw_to_typed`. */
export function decodeConfigDbEntry(raw: Readonly<RawEntry>): Record<string, string | string[]> {
  const typed: Record<string, string | string[]> = {}
  for (const [k, v] of Object.entries(raw)) {
    if (k === 'NULL') continue
    if (k.endsWith('@')) typed[k.slice(0, -1)] = v.split(',')
    else typed[k] = v
  }
  return typed
}

export const vlanName = (vid: number): string => `Vlan${vid}`
export const vlanKey = (vid: number): string => `VLAN|${vlanName(vid)}`
export const vlanMemberKey = (vid: number, port: PortName | string): string => `VLAN_MEMBER|${vlanName(vid)}|${port}`
export const tunnelMapKey = (tunnel: string, vni: number, vid: number): string =>
  `VXLAN_TUNNEL_MAP|${tunnel}|map_${vni}_${vlanName(vid)}`
export const vsiStateKey = (port: PortName | string, vsiId: VsiIdHex | string): string => `${VSI_STATE_TABLE}|${port}|${vsiId}`

/** Order of creation (deletion is the reverse): VLAN, then its map, then members. */
function keyRank(key: string): number {
  if (key.startsWith('VLAN|')) return 0
  if (key.startsWith('VXLAN_TUNNEL_MAP|')) return 1
  return 2
}

/** The CONFIG_DB entries a data-plane state needs. */
export function configDbEntries(state: DataplaneState, tunnel: string | undefined): Map<string, RawEntry> {
  const out = new Map<string, RawEntry>()
  for (const v of state.vlans) {
    out.set(vlanKey(v.vid), encodeConfigDbEntry({ vlanid: v.vid }))
    if (v.vni !== undefined && tunnel !== undefined) {
      out.set(tunnelMapKey(tunnel, v.vni, v.vid), encodeConfigDbEntry({ vni: v.vni, vlan: vlanName(v.vid) }))
    }
  }
  for (const m of state.members) out.set(vlanMemberKey(m.vid, m.port), encodeConfigDbEntry({ tagging_mode: 'tagged' }))
  return out
}

/** STATE_DB fields of a VSI row. */
export function vsiStateFields(row: VsiStateRow): RawEntry {
  const typed: Record<string, TypedValue> = {
    state: row.state,
    'vid': row.entries.map((e) => String(e.vid)),
    station: row.station,
    manager_id: row.managerId,
    vsi_type: row.typeId,
    vsi_type_version: row.typeVersion,
    updated: row.updatedMs,
  }
  const vnis = row.entries.flatMap((e) => (e.vni === undefined ? [] : [String(e.vni)]))
  if (vnis.length > 0) typed['vn'] = vnis
  const macs = row.entries.flatMap((e) => (e.mac === undefined ? [] : [e.mac]))
  if (macs.length > 0) typed['macs'] = macs
  return encodeConfigDbEntry(typed)
}

/** One key's wanted content: fields to hold, or `null` = must not exist. */
type Intent = { key: string; want: RawEntry | null }

const sameEntry = (a: RawEntry, b: RawEntry): boolean => {
  const ka = Object.keys(a)
  return ka.length === Object.keys(b).length && ka.every((k) => b[k] === a[k])
}

export interface SonicDriver extends DataplaneDriver {
  readonly kind: 'sonic'
  publishVsiState(changes: readonly VsiStateChange[], options?: { replaceAll?: boolean }): Promise<void>
}

function makeClient(addr: string, db: number, o: { connectTimeoutMs: number; commandTimeoutMs: number }): Redis {
  const common = {
    db,
    lazyConnect: true,
    enableOfflineQueue: false,
    maxRetriesPerRequest: 0,
    connectTimeout: o.connectTimeoutMs,
    commandTimeout: o.commandTimeoutMs,
    retryStrategy: (times: number) => Math.min(100 * 2 ** Math.min(times - 1, 6), 5000),
  }
  return addr.startsWith('/') ? new Redis({ path: addr, ...common }) : new Redis(addr, common)
}

/**
 * Connects to Redis (CONFIG_DB and STATE_DB) and returns the driver. Rejects with
 * `DataplaneError('unavailable')` if Redis does not answer within `connectTimeoutMs`; no
 * reconnection timer is left behind then.
 * @example
 * ```ts
 * const ownership = await OwnershipRecord.load('/var/lib/vdp-agent/dataplane-owned.json', 'sonic', 'redis:4')
 * const dp = await openSonicDriver({ redis: '/var/run/redis/redis.sock', vxlanTunnel: 'vtep', ownership })
 * await dp.reconcile(rm.dataplaneState())
 * ```
 */
export async function openSonicDriver(options: SonicDriverOptions): Promise<SonicDriver> {
  const o = {
    configDb: CONFIG_DB,
    stateDb: STATE_DB,
    connectTimeoutMs: 2000,
    commandTimeoutMs: 5000,
    watchRetriesMax: 3,
    logger: silentLogger,
    ...options,
  }
  if (o.vxlanTunnel !== undefined && !/^[A-Za-z0-9_.-]{1,64}$/.test(o.vxlanTunnel)) {
    throw new DataplaneError('bad-config', `Cannot use VXLAN tunnel name "${o.vxlanTunnel}": use letters, digits, "_", "-", "."`)
  }
  const cfg = makeClient(o.redis, o.configDb, o)
  const state = makeClient(o.redis, o.stateDb, o)
  let lastErrorLogged = ''
  for (const [name, c] of [['config', cfg], ['state', state]] as const) {
    // Without a listener, ioredis's 'error' event would crash the process.
    c.on('error', (e: Error) => {
      if (e.message !== lastErrorLogged) o.logger.warn('redis connection error', { db: name, error: e.message })
      lastErrorLogged = e.message
    })
    c.on('ready', () => {
      lastErrorLogged = ''
      o.logger.info('redis connected', { db: name })
    })
  }
  try {
    await Promise.all([cfg.connect(), state.connect()])
  } catch (e) {
    cfg.disconnect()
    state.disconnect()
    throw new DataplaneError('unavailable', `Cannot connect to Redis at ${o.redis}: ${(e as Error).message}`, [], { cause: e })
  }

  if (o.vxlanTunnel !== undefined) {
    const tunnel = await cfg.hgetall(`VXLAN_TUNNEL|${o.vxlanTunnel}`).catch(() => ({}))
    if (Object.keys(tunnel).length === 0) {
      // Not fatal: the operator may create it later; vxlanorch ignores maps until then.
      o.logger.warn('VXLAN tunnel missing in CONFIG_DB: VLAN-to-VNI maps will wait for it', { tunnel: o.vxlanTunnel })
    }
  }

  const ownership = o.ownership
  let queue: Promise<unknown> = Promise.resolve()
  /** One batch at a time: WATCH state is per connection. */
  const serial = <T>(f: () => Promise<T>): Promise<T> => {
    const run = queue.then(f, f)
    queue = run.catch(() => {})
    return run
  }

  const ensureReady = (c: Redis, what: string): void => {
    if (c.status !== 'ready') {
      throw new DataplaneError('unavailable', `Cannot ${what}: Redis at ${o.redis} is ${c.status}`)
    }
  }

  const wrap = (what: string, e: unknown): DataplaneError => {
    if (e instanceof DataplaneError) return e
    return new DataplaneError('unavailable', `Cannot ${what}: ${(e as Error).message}`, [], { cause: e })
  }

  async function readEntries(keys: readonly string[]): Promise<Map<string, RawEntry | null>> {
    const p = cfg.pipeline()
    for (const k of keys) p.hgetall(k)
    const res = (await p.exec()) ?? []
    const out = new Map<string, RawEntry | null>()
    keys.forEach((k, i) => {
      const [err, val] = res[i] ?? [new Error('no reply'), null]
      if (err) throw err
      const entry = val as RawEntry
      out.set(k, Object.keys(entry).length === 0 ? null : entry)
    })
    return out
  }

  /** Every VXLAN_TUNNEL_MAP entry (any tunnel) except `exclude`, with its vni and vlan. */
  async function readOtherMaps(exclude: ReadonlySet<string>): Promise<Array<{ key: string; vni?: string; vlan?: string }>> {
    const keys: string[] = []
    let cursor = '0'
    do {
      const [next, batch] = await cfg.scan(cursor, 'MATCH', 'VXLAN_TUNNEL_MAP|*', 'COUNT', 1000)
      cursor = next
      for (const k of batch) if (!exclude.has(k)) keys.push(k)
    } while (cursor !== '0')
    const entries = await readEntries(keys)
    return keys.map((key) => {
      const e = entries.get(key) ?? {}
      return { key, ...(e['vni'] === undefined ? {} : { vni: e['vni'] }), ...(e['vlan'] === undefined ? {} : { vlan: e['vlan'] }) }
    })
  }

  /** Runs intents under WATCH + MULTI; categorizes every key for the report. */
  async function transact(intents: readonly Intent[], what: string): Promise<ReconcileReport> {
    ensureReady(cfg, what)
    try {
      return await attempts(intents, what)
    } catch (e) {
      // Never leave a WATCH behind on the shared connection.
      await cfg.unwatch().catch(() => {})
      throw e
    }
  }

  async function attempts(intents: readonly Intent[], what: string): Promise<ReconcileReport> {
    const keys = [...new Set(intents.map((i) => i.key))]
    if (keys.length === 0) return emptyReconcileReport()
    for (let attempt = 0; attempt <= o.watchRetriesMax; attempt++) {
      await cfg.watch(...keys)
      const current = await readEntries(keys)
      const report = emptyReconcileReport()
      const sets: Array<{ key: string; want: RawEntry; extra: string[] }> = []
      const dels: string[] = []
      const claims: string[] = []
      const releases: string[] = []
      // The last intent per key wins (an add then a delete of one key in one batch).
      const finalIntent = new Map<string, RawEntry | null>()
      for (const i of intents) finalIntent.set(i.key, i.want)
      const mapsToCreate = [...finalIntent].filter(([k, w]) => w !== null && k.startsWith('VXLAN_TUNNEL_MAP|') && current.get(k) === null)
      const otherMaps = mapsToCreate.length > 0 ? await readOtherMaps(new Set(keys)) : []
      for (const [key, want] of finalIntent) {
        const have = current.get(key) ?? null
        const owned = ownership.has(key)
        if (want !== null) {
          // config/vxlan.py add_vxlan_map refuses a VLAN or VNI mapped twice; so do we.
          const clash = have === null && key.startsWith('VXLAN_TUNNEL_MAP|')
            ? otherMaps.find((m) => !ownership.has(m.key) && (m.vni === want['vni'] || m.vlan === want['vlan']))
            : undefined
          if (clash) {
            report.conflicts.push(`${key} <- ${clash.key}`)
          } else if (have === null) {
            sets.push({ key, want, extra: [] })
            if (!owned) claims.push(key)
            report.created.push(key)
          } else if (!owned) {
            report.foreign.push(key)
          } else if (sameEntry(have, want)) {
            report.unchanged.push(key)
          } else {
            sets.push({ key, want, extra: Object.keys(have).filter((f) => !(f in want)) })
            report.repaired.push(key)
          }
        } else if (owned) {
          releases.push(key)
          if (have === null) report.forgotten.push(key)
          else {
            dels.push(key)
            report.deleted.push(key)
          }
        } else if (have !== null) {
          report.foreign.push(key)
        }
      }
      if (sets.length === 0 && dels.length === 0) {
        await cfg.unwatch()
        ownership.delete(releases)
        await ownership.save()
        return report
      }
      // Write-ahead: own a key before creating it (ownership.ts).
      ownership.add(claims)
      try {
        await ownership.save()
      } catch (e) {
        ownership.delete(claims)
        throw e
      }
      dels.sort((a, b) => keyRank(b) - keyRank(a))
      sets.sort((a, b) => keyRank(a.key) - keyRank(b.key))
      if (o.beforeExec) await o.beforeExec(attempt)
      const m = cfg.multi()
      for (const k of dels) m.del(k)
      for (const s of sets) {
        m.hset(s.key, s.want)
        if (s.extra.length > 0) m.hdel(s.key, ...s.extra)
      }
      const res = await m.exec()
      if (res === null) {
        // Someone wrote a watched key: nothing was applied; drop the claims and look again.
        ownership.delete(claims)
        await ownership.save()
        o.logger.debug('CONFIG_DB batch aborted by a concurrent write, retrying', { attempt })
        continue
      }
      const failures = res.flatMap(([err], i) => (err ? [{ item: `command ${i}`, error: err.message }] : []))
      if (failures.length > 0) throw new DataplaneError('command-failed', `Cannot ${what}: Redis refused ${failures.length} command(s)`, failures)
      ownership.delete(releases)
      await ownership.save()
      o.logger.debug('CONFIG_DB batch applied', { created: report.created.length, deleted: report.deleted.length, repaired: report.repaired.length })
      return report
    }
    throw new DataplaneError('conflict', `Cannot ${what}: CONFIG_DB keys kept changing under the batch (${o.watchRetriesMax + 1} attempts)`)
  }

  function intentsOfOps(ops: readonly DataplaneOp[]): Intent[] {
    const out: Intent[] = []
    for (const op of ops) {
      switch (op.op) {
        case 'vlan-add':
          out.push({ key: vlanKey(op.vid), want: encodeConfigDbEntry({ vlanid: op.vid }) })
          if (op.vni !== undefined && o.vxlanTunnel !== undefined) {
            out.push({ key: tunnelMapKey(o.vxlanTunnel, op.vni, op.vid), want: encodeConfigDbEntry({ vni: op.vni, vlan: vlanName(op.vid) }) })
          }
          break
        case 'vlan-del':
          if (op.vni !== undefined && o.vxlanTunnel !== undefined) out.push({ key: tunnelMapKey(o.vxlanTunnel, op.vni, op.vid), want: null })
          out.push({ key: vlanKey(op.vid), want: null })
          break
        case 'member-add':
          out.push({ key: vlanMemberKey(op.vid, op.port), want: encodeConfigDbEntry({ tagging_mode: 'tagged' }) })
          break
        case 'member-del':
          out.push({ key: vlanMemberKey(op.vid, op.port), want: null })
          break
      }
    }
    return out
  }

  return {
    kind: 'sonic',
    apply(ops: readonly DataplaneOp[]): Promise<ApplyReport> {
      return serial(async () => {
        try {
          const r = await transact(intentsOfOps(ops), 'apply data-plane ops to CONFIG_DB')
          return { changed: [...r.created, ...r.repaired, ...r.deleted], foreign: r.foreign, conflicts: r.conflicts }
        } catch (e) {
          throw wrap('apply data-plane ops to CONFIG_DB', e)
        }
      })
    },

    reconcile(desired: DataplaneState): Promise<ReconcileReport> {
      return serial(async () => {
        try {
          const want = configDbEntries(desired, o.vxlanTunnel)
          const intents: Intent[] = [...want].map(([key, fields]) => ({ key, want: fields }))
          for (const key of ownership.items()) if (!want.has(key)) intents.push({ key, want: null })
          const r = await transact(intents, 'reconcile CONFIG_DB')
          o.logger.info('CONFIG_DB reconciled', {
            created: r.created.length,
            deleted: r.deleted.length,
            repaired: r.repaired.length,
            unchanged: r.unchanged.length,
            foreign: r.foreign.length,
          })
          return r
        } catch (e) {
          throw wrap('reconcile CONFIG_DB', e)
        }
      })
    },

    publishVsiState(changes: readonly VsiStateChange[], opts: { replaceAll?: boolean } = {}): Promise<void> {
      return serial(async () => {
        try {
          ensureReady(state, 'publish VSI state to STATE_DB')
          const keep = new Set<string>()
          const m = state.multi()
          for (const c of changes) {
            if (c.kind === 'set') {
              const key = vsiStateKey(c.row.port, c.row.vsiId)
              keep.add(key)
              m.del(key)
              m.hset(key, vsiStateFields(c.row))
            } else {
              m.del(vsiStateKey(c.port, c.vsiId))
            }
          }
          if (opts.replaceAll) {
            let cursor = '0'
            do {
              const [next, keys] = await state.scan(cursor, 'MATCH', `${VSI_STATE_TABLE}|*`, 'COUNT', 500)
              cursor = next
              for (const k of keys) if (!keep.has(k)) m.del(k)
            } while (cursor !== '0')
          }
          const res = await m.exec()
          const failures = (res ?? []).flatMap(([err], i) => (err ? [{ item: `command ${i}`, error: err.message }] : []))
          if (failures.length > 0) throw new DataplaneError('command-failed', 'Cannot publish VSI state: Redis refused commands', failures)
        } catch (e) {
          throw wrap('publish VSI state to STATE_DB', e)
        }
      })
    },

    async close(): Promise<void> {
      await queue
      await Promise.all([cfg.quit().catch(() => cfg.disconnect()), state.quit().catch(() => state.disconnect())])
    },
  }
}
