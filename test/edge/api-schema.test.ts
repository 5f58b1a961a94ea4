import { readFileSync } from 'node:fs'
import { describe, expect, it } from 'vitest'
import fc from 'fast-check'
import {
  decodeEvent,
  decodeEventBatch,
  encodeEvent,
  encodeEventBatch,
  eventSchema,
  EVENT_BYTES_MAX,
  EVENT_KINDS,
} from '../../shared/api/events.ts'
import { ApiDecodeError, encodeCbor } from '../../shared/api/cbor.ts'
import { decodePolicy, encodePolicy, redactPolicy, type SwitchPolicy } from '../../shared/api/policy.ts'
import { decodeCommand, decodeCommandReply, encodeCommand, encodeCommandReply } from '../../shared/api/commands.ts'
import { allSwitchesFilter, decodeSwitchStatus, encodeSwitchStatus, parseSwitchTopic, switchTopic } from '../../shared/api/topics.ts'
import { parseIpv6 } from '../../shared/api/ip.ts'
import { switchId } from '../../shared/ids.ts'
import { sampleEvents, vsiEvent } from './support/events.ts'

const codeOf = (fn: () => unknown): string => {
  try {
    fn()
  } catch (err) {
    if (err instanceof ApiDecodeError) return err.code
    throw err
  }
  return 'no error'
}

/** Field lists of each `name = { ... }` rule in the CDDL, groups expanded. */
function cddlRules(source: string): Map<string, Map<string, boolean>> {
  const body = source.replace(/;[^\n]*/g, '')
  const defs = new Map<string, string>()
  for (const m of body.matchAll(/^([a-z][a-z0-9-]*)\s*=\s*([({])([\s\S]*?)[)}]\s*$/gm)) defs.set(m[1]!, m[3]!)
  const fields = (name: string): Map<string, boolean> => {
    const out = new Map<string, boolean>()
    for (const part of defs.get(name)!.split(/,|\n/).map((s) => s.trim()).filter(Boolean)) {
      const m = /^(\?\s*)?([A-Za-z0-9]+)\s*:/.exec(part)
      if (m) out.set(m[2]!, !m[1])
      else if (defs.has(part)) for (const [k, v] of fields(part)) out.set(k, v)
    }
    return out
  }
  const rules = new Map<string, Map<string, boolean>>()
  for (const name of defs.keys()) rules.set(name, fields(name))
  return rules
}

describe('event schema', () => {
  it('docs/events.cddl lists exactly the fields of every event kind, with the same optionality', () => {
    const rules = cddlRules(readFileSync(new URL('../../docs/events.cddl', import.meta.url), 'utf8'))
    for (const kind of EVENT_KINDS) {
      const rule = rules.get(kind)
      expect(rule, kind).toBeDefined()
      const expected = Object.entries(eventSchema.variants[kind].fields!).sort()
      expect([...rule!.entries()].sort(), kind).toEqual(expected)
    }
  })

  it('encodeEvent() and decodeEvent() round-trip every kind', () => {
    for (const e of sampleEvents()) expect(decodeEvent(encodeEvent(e))).toEqual(e)
  })

  it('encodeEvent() writes plain CBOR maps (no cbor-x records or tags)', () => {
    const bytes = encodeEvent(sampleEvents()[0]!)
    expect(bytes[0]! >> 5).toBe(5) // major type 5: map
    expect(Array.from(bytes)).not.toContain(0xd8) // no 1-byte tags
  })

  it('decodeEvent() normalises MACs and IPv6 text to canonical form', () => {
    const e = vsiEvent({ seq: 1 })
    const raw = { ...e, stationMac: '02-AA-00-00-00-01', ipv6: ['2001:DB8:0:0::1'] }
    const d = decodeEvent(encodeCbor(raw))
    expect(d).toMatchObject({ stationMac: '02:aa:00:00:00:01', ipv6: ['2001:db8::1'] })
  })

  it('decodeEvent() rejects malformed CBOR with malformed-cbor', () => {
    expect(codeOf(() => decodeEvent(new Uint8Array([0xff])))).toBe('malformed-cbor')
    expect(codeOf(() => decodeEvent(new Uint8Array([])))).toBe('malformed-cbor')
    expect(codeOf(() => decodeEvent(new Uint8Array([0xa1, 0x61])))).toBe('malformed-cbor')
  })

  it('decodeEvent() rejects another schema version with unsupported-version', () => {
    expect(codeOf(() => decodeEvent(encodeCbor({ ...vsiEvent({ seq: 1 }), v: 2 })))).toBe('unsupported-version')
    const { v: _v, ...noVersion } = vsiEvent({ seq: 1 })
    expect(codeOf(() => decodeEvent(encodeCbor(noVersion)))).toBe('unsupported-version')
  })

  it('decodeEvent() describes hostile values in its errors without throwing anything else', () => {
    // A map whose toString/valueOf keys are not functions cannot be turned into a string, and a
    // CBOR bignum decodes to a BigInt, which JSON.stringify refuses (found by mqtt-fuzz.test.ts).
    const odd = { toString: '', valueOf: 1 }
    expect(codeOf(() => decodeEvent(encodeCbor({ ...vsiEvent({ seq: 1 }), v: odd })))).toBe('unsupported-version')
    expect(codeOf(() => decodeEvent(encodeCbor({ ...vsiEvent({ seq: 1 }), kind: odd })))).toBe('schema')
    expect(codeOf(() => decodeEvent(encodeCbor({ ...vsiEvent({ seq: 1 }), kind: 2n ** 70n })))).toBe('schema')
    expect(codeOf(() => decodeEvent(encodeCbor({ ...vsiEvent({ seq: 1 }), migration: odd })))).toBe('schema')
  })

  it('decodeEvent() rejects a bad field with schema and names the field', () => {
    const bad = { ...vsiEvent({ seq: 1 }), vid: 5000 }
    try {
      decodeEvent(encodeCbor(bad))
      expect.unreachable()
    } catch (err) {
      expect(err).toBeInstanceOf(ApiDecodeError)
      expect((err as ApiDecodeError).code).toBe('schema')
      expect((err as ApiDecodeError).path).toBe('vid')
    }
    expect(codeOf(() => decodeEvent(encodeCbor({ ...vsiEvent({ seq: 1 }), kind: 'vsi-exploded' })))).toBe('schema')
    expect(codeOf(() => decodeEvent(encodeCbor([1, 2, 3])))).toBe('schema')
    const { reason: _r, ...missing } = vsiEvent({ seq: 1 })
    expect(codeOf(() => decodeEvent(encodeCbor(missing)))).toBe('schema')
  })

  it('decodeEvent() rejects an oversized payload with too-large before parsing it', () => {
    expect(codeOf(() => decodeEvent(new Uint8Array(EVENT_BYTES_MAX + 1)))).toBe('too-large')
    const padded = encodeCbor({ ...vsiEvent({ seq: 1 }), padding: 'x'.repeat(EVENT_BYTES_MAX) })
    expect(codeOf(() => decodeEvent(padded))).toBe('too-large')
    expect(codeOf(() => decodeEventBatch(padded))).toBe('too-large')
  })

  it('decodeEvent() ignores unknown fields and does not copy them', () => {
    const d = decodeEvent(encodeCbor({ ...vsiEvent({ seq: 1 }), extra: 1, __proto__x: 2 }))
    expect(Object.keys(d)).not.toContain('extra')
  })

  it('decodeEvent() fails only with ApiDecodeError on random bytes', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 200 }), (bytes) => {
        try {
          decodeEvent(bytes)
        } catch (err) {
          expect(err).toBeInstanceOf(ApiDecodeError)
        }
      }),
      { numRuns: 2000 },
    )
  })

  it('decodeEventBatch() rejects hostile CBOR (huge declared lengths, deep nesting) quickly with malformed-cbor', () => {
    const hostile = [
      [0x9b, 0, 0, 1, 0, 0, 0, 0, 0], // array of 2^40 items
      [0x9a, 0x05, 0xf5, 0xe1, 0x00], // array of 10^8 items, no body
      [0xbb, 0, 0, 1, 0, 0, 0, 0, 0], // map of 2^40 pairs
      [0x5a, 0xff, 0xff, 0xff, 0xff], // byte string of 4 GiB, no body
      new Array(100_000).fill(0x81), // 100,000 nested arrays
    ]
    for (const bytes of hostile) {
      const started = performance.now()
      expect(codeOf(() => decodeEventBatch(new Uint8Array(bytes)))).toBe('malformed-cbor')
      expect(performance.now() - started).toBeLessThan(500)
    }
  })

  it('decodeEventBatch() accepts one event or an array and names the failing index', () => {
    const events = sampleEvents()
    expect(decodeEventBatch(encodeEventBatch(events))).toEqual(events)
    expect(decodeEventBatch(encodeEvent(events[0]!))).toEqual([events[0]])
    try {
      decodeEventBatch(encodeCbor([events[0], { ...events[1], seq: -1 }]))
      expect.unreachable()
    } catch (err) {
      expect((err as ApiDecodeError).path).toBe('[1].seq')
    }
  })
})

describe('policy, commands, status and topics', () => {
  const policy: SwitchPolicy = {
    v: 1,
    switchId: switchId('tor1'),
    revision: 3,
    issuedAt: 1_700_000_000_000,
    vns: [{ name: 'blue', vni: 5000, tenant: 'acme', allowedVsiTypes: [{ typeId: 1, typeVersion: 1 }] }],
    vidPool: [{ first: 100, last: 199 }],
    hosts: [{ hostId: 'hv1', stationMacs: [], keys: [{ keyId: 1, key: new Uint8Array(32).fill(7) }] }],
    lagGroups: [],
    unknownHosts: 'deny',
  }

  it('encodePolicy() and decodePolicy() round-trip, key bytes included', () => {
    expect(decodePolicy(encodePolicy(policy))).toEqual(policy)
  })

  it('redactPolicy() leaves no key bytes in a printable copy', () => {
    const printed = JSON.stringify(redactPolicy(policy))
    expect(printed).toContain('<32 bytes>')
    expect(printed).not.toContain('"7"')
    expect(printed).not.toContain('7,7')
  })

  it('decodePolicy() rejects a reversed VID range with schema', () => {
    const bad = { ...policy, vidPool: [{ first: 200, last: 100 }] }
    expect(codeOf(() => decodePolicy(encodeCbor(bad)))).toBe('schema')
  })

  it('commands and replies round-trip', () => {
    const cmd = {
      v: 1 as const,
      kind: 'disconnect-vsi' as const,
      commandId: 'c1',
      switchId: switchId('tor1'),
      issuedAt: 5,
      reason: 'operator',
      vsiId: vsiEvent({ seq: 1 }).vsiId,
      mode: 'de-associate' as const,
    }
    expect(decodeCommand(encodeCommand(cmd))).toEqual(cmd)
    const reply = { v: 1 as const, commandId: 'c1', switchId: switchId('tor1'), time: 6, status: 'done' as const, affected: 1 }
    expect(decodeCommandReply(encodeCommandReply(reply))).toEqual(reply)
    expect(codeOf(() => decodeCommand(encodeCbor({ ...cmd, kind: 'reboot' })))).toBe('schema')
  })

  it('status round-trips', () => {
    const s = { v: 1 as const, switchId: switchId('tor1'), state: 'offline' as const }
    expect(decodeSwitchStatus(encodeSwitchStatus(s))).toEqual(s)
  })

  it('switchTopic() and parseSwitchTopic() mirror each other and refuse other topics', () => {
    const t = switchTopic('dc1/vdp', switchId('tor-1.a'), 'events')
    expect(t).toBe('dc1/vdp/switch/tor-1.a/events')
    expect(parseSwitchTopic('dc1/vdp', t)).toEqual({ switchId: 'tor-1.a', channel: 'events' })
    expect(parseSwitchTopic('dc1/vdp', 'dc1/vdp/switch/tor1/other')).toBeUndefined()
    expect(parseSwitchTopic('dc1/vdp', 'dc1/vdp/switch/a/b/events')).toBeUndefined()
    expect(parseSwitchTopic('vdp', t)).toBeUndefined()
    expect(() => switchTopic('vdp', switchId('a/b'), 'events')).toThrow()
    expect(() => switchTopic('vdp', switchId('+'), 'events')).toThrow()
    expect(allSwitchesFilter('vdp', 'status')).toBe('vdp/switch/+/status')
  })

  it('parseIpv6() gives RFC 5952 text', () => {
    expect(parseIpv6('2001:DB8:0:0:1:0:0:1')).toBe('2001:db8::1:0:0:1')
    expect(parseIpv6('::ffff:10.0.0.1')).toBe('::ffff:a00:1')
    expect(() => parseIpv6('1::2::3')).toThrow()
  })
})

