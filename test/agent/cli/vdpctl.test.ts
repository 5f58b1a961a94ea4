import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { decodeCapture, runVdpctl } from '../../../agent/cli/vdpctl.ts'
import { CAPTURES_DIR, readExpectedDecode } from '../../support/captures.ts'

const run = async (args: string[]) => {
  let out = ''
  let err = ''
  const code = await runVdpctl(args, { out: (t) => (out += t), err: (t) => (err += t) })
  return { code, out, err }
}

describe('vdpctl decode', () => {
  it('prints the filter entries of pybridge-vid.pcap as the reference decode lists them', async () => {
    const { code, out } = await run(['decode', join(CAPTURES_DIR, 'pybridge-vid.pcap'), '--only', 'vdp'])
    expect(code).toBe(0)
    const frames = JSON.parse(out) as Array<{ frame: number; ecp: { vdp: { tlvs: Array<{ entries: unknown[] }> } } }>
    const expected = readExpectedDecode('pybridge-vid').filter((f) => f.vsi.length > 0)
    expect(frames.map((f) => f.frame)).toEqual(expected.map((f) => f.index))
    for (const f of frames) {
      const want = expected.find((e) => e.index === f.frame)!
      const got = f.ecp.vdp.tlvs[0]!.entries as Array<{ vid: number; mac?: string; groupId?: number }>
      expect(got.map((e) => ({ vid: e.vid, ...(e.mac ? { mac: e.mac } : {}), ...(e.groupId !== undefined ? { groupId: e.groupId } : {}) }))).toEqual(want.vsi[0]!.entries)
    }
    // frame 13: VID 100 assigned; frame 17: GroupID 7001 -> VID 101
    expect(frames.find((f) => f.frame === 13)!.ecp.vdp.tlvs[0]!.entries[0]).toMatchObject({ vid: 100, mac: '02:76:64:71:00:11' })
    expect(frames.find((f) => f.frame === 17)!.ecp.vdp.tlvs[0]!.entries[0]).toMatchObject({ vid: 101, groupId: 7001 })
  })

  it('decodes the EVB TLV of the LLDP capture', () => {
    const frames = decodeCapture(new Uint8Array(readFileSync(join(CAPTURES_DIR, 'lldpad-evb-lldp.pcap'))), 'lldp')
    expect(frames).toHaveLength(13)
    expect((frames[4] as { lldp: { evb: unknown } }).lldp.evb).toMatchObject({ mode: 2, retries: 3, rte: 8, rwd: 20, rka: 20, station: { sgid: true, rrreq: true, rrstat: 1 } })
  })

  it('fails with a clear message and exit code on a missing file, a non-pcap file and bad options', async () => {
    expect((await run(['decode', '/nonexistent.pcap'])).err).toMatch(/cannot read \/nonexistent.pcap: ENOENT/)
    const notPcap = await run(['decode', join(CAPTURES_DIR, 'README.md')])
    expect(notPcap.code).toBe(1)
    expect(notPcap.err).toMatch(/bad-pcap/)
    expect((await run(['decode', 'x.pcap', '--only', 'ip'])).code).toBe(2)
    expect((await run(['frobnicate'])).code).toBe(2)
  })
})
