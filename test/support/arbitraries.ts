/** fast-check generators for the wire model: VSI TLVs, VDP PDUs, ECPDUs, EVB TLVs. */
import fc from 'fast-check'
import type { Mac } from '../../shared/ethernet/mac.ts'
import type { ManagerId, VsiIdHex } from '../../shared/ids.ts'
import type { EvbTlv } from '../../shared/evb/evb-tlv.ts'
import type { FilterEntry, VdpPdu, VdpTlv, VsiStatus, VsiTlv } from '../../shared/vdp/types.ts'
import type { FilterFormat, VsiMode } from '../../shared/vdp/constants.ts'
import { toHex } from '../../shared/wire/hex.ts'

export const hex16 = fc.uint8Array({ minLength: 16, maxLength: 16 }).map((b) => toHex(b))
export const mac = fc.uint8Array({ minLength: 6, maxLength: 6 }).map((b) => Array.from(b, (x) => x.toString(16).padStart(2, '0')).join(':') as Mac)

export const status: fc.Arbitrary<VsiStatus> = fc.oneof(
  fc.record({ response: fc.constant(false as const), migratingFrom: fc.boolean(), migratingTo: fc.boolean() }),
  fc.record({ response: fc.constant(true as const), keep: fc.boolean(), hard: fc.boolean(), error: fc.integer({ min: 0, max: 15 }) }),
)

export function entry(format: FilterFormat): fc.Arbitrary<FilterEntry> {
  const word = { vid: fc.integer({ min: 0, max: 4095 }), ps: fc.boolean(), pcp: fc.integer({ min: 0, max: 7 }) }
  const group = fc.integer({ min: 0, max: 0xffffffff })
  switch (format) {
    case 1: return fc.record(word)
    case 2: return fc.record({ ...word, mac })
    case 3: return fc.record({ ...word, groupId: group })
    case 4: return fc.record({ ...word, mac, groupId: group })
  }
}

export const vsiTlv: fc.Arbitrary<VsiTlv> = fc
  .constantFrom<FilterFormat>(1, 2, 3, 4)
  .chain((filterFormat) =>
    fc.record({
      kind: fc.constant('vsi' as const),
      mode: fc.constantFrom<VsiMode>('pre-associate', 'pre-associate-rr', 'associate', 'de-associate'),
      status,
      typeId: fc.integer({ min: 0, max: 0xffffff }),
      typeVersion: fc.integer({ min: 0, max: 255 }),
      vsiId: fc.record({ format: fc.constantFrom(1, 2, 3, 4, 5) as fc.Arbitrary<1 | 2 | 3 | 4 | 5>, id: hex16.map((h) => h as VsiIdHex) }),
      filterFormat: fc.constant(filterFormat),
      entries: fc.array(entry(filterFormat), { minLength: 1, maxLength: 8 }),
    }),
  )

export const vdpTlv: fc.Arbitrary<VdpTlv> = fc.oneof(
  { weight: 6, arbitrary: vsiTlv },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('org' as const), oui: fc.integer({ min: 0, max: 0xffffff }), data: fc.uint8Array({ maxLength: 40 }) }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('unknown' as const), type: fc.integer({ min: 6, max: 126 }), body: fc.uint8Array({ maxLength: 40 }) }) },
)

export const vdpPdu: fc.Arbitrary<VdpPdu> = fc.record({
  managerId: hex16.map((h) => h as ManagerId),
  tlvs: fc.array(vdpTlv, { minLength: 0, maxLength: 6 }),
  endTlv: fc.boolean(),
})

export const evbTlv: fc.Arbitrary<EvbTlv> = fc.record({
  bridge: fc.record({ bgid: fc.boolean(), rrcap: fc.boolean(), rrctr: fc.boolean() }),
  station: fc.record({ sgid: fc.boolean(), rrreq: fc.boolean(), rrstat: fc.integer({ min: 0, max: 3 }) }),
  retries: fc.integer({ min: 0, max: 7 }),
  rte: fc.integer({ min: 0, max: 31 }),
  mode: fc.integer({ min: 0, max: 3 }),
  rwdRol: fc.boolean(),
  rwd: fc.integer({ min: 0, max: 31 }),
  rkaRol: fc.boolean(),
  rka: fc.integer({ min: 0, max: 31 }),
})
