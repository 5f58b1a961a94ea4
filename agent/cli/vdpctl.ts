/**
 * `vdpctl`: the operator's command line. `decode` works offline on a capture; the other
 * commands talk to a running `vdp-agent` over its local control socket.
 *
 * @module
 */
import { readFileSync } from 'node:fs'
import { parseArgs } from 'node:util'
import { decodeFrame } from '../../shared/decode-frame.ts'
import { decodePcap, LINKTYPE_ETHERNET } from '../../shared/pcap/pcap.ts'
import { DecodeError } from '../../shared/wire/errors.ts'

export const VDPCTL_USAGE = `Usage: vdpctl <command> [options]

Commands:
  decode FILE.pcap [--only ecp|lldp|vdp]   Decode ECP, VDP and LLDP/EVB frames of a capture as JSON
  help                                     Show this text

Options:
  --version    Print the version
`

export interface CliIo {
  out(text: string): void
  err(text: string): void
}

/** Decodes a classic pcap into one JSON object per frame. */
export function decodeCapture(bytes: Uint8Array, only?: string): Array<Record<string, unknown>> {
  const pcap = decodePcap(bytes)
  if (pcap.linkType !== LINKTYPE_ETHERNET) {
    throw new Error(`Cannot decode capture: link type ${pcap.linkType} is not Ethernet (1)`)
  }
  const t0 = pcap.records[0]?.timeUs ?? 0
  const frames = pcap.records.map((r, i) => ({ frame: i + 1, timeS: (r.timeUs - t0) / 1e6, ...decodeFrame(r.data) }))
  if (!only) return frames
  return frames.filter((f) => (only === 'lldp' ? 'lldp' in f : only === 'vdp' ? 'ecp' in f && typeof f.ecp === 'object' && f.ecp !== null && 'vdp' in f.ecp : 'ecp' in f))
}

export async function runVdpctl(argv: string[], io: CliIo): Promise<number> {
  const [command, ...rest] = argv
  if (command === undefined || command === 'help' || command === '--help' || command === '-h') {
    io.out(VDPCTL_USAGE)
    return command === undefined ? 2 : 0
  }
  if (command === '--version') {
    io.out(`vdpctl ${process.env.VDP_VERSION ?? '0.1.0'}\n`)
    return 0
  }
  if (command === 'decode') {
    let parsed
    try {
      parsed = parseArgs({ args: rest, allowPositionals: true, options: { only: { type: 'string' } } })
    } catch (e) {
      io.err(`vdpctl decode: ${(e as Error).message}\n`)
      return 2
    }
    const file = parsed.positionals[0]
    if (!file) {
      io.err('vdpctl decode: missing FILE.pcap\n')
      return 2
    }
    const only = parsed.values.only
    if (only !== undefined && !['ecp', 'lldp', 'vdp'].includes(only)) {
      io.err(`vdpctl decode: --only must be ecp, lldp or vdp, not "${only}"\n`)
      return 2
    }
    let bytes: Uint8Array
    try {
      bytes = new Uint8Array(readFileSync(file))
    } catch (e) {
      io.err(`vdpctl decode: cannot read ${file}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}\n`)
      return 1
    }
    try {
      io.out(JSON.stringify(decodeCapture(bytes, only), null, 2) + '\n')
      return 0
    } catch (e) {
      io.err(`vdpctl decode: ${e instanceof DecodeError ? `${e.code}: ${e.message}` : (e as Error).message}\n`)
      return 1
    }
  }
  io.err(`vdpctl: unknown command "${command}"\n\n${VDPCTL_USAGE}`)
  return 2
}

const isMain = process.argv[1] !== undefined && import.meta.url === new URL(`file://${process.argv[1]}`).href
if (isMain || process.env.VDPCTL_MAIN === '1') {
  runVdpctl(process.argv.slice(2), { out: (t) => process.stdout.write(t), err: (t) => process.stderr.write(t) }).then(
    (code) => process.exit(code),
  )
}
