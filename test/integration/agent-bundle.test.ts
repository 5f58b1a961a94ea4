// The esbuild bundle of vdp-agent (scripts/build.mjs, dist/vdp-agent/) copied to a folder with
// no node_modules above it opens its MQTT outbox (better-sqlite3's addon from beside the
// bundle) and starts; before, the addon lookup of the `bindings` package failed inside an ESM
// bundle ("__filename is not defined") as soon as --mqtt was given.
import { spawnSync } from 'node:child_process'
import { cpSync, existsSync, mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { startAgentProcess, type AgentProcess } from '../support/agent-process.ts'
import { NetnsLab, REPO_ROOT } from '../support/netns.ts'

describe('vdp-agent bundle (dist/vdp-agent)', () => {
  let tmp: string
  let lab: NetnsLab
  let ns: string
  let agent: AgentProcess | undefined

  beforeAll(async () => {
    tmp = mkdtempSync(join(tmpdir(), 'vdp-agent-bundle-'))
    const build = spawnSync(process.execPath, ['scripts/build.mjs', '--only', 'agent', '--out', join(tmp, 'build')], { cwd: REPO_ROOT, encoding: 'utf8' })
    expect(build.status, build.stderr).toBe(0)
    cpSync(join(tmp, 'build', 'vdp-agent'), join(tmp, 'run'), { recursive: true })
    lab = await NetnsLab.create('agbundle')
    ns = await lab.addNamespace('sw')
    await lab.addVethPair({ ns, ifname: 'sw0' }, { ns, ifname: 'sw1' })
  }, 120_000)

  afterAll(async () => {
    await agent?.stop()
    await lab?.cleanup()
    rmSync(tmp, { recursive: true, force: true })
  })

  it('starts with --mqtt from a copy of the folder and keeps its outbox in SQLite', async () => {
    agent = await startAgentProcess({
      netns: ns,
      entry: join(tmp, 'run', 'vdp-agent.mjs'),
      args: ['--port', 'sw0', '--switch-id', 'leaf7', '--dataplane', 'dry-run', '--mqtt', 'mqtt://127.0.0.1:1'],
    })
    expect(agent!.log().some((e) => e.event === 'agent-ready')).toBe(true)
    expect(existsSync(join(agent!.stateDir, 'outbox.sqlite'))).toBe(true)
    // The broker is unreachable: the agent-started event waits in the outbox.
    await agent!.waitForLog('uplink', (e) => e.msg === 'MQTT uplink disconnected: events stay in the outbox until the broker is back', 10_000)
    expect(await agent!.stop()).toBe(0)
  })
})
