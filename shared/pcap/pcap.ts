/**
 * Classic pcap reader and writer (libpcap format, both byte orders, microsecond and
 * nanosecond magic; LINKTYPE_ETHERNET). Pure: works on bytes, the caller reads the file.
 *
 * @module
 */
import { DecodeError } from '../wire/errors.ts'

export const LINKTYPE_ETHERNET = 1

export interface PcapRecord {
  /** Capture time, microseconds since the epoch. */
  timeUs: number
  /** Original length on the wire. */
  originalLength: number
  data: Uint8Array
}

export interface Pcap {
  linkType: number
  snapLength: number
  records: PcapRecord[]
}

/**
 * @example
 * ```ts
 * const { records } = decodePcap(new Uint8Array(readFileSync('x.pcap')))
 * ```
 */
export function decodePcap(bytes: Uint8Array): Pcap {
  if (bytes.length < 24) throw new DecodeError('bad-pcap', 0, `Cannot read pcap: ${bytes.length} bytes is shorter than the global header`)
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength)
  const magicBe = view.getUint32(0, false)
  let little: boolean
  let nanos = false
  if (magicBe === 0xa1b2c3d4) little = false
  else if (magicBe === 0xd4c3b2a1) little = true
  else if (magicBe === 0xa1b23c4d) { little = false; nanos = true }
  else if (magicBe === 0x4d3cb2a1) { little = true; nanos = true }
  else throw new DecodeError('bad-pcap', 0, `Cannot read pcap: magic 0x${magicBe.toString(16)} is not a classic pcap file (pcapng is not supported)`)
  const snapLength = view.getUint32(16, little)
  const linkType = view.getUint32(20, little)
  const records: PcapRecord[] = []
  let at = 24
  while (at < bytes.length) {
    if (at + 16 > bytes.length) throw new DecodeError('truncated', at, `Cannot read pcap record header at offset ${at}: file ends`)
    const sec = view.getUint32(at, little)
    const frac = view.getUint32(at + 4, little)
    const caplen = view.getUint32(at + 8, little)
    const originalLength = view.getUint32(at + 12, little)
    if (at + 16 + caplen > bytes.length) throw new DecodeError('truncated', at, `Cannot read pcap record at offset ${at}: ${caplen} bytes announced, file ends`)
    records.push({ timeUs: sec * 1_000_000 + (nanos ? Math.floor(frac / 1000) : frac), originalLength, data: bytes.slice(at + 16, at + 16 + caplen) })
    at += 16 + caplen
  }
  return { linkType, snapLength, records }
}

/** Writes a little-endian microsecond pcap; used to dump simulated links for Wireshark. */
export function encodePcap(records: readonly PcapRecord[], linkType = LINKTYPE_ETHERNET): Uint8Array {
  const size = 24 + records.reduce((n, r) => n + 16 + r.data.length, 0)
  const out = new Uint8Array(size)
  const view = new DataView(out.buffer)
  view.setUint32(0, 0xa1b2c3d4, true)
  view.setUint16(4, 2, true)
  view.setUint16(6, 4, true)
  view.setUint32(16, 65535, true)
  view.setUint32(20, linkType, true)
  let at = 24
  for (const r of records) {
    view.setUint32(at, Math.floor(r.timeUs / 1_000_000), true)
    view.setUint32(at + 4, r.timeUs % 1_000_000, true)
    view.setUint32(at + 8, r.data.length, true)
    view.setUint32(at + 12, r.originalLength, true)
    out.set(r.data, at + 16)
    at += 16 + r.data.length
  }
  return out
}
