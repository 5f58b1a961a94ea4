import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { DataplaneError } from '../../../agent/dataplane/driver.ts'
import { OwnershipRecord, writeFileAtomic } from '../../../agent/dataplane/ownership.ts'

let dir: string
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'ownership-'))
})
afterEach(async () => {
  await rm(dir, { recursive: true, force: true })
})

describe('OwnershipRecord', () => {
  it('starts empty, saves atomically (no temp file left) and loads back', async () => {
    const path = join(dir, 'state', 'owned.json')
    const rec = await OwnershipRecord.load(path, 'sonic', 'redis:4')
    expect(rec.items()).toEqual([])
    rec.add(['VLAN|Vlan100', 'VLAN_MEMBER|Vlan100|Ethernet0'])
    await rec.save()
    expect(await readdir(join(dir, 'state'))).toEqual(['owned.json'])
    expect(JSON.parse(await readFile(path, 'utf8'))).toEqual({
      version: 1,
      driver: 'sonic',
      scope: 'redis:4',
      items: ['VLAN_MEMBER|Vlan100|Ethernet0', 'VLAN|Vlan100'],
    })
    const again = await OwnershipRecord.load(path, 'sonic', 'redis:4')
    expect(again.has('VLAN|Vlan100')).toBe(true)
    again.delete(['VLAN|Vlan100'])
    await again.save()
    expect((await OwnershipRecord.load(path, 'sonic', '')).items()).toEqual(['VLAN_MEMBER|Vlan100|Ethernet0'])
  })

  it('refuses a corrupt record and one written by another driver', async () => {
    const path = join(dir, 'owned.json')
    await writeFile(path, '{not json')
    await expect(OwnershipRecord.load(path, 'sonic', '')).rejects.toMatchObject({ code: 'ownership-io' })
    await writeFile(path, JSON.stringify({ version: 1, driver: 'linux', scope: '', items: [] }))
    const e = await OwnershipRecord.load(path, 'sonic', '').catch((x) => x)
    expect(e).toBeInstanceOf(DataplaneError)
    expect(e.code).toBe('bad-config')
  })

  it('writeFileAtomic() replaces the whole file', async () => {
    const path = join(dir, 'f.json')
    await writeFileAtomic(path, 'a'.repeat(1000))
    await writeFileAtomic(path, 'b')
    expect(await readFile(path, 'utf8')).toBe('b')
  })
})
