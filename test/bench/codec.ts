// Codec throughput: encode and decode of a typical associate request ECPDU (Ethernet + ECP +
// Manager ID + one MAC/VID association TLV, 71 octets, as lldpad sends it), and of an
// ECPDU packing 16 association TLVs. Baseline in the same run: a plain Uint8Array copy of the
// same bytes. Run: npx tsx test/bench/codec.ts
import { decodeEcpdu, encodeEcpdu } from '../../shared/ecp/codec.ts'
import { decodeEthernetFrame, encodeEthernetFrame } from '../../shared/ethernet/frame.ts'
import { decodeVdpPdu, encodeVdpPdu } from '../../shared/vdp/codec.ts'
import type { VdpPdu, VsiTlv } from '../../shared/vdp/types.ts'
import { readCapture } from '../support/captures.ts'

const frame = readCapture('lldpad-assoc')[0]!.data
const decodeAll = (bytes: Uint8Array) => {
  const eth = decodeEthernetFrame(bytes)
  const ecp = decodeEcpdu(eth.payload)
  return { eth, ecp, vdp: decodeVdpPdu(ecp.ulpdu) }
}
const d = decodeAll(frame)
const encodeAll = (x: ReturnType<typeof decodeAll>) =>
  encodeEthernetFrame({ ...x.eth, payload: encodeEcpdu({ header: x.ecp.header, ulpdu: encodeVdpPdu(x.vdp) }) })

const tlv = d.vdp.tlvs[0] as VsiTlv
const packed: VdpPdu = {
  ...d.vdp,
  tlvs: Array.from({ length: 16 }, (_, i) => ({ ...tlv, vsiId: { ...tlv.vsiId, id: tlv.vsiId.id.slice(0, 30) + i.toString(16).padStart(2, '0') } }) as VsiTlv),
}
const packedFrame = encodeAll({ ...d, vdp: packed })

function rate(name: string, n: number, f: () => unknown): number {
  for (let i = 0; i < Math.min(n, 20_000); i++) f() // warm-up
  const t0 = process.hrtime.bigint()
  for (let i = 0; i < n; i++) f()
  const s = Number(process.hrtime.bigint() - t0) / 1e9
  const perS = n / s
  console.log(`${name.padEnd(58)} ${Math.round(perS).toLocaleString('en-US').padStart(12)} /s`)
  return perS
}

const N = 300_000
console.log(`node ${process.version}, ${N} iterations each`)
const copy = rate('baseline: copy of the 71-octet frame', N, () => frame.slice())
const dec = rate('decode associate frame (Ethernet+ECP+VDP, 1 TLV)', N, () => decodeAll(frame))
const enc = rate('encode associate frame (Ethernet+ECP+VDP, 1 TLV)', N, () => encodeAll(d))
const decPacked = rate('decode frame with 16 association TLVs', N / 10, () => decodeAll(packedFrame))
console.log(`TLVs decoded per second (1-TLV frames):   ${Math.round(dec).toLocaleString('en-US')}`)
console.log(`TLVs decoded per second (16-TLV frames):  ${Math.round(decPacked * 16).toLocaleString('en-US')}`)
console.log(`decode cost relative to a plain copy:     ${(copy / dec).toFixed(1)}x`)
console.log(`encode cost relative to a plain copy:     ${(copy / enc).toFixed(1)}x`)
