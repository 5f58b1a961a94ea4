/**
 * Access to the golden captures in ../shared/captures (read-only reference beside the
 * checkout) and a parser for their independent `*.decode.txt` decodes, so tests can compare
 * our decoder's field values against them frame by frame.
 */
import { existsSync, readFileSync } from 'node:fs'
import { dirname, join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { decodePcap, type PcapRecord } from '../../shared/pcap/pcap.ts'

const here = dirname(fileURLToPath(import.meta.url))
export const CAPTURES_DIR = resolve(here, '../../../shared/captures')
export const CAPTURE_NAMES = ['lldpad-evb-lldp', 'lldpad-assoc', 'lldpad-deassoc', 'pybridge-vid'] as const

export function readCapture(name: string): PcapRecord[] {
  const file = join(CAPTURES_DIR, `${name}.pcap`)
  if (!existsSync(file)) throw new Error(`Cannot read capture ${file}: the shared reference folder must sit beside the checkout`)
  return decodePcap(new Uint8Array(readFileSync(file))).records
}

export interface ExpectedVsi {
  mode: string
  response: boolean
  status: number
  error?: number
  typeId: number
  typeVersion: number
  vsiId: string
  filterFormat: number
  entries: Array<{ vid: number; mac?: string; groupId?: number }>
}

export interface ExpectedFrame {
  index: number
  source: string
  destination: string
  length: number
  kind: 'ecp' | 'lldp'
  operation?: 'request' | 'ack'
  sequence?: number
  managerId?: string
  vsi: ExpectedVsi[]
  evb?: { mode: string; bridge: number; station: number; retries: number; rte: number; rwd: number; rka: number }
}

const MODES: Record<string, string> = {
  Assoc: 'associate', DeAssoc: 'de-associate', PreAssoc: 'pre-associate', PreAssocRR: 'pre-associate-rr',
}

export function readExpectedDecode(name: string): ExpectedFrame[] {
  const text = readFileSync(join(CAPTURES_DIR, `${name}.decode.txt`), 'utf8')
  const frames: ExpectedFrame[] = []
  let cur: ExpectedFrame | undefined
  for (const line of text.split('\n')) {
    let m = /^\s*(\d+)\s+[\d.]+\s+(\S+) > (\S+) len=(\d+) (ECP v1 (REQ|ACK) sub=1 seq=(\d+)|LLDP)/.exec(line)
    if (m) {
      cur = {
        index: Number(m[1]), source: m[2]!, destination: m[3]!, length: Number(m[4]),
        kind: m[5] === 'LLDP' ? 'lldp' : 'ecp', vsi: [],
        ...(m[6] ? { operation: m[6] === 'REQ' ? 'request' : 'ack', sequence: Number(m[7]) } as const : {}),
      }
      frames.push(cur)
      continue
    }
    if (!cur) continue
    m = /^\s+MgrID "(.*)"/.exec(line)
    if (m) { cur.managerId = m[1]!; continue }
    m = /^\s+(\w+)\[(REQ|RESP)[^\]]*status=0x([0-9a-f]{2})\] typeid=(\d+) ver=(\d+) vsiid=(\S+) fif=(\d) (.*)$/.exec(line)
    if (m) {
      const status = parseInt(m[3]!, 16)
      cur.vsi.push({
        mode: MODES[m[1]!] ?? `unknown:${m[1]}`, response: m[2] === 'RESP', status,
        ...(m[2] === 'RESP' ? { error: status & 0x0f } : {}),
        typeId: Number(m[4]), typeVersion: Number(m[5]), vsiId: m[6]!.replace(/-/g, ''), filterFormat: Number(m[7]),
        entries: m[8]!.split(';').map((e) => {
          const f = Object.fromEntries(e.split(',').map((kv) => kv.split('=') as [string, string]))
          return { vid: Number(f.vid), ...(f.mac ? { mac: f.mac } : {}), ...(f.group ? { groupId: Number(f.group) } : {}) }
        }),
      })
      continue
    }
    m = /EVB TLV \(802.1Qbg-2012\): mode=(\w+) bridge=0x([0-9a-f]+)\(.*\) station=0x([0-9a-f]+)\(.*\) retries=(\d+) rte=(\d+) rwd=(\d+)\S* rka=(\d+)/.exec(line)
    if (m) {
      cur.evb = {
        mode: m[1]!, bridge: parseInt(m[2]!, 16), station: parseInt(m[3]!, 16),
        retries: Number(m[4]), rte: Number(m[5]), rwd: Number(m[6]), rka: Number(m[7]),
      }
    }
  }
  return frames
}
