/**
 * MAC addresses as branded lowercase strings `aa:bb:cc:dd:ee:ff`: comparable with `===`,
 * usable as map keys, printable as they are.
 *
 * @module
 */
import { nibble, octetHex } from '../wire/hex.ts'

export type Mac = string & { readonly __brand: 'Mac' }

/** Nearest Customer Bridge group address (802.1Q Table 8-1): ECP and the NCB LLDP agent. */
export const NCB_GROUP_MAC = '01:80:c2:00:00:00' as Mac
export const ZERO_MAC = '00:00:00:00:00:00' as Mac
export const BROADCAST_MAC = 'ff:ff:ff:ff:ff:ff' as Mac

const MAC_RE = /^[0-9a-f]{2}(:[0-9a-f]{2}){5}$/

/**
 * Parses `aa:bb:cc:dd:ee:ff` or `aa-bb-cc-dd-ee-ff` (any case).
 * @example
 * ```ts
 * parseMac('02-76-64-70-00-01') // '02:76:64:70:00:01'
 * ```
 */
export function parseMac(text: string): Mac {
  const norm = text.trim().toLowerCase().replace(/-/g, ':')
  if (!MAC_RE.test(norm)) throw new Error(`Cannot parse MAC address: "${text}" is not six hex octets`)
  return norm as Mac
}

export function isMac(text: string): text is Mac {
  return MAC_RE.test(text)
}

export function macFromBytes(bytes: Uint8Array, offset = 0): Mac {
  return (
    octetHex(bytes[offset]!) + ':' + octetHex(bytes[offset + 1]!) + ':' + octetHex(bytes[offset + 2]!) + ':' +
    octetHex(bytes[offset + 3]!) + ':' + octetHex(bytes[offset + 4]!) + ':' + octetHex(bytes[offset + 5]!)
  ) as Mac
}

export function macToBytes(mac: Mac): Uint8Array {
  // Straight from the text (no intermediate strings): every frame sent encodes two MACs.
  const out = new Uint8Array(6)
  for (let i = 0; i < 6; i++) {
    const hi = nibble(mac.charCodeAt(3 * i))
    const lo = nibble(mac.charCodeAt(3 * i + 1))
    if (hi < 0 || lo < 0 || mac.length !== 17) throw new Error(`Cannot parse hex: "${mac}" is not a MAC address`)
    out[i] = (hi << 4) | lo
  }
  return out
}

/** Group (multicast/broadcast) bit of the first octet. */
export const isGroupMac = (mac: Mac): boolean => (parseInt(mac.slice(0, 2), 16) & 1) === 1

/** A unicast, non-zero address: what lldpad's `is_valid_mac` accepts for filter entries. */
export const isValidUnicastMac = (mac: Mac): boolean => mac !== ZERO_MAC && !isGroupMac(mac)
