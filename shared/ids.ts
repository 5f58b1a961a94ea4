/**
 * Branded identifiers shared by the agent and the edge. 16-octet wire identifiers (Manager
 * ID, VSIID) are lowercase hex strings of 32 digits: usable as map keys, in JSON and CBOR,
 * and printable.
 *
 * @module
 */
/** A switch or hypervisor port name, e.g. `Ethernet8` or `eth0`. */
export type PortName = string & { readonly __brand: 'PortName' }
/** The fleet-wide name of a switch (`--switch-id`). */
export type SwitchId = string & { readonly __brand: 'SwitchId' }
/** VSI Manager ID: 16 octets as 32 lowercase hex digits. */
export type ManagerId = string & { readonly __brand: 'ManagerId' }
/** VSIID: 16 octets as 32 lowercase hex digits. */
export type VsiIdHex = string & { readonly __brand: 'VsiIdHex' }

export const portName = (s: string): PortName => s as PortName
export const switchId = (s: string): SwitchId => s as SwitchId

const HEX32 = /^[0-9a-f]{32}$/

export function managerIdFromHex(hex: string): ManagerId {
  const h = hex.toLowerCase()
  if (!HEX32.test(h)) throw new Error(`Cannot use Manager ID: "${hex}" is not 32 hex digits`)
  return h as ManagerId
}

export function vsiIdFromHex(hex: string): VsiIdHex {
  const h = hex.toLowerCase().replace(/-/g, '')
  if (!HEX32.test(h)) throw new Error(`Cannot use VSIID: "${hex}" is not 16 octets of hex`)
  return h as VsiIdHex
}

/**
 * Manager ID as vdptool's `mgrid2=` builds it: up to 15 alphanumerics as ASCII, zero padded;
 * a string of only hex digits and dashes is taken as hex (lldpad `qbg/vdp_ascii.c`).
 * @example
 * ```ts
 * managerIdFromText('vdplab') // '7664706c616200000000000000000000'
 * ```
 */
export function managerIdFromText(text: string): ManagerId {
  if (/^[0-9a-fA-F-]+$/.test(text)) {
    // lldpad reads digit pairs from the left; a last lone digit is one octet ("abc" -> ab 0c).
    const h = text.replace(/-/g, '').toLowerCase()
    const even = h.length % 2 ? h.slice(0, -1) + '0' + h.slice(-1) : h
    const padded = even.padEnd(32, '0')
    if (padded.length > 32) throw new Error(`Cannot use Manager ID: "${text}" is longer than 16 octets`)
    return padded as ManagerId
  }
  if (!/^[0-9A-Za-z]{1,15}$/.test(text)) {
    throw new Error(`Cannot use Manager ID: "${text}" is not 1..15 alphanumerics or hex`)
  }
  let h = ''
  for (const ch of text) h += ch.charCodeAt(0).toString(16).padStart(2, '0')
  return h.padEnd(32, '0') as ManagerId
}

/** UUID text (with or without dashes) to a VSIID; short values are zero padded on the right. */
export function vsiIdFromUuid(uuid: string): VsiIdHex {
  const h = uuid.replace(/-/g, '').toLowerCase()
  if (!/^[0-9a-f]{1,32}$/.test(h)) throw new Error(`Cannot use UUID: "${uuid}" is not hex`)
  return h.padEnd(32, '0') as VsiIdHex
}

export function uuidFromVsiId(id: VsiIdHex): string {
  return `${id.slice(0, 8)}-${id.slice(8, 12)}-${id.slice(12, 16)}-${id.slice(16, 20)}-${id.slice(20)}`
}
