/**
 * Decodes one captured Ethernet frame into a plain JSON-able description of its ECP, VDP and
 * LLDP/EVB contents: what `vdpctl decode` prints. Never throws on bad bytes: the failing
 * layer is reported as `{ error: { code, offset, message } }`.
 *
 * @module
 */
import { ETHERTYPE_ECP, EcpSubtype } from './ecp/constants.ts'
import { decodeEcpdu } from './ecp/codec.ts'
import { decodeEthernetFrame, ETHERTYPE_LLDP } from './ethernet/frame.ts'
import { decodeLldpdu, findEvbTlv } from './lldp/codec.ts'
import { toHex } from './wire/hex.ts'
import { DecodeError } from './wire/errors.ts'
import { decodeVdpPdu } from './vdp/codec.ts'
import type { VdpTlv } from './vdp/types.ts'
import { macFromBytes } from './ethernet/mac.ts'

export type DecodedFrame = Record<string, unknown>

function errorOf(e: unknown): { code: string; offset: number; message: string } {
  if (e instanceof DecodeError) return { code: e.code, offset: e.offset, message: e.message }
  throw e
}

function tlvJson(t: VdpTlv): Record<string, unknown> {
  switch (t.kind) {
    case 'vsi':
      return {
        kind: 'vsi', mode: t.mode, status: t.status, typeId: t.typeId, typeVersion: t.typeVersion,
        vsiId: t.vsiId, filterFormat: t.filterFormat, entries: t.entries,
      }
    case 'org':
      return { kind: 'org', oui: t.oui.toString(16).padStart(6, '0'), data: toHex(t.data) }
    case 'unknown':
      return { kind: 'unknown', type: t.type, body: toHex(t.body) }
  }
}

/**
 * @example
 * ```ts
 * decodeFrame(bytes) // { destination, source, ethertype: '0x8940', ecp: { …, vdp: { managerId, tlvs } } }
 * ```
 */
export function decodeFrame(bytes: Uint8Array): DecodedFrame {
  let eth
  try {
    eth = decodeEthernetFrame(bytes)
  } catch (e) {
    return { length: bytes.length, error: errorOf(e) }
  }
  const out: DecodedFrame = {
    length: bytes.length,
    destination: eth.destination,
    source: eth.source,
    ...(eth.vlan ? { vlan: eth.vlan } : {}),
    ethertype: `0x${eth.ethertype.toString(16).padStart(4, '0')}`,
  }
  if (eth.ethertype === ETHERTYPE_ECP) {
    try {
      const ecp = decodeEcpdu(eth.payload)
      const h = ecp.header
      const ecpOut: Record<string, unknown> = {
        version: h.version, operation: h.operation === 0 ? 'request' : 'ack', subtype: h.subtype, sequence: h.sequence,
      }
      out.ecp = ecpOut
      if (h.operation === 0 && h.subtype === EcpSubtype.Vdp) {
        try {
          const vdp = decodeVdpPdu(ecp.ulpdu)
          ecpOut.vdp = { managerId: vdp.managerId, tlvs: vdp.tlvs.map(tlvJson), endTlv: vdp.endTlv }
        } catch (e) {
          ecpOut.vdp = { error: errorOf(e) }
        }
      }
    } catch (e) {
      out.ecp = { error: errorOf(e) }
    }
  } else if (eth.ethertype === ETHERTYPE_LLDP) {
    try {
      const l = decodeLldpdu(eth.payload)
      const lldp: Record<string, unknown> = {
        chassisId: { subtype: l.chassisId.subtype, value: l.chassisId.subtype === 4 && l.chassisId.value.length === 6 ? macFromBytes(l.chassisId.value) : toHex(l.chassisId.value) },
        portId: { subtype: l.portId.subtype, value: l.portId.subtype === 3 && l.portId.value.length === 6 ? macFromBytes(l.portId.value) : toHex(l.portId.value) },
        ttlS: l.ttlS,
        tlvs: l.tlvs.map((t) => ({ type: t.type, body: toHex(t.body) })),
      }
      out.lldp = lldp
      try {
        const evb = findEvbTlv(l)
        if (evb) lldp.evb = evb
      } catch (e) {
        lldp.evb = { error: errorOf(e) }
      }
    } catch (e) {
      out.lldp = { error: errorOf(e) }
    }
  }
  return out
}
