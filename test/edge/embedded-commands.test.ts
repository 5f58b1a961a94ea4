/**
 * Commands through the embedded broker: a switch's PUBACK marks a command `delivered`; a
 * switch's `online` status triggers `onSwitchOnline`; a service client's PUBACK changes nothing.
 */
import mqtt from 'mqtt'
import { describe, expect, it } from 'vitest'
import { decodeCommand, type Command } from '../../shared/api/commands.ts'
import { encodeSwitchStatus } from '../../shared/api/topics.ts'
import { switchId } from '../../shared/ids.ts'
import { EmbeddedBroker } from '../../edge/broker/embedded-broker.ts'
import { EmbeddedIngest } from '../../edge/mqtt/embedded-ingest.ts'
import { MemoryFleetStore } from '../../edge/store/memory-fleet-store.ts'

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))
async function waitFor(what: string, cond: () => boolean, timeoutMs = 5000): Promise<void> {
  const until = Date.now() + timeoutMs
  while (!cond()) {
    if (Date.now() > until) throw new Error(`Timed out after ${timeoutMs} ms waiting for ${what}`)
    await sleep(10)
  }
}

describe('EmbeddedIngest commands', () => {
  it('EmbeddedIngest marks a command delivered on the switch PUBACK and reports online switches', async () => {
    const broker = await EmbeddedBroker.start({
      port: 0,
      accounts: [
        { username: 'tor1', role: 'switch', password: 'tor1-secret' },
        { username: 'tool', role: 'service', password: 'tool-secret' },
      ],
    })
    const store = new MemoryFleetStore()
    const online: string[] = []
    const ingest = EmbeddedIngest.attach(broker, {}, { store, onSwitchOnline: (id) => online.push(id) })
    const tor1 = await mqtt.connectAsync(broker.url, { username: 'tor1', password: 'tor1-secret', clientId: 'tor1', clean: false })
    const tool = await mqtt.connectAsync(broker.url, { username: 'tool', password: 'tool-secret', clientId: 'tool' })
    try {
      const received: Command[] = []
      tor1.on('message', (_t, p) => received.push(decodeCommand(p)))
      await tor1.subscribeAsync('vdp/switch/tor1/commands', { qos: 1 })
      await tool.subscribeAsync('vdp/switch/tor1/commands', { qos: 1 })
      await tor1.publishAsync('vdp/switch/tor1/status', Buffer.from(encodeSwitchStatus({ v: 1, switchId: switchId('tor1'), state: 'online' })), { qos: 1, retain: true })
      expect(online).toEqual(['tor1'])

      const command: Command = {
        v: 1, kind: 'disconnect-vn', commandId: 'op-1', switchId: switchId('tor1'), issuedAt: Date.now(), reason: 'test', vni: 5000, port: 'Ethernet8' as never,
      }
      store.recordCommand({ command, origin: 'operator' })
      await ingest.publishCommand(command)
      await waitFor('the switch to get it', () => received.length === 1)
      await waitFor('delivered', () => store.getCommand('op-1')?.state === 'delivered')
      expect(ingest.metrics().ingest_commands_delivered_total).toBe(1)
      // A command the store does not know (or already delivered) is not counted again.
      await ingest.publishCommand({ ...command, commandId: 'op-unknown' })
      await ingest.publishCommand(command)
      await waitFor('both copies', () => received.length === 3)
      await sleep(50)
      expect(ingest.metrics().ingest_commands_delivered_total).toBe(1)
      // Only the service client gets op-2: its PUBACK is not a delivery to the switch.
      await tor1.unsubscribeAsync('vdp/switch/tor1/commands')
      let toolGot = 0
      tool.on('message', () => toolGot++)
      store.recordCommand({ command: { ...command, commandId: 'op-2' }, origin: 'operator' })
      await ingest.publishCommand({ ...command, commandId: 'op-2' })
      await waitFor('the service client to get op-2', () => toolGot === 1)
      await sleep(50)
      expect(store.getCommand('op-2')?.state).toBe('pending')
    } finally {
      await tor1.endAsync()
      await tool.endAsync()
      await ingest.close()
      await broker.close()
    }
  })
})
