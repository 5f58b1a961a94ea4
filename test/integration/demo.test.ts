// `npm start` as a newcomer runs it: the edge with its embedded defaults and the
// demonstration fleet; associations and a migration show up in the API within seconds, and
// Ctrl-C leaves no namespace, link or process behind. Both link kinds: veth (root) and memory.
import { spawn } from 'node:child_process'
import { execFileSync } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { REPO_ROOT } from '../support/netns.ts'
import { freeLoopbackPort } from '../support/redis.ts'

async function runDemo(links: 'veth' | 'memory'): Promise<void> {
  const http = await freeLoopbackPort()
  const mqtt = await freeLoopbackPort()
  const parent = mkdtempSync(join(tmpdir(), 'vdp-demo-'))
  const dir = join(parent, 'state')
  const child = spawn(process.execPath, ['bin/vdp-demo.mjs', '--links', links, '--migrate-every-s', '3', '--http', `127.0.0.1:${http}`, '--mqtt-listen', `127.0.0.1:${mqtt}`, '--dir', dir], { cwd: REPO_ROOT, stdio: ['ignore', 'pipe', 'pipe'] })
  let out = ''
  let err = ''
  child.stdout!.on('data', (d) => (out += d))
  child.stderr!.on('data', (d) => (err += d))
  const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)))
  try {
    const end = Date.now() + 30_000
    while (!/token=([0-9a-f]+)/.test(out) && Date.now() < end) await new Promise((r) => setTimeout(r, 100))
    const token = /token=([0-9a-f]+)/.exec(out)?.[1]
    expect(token, `demo did not start:\n${out}\n${err.slice(-2000)}`).toBeDefined()
    const get = async (path: string) => (await fetch(`http://127.0.0.1:${http}/api/v1${path}`, { headers: { authorization: `Bearer ${token}` } })).json() as Promise<Record<string, any>>
    const vsis = (await get('/vsis')).vsis as Array<{ state: string; current: { switchId: string; vni: number; vid: number } }>
    expect(vsis).toHaveLength(4)
    expect(vsis.every((v) => v.state === 'associated')).toBe(true)
    expect(new Set(vsis.map((v) => v.current.switchId))).toEqual(new Set(['leaf1', 'leaf2']))
    let migrations: Array<{ migration: { state: string } }> = []
    while (Date.now() < end + 15_000) {
      migrations = (await get('/migrations')).migrations
      if (migrations.some((m) => m.migration.state === 'completed')) break
      await new Promise((r) => setTimeout(r, 250))
    }
    expect(migrations.some((m) => m.migration.state === 'completed')).toBe(true)
    const page = await (await fetch(`http://127.0.0.1:${http}/?token=${token}`)).text()
    expect(page).toMatch(/<html/i)
  } finally {
    child.kill('SIGINT')
    const code = await exited
    rmSync(parent, { recursive: true, force: true })
    expect(code).toBe(0)
  }
  expect(execFileSync('ip', ['netns', 'list'], { encoding: 'utf8' })).not.toMatch(new RegExp(`vdpdemo${child.pid! % 1000}-`))
}

describe('npm start (demonstration fleet)', () => {
  it('shows associations and a migration in the API over veth pairs in namespaces', () => runDemo('veth'), 90_000)
  it('does the same over in-process links (what a non-root user gets)', () => runDemo('memory'), 90_000)
})
