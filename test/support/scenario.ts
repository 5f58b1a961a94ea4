/**
 * Scenario DSL for one `PortCore` in virtual microseconds (STYLE.md §4.8.5, after openlldp's
 * `test/qbg22/ecp22/*.ecp` files: time, frame, expected reply):
 *
 * ```ts
 * runScenario(core, [
 *   at(0).command(associate(1)).expectTransmit({ ecp: { operation: 0, sequence: 1 } }),
 *   at(ackUs).expectTransmit({ ecp: { operation: 0, sequence: 1 } }),   // retry 1
 * ])
 * ```
 *
 * Before each row the core's timers due by the row's time run in order. Transmitted frames
 * and events are collected; `expectTransmit` takes the oldest collected ECP frame (LLDP frames
 * are skipped) and checks it against a partial shape; `expectEvent` finds and consumes the
 * first collected event that matches. Matching is a deep partial match: only the keys given
 * are compared.
 *
 * @module
 */
import { expect } from 'vitest'
import { ECP_VERSION, EcpOperation, EcpSubtype, ETHERTYPE_ECP } from '../../shared/ecp/constants.ts'
import { decodeEcpdu, encodeEcpdu } from '../../shared/ecp/codec.ts'
import type { EcpHeader } from '../../shared/ecp/types.ts'
import { decodeEthernetFrame, encodeEthernetFrame } from '../../shared/ethernet/frame.ts'
import { NCB_GROUP_MAC, type Mac } from '../../shared/ethernet/mac.ts'
import type { ManagerId } from '../../shared/ids.ts'
import type { Us } from '../../shared/time.ts'
import { decodeVdpPduTolerant, encodeVdpPdu, type InvalidVsiTlv } from '../../shared/vdp/codec.ts'
import type { VdpPdu, VdpTlv } from '../../shared/vdp/types.ts'
import type { PortEvent } from '../../agent/port/events.ts'
import type { PortCommand, PortCore } from '../../agent/port/port-core.ts'

/** A transmitted frame, decoded as far as possible. */
export interface DecodedFrame {
  destination: Mac
  source: Mac
  ethertype: number
  ecp?: EcpHeader
  vdp?: VdpPdu
  /** Association TLVs that did not decode (identity only), e.g. "invalid format" answers. */
  vdpInvalid?: InvalidVsiTlv[]
  bytes: Uint8Array
}

export function decodeFrame(bytes: Uint8Array): DecodedFrame {
  const f = decodeEthernetFrame(bytes)
  const out: DecodedFrame = {
    destination: f.destination,
    source: f.source,
    ethertype: f.ethertype,
    bytes,
  }
  if (f.ethertype === ETHERTYPE_ECP) {
    const e = decodeEcpdu(f.payload)
    out.ecp = e.header
    if (e.header.operation === EcpOperation.Request) {
      const { pdu, invalid } = decodeVdpPduTolerant(e.ulpdu)
      out.vdp = pdu
      out.vdpInvalid = invalid
    }
  }
  return out
}

/** A deep partial shape: objects compare the given keys, arrays element by element. */
export type Shape<T> = T extends Uint8Array
  ? T
  : T extends readonly (infer U)[]
    ? readonly Shape<U>[]
    : T extends object
      ? { [K in keyof T]?: Shape<T[K]> }
      : T

export function matchesShape(value: unknown, shape: unknown): boolean {
  if (shape === undefined) return true
  if (shape === null || typeof shape !== 'object') return Object.is(value, shape)
  if (shape instanceof Uint8Array) {
    return (
      value instanceof Uint8Array &&
      value.length === shape.length &&
      value.every((b, i) => b === shape[i])
    )
  }
  if (Array.isArray(shape)) {
    return (
      Array.isArray(value) &&
      value.length === shape.length &&
      shape.every((s, i) => matchesShape(value[i], s))
    )
  }
  if (value === null || typeof value !== 'object') return false
  return Object.entries(shape).every(([k, s]) =>
    matchesShape((value as Record<string, unknown>)[k], s),
  )
}

type Action =
  | { kind: 'command'; command: PortCommand }
  | { kind: 'frame'; bytes: Uint8Array }
  | { kind: 'expect-transmit'; shape: Shape<DecodedFrame>; note: string }
  | { kind: 'expect-no-transmit' }
  | { kind: 'expect-event'; shape: Shape<PortEvent> }
  | { kind: 'expect-no-event'; eventKind: PortEvent['kind'] }
  | { kind: 'check'; fn: (core: PortCore) => void }

export interface Row {
  atUs: Us
  action: Action
}

/** Rows at one time; every method appends one and returns the chain, so rows can be chained. */
export class At {
  constructor(
    readonly atUs: Us,
    readonly rows: readonly Row[] = [],
  ) {}
  #add(action: Action): At {
    return new At(this.atUs, [...this.rows, { atUs: this.atUs, action }])
  }
  command(command: PortCommand): At {
    return this.#add({ kind: 'command', command })
  }
  frame(bytes: Uint8Array): At {
    return this.#add({ kind: 'frame', bytes })
  }
  expectTransmit(shape: Shape<DecodedFrame>, note = ''): At {
    return this.#add({ kind: 'expect-transmit', shape, note })
  }
  expectNoTransmit(): At {
    return this.#add({ kind: 'expect-no-transmit' })
  }
  expectEvent(shape: Shape<PortEvent>): At {
    return this.#add({ kind: 'expect-event', shape })
  }
  expectNoEvent(eventKind: PortEvent['kind']): At {
    return this.#add({ kind: 'expect-no-event', eventKind })
  }
  check(fn: (core: PortCore) => void): At {
    return this.#add({ kind: 'check', fn })
  }
}

/** `at(us).command(…).expectTransmit(…)`: rows at virtual time `us` (µs). */
export const at = (atUs: Us): At => new At(atUs)

/** Runs the rows in time order (stable for equal times) against `core`. */
export function runScenario(
  core: PortCore,
  chains: (At | Row)[],
): { transmitted: DecodedFrame[]; events: PortEvent[] } {
  const rows = chains.flatMap((c) => (c instanceof At ? c.rows : [c]))
  const sorted = rows.map((r, i) => ({ r, i })).sort((a, b) => a.r.atUs - b.r.atUs || a.i - b.i)
  const frames: DecodedFrame[] = []
  const events: PortEvent[] = []
  const allFrames: DecodedFrame[] = []
  const allEvents: PortEvent[] = []
  let nowUs = 0
  const drain = () => {
    for (let f = core.pollTransmit(); f !== undefined; f = core.pollTransmit()) {
      const d = decodeFrame(f)
      allFrames.push(d)
      if (d.ethertype === ETHERTYPE_ECP) frames.push(d)
    }
    for (let e = core.pollEvent(); e !== undefined; e = core.pollEvent()) {
      events.push(e)
      allEvents.push(e)
    }
  }
  const runTimersUntil = (targetUs: Us) => {
    for (let guard = 0; guard < 1_000_000; guard++) {
      const d = core.nextDeadlineUs()
      if (d === undefined || d > targetUs) return
      nowUs = Math.max(nowUs, d)
      core.handleTimeout(nowUs)
      drain()
    }
    throw new Error('Cannot run timers: more than 1,000,000 expiries')
  }
  for (const { r } of sorted) {
    runTimersUntil(r.atUs)
    nowUs = Math.max(nowUs, r.atUs)
    const a = r.action
    const where = `at ${r.atUs} us`
    switch (a.kind) {
      case 'command':
        core.handleCommand(nowUs, a.command)
        drain()
        break
      case 'frame':
        core.handleFrame(nowUs, a.bytes)
        drain()
        break
      case 'expect-transmit': {
        const f = frames.shift()
        expect(f, `${where}: expected a transmitted frame ${a.note}`).toBeDefined()
        if (!matchesShape(f, a.shape)) {
          expect.fail(
            `${where}: frame ${a.note} does not match\n got ${JSON.stringify(summary(f!))}\n want ${JSON.stringify(a.shape)}`,
          )
        }
        break
      }
      case 'expect-no-transmit':
        expect(frames.map(summary), `${where}: expected no ECP frame`).toEqual([])
        break
      case 'expect-event': {
        const i = events.findIndex((e) => matchesShape(e, a.shape))
        if (i < 0)
          expect.fail(
            `${where}: no event matches ${JSON.stringify(a.shape)}\n have ${JSON.stringify(events)}`,
          )
        events.splice(i, 1)
        break
      }
      case 'expect-no-event':
        expect(
          events.filter((e) => e.kind === a.eventKind),
          `${where}: expected no ${a.eventKind}`,
        ).toEqual([])
        break
      case 'check':
        a.fn(core)
        break
    }
  }
  return { transmitted: allFrames, events: allEvents }
}

function summary(f: DecodedFrame): unknown {
  return {
    destination: f.destination,
    source: f.source,
    ecp: f.ecp,
    vdp: f.vdp && {
      managerId: f.vdp.managerId,
      tlvs: f.vdp.tlvs.map((t) =>
        t.kind === 'vsi'
          ? { mode: t.mode, status: t.status, vsiId: t.vsiId.id, entries: t.entries }
          : t,
      ),
    },
  }
}

/** An ECP frame (request with a VDP PDU, or an ACK) from `source`. */
export function ecpFrame(options: {
  source: Mac
  destination?: Mac
  sequence: number
  ack?: boolean
  vdp?: { managerId: ManagerId; tlvs: VdpTlv[] }
  /** Raw ULPDU instead of `vdp` (malformed input). */
  ulpdu?: Uint8Array
  subtype?: number
}): Uint8Array {
  const ulpdu =
    options.ulpdu ??
    (options.vdp === undefined
      ? new Uint8Array(0)
      : encodeVdpPdu({ ...options.vdp, endTlv: false }))
  const payload = encodeEcpdu({
    header: {
      version: ECP_VERSION,
      operation: options.ack === true ? EcpOperation.Ack : EcpOperation.Request,
      subtype: options.subtype ?? EcpSubtype.Vdp,
      sequence: options.sequence,
    },
    ulpdu: options.ack === true ? new Uint8Array(0) : ulpdu,
  })
  return encodeEthernetFrame({
    destination: options.destination ?? NCB_GROUP_MAC,
    source: options.source,
    ethertype: ETHERTYPE_ECP,
    payload,
  })
}
