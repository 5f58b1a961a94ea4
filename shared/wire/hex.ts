/**
 * Hex helpers for fixtures and logs. `hex` is a tagged template that accepts `#` comments
 * and any whitespace, so golden vectors can be annotated field by field:
 *
 * @example
 * ```ts
 * const ack = hex`
 *   01 80 c2 00 00 00   # destination: nearest customer bridge
 *   89 40               # ethertype ECP
 * `
 * ```
 * @module
 */
export function fromHex(text: string): Uint8Array {
  const clean = text
    .split('\n')
    .map((line) => line.replace(/#.*$/, ''))
    .join('')
    .replace(/[\s:|-]/g, '')
  if (clean.length % 2 !== 0 || /[^0-9a-fA-F]/.test(clean)) {
    throw new Error(`Cannot parse hex: odd length or non-hex character in "${clean.slice(0, 40)}"`)
  }
  const out = new Uint8Array(clean.length / 2)
  for (let i = 0; i < out.length; i++) out[i] = parseInt(clean.slice(2 * i, 2 * i + 2), 16)
  return out
}

/** Value of one hex digit's char code, or -1. */
export const nibble = (c: number): number => {
  if (c >= 48 && c <= 57) return c - 48
  if (c >= 97 && c <= 102) return c - 87
  if (c >= 65 && c <= 70) return c - 55
  return -1
}

/** Value of the two hex digits at `at` in `text`, or -1 when they are not two hex digits. */
export function hexOctetAt(text: string, at: number): number {
  const hi = nibble(text.charCodeAt(at))
  const lo = nibble(text.charCodeAt(at + 1))
  return hi < 0 || lo < 0 ? -1 : (hi << 4) | lo
}

/**
 * Fast path for identifiers already normalised to plain hex (`ManagerId`, `VsiIdHex`):
 * no comments or separators; throws on anything else.
 */
export function bytesFromPlainHex(text: string): Uint8Array {
  const out = new Uint8Array(text.length >>> 1)
  for (let i = 0; i < out.length; i++) {
    const hi = nibble(text.charCodeAt(2 * i))
    const lo = nibble(text.charCodeAt(2 * i + 1))
    if (hi < 0 || lo < 0 || text.length % 2) throw new Error(`Cannot parse hex: "${text}" is not plain hex`)
    out[i] = (hi << 4) | lo
  }
  return out
}

export function hex(strings: TemplateStringsArray, ...values: unknown[]): Uint8Array {
  let text = ''
  strings.forEach((s, i) => {
    text += s + (i < values.length ? String(values[i]) : '')
  })
  return fromHex(text)
}

/** Two-digit lowercase hex of every octet value: a constant table, built once. */
const HEX_OCTETS: readonly string[] = Array.from({ length: 256 }, (_, b) => b.toString(16).padStart(2, '0'))

/** Hex of `bytes[start..end)`, no separator. */
export function hexOf(bytes: Uint8Array, start: number, end: number): string {
  let s = ''
  for (let i = start; i < end; i++) s += HEX_OCTETS[bytes[i]!]!
  return s
}

export function toHex(bytes: Uint8Array, separator = ''): string {
  let s = ''
  for (let i = 0; i < bytes.length; i++) s += (i && separator ? separator : '') + HEX_OCTETS[bytes[i]!]!
  return s
}

/** Hex of one octet, two digits. */
export const octetHex = (b: number): string => HEX_OCTETS[b & 0xff]!
