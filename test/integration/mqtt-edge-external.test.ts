/**
 * `vdp-edge --mqtt URL`: the edge as a client of an external mosquitto, fed by an agent uplink.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import { MqttUplink } from '../../agent/uplink/mqtt-uplink.ts'
import { jsonLogger, parseEdgeArgs, startEdge, type EdgeOptions } from '../../edge/main.ts'
import type { SwitchId } from '../../shared/ids.ts'
import { Mosquitto } from '../support/mosquitto.ts'

const dirs: string[] = []
afterAll(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true })
})

describe('vdp-edge with an external broker', () => {
  it('startEdge() with --mqtt ingests events through mosquitto and keeps the password out of the logs', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'vdp-edge-ext-'))
    dirs.push(dir)
    const mosq = await Mosquitto.start({ users: { tor5: 'tor5-secret', 'vdp-edge': 'edge-secret-pw' }, serviceUsers: ['vdp-edge'] })
    writeFileSync(join(dir, 'mqtt-password'), 'edge-secret-pw\n', { mode: 0o600 })
    const lines: string[] = []
    const options = parseEdgeArgs([
      '--http', '127.0.0.1:0',
      '--mqtt', mosq.url,
      '--mqtt-username', 'vdp-edge',
      '--mqtt-password-file', join(dir, 'mqtt-password'),
      '--mqtt-client-id', 'vdp-edge-ext',
      '--db', ':memory:',
    ]) as EdgeOptions
    const edge = await startEdge(options, jsonLogger('debug', (l) => lines.push(l)))
    const uplink = MqttUplink.open({
      url: mosq.url,
      switchId: 'tor5' as SwitchId,
      password: 'tor5-secret',
      stateDir: join(dir, 'agent'),
      bootId: 'boot-tor5-1',
      bootTimeMs: Date.now(),
      agentVersion: 'test',
    })
    try {
      for (let i = 0; i < 40; i++) {
        uplink.publish({ kind: 'peer-up', port: 'Ethernet0' as never, stationMac: '02:00:00:00:00:01' as never, reason: 'x' })
      }
      expect(await uplink.drained(10_000)).toBe(true)
      const until = Date.now() + 10_000
      let events = 0
      while (events < 40 && Date.now() < until) {
        events = ((await (await fetch(`http://127.0.0.1:${edge.httpPort}/healthz`)).json()) as { events: number }).events
        await new Promise((r) => setTimeout(r, 50))
      }
      expect(events).toBe(40)
      expect(lines.join('')).not.toContain('edge-secret-pw')
    } finally {
      await uplink.close()
      await edge.stop()
      await mosq.close()
    }
  }, 60_000)
})
