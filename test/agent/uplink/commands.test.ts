/**
 * `MqttUplink` commands against the embedded broker on loopback: a command id is executed
 * once and every delivery answered with the same reply (concurrent duplicates, a copy after
 * an agent restart), an expired command is answered `expired` without running, and `online`
 * is announced only once the command subscription is in place.
 */
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import mqtt from 'mqtt'
import { afterAll, describe, expect, it } from 'vitest'
import { MqttUplink } from '../../../agent/uplink/mqtt-uplink.ts'
import { decodeCommandReply, encodeCommand, type Command, type CommandReply } from '../../../shared/api/commands.ts'
import { decodeSwitchStatus } from '../../../shared/api/topics.ts'
import type { SwitchId } from '../../../shared/ids.ts'
import { EmbeddedBroker } from '../../../edge/broker/embedded-broker.ts'

const dirs: string[] = []
afterAll(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true })
})
const tempDir = () => {
  const d = mkdtempSync(join(tmpdir(), 'vdp-uplink-cmd-'))
  dirs.push(d)
  return d
}
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))
async function waitFor(what: string, cond: () => boolean, timeoutMs = 5000): Promise<void> {
  const until = Date.now() + timeoutMs
  while (!cond()) {
    if (Date.now() > until) throw new Error(`Timed out after ${timeoutMs} ms waiting for ${what}`)
    await sleep(10)
  }
}

const command = (id: string, extra: Partial<Command> = {}): Command =>
  ({
    v: 1,
    kind: 'disconnect-vsi',
    commandId: id,
    switchId: 'tor1',
    issuedAt: Date.now(),
    reason: 'test',
    vsiId: '00112233445566778899aabbccddeeff',
    mode: 'de-associate',
    ...extra,
  }) as Command

async function setup() {
  const broker = await EmbeddedBroker.start({
    port: 0,
    accounts: [
      { username: 'tor1', role: 'switch', password: 'tor1-secret' },
      { username: 'edge', role: 'service', password: 'edge-secret' },
    ],
  })
  const edge = await mqtt.connectAsync(broker.url, { username: 'edge', password: 'edge-secret', clientId: 'edge-test' })
  const replies: CommandReply[] = []
  const online: number[] = []
  edge.on('message', (topic, payload) => {
    if (topic.endsWith('/replies')) replies.push(decodeCommandReply(payload))
    else if (payload.byteLength > 0 && decodeSwitchStatus(payload).state === 'online') online.push(Date.now())
  })
  await edge.subscribeAsync(['vdp/switch/tor1/replies', 'vdp/switch/tor1/status'], { qos: 1 })
  const send = (c: Command) => edge.publishAsync('vdp/switch/tor1/commands', Buffer.from(encodeCommand(c)), { qos: 1 })
  // As vdp-edge does (edge/mqtt/embedded-ingest.ts): react to `online` inside the broker's
  // publish hook, before aedes reads the switch's next packet.
  const onOnline: Command[] = []
  broker.setPublishHook((topic, payload, _user, done) => {
    if (topic.endsWith('/status') && decodeSwitchStatus(payload).state === 'online') {
      for (const c of onOnline.splice(0)) void broker.publish('vdp/switch/tor1/commands', encodeCommand(c))
    }
    done()
  })
  const executed: string[] = []
  const stateDir = tempDir()
  const open = (bootId: string) =>
    MqttUplink.open(
      { url: broker.url, switchId: 'tor1' as SwitchId, password: 'tor1-secret', stateDir, bootId, bootTimeMs: Date.now(), agentVersion: 'test' },
      {
        onCommand: async (c) => {
          executed.push(c.commandId)
          await sleep(100) // long enough for a duplicate to arrive meanwhile
          return { status: 'done', affected: 1 }
        },
      },
    )
  const close = async () => {
    await edge.endAsync()
    await broker.close()
  }
  return { broker, edge, replies, online, onOnline, send, executed, open, close }
}

describe('MqttUplink commands', () => {
  it('MqttUplink executes a command id once and answers every delivery, across a restart, with the same reply', async () => {
    const t = await setup()
    try {
      // Published the moment `online` reaches the broker: the subscription must already exist
      // (a fresh session has none until the SUBACK).
      t.onOnline.push(command('op-1'))
      let uplink = t.open('boot-cmd-0001')
      await waitFor('online', () => t.online.length === 1)
      await t.send(command('op-1'))
      await waitFor('two replies', () => t.replies.length === 2)
      expect(t.executed).toEqual(['op-1'])
      expect(t.replies[1]).toEqual(t.replies[0])
      expect(t.replies[0]).toMatchObject({ commandId: 'op-1', status: 'done', affected: 1 })
      await uplink.close()

      uplink = t.open('boot-cmd-0002')
      await waitFor('online again', () => t.online.length === 2)
      await t.send(command('op-1'))
      await waitFor('third reply', () => t.replies.length === 3)
      expect(t.executed).toEqual(['op-1'])
      expect(t.replies[2]).toEqual(t.replies[0])
      expect(uplink.metrics().uplink_commands_total).toBe(0)
      await uplink.close()
    } finally {
      await t.close()
    }
  })

  it('MqttUplink answers a command received after its expiresAt with expired, not running it', async () => {
    const t = await setup()
    try {
      const uplink = t.open('boot-cmd-0003')
      await waitFor('online', () => t.online.length === 1)
      await t.send(command('op-late', { expiresAt: Date.now() - 1 }))
      await waitFor('reply', () => t.replies.length === 1)
      expect(t.executed).toEqual([])
      expect(t.replies[0]).toMatchObject({ commandId: 'op-late', status: 'expired', affected: 0 })
      await uplink.close()
    } finally {
      await t.close()
    }
  })
})
