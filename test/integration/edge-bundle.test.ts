// The esbuild bundle of vdp-edge (scripts/build.mjs, dist/vdp-edge/): built into a temporary
// directory, copied to another one with no node_modules anywhere above it, and started there
// on its embedded defaults (aedes broker, SQLite store at ./vdp-edge.sqlite of the working
// directory; only the two listen ports are chosen free, so the test does not collide with a
// vdp-edge on 8080/1883). Checked: /healthz and the API, and an MQTT round trip: a switch
// publishes agent-started, the event is in the API, and the switch receives its policy.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process'
import { cpSync, existsSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { dirname, join, parse } from 'node:path'
import mqtt from 'mqtt'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { decodePolicy, type SwitchPolicy } from '../../shared/api/policy.ts'
import { encodeEvent } from '../../shared/api/events.ts'
import { hashBrokerPassword } from '../../edge/broker/embedded-broker.ts'
import { agentStarted } from '../edge/support/events.ts'
import { eventually } from '../support/fleet.ts'
import { freePort } from '../support/mosquitto.ts'
import { REPO_ROOT } from '../support/netns.ts'

const ADMIN_TOKEN = 'bundle-test-admin-token-0123'
const LEAF_PASSWORD = 'leaf9-mqtt-secret'

describe('vdp-edge bundle (dist/vdp-edge)', () => {
  let tmp: string
  let runDir: string
  let child: ChildProcess | undefined
  let exited: Promise<number | null>
  let stderr = ''
  let httpUrl: string
  let mqttUrl: string

  beforeAll(async () => {
    tmp = mkdtempSync(join(tmpdir(), 'vdp-edge-bundle-'))
    const build = spawnSync(process.execPath, ['scripts/build.mjs', '--only', 'edge', '--out', join(tmp, 'build')], { cwd: REPO_ROOT, encoding: 'utf8' })
    expect(build.status, build.stderr).toBe(0)
    runDir = join(tmp, 'run')
    cpSync(join(tmp, 'build', 'vdp-edge'), runDir, { recursive: true })
    // Nothing to resolve packages from: no node_modules in the folder or above it.
    for (let d = runDir; ; d = dirname(d)) {
      expect(existsSync(join(d, 'node_modules')), `${d}/node_modules`).toBe(false)
      if (d === parse(d).root) break
    }
    writeFileSync(join(runDir, 'tokens.json'), JSON.stringify([{ name: 'ops', token: ADMIN_TOKEN, scope: 'admin' }]))
    writeFileSync(join(runDir, 'users.json'), JSON.stringify([{ username: 'leaf9', passwordHash: hashBrokerPassword(LEAF_PASSWORD) }]))
    const [httpPort, mqttPort] = [await freePort(), await freePort()]
    httpUrl = `http://127.0.0.1:${httpPort}`
    mqttUrl = `mqtt://127.0.0.1:${mqttPort}`
    const env = { ...process.env }
    delete env.NODE_PATH
    delete env.NODE_OPTIONS // vitest's loader hooks must not help the bundle
    child = spawn(
      process.execPath,
      ['vdp-edge.mjs', '--http', `127.0.0.1:${httpPort}`, '--mqtt-listen', `127.0.0.1:${mqttPort}`, '--tokens', 'tokens.json', '--mqtt-users', 'users.json'],
      { cwd: runDir, env, stdio: ['ignore', 'ignore', 'pipe'] },
    )
    const c = child
    process.on('exit', () => c.kill('SIGKILL'))
    exited = new Promise((resolve) => c.once('exit', (code) => resolve(code)))
    c.stderr!.setEncoding('utf8').on('data', (d: string) => (stderr += d))
    await eventually('vdp-edge started', async () => (stderr.includes('"vdp-edge started"') ? true : undefined), 15_000, 50).catch((e: unknown) => {
      throw new Error(`${String(e)}\n${stderr}`)
    })
  }, 120_000)

  afterAll(async () => {
    if (child && child.exitCode === null) {
      child.kill('SIGKILL')
      await exited
    }
    rmSync(tmp, { recursive: true, force: true })
  })

  it('holds the bundle and the SQLite addon only', () => {
    expect(readdirSync(join(tmp, 'build', 'vdp-edge')).sort()).toEqual(['better_sqlite3.node', 'package.json', 'vdp-edge.mjs'])
    const version = spawnSync(process.execPath, ['vdp-edge.mjs', '--version'], { cwd: runDir, encoding: 'utf8' })
    expect(version.stdout.trim()).toMatch(/^vdp-edge \d+\.\d+\.\d+$/)
    expect(version.stdout).not.toContain('0.0.0')
  })

  it('answers /healthz and the API, with its store in the working directory', async () => {
    const health = await fetch(`${httpUrl}/healthz`)
    expect(health.status).toBe(200)
    expect(await health.json()).toMatchObject({ status: 'ok' })
    const openapi = await fetch(`${httpUrl}/api/v1/openapi.json`)
    expect((await openapi.json()).openapi).toBe('3.1.0')
    expect((await fetch(`${httpUrl}/api/v1/switches`)).status).toBe(401)
    expect(existsSync(join(runDir, 'vdp-edge.sqlite'))).toBe(true)
  })

  it('takes an event over MQTT into the store and sends the switch its policy', async () => {
    const sw = await mqtt.connectAsync(mqttUrl, { username: 'leaf9', password: LEAF_PASSWORD, clientId: 'leaf9', clean: false })
    try {
      const policies: SwitchPolicy[] = []
      sw.on('message', (topic, payload) => {
        if (topic === 'vdp/switch/leaf9/policy' && payload.byteLength > 0) policies.push(decodePolicy(payload))
      })
      await sw.subscribeAsync('vdp/switch/leaf9/policy', { qos: 1 })
      const event = agentStarted({ sw: 'leaf9', bootId: 'boot-bundle-1', bootTime: Date.now() })
      await sw.publishAsync('vdp/switch/leaf9/events', Buffer.from(encodeEvent(event)), { qos: 1 })
      const api = (path: string) => fetch(`${httpUrl}/api/v1${path}`, { headers: { authorization: `Bearer ${ADMIN_TOKEN}` } }).then((r) => r.json())
      const stored = await eventually('the event in the API', async () => {
        const r = (await api('/events?switch=leaf9')) as { events: Array<{ event: { kind: string; bootId: string } }> }
        return r.events.length > 0 ? r.events : undefined
      })
      expect(stored[0]!.event).toMatchObject({ kind: 'agent-started', bootId: 'boot-bundle-1' })
      await eventually('the policy at the switch', async () => (policies.length > 0 ? true : undefined))
      expect(policies[0]).toMatchObject({ switchId: 'leaf9' })
      expect(await api('/switches/leaf9')).toMatchObject({ switchId: 'leaf9' })
    } finally {
      await sw.endAsync()
    }
  })

  it('stops on SIGTERM with exit code 0', async () => {
    child!.kill('SIGTERM')
    expect(await exited).toBe(0)
  })
})
