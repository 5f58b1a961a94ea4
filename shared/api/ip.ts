/**
 * IPv4 and IPv6 address text, validated and put in one canonical form so that addresses can
 * be compared with `===` and looked up by key: IPv4 dotted quad without leading zeros, IPv6
 * as RFC 5952 recommends (lowercase, longest run of zero groups compressed, no leading zeros).
 *
 * @module
 */

export type Ipv4 = string & { readonly __brand: 'Ipv4' }
export type Ipv6 = string & { readonly __brand: 'Ipv6' }

/**
 * @example
 * ```ts
 * parseIpv4('10.0.0.1') // '10.0.0.1'
 * ```
 */
export function parseIpv4(textValue: string): Ipv4 {
  const parts = textValue.split('.')
  if (parts.length !== 4 || parts.some((p) => !/^(0|[1-9][0-9]{0,2})$/.test(p) || Number(p) > 255)) {
    throw new Error(`Cannot parse IPv4 address: "${textValue}" is not a dotted quad`)
  }
  return textValue as Ipv4
}

function parseGroups(part: string, whole: string): number[] {
  if (part === '') return []
  return part.split(':').map((g) => {
    if (!/^[0-9a-fA-F]{1,4}$/.test(g)) throw new Error(`Cannot parse IPv6 address: "${whole}" has a bad group "${g}"`)
    return parseInt(g, 16)
  })
}

/**
 * Parses IPv6 text (with an optional embedded IPv4 tail) into RFC 5952 canonical form.
 * @example
 * ```ts
 * parseIpv6('2001:DB8:0:0:0:0:0:1') // '2001:db8::1'
 * ```
 */
export function parseIpv6(textValue: string): Ipv6 {
  let s = textValue
  let tail: number[] = []
  const lastColon = s.lastIndexOf(':')
  if (s.includes('.') && lastColon >= 0) {
    const v4 = parseIpv4(s.slice(lastColon + 1)).split('.').map(Number)
    tail = [(v4[0]! << 8) | v4[1]!, (v4[2]! << 8) | v4[3]!]
    s = s.slice(0, lastColon + 1) + '0'
  }
  const halves = s.split('::')
  if (halves.length > 2) throw new Error(`Cannot parse IPv6 address: "${textValue}" has more than one "::"`)
  let groups: number[]
  if (halves.length === 2) {
    const head = parseGroups(halves[0]!, textValue)
    const rest = parseGroups(halves[1]!, textValue)
    const fill = 8 - head.length - rest.length - (tail.length ? 1 : 0)
    if (fill < 1) throw new Error(`Cannot parse IPv6 address: "${textValue}" has too many groups`)
    groups = [...head, ...new Array<number>(fill).fill(0), ...rest]
  } else {
    groups = parseGroups(s, textValue)
  }
  if (tail.length) groups = [...groups.slice(0, -1), ...tail]
  if (groups.length !== 8) throw new Error(`Cannot parse IPv6 address: "${textValue}" does not have 8 groups`)
  // RFC 5952 4.2: compress the longest run (first if tied) of two or more zero groups.
  let bestStart = -1
  let bestLen = 1
  for (let i = 0; i < 8; ) {
    if (groups[i] !== 0) {
      i++
      continue
    }
    let j = i
    while (j < 8 && groups[j] === 0) j++
    if (j - i > bestLen) {
      bestStart = i
      bestLen = j - i
    }
    i = j
  }
  const hex = groups.map((g) => g.toString(16))
  if (bestStart < 0) return hex.join(':') as Ipv6
  return `${hex.slice(0, bestStart).join(':')}::${hex.slice(bestStart + bestLen).join(':')}` as Ipv6
}

/** Either family, canonical; IPv6 when the text contains a colon. */
export function parseIp(textValue: string): Ipv4 | Ipv6 {
  return textValue.includes(':') ? parseIpv6(textValue) : parseIpv4(textValue)
}
