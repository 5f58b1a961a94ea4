/**
 * Bad input through the real embedded broker: random bytes, random CBOR values, mutated
 * valid events, status messages and replies, and well-formed ones of another switch, published by an authenticated switch at QoS 1
 * into `EmbeddedBroker` + `EmbeddedIngest` + `SqliteFleetStore` (what `vdp-edge` runs). Each
 * message must be acknowledged (PUBACK), counted under the reason the shared decoders give
 * (`ingest_rejected_total`), leave every table of the fleet store as it was, and never cost
 * the switch its connection; a valid event afterwards is still applied.
 *
 * The oracle is the shared decoder itself: a payload it accepts is valid input and is not
 * published (fast-check `pre`), except replies, which a store without that command ignores.
 */
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import Database from 'better-sqlite3'
import fc from 'fast-check'
import mqtt from 'mqtt'
import { afterAll, describe, expect, it } from 'vitest'
import { ApiDecodeError, encodeCbor } from '../../shared/api/cbor.ts'
import { decodeCommandReply, type CommandReply } from '../../shared/api/commands.ts'
import { decodeEvent, encodeEvent, type FleetEvent } from '../../shared/api/events.ts'
import { decodeSwitchStatus, encodeSwitchStatus, type SwitchStatus } from '../../shared/api/topics.ts'
import { switchId } from '../../shared/ids.ts'
import { EmbeddedBroker } from '../../edge/broker/embedded-broker.ts'
import { EmbeddedIngest } from '../../edge/mqtt/embedded-ingest.ts'
import type { IngestRejectReason } from '../../edge/mqtt/ingest.ts'
import { SqliteFleetStore } from '../../edge/store/sqlite-fleet-store.ts'
import { agentStarted, T0, vsiEvent } from './support/events.ts'

const dirs: string[] = []
afterAll(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true })
})

type Channel = 'events' | 'status' | 'replies'

const eventTemplates: FleetEvent[] = [
  vsiEvent({ seq: 100, bootId: 'boot-fuzz' }),
  vsiEvent({ seq: 101, bootId: 'boot-fuzz', kind: 'vsi-rejected' }),
  { ...agentStarted({ bootId: 'boot-fuzz', seq: 102 }) },
]
const statusTemplate: SwitchStatus = { v: 1, switchId: switchId('tor1'), state: 'offline', bootId: 'boot-fuzz', time: T0, agentVersion: '0.1.0' }
const replyTemplate: CommandReply = { v: 1, commandId: 'op-none', switchId: switchId('tor1'), time: T0, status: 'done', affected: 1 }
const templates: Record<Channel, Record<string, unknown>[]> = {
  events: eventTemplates as unknown as Record<string, unknown>[],
  status: [statusTemplate as unknown as Record<string, unknown>],
  replies: [replyTemplate as unknown as Record<string, unknown>],
}
const encodeTemplate = (channel: Channel, value: Record<string, unknown>): Uint8Array =>
  channel === 'events' ? encodeEvent(value as unknown as FleetEvent) : channel === 'status' ? encodeSwitchStatus(value as unknown as SwitchStatus) : encodeCbor(value)

/** CBOR of anything cbor-x can encode; random bytes otherwise. */
const cborOf = (value: unknown, fallback: Uint8Array): Uint8Array => {
  try {
    return encodeCbor(value)
  } catch {
    return fallback
  }
}

const byteMutation = fc.oneof(
  fc.record({ op: fc.constant('flip' as const), at: fc.nat(), bit: fc.integer({ min: 0, max: 7 }) }),
  fc.record({ op: fc.constant('truncate' as const), at: fc.nat() }),
  fc.record({ op: fc.constant('insert' as const), at: fc.nat(), bytes: fc.uint8Array({ minLength: 1, maxLength: 8 }) }),
  fc.record({ op: fc.constant('set' as const), at: fc.nat(), value: fc.integer({ min: 0, max: 255 }) }),
)
type ByteMutation = typeof byteMutation extends fc.Arbitrary<infer T> ? T : never

function mutateBytes(bytes: Uint8Array, ops: ByteMutation[]): Uint8Array {
  let b = Uint8Array.from(bytes)
  for (const m of ops) {
    if (b.length === 0) break
    const at = m.at % b.length
    if (m.op === 'flip') b[at] = b[at]! ^ (1 << m.bit)
    else if (m.op === 'set') b[at] = m.value
    else if (m.op === 'truncate') b = b.slice(0, at)
    else b = Uint8Array.from([...b.slice(0, at), ...m.bytes, ...b.slice(at)])
  }
  return b
}

const channel = fc.constantFrom<Channel>('events', 'events', 'status', 'replies')

/** One message: a channel and the bytes to publish there. */
const badMessage: fc.Arbitrary<{ channel: Channel; bytes: Uint8Array; how: string }> = fc.oneof(
  fc.record({ channel, bytes: fc.uint8Array({ maxLength: 600 }), how: fc.constant('random bytes') }),
  fc.record({ channel, bytes: fc.constantFrom(new Uint8Array(20_000).fill(0xa0), new Uint8Array(17_000)), how: fc.constant('oversized') }),
  fc
    .record({ channel, value: fc.anything({ maxDepth: 3 }), fallback: fc.uint8Array({ maxLength: 64 }) })
    .map(({ channel, value, fallback }) => ({ channel, bytes: cborOf(value, fallback), how: 'random CBOR value' })),
  fc
    .record({ channel, pick: fc.nat(), ops: fc.array(byteMutation, { minLength: 1, maxLength: 4 }) })
    .map(({ channel, pick, ops }) => {
      const list = templates[channel]
      return { channel, bytes: mutateBytes(encodeTemplate(channel, list[pick % list.length]!), ops), how: 'mutated bytes' }
    }),
  fc
    .record({ channel, pick: fc.nat(), key: fc.nat(), value: fc.option(fc.anything({ maxDepth: 2 }), { nil: undefined }), extraV: fc.integer() })
    .map(({ channel, pick, key, value, extraV }) => {
      const list = templates[channel]
      const obj: Record<string, unknown> = { ...list[pick % list.length]! }
      const keys = Object.keys(obj)
      const k = keys[key % keys.length]!
      if (value === undefined) delete obj[k]
      else obj[k] = value
      if (k !== 'v' && extraV % 5 === 0) obj.v = extraV
      return { channel, bytes: cborOf(obj, new Uint8Array([0xff])), how: `field ${k} changed` }
    }),
  // Well-formed, for another switch than the topic's.
  fc
    .record({ channel, pick: fc.nat(), other: fc.constantFrom('tor2', 'leaf1', 'tor10') })
    .map(({ channel, pick, other }) => {
      const list = templates[channel]
      return { channel, bytes: encodeTemplate(channel, { ...list[pick % list.length]!, switchId: other }), how: 'another switch' }
    }),
)

/** What the edge must count for a message on `channel` of switch tor1; `valid` when it is good input. */
function expectedReject(channel: Channel, bytes: Uint8Array): IngestRejectReason | 'valid' | 'ignored' {
  try {
    if (channel === 'events') {
      const e = decodeEvent(bytes)
      return e.switchId === 'tor1' ? 'valid' : 'switch-mismatch'
    }
    if (channel === 'status') {
      if (bytes.byteLength === 0) return 'ignored' // a cleared retained status
      const s = decodeSwitchStatus(bytes)
      return s.switchId === 'tor1' ? 'valid' : 'switch-mismatch'
    }
    const r = decodeCommandReply(bytes)
    return r.switchId === 'tor1' ? 'ignored' : 'switch-mismatch' // no such command: recorded nowhere
  } catch (err) {
    // The shared decoders fail only with ApiDecodeError (docs/mqtt.md, payload rules).
    expect(err).toBeInstanceOf(ApiDecodeError)
    return (err as ApiDecodeError).code
  }
}

/** Every row of every table, through a separate read-only connection. */
function snapshot(dbPath: string): string {
  const db = new Database(dbPath, { readonly: true, fileMustExist: true })
  try {
    const tables = (db.prepare("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name").pluck().all() as string[])
    return JSON.stringify(tables.map((t) => [t, db.prepare(`SELECT * FROM "${t}"`).raw().all()]))
  } finally {
    db.close()
  }
}

describe('embedded broker ingest under bad input', () => {
  it('counts random and mutated CBOR payloads by reason, acknowledges each and changes no state', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'vdp-mqtt-fuzz-'))
    dirs.push(dir)
    const dbPath = join(dir, 'fleet.sqlite')
    const store = new SqliteFleetStore({ path: dbPath })
    const broker = await EmbeddedBroker.start({ port: 0, accounts: [{ username: 'tor1', role: 'switch', password: 'tor1-secret' }] })
    const rejected: IngestRejectReason[] = []
    const ingest = EmbeddedIngest.attach(broker, {}, { store, onRejected: (r) => rejected.push(r) })
    const sw = await mqtt.connectAsync(broker.url, { username: 'tor1', password: 'tor1-secret', clientId: 'tor1', clean: false, reconnectPeriod: 0 })
    let closes = 0
    sw.on('close', () => closes++)
    try {
      // Some state to keep: a boot, a VSI, a status.
      for (const e of [agentStarted({ bootId: 'boot-seed-1' }), vsiEvent({ seq: 1, bootId: 'boot-seed-1' })]) {
        await sw.publishAsync('vdp/switch/tor1/events', Buffer.from(encodeEvent(e)), { qos: 1 })
      }
      await sw.publishAsync('vdp/switch/tor1/status', Buffer.from(encodeSwitchStatus({ ...statusTemplate, state: 'online', bootId: 'boot-seed-1' })), { qos: 1 })
      expect(ingest.metrics().ingest_events_applied_total).toBe(2)
      const before = snapshot(dbPath)
      const expected = new Map<string, number>()
      let published = 0
      const hows = new Map<string, number>()

      await fc.assert(
        fc.asyncProperty(badMessage, async ({ channel, bytes, how }) => {
          const want = expectedReject(channel, bytes)
          fc.pre(want !== 'valid')
          const rejectedBefore = rejected.length
          // Resolves on PUBACK, which the embedded ingest sends after the commit or the drop.
          await sw.publishAsync(`vdp/switch/tor1/${channel}`, Buffer.from(bytes), { qos: 1 })
          published++
          hows.set(how, (hows.get(how) ?? 0) + 1)
          if (want === 'ignored') {
            expect(rejected.length).toBe(rejectedBefore)
          } else {
            expect(rejected.slice(rejectedBefore)).toEqual([want])
            expected.set(want, (expected.get(want) ?? 0) + 1)
          }
        }),
        { numRuns: 400 },
      )

      expect(closes).toBe(0)
      expect(sw.connected).toBe(true)
      expect(snapshot(dbPath)).toBe(before)
      const m = ingest.metrics()
      for (const [reason, n] of Object.entries(m.ingest_rejected_total)) expect(n, reason).toBe(expected.get(reason) ?? 0)
      expect(m.ingest_messages_total).toBe(3 + published)
      expect(m.ingest_events_applied_total).toBe(2)
      // Every kind of input was tried, and bad input of several reasons was seen.
      expect([...hows.keys()].sort()).toEqual(expect.arrayContaining(['mutated bytes', 'oversized', 'random CBOR value', 'random bytes']))
      expect(expected.get('switch-mismatch')).toBeGreaterThan(0)
      expect(expected.size).toBeGreaterThanOrEqual(4)

      // Still working: the next valid event is applied.
      await sw.publishAsync('vdp/switch/tor1/events', Buffer.from(encodeEvent(vsiEvent({ seq: 2, bootId: 'boot-seed-1', kind: 'vsi-de-associated' }))), { qos: 1 })
      expect(ingest.metrics().ingest_events_applied_total).toBe(3)
      expect(store.getVsi(vsiEvent({ seq: 2 }).vsiId)?.state).toBe('gone')
    } finally {
      await sw.endAsync()
      await ingest.close()
      await broker.close()
      store.close()
    }
  }, 60_000)
})
