/**
 * `MqttUplink` against real brokers: a full outbox during an outage, the in-flight window,
 * seq numbering across restarts, TCP_NODELAY.
 */
import { mkdtempSync, rmSync } from 'node:fs'
import { Socket } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, describe, expect, it, vi } from 'vitest'
import { connectMqtt } from '../../agent/uplink/mqtt-connect.ts'
import { MqttUplink, type UplinkEvent } from '../../agent/uplink/mqtt-uplink.ts'
import { decodeEvent } from '../../shared/api/events.ts'
import { encodePolicy, type SwitchPolicy } from '../../shared/api/policy.ts'
import type { SwitchId } from '../../shared/ids.ts'
import { EmbeddedBroker } from '../../edge/broker/embedded-broker.ts'
import { Mosquitto, freePort } from '../support/mosquitto.ts'

const dirs: string[] = []
const tempDir = () => {
  const d = mkdtempSync(join(tmpdir(), 'vdp-uplink-'))
  dirs.push(d)
  return d
}
afterAll(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true })
})
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))
async function waitFor(what: string, cond: () => boolean, timeoutMs: number): Promise<void> {
  const until = Date.now() + timeoutMs
  while (!cond()) {
    if (Date.now() > until) throw new Error(`Timed out after ${timeoutMs} ms waiting for ${what}`)
    await sleep(20)
  }
}
const ev = (i: number): UplinkEvent => ({ kind: 'peer-down', port: 'Ethernet1' as never, stationMac: '02:00:00:00:00:02' as never, reason: `r${i}` })

describe('MqttUplink', () => {
  it('MqttUplink numbers events 0, 1, 2 per boot and continues a boot across a restart', async () => {
    const stateDir = tempDir()
    const open = (bootId: string) =>
      MqttUplink.open({
        url: 'mqtt://127.0.0.1:1', // nothing listens: events stay in the outbox
        switchId: 'tor1' as SwitchId,
        stateDir,
        bootId,
        bootTimeMs: 1_700_000_000_000,
        agentVersion: 'test',
        reconnectPeriodMs: 60_000,
      })
    let u = open('boot-aaaa-0001')
    expect([u.publish(ev(0)), u.publish(ev(1)), u.publish(ev(2))]).toEqual([0, 1, 2])
    await u.close()
    u = open('boot-aaaa-0001')
    expect(u.publish(ev(3))).toBe(3)
    await u.close()
    u = open('boot-bbbb-0002')
    expect(u.publish(ev(4))).toBe(0)
    // The outbox still holds the events of both boots, each with its own header.
    const boots = u.outbox.unacked().map((r) => {
      const e = decodeEvent(r.payload)
      return `${e.bootId}/${e.seq}`
    })
    expect(boots).toEqual(['boot-aaaa-0001/0', 'boot-aaaa-0001/1', 'boot-aaaa-0001/2', 'boot-aaaa-0001/3'])
    u.flush()
    expect(u.outbox.unacked().length).toBe(5)
    await u.close()
  })

  it('MqttUplink refuses events when the outbox is full during an outage and asks for a resync once it drains', async () => {
    const mosq = await Mosquitto.start({ users: { tor1: 'tor1-pw', edge: 'edge-pw' }, serviceUsers: ['edge'] })
    const sub = connectMqtt(mosq.url, { clientId: 'edge-sub', username: 'edge', password: 'edge-pw', clean: false, protocolVersion: 4 })
    await new Promise((r) => sub.once('connect', r))
    await sub.subscribeAsync('vdp/switch/+/events', { qos: 1 })
    const seen: number[] = []
    sub.on('message', (_t, p) => seen.push(decodeEvent(p).seq))
    let resyncs = 0
    const u = MqttUplink.open(
      {
        url: mosq.url,
        switchId: 'tor1' as SwitchId,
        password: 'tor1-pw',
        stateDir: tempDir(),
        bootId: 'boot-full-0001',
        bootTimeMs: Date.now(),
        agentVersion: 'test',
        outboxEventsMax: 50,
        reconnectPeriodMs: 200,
      },
      { onResyncNeeded: () => resyncs++ },
    )
    try {
      await waitFor('connected', () => u.connected, 10_000)
      await mosq.stop()
      await waitFor('disconnected', () => !u.connected, 10_000)
      const accepted = Array.from({ length: 80 }, (_, i) => u.publish(ev(i))).filter((s) => s !== undefined)
      expect(accepted).toEqual(Array.from({ length: 50 }, (_, i) => i))
      expect(u.metrics().outbox_dropped_total).toBe(30)
      expect(u.metrics().outbox_full).toBe(1)
      await mosq.start()
      expect(await u.drained(20_000)).toBe(true)
      expect(resyncs).toBe(1)
      await waitFor('all 50 delivered', () => new Set(seen).size === 50, 10_000)
      expect([...new Set(seen)].sort((a, b) => a - b)).toEqual(accepted)
      // After the resync the stream continues without a gap in seq.
      expect(u.publish(ev(99))).toBe(50)
    } finally {
      await u.close()
      await sub.endAsync()
      await mosq.close()
    }
  }, 60_000)

  it('MqttUplink keeps at most inflightMax PUBLISHes unacknowledged and deletes each on PUBACK', async () => {
    const broker = await EmbeddedBroker.start({ port: await freePort(), accounts: [{ username: 'tor1', role: 'switch', password: 'tor1-pw' }] })
    const held: (() => void)[] = []
    broker.setPublishHook((topic, _payload, _user, done) => {
      if (topic.endsWith('/events')) held.push(done)
      else done()
    })
    const u = MqttUplink.open({
      url: broker.url,
      switchId: 'tor1' as SwitchId,
      password: 'tor1-pw',
      stateDir: tempDir(),
      bootId: 'boot-win-0001',
      bootTimeMs: Date.now(),
      agentVersion: 'test',
      inflightMax: 8,
    })
    try {
      await waitFor('connected', () => u.connected, 10_000)
      for (let i = 0; i < 100; i++) u.publish(ev(i))
      await waitFor('a full window at the broker', () => held.length === 8, 5000)
      await sleep(300)
      expect(held.length).toBe(8)
      expect(u.metrics().uplink_inflight).toBe(8)
      expect(u.metrics().outbox_events).toBe(100)
      // Release PUBACKs as they come: the window slides until everything is acknowledged.
      let released = 0
      const until = Date.now() + 10_000
      while (released < 100 && Date.now() < until) {
        const batch = held.splice(0)
        for (const d of batch) d()
        released += batch.length
        await sleep(5)
      }
      expect(released).toBe(100)
      expect(await u.drained(5000)).toBe(true)
      expect(u.metrics().outbox_events).toBe(0)
      expect(u.metrics().uplink_acked_total).toBe(100)
    } finally {
      for (const d of held) d()
      await u.close()
      await broker.close()
    }
  }, 30_000)

  it('MqttUplink applies a newer policy by revision or by issuedAt, ignores re-deliveries and other switches, keeps it on disk', async () => {
    const broker = await EmbeddedBroker.start({ port: await freePort(), accounts: [{ username: 'tor1', role: 'switch', password: 'pw' }] })
    const stateDir = tempDir()
    const applied: string[] = []
    const open = () =>
      MqttUplink.open(
        { url: broker.url, switchId: 'tor1' as SwitchId, password: 'pw', stateDir, bootId: 'boot-pol-0001', bootTimeMs: Date.now(), agentVersion: 't' },
        { onPolicy: (p, source) => applied.push(`${source}:${p.revision}@${p.issuedAt}`) },
      )
    const policy = (revision: number, issuedAt: number, sw = 'tor1'): SwitchPolicy => ({
      v: 1, switchId: sw as SwitchId, revision, issuedAt, vns: [], vidPool: [], hosts: [], lagGroups: [], unknownHosts: 'deny',
    })
    const send = (p: SwitchPolicy) => broker.publish('vdp/switch/tor1/policy', encodePolicy(p), { retain: true })
    let u = open()
    try {
      await waitFor('connected', () => u.connected, 10_000)
      await send(policy(7, 1000))
      await waitFor('rev 7', () => applied.length === 1, 5000)
      await send(policy(7, 1000)) // the same retained message again
      await send(policy(6, 900)) // older
      await send(policy(8, 1000, 'tor2')) // another switch's
      await send(policy(1, 2000)) // a re-created edge store counts from 1, later issuedAt
      await waitFor('rev 1 of the new edge', () => applied.length === 2, 5000)
      await sleep(200)
      expect(applied).toEqual(['broker:7@1000', 'broker:1@2000'])
      expect(u.metrics().uplink_policy_rejected_total).toBe(1)
      await u.close()
      applied.length = 0
      await broker.close()
      u = open() // no broker: the policy comes from disk
      expect(applied).toEqual(['disk:1@2000'])
    } finally {
      await u.close()
      await broker.close()
    }
  })

  it('connectMqtt() sets TCP_NODELAY on the socket before the first byte', async () => {
    const spy = vi.spyOn(Socket.prototype, 'setNoDelay')
    const broker = await EmbeddedBroker.start({ port: await freePort(), accounts: [{ username: 'tor1', role: 'switch', password: 'pw' }] })
    try {
      const c = connectMqtt(broker.url, { clientId: 'tor1', username: 'tor1', password: 'pw', protocolVersion: 4 })
      await new Promise((r) => c.once('connect', r))
      // Once by the broker for its accepted socket, once by the client.
      expect(spy.mock.calls.filter((args) => args[0] === true).length).toBeGreaterThanOrEqual(2)
      await c.endAsync()
    } finally {
      spy.mockRestore()
      await broker.close()
    }
  })
})
