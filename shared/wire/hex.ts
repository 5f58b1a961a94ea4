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

export function hex(strings: TemplateStringsArray, ...values: unknown[]): Uint8Array {
  let text = ''
  strings.forEach((s, i) => {
    text += s + (i < values.length ? String(values[i]) : '')
  })
  return fromHex(text)
}

export function toHex(bytes: Uint8Array, separator = ''): string {
  return Array.from(bytes, (b) => b.toString(16).padStart(2, '0')).join(separator)
}
