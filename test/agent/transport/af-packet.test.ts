// Loader and argument checks of the raw-socket link that need neither root nor a namespace
// (the socket itself is covered by test/integration/af-packet.test.ts).
import { createHash } from 'node:crypto'
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { afterAll, describe, expect, it } from 'vitest'
import {
  afPacketAddonCandidates,
  loadAfPacketAddon,
  openAfPacketLink,
} from '../../../agent/transport/af-packet.ts'
import { FrameLinkError } from '../../../agent/transport/frame-link.ts'
import { parseMac } from '../../../shared/ethernet/mac.ts'

const isLinux = process.platform === 'linux'
const dir = mkdtempSync(join(tmpdir(), 'afp-unit-'))

afterAll(() => rmSync(dir, { recursive: true, force: true }))

function errorOf(fn: () => unknown): FrameLinkError {
  try {
    fn()
  } catch (e) {
    expect(e).toBeInstanceOf(FrameLinkError)
    return e as FrameLinkError
  }
  throw new Error('expected an error')
}

describe('afPacketAddonCandidates', () => {
  it('looks beside the running file, then in prebuilds/ and build/Release/ of each folder upwards', () => {
    const list = afPacketAddonCandidates('/opt/vdp/dist/agent.mjs')
    const plat = `${process.platform}-${process.arch}`
    const own = list.filter((p) => !process.env.VDP_AF_PACKET_ADDON || p !== process.env.VDP_AF_PACKET_ADDON)
    expect(own.slice(0, 5)).toEqual([
      '/opt/vdp/dist/af_packet.node',
      `/opt/vdp/dist/prebuilds/${plat}/af_packet.node`,
      '/opt/vdp/dist/build/Release/af_packet.node',
      `/opt/vdp/prebuilds/${plat}/af_packet.node`,
      '/opt/vdp/build/Release/af_packet.node',
    ])
    expect(own.at(-1)).toBe('/build/Release/af_packet.node')
  })
})

describe('loadAfPacketAddon', () => {
  it('finds the addon of this checkout', () => {
    if (!isLinux) {
      expect(errorOf(() => loadAfPacketAddon()).code).toBe('ENOTSUP')
      return
    }
    const { path, addon } = loadAfPacketAddon()
    expect(path).toMatch(/af_packet\.node$/)
    expect(typeof addon.AfPacketSocket).toBe('function')
  })

  it('says where it looked when the file is missing', () => {
    const e = errorOf(() => loadAfPacketAddon(join(dir, 'missing', 'af_packet.node')))
    expect(e.code).toBe(isLinux ? 'ENOENT' : 'ENOTSUP')
    if (isLinux) expect(e.message).toMatch(/^Cannot load the AF_PACKET addon: af_packet\.node not found/)
  })

  it('reports a file that is not a loadable addon', () => {
    const bogus = join(dir, 'af_packet.node')
    writeFileSync(bogus, 'not an ELF file')
    const e = errorOf(() => loadAfPacketAddon(bogus))
    if (!isLinux) return expect(e.code).toBe('ENOTSUP')
    expect(e.code).toBe('ENOENT')
    expect(e.message).toContain('Cannot load the AF_PACKET addon: every candidate failed to load')
    expect(e.message).toContain(bogus)
  })
})

describe('openAfPacketLink argument errors (before any socket is made)', () => {
  it('names a missing interface', () => {
    const e = errorOf(() => openAfPacketLink('nope0'))
    if (!isLinux) return expect(e.code).toBe('ENOTSUP')
    expect(e.code).toBe('ENODEV')
    expect(e.fatal).toBe(true)
    expect(e.message).toBe('Cannot open raw socket on nope0: no such interface')
  })

  it('refuses names longer than IFNAMSIZ - 1', () => {
    const e = errorOf(() => openAfPacketLink('a-very-long-ifname'))
    if (!isLinux) return expect(e.code).toBe('ENOTSUP')
    expect(e.code).toBe('ENAMETOOLONG')
    expect(e.message).toBe('Cannot open raw socket on a-very-long-ifname: interface name is longer than 15 characters')
  })

  it('refuses more than 8 multicast groups', () => {
    const groups = Array.from({ length: 9 }, (_, i) => parseMac(`01:80:c2:00:00:0${i}`))
    const e = errorOf(() => openAfPacketLink('lo', { multicast: groups }))
    if (!isLinux) return expect(e.code).toBe('ENOTSUP')
    expect(e.code).toBe('EINVAL')
    expect(e.message).toBe('Cannot open raw socket on lo: 9 multicast groups exceed the limit of 8')
  })
})

describe('committed prebuilt addons', () => {
  // ELF e_machine (offset 18, little-endian): what `file` reports as x86-64 / ARM aarch64.
  const machineOf = (path: string): number => readFileSync(path).readUInt16LE(18)
  const prebuilt = (target: string): string =>
    fileURLToPath(new URL(`../../../prebuilds/${target}/af_packet.node`, import.meta.url))

  it('has an x86-64 and an aarch64 shared object', () => {
    expect(readFileSync(prebuilt('linux-x64')).subarray(0, 4).toString('latin1')).toBe('\x7fELF')
    expect(machineOf(prebuilt('linux-x64'))).toBe(0x3e)
    expect(readFileSync(prebuilt('linux-arm64')).subarray(0, 4).toString('latin1')).toBe('\x7fELF')
    expect(machineOf(prebuilt('linux-arm64'))).toBe(0xb7)
  })
})

describe('prebuilds/SOURCES.sha256', () => {
  it('matches native/af_packet.c and binding.gyp (rerun firmware-scripts/build-addon.sh if not)', () => {
    const root = fileURLToPath(new URL('../../../', import.meta.url))
    const lines = readFileSync(join(root, 'prebuilds', 'SOURCES.sha256'), 'utf8').trim().split('\n')
    for (const line of lines) {
      const [sum, file] = line.split(/\s+/)
      expect(createHash('sha256').update(readFileSync(join(root, file!))).digest('hex'), file).toBe(sum)
    }
    expect(lines).toHaveLength(2)
  })
})
