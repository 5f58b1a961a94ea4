/**
 * `vdp-edge` (edge/main.ts, bin/vdp-edge.mjs): flags, the CLI's help/version/hash-password,
 * and a whole edge on ephemeral loopback ports fed by a real agent uplink.
 */
import { spawn, spawnSync } from 'node:child_process'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import { MqttUplink } from '../../agent/uplink/mqtt-uplink.ts'
import { hashBrokerPassword } from '../../edge/broker/embedded-broker.ts'
import { UsageError, jsonLogger, parseEdgeArgs, startEdge, type EdgeOptions } from '../../edge/main.ts'
import type { SwitchId } from '../../shared/ids.ts'

const ROOT = resolve(import.meta.dirname, '../..')
const dirs: string[] = []
const tempDir = () => {
  const d = mkdtempSync(join(tmpdir(), 'vdp-edge-main-'))
  dirs.push(d)
  return d
}
afterAll(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true })
})

describe('parseEdgeArgs', () => {
  it('parseEdgeArgs() gives the embedded defaults', () => {
    const o = parseEdgeArgs([]) as EdgeOptions
    expect(o.httpHost).toBe('127.0.0.1')
    expect(o.httpPort).toBe(8080)
    expect(o.mqttUrl).toBeUndefined()
    expect([o.mqttListenHost, o.mqttListenPort]).toEqual(['127.0.0.1', 1883])
    expect(o.db).toBe('vdp-edge.sqlite')
    expect(o.topicPrefix).toBe('vdp')
    expect(o.commandTtlMs).toBe(3_600_000)
  })

  it('parseEdgeArgs() reads every flag, with a space or an equals sign', () => {
    const o = parseEdgeArgs([
      '--http=0.0.0.0:9000',
      '--mqtt',
      'mqtts://broker.example:8883',
      '--mqtt-shared',
      'edge',
      '--mqtt-client-id',
      'vdp-edge-2',
      '--mqtt-protocol',
      '5',
      '--db',
      ':memory:',
      '--topic-prefix',
      'dc1/vdp',
      '--migration-grace-ms',
      '5000',
      '--command-ttl-ms=600000',
      '--log-level',
      'warn',
    ]) as EdgeOptions
    expect([o.httpHost, o.httpPort]).toEqual(['0.0.0.0', 9000])
    expect(o.mqttUrl).toBe('mqtts://broker.example:8883')
    expect(o.mqttShared).toBe('edge')
    expect(o.mqttClientId).toBe('vdp-edge-2')
    expect(o.mqttProtocol).toBe(5)
    expect(o.db).toBe(':memory:')
    expect(o.topicPrefix).toBe('dc1/vdp')
    expect(o.migrationGraceMs).toBe(5000)
    expect(o.commandTtlMs).toBe(600_000)
    expect(o.logLevel).toBe('warn')
    expect(parseEdgeArgs(['--http', '[::1]:8080'])).toMatchObject({ httpHost: '::1', httpPort: 8080 })
  })

  it('parseEdgeArgs() rejects bad values with a UsageError naming the flag', () => {
    const cases: [string[], RegExp][] = [
      [['--http', '8080'], /--http/],
      [['--http', 'localhost:99999'], /--http/],
      [['--mqtt', 'http://x'], /--mqtt/],
      [['--mqtt'], /needs a value/],
      [['--log-level', 'loud'], /--log-level/],
      [['--command-ttl-ms', '0'], /--command-ttl-ms/],
      [['--command-ttl-ms', '1h'], /--command-ttl-ms/],
      [['--topic-prefix', 'a/+/b'], /prefix/],
      [['--frobnicate'], /unknown/],
      [['--mqtt', 'mqtt://x:1883', '--mqtt-users', 'f.json'], /--mqtt-users/],
      [['--mqtt-shared', 'g'], /--mqtt-shared/],
      [['--mqtt-protocol', '5'], /--mqtt-protocol/],
      [['--mqtt', 'mqtt://x:1883', '--mqtt-protocol', '3'], /--mqtt-protocol/],
    ]
    for (const [argv, re] of cases) {
      expect(() => parseEdgeArgs(argv)).toThrow(UsageError)
      expect(() => parseEdgeArgs(argv)).toThrow(re)
    }
    expect(parseEdgeArgs(['--help'])).toBe('help')
    expect(parseEdgeArgs(['--version'])).toBe('version')
  })
})

describe('bin/vdp-edge.mjs', () => {
  const run = (args: string[], input?: string) =>
    spawnSync(process.execPath, [join(ROOT, 'bin/vdp-edge.mjs'), ...args], { encoding: 'utf8', input, timeout: 30_000 })

  it('vdp-edge --help, --version and a bad flag', () => {
    const help = run(['--help'])
    expect(help.status).toBe(0)
    expect(help.stdout).toMatch(/--mqtt-listen HOST:PORT/)
    const version = run(['--version'])
    expect(version.status).toBe(0)
    expect(version.stdout).toMatch(/^vdp-edge \d+\.\d+\.\d+/)
    const bad = run(['--nope'])
    expect(bad.status).toBe(2)
    expect(bad.stderr).toMatch(/unknown/)
  })

  it('vdp-edge hash-password prints a scrypt hash of stdin', () => {
    const r = run(['hash-password'], 'tor1-password\n')
    expect(r.status).toBe(0)
    expect(r.stdout.trim()).toMatch(/^scrypt\$[A-Za-z0-9+/=]+\$[A-Za-z0-9+/=]+$/)
  })
})

describe('vdp-edge process', () => {
  it('vdp-edge starts with embedded defaults on given ports and exits 0 on SIGTERM', async () => {
    const dir = tempDir()
    const child = spawn(
      process.execPath,
      [join(ROOT, 'bin/vdp-edge.mjs'), '--http', '127.0.0.1:0', '--mqtt-listen', '127.0.0.1:0', '--db', join(dir, 'fleet.sqlite')],
      { stdio: ['ignore', 'ignore', 'pipe'] },
    )
    let log = ''
    const started = await new Promise<{ http: string; mqtt: string }>((resolveStarted, reject) => {
      const timer = setTimeout(() => reject(new Error(`vdp-edge did not start: ${log}`)), 20_000)
      child.stderr!.on('data', (d: Buffer) => {
        log += d.toString()
        for (const line of log.split('\n')) {
          if (!line.includes('vdp-edge started')) continue
          clearTimeout(timer)
          resolveStarted(JSON.parse(line) as { http: string; mqtt: string })
        }
      })
    })
    expect(started.mqtt).toMatch(/^mqtt:\/\/127\.0\.0\.1:\d+$/)
    const health = (await (await fetch(`http://${started.http}/healthz`)).json()) as { status: string }
    expect(health.status).toBe('ok')
    const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)))
    child.kill('SIGTERM')
    expect(await exited).toBe(0)
    expect(log).toContain('vdp-edge stopped')
  }, 30_000)
})

describe('startEdge', () => {
  it('startEdge() serves HTTP and the embedded broker, and ingests a switch uplink into the store', async () => {
    const dir = tempDir()
    writeFileSync(join(dir, 'users.json'), JSON.stringify([{ username: 'tor9', passwordHash: hashBrokerPassword('tor9-secret') }]))
    writeFileSync(join(dir, 'tokens.json'), JSON.stringify([{ name: 'ops', token: 'ops-token-0123456789', scope: 'admin' }]))
    const lines: string[] = []
    const options = parseEdgeArgs([
      '--http', '127.0.0.1:0',
      '--mqtt-listen', '127.0.0.1:0',
      '--mqtt-users', join(dir, 'users.json'),
      '--tokens', join(dir, 'tokens.json'),
      '--db', join(dir, 'fleet.sqlite'),
    ]) as EdgeOptions
    const edge = await startEdge(options, jsonLogger('debug', (l) => lines.push(l)))
    const uplink = MqttUplink.open({
      url: edge.mqttUrl,
      switchId: 'tor9' as SwitchId,
      password: 'tor9-secret',
      stateDir: join(dir, 'agent'),
      bootId: 'boot-tor9-1',
      bootTimeMs: Date.now(),
      agentVersion: 'test',
    })
    try {
      for (let i = 0; i < 25; i++) {
        uplink.publish({ kind: 'peer-up', port: 'Ethernet0' as never, stationMac: '02:00:00:00:00:01' as never, reason: 'x' })
      }
      expect(await uplink.drained(10_000)).toBe(true)
      const health = (await (await fetch(`http://127.0.0.1:${edge.httpPort}/healthz`)).json()) as { events: number }
      expect(health.events).toBe(25)
      const metrics = await (
        await fetch(`http://127.0.0.1:${edge.httpPort}/metrics`, { headers: { authorization: 'Bearer ops-token-0123456789' } })
      ).text()
      expect(metrics).toMatch(/vdp_edge_events_applied_total 25/)
      // Logs are JSON lines and never carry the broker password.
      for (const l of lines) expect(() => JSON.parse(l)).not.toThrow()
      expect(lines.join('')).not.toContain('tor9-secret')
    } finally {
      await uplink.close()
      await edge.stop()
    }
  }, 30_000)

  it('startEdge() pushes the policy to a switch new to the fleet when its agent-started arrives over MQTT', async () => {
    const dir = tempDir()
    writeFileSync(join(dir, 'users.json'), JSON.stringify([{ username: 'tor7', passwordHash: hashBrokerPassword('tor7-secret') }]))
    writeFileSync(join(dir, 'tokens.json'), JSON.stringify([{ name: 'ops', token: 'ops-token-0123456789', scope: 'admin' }]))
    const options = parseEdgeArgs([
      '--http', '127.0.0.1:0',
      '--mqtt-listen', '127.0.0.1:0',
      '--mqtt-users', join(dir, 'users.json'),
      '--tokens', join(dir, 'tokens.json'),
      '--db', ':memory:',
    ]) as EdgeOptions
    const edge = await startEdge(options, jsonLogger('error', () => {}))
    const vn = await fetch(`http://127.0.0.1:${edge.httpPort}/api/v1/vns/db`, {
      method: 'PUT',
      headers: { authorization: 'Bearer ops-token-0123456789', 'content-type': 'application/json' },
      body: JSON.stringify({ vni: 7001, tenant: 't1' }),
    })
    expect(vn.status).toBeLessThan(300)
    const policies: Array<{ vns: Array<{ vni: number }>; switchId: string }> = []
    const uplink = MqttUplink.open(
      {
        url: edge.mqttUrl,
        switchId: 'tor7' as SwitchId,
        password: 'tor7-secret',
        stateDir: join(dir, 'agent'),
        bootId: 'boot-tor7-1',
        bootTimeMs: Date.now(),
        agentVersion: 'test',
      },
      { onPolicy: (p, source) => { if (source === 'broker') policies.push(p) } },
    )
    try {
      uplink.publish({ kind: 'agent-started', agentVersion: 'test', role: 'bridge', ports: ['Ethernet0' as never], reason: 'start' })
      expect(await uplink.drained(10_000)).toBe(true)
      const until = Date.now() + 5000
      while (policies.length === 0 && Date.now() < until) await new Promise((r) => setTimeout(r, 25))
      expect(policies[0]).toMatchObject({ switchId: 'tor7', vns: [{ vni: 7001 }] })
    } finally {
      await uplink.close()
      await edge.stop()
    }
  }, 30_000)
})
