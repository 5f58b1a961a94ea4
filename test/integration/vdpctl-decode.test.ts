// vdpctl decode as a real process, next to tshark 4.0 on the same captures: tshark's vdp21
// dissector ignores the entry count and shifts every filter field; vdpctl does not.
import { execFileSync } from 'node:child_process'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { CAPTURES_DIR } from '../support/captures.ts'
import { tsharkFields } from '../support/tshark.ts'

describe('vdpctl decode against tshark', () => {
  it('reads VID 100 and the VM MAC where tshark shows them shifted', () => {
    const file = join(CAPTURES_DIR, 'pybridge-vid.pcap')
    const out = execFileSync('node', ['bin/vdpctl.mjs', 'decode', file, '--only', 'vdp'], { encoding: 'utf8' })
    const frame13 = (JSON.parse(out) as Array<{ frame: number; ecp: { sequence: number; vdp: { tlvs: Array<{ entries: Array<{ vid: number; mac: string }> }> } } }>).find((f) => f.frame === 13)!
    const [row] = tsharkFields(file, ['frame.number', 'ecp.seqno', 'vdp21.assoc.mac_id', 'vdp21.vidstr.vid'], 'frame.number==13')
    // Both agree on the ECP header ...
    expect(Number(row![1])).toBe(frame13.ecp.sequence)
    // ... tshark reads the entry count as part of the MAC and the MAC's tail as the VID.
    expect(row![2]).toBe('00:01:02:76:64:71')
    expect(parseInt(row![3]!, 16)).toBe(0x011)
    expect(frame13.ecp.vdp.tlvs[0]!.entries[0]).toMatchObject({ mac: '02:76:64:71:00:11', vid: 100 })
  })
})
