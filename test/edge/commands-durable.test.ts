// Durable commands in the fleet store (pending -> delivered -> answered | expired) on both
// stores, across a reopen of the SQLite file, from a database written before commands had a
// state, and the dispatcher that publishes open commands again.
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import Database from 'better-sqlite3'
import { afterAll, describe, expect, it } from 'vitest'
import type { Command, CommandReply } from '../../shared/api/commands.ts'
import { switchId, type SwitchId } from '../../shared/ids.ts'
import { CommandDispatcher } from '../../edge/command-dispatcher.ts'
import { silentLogger } from '../../edge/deps.ts'
import type { FleetStore } from '../../edge/store/fleet-store.ts'
import { MemoryFleetStore } from '../../edge/store/memory-fleet-store.ts'
import { SqliteFleetStore } from '../../edge/store/sqlite-fleet-store.ts'
import { T0 } from './support/events.ts'

const dirs: string[] = []
afterAll(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true })
})
const tempDb = (): string => {
  const d = mkdtempSync(join(tmpdir(), 'vdp-commands-'))
  dirs.push(d)
  return join(d, 'fleet.sqlite')
}

const tor1 = switchId('tor1')
const tor2 = switchId('tor2')

const command = (n: number, sw: SwitchId = tor1, extra: Partial<Command> = {}): Command =>
  ({
    v: 1,
    kind: 'disconnect-vn',
    commandId: `op-${n}`,
    switchId: sw,
    issuedAt: T0 + n,
    reason: 'test',
    vni: 5000,
    port: 'Ethernet8' as never,
    ...extra,
  }) as Command

const reply = (n: number, status: CommandReply['status'] = 'done', sw: SwitchId = tor1): CommandReply => ({
  v: 1,
  commandId: `op-${n}`,
  switchId: sw,
  time: T0 + 100 + n,
  status,
  affected: status === 'done' ? 1 : 0,
})

describe.each([
  ['MemoryFleetStore', () => new MemoryFleetStore()],
  ['SqliteFleetStore', () => new SqliteFleetStore({ path: ':memory:' })],
])('command states on %s', (_name, make: () => FleetStore) => {
  it('recordCommand() starts pending; delivered, answered and a repeated reply follow', () => {
    const store = make()
    store.recordCommand({ command: command(1), origin: 'operator' })
    expect(store.getCommand('op-1')).toMatchObject({ state: 'pending', stateAt: T0 + 1, resends: 0 })
    // recording the same id again changes nothing
    store.recordCommand({ command: { ...command(1), reason: 'other' }, origin: 'operator' })
    expect(store.getCommand('op-1')?.command.reason).toBe('test')
    expect(store.markCommandDelivered('op-1', tor2, T0 + 5)).toBe(false) // another switch's ack
    expect(store.markCommandDelivered('op-1', tor1, T0 + 5)).toBe(true)
    expect(store.markCommandDelivered('op-1', tor1, T0 + 6)).toBe(false) // already delivered
    expect(store.getCommand('op-1')).toMatchObject({ state: 'delivered', stateAt: T0 + 5 })
    store.markCommandResent('op-1')
    expect(store.getCommand('op-1')?.resends).toBe(1)
    expect(store.recordReply(reply(1), T0 + 7)).toBe(true)
    expect(store.recordReply(reply(1), T0 + 9)).toBe(true)
    expect(store.getCommand('op-1')).toMatchObject({ state: 'answered', stateAt: T0 + 7, reply: { status: 'done' } })
    expect(store.markCommandDelivered('op-1', tor1, T0 + 10)).toBe(false)
    expect(store.recordReply(reply(9))).toBe(false)
    store.close()
  })

  it('openCommands() lists pending and delivered, oldest first, per switch; listCommands() filters', () => {
    const store = make()
    for (const [n, sw] of [[3, tor1], [1, tor1], [2, tor2], [4, tor1]] as const) store.recordCommand({ command: command(n, sw), origin: 'operator' })
    store.markCommandDelivered('op-3', tor1, T0 + 10)
    store.recordReply(reply(4), T0 + 11)
    expect(store.openCommands().map((r) => r.command.commandId)).toEqual(['op-1', 'op-2', 'op-3'])
    expect(store.openCommands(tor1).map((r) => r.command.commandId)).toEqual(['op-1', 'op-3'])
    expect(store.openCommands(tor1, 1).map((r) => r.command.commandId)).toEqual(['op-1'])
    expect(store.listCommands({ limit: 10 }).map((r) => r.command.commandId)).toEqual(['op-4', 'op-3', 'op-2', 'op-1'])
    expect(store.listCommands({ limit: 10, state: 'pending', switchId: tor1 }).map((r) => r.command.commandId)).toEqual(['op-1'])
    expect(store.listCommands({ limit: 10, state: 'answered' }).map((r) => r.command.commandId)).toEqual(['op-4'])
    store.close()
  })

  it('expireCommands() ends open commands past expiresAt or issuedAt + TTL; an expired reply expires too', () => {
    const store = make()
    store.recordCommand({ command: command(1, tor1, { expiresAt: T0 + 50 }), origin: 'operator' })
    store.recordCommand({ command: command(2), origin: 'migration-cleanup' }) // no expiresAt: TTL
    store.recordCommand({ command: command(3), origin: 'operator' })
    store.recordReply(reply(3), T0 + 20)
    expect(store.expireCommands(T0 + 49, 1000)).toEqual([])
    expect(store.expireCommands(T0 + 50, 1000).map((r) => r.command.commandId)).toEqual(['op-1'])
    expect(store.expireCommands(T0 + 1002, 1000).map((r) => r.command.commandId)).toEqual(['op-2'])
    expect(store.getCommand('op-2')).toMatchObject({ state: 'expired', stateAt: T0 + 1002 })
    expect(store.getCommand('op-3')?.state).toBe('answered')
    expect(store.openCommands()).toEqual([])
    // a reply that comes late is still recorded: the switch did act
    expect(store.recordReply(reply(2), T0 + 2000)).toBe(true)
    expect(store.getCommand('op-2')).toMatchObject({ state: 'answered', reply: { status: 'done' } })
    store.recordCommand({ command: command(5), origin: 'operator' })
    store.recordReply(reply(5, 'expired'), T0 + 30)
    expect(store.getCommand('op-5')).toMatchObject({ state: 'expired', reply: { status: 'expired' } })
    store.close()
  })
})

describe('SqliteFleetStore commands on disk', () => {
  it('keeps command states across a reopen', () => {
    const path = tempDb()
    const a = new SqliteFleetStore({ path })
    a.recordCommand({ command: command(1), origin: 'operator' })
    a.recordCommand({ command: command(2), origin: 'operator' })
    a.markCommandDelivered('op-2', tor1, T0 + 9)
    a.close()
    const b = new SqliteFleetStore({ path })
    expect(b.openCommands(tor1).map((r) => [r.command.commandId, r.state])).toEqual([
      ['op-1', 'pending'],
      ['op-2', 'delivered'],
    ])
    b.close()
  })

  it('gives commands of a database from before command states a state', () => {
    const path = tempDb()
    const old = new Database(path)
    old.exec('CREATE TABLE commands (command_id TEXT PRIMARY KEY, issued_at INTEGER NOT NULL, body TEXT NOT NULL) WITHOUT ROWID')
    const put = old.prepare('INSERT INTO commands (command_id, issued_at, body) VALUES (?, ?, ?)')
    put.run('op-1', T0 + 1, JSON.stringify({ command: command(1), origin: 'operator' }))
    put.run('op-2', T0 + 2, JSON.stringify({ command: command(2), origin: 'operator', reply: reply(2) }))
    old.close()
    const store = new SqliteFleetStore({ path })
    expect(store.getCommand('op-1')).toMatchObject({ state: 'pending', stateAt: T0 + 1, resends: 0 })
    expect(store.getCommand('op-2')).toMatchObject({ state: 'answered', reply: { status: 'done' } })
    expect(store.openCommands(tor1).map((r) => r.command.commandId)).toEqual(['op-1'])
    store.close()
  })
})

describe('CommandDispatcher', () => {
  const setup = (failFor?: string) => {
    const store = new MemoryFleetStore()
    const clock = { now: T0 + 10, nowMs: () => clock.now }
    const published: string[] = []
    const dispatcher = new CommandDispatcher(
      {
        store,
        clock,
        logger: silentLogger,
        publish: async (c) => {
          if (c.commandId === failFor) throw new Error('broker down')
          published.push(c.commandId)
        },
      },
      { commandTtlMs: 1000 },
    )
    return { store, clock, published, dispatcher }
  }

  it('resend() publishes the open commands of one switch or of all, and counts the re-sends', async () => {
    const { store, published, dispatcher } = setup('op-3')
    store.recordCommand({ command: command(1), origin: 'operator' })
    store.recordCommand({ command: command(2, tor2), origin: 'operator' })
    store.recordCommand({ command: command(3), origin: 'operator' })
    store.recordCommand({ command: command(4), origin: 'operator' })
    store.markCommandDelivered('op-4', tor1, T0 + 5)
    store.recordCommand({ command: command(5), origin: 'operator' })
    store.recordReply(reply(5))
    expect(await dispatcher.resend(tor1)).toBe(2) // op-3's publish fails: it stays open
    expect(published).toEqual(['op-1', 'op-4'])
    expect(store.getCommand('op-1')?.resends).toBe(1)
    expect(store.getCommand('op-3')).toMatchObject({ state: 'pending', resends: 0 })
    expect(await dispatcher.resend()).toBe(3)
    expect(published).toEqual(['op-1', 'op-4', 'op-1', 'op-2', 'op-4'])
  })

  it('resend() expires overdue commands first and does not publish them', async () => {
    const { store, clock, published, dispatcher } = setup()
    store.recordCommand({ command: command(1), origin: 'operator' })
    store.recordCommand({ command: command(2, tor1, { expiresAt: T0 + 5000 }), origin: 'operator' })
    clock.now = T0 + 1001
    expect(await dispatcher.resend(tor1)).toBe(1)
    expect(published).toEqual(['op-2'])
    expect(store.getCommand('op-1')?.state).toBe('expired')
    clock.now = T0 + 5000
    expect(dispatcher.expire().map((r) => r.command.commandId)).toEqual(['op-2'])
  })

  it('refuses a TTL that is not a positive integer', () => {
    const store = new MemoryFleetStore()
    expect(() => new CommandDispatcher({ store, clock: { nowMs: () => 0 }, logger: silentLogger, publish: async () => {} }, { commandTtlMs: 0 })).toThrow(/commandTtlMs/)
  })
})
