import { describe, expect, it } from 'vitest'
import { AssertionError } from '../../../shared/assert.ts'
import {
  BRIDGE_EVENTS,
  BRIDGE_STATES,
  BRIDGE_TRANSITIONS,
  ECP_RX_EVENTS,
  ECP_RX_STATES,
  ECP_RX_TRANSITIONS,
  ECP_TX_EVENTS,
  ECP_TX_STATES,
  ECP_TX_TRANSITIONS,
  isLegalSuccessor,
  mermaid,
  StateMachine,
  STATION_EVENTS,
  STATION_STATES,
  STATION_TRANSITIONS,
  type Cell,
  type TransitionTable,
} from '../../../agent/port/transitions.ts'

interface Machine {
  name: string
  table: TransitionTable<string, string>
  states: readonly string[]
  events: readonly string[]
  initial: string
  terminal: readonly string[]
}

const machines: Machine[] = [
  {
    name: 'bridge',
    table: BRIDGE_TRANSITIONS,
    states: BRIDGE_STATES,
    events: BRIDGE_EVENTS,
    initial: 'INIT',
    terminal: ['END'],
  },
  {
    name: 'station',
    table: STATION_TRANSITIONS,
    states: STATION_STATES,
    events: STATION_EVENTS,
    initial: 'INIT',
    terminal: ['END'],
  },
  {
    name: 'ecp-tx',
    table: ECP_TX_TRANSITIONS,
    states: ECP_TX_STATES,
    events: ECP_TX_EVENTS,
    initial: 'WAIT_FOR_REQUEST',
    terminal: [],
  },
  {
    name: 'ecp-rx',
    table: ECP_RX_TRANSITIONS,
    states: ECP_RX_STATES,
    events: ECP_RX_EVENTS,
    initial: 'RX_FIRST',
    terminal: [],
  },
]

const KEBAB = /^[a-z]+(-[a-z0-9]+)*$/

function reachable(m: Machine, from: string): Set<string> {
  const seen = new Set([from])
  const todo = [from]
  while (todo.length > 0) {
    const s = todo.pop()!
    for (const cell of Object.values(m.table[s]!) as Cell<string>[]) {
      if (typeof cell === 'object' && !seen.has(cell.to)) {
        seen.add(cell.to)
        todo.push(cell.to)
      }
    }
  }
  return seen
}

describe.each(machines)('transition table of the $name machine', (m) => {
  it('has exactly one row per state and one cell per event', () => {
    expect(Object.keys(m.table).sort()).toEqual([...m.states].sort())
    for (const s of m.states) expect(Object.keys(m.table[s]!).sort()).toEqual([...m.events].sort())
  })

  it('walks every state x event cell: transitions move, verdicts keep the state, impossible asserts', () => {
    let cells = 0
    for (const s of m.states) {
      for (const e of m.events) {
        cells++
        const cell = m.table[s]![e]!
        const machine = new StateMachine(m.table, s)
        if (cell === 'impossible') {
          expect(() => machine.fire(e), `${s} x ${e}`).toThrow(AssertionError)
          expect(machine.state).toBe(s)
        } else if (typeof cell === 'object') {
          expect(m.states, `${s} x ${e} goes to a known state`).toContain(cell.to)
          expect(cell.reason, `${s} x ${e} reason`).toMatch(KEBAB)
          expect(machine.fire(e)).toBe(cell)
          expect(machine.state).toBe(cell.to)
          expect(machine.reason).toBe(cell.reason)
        } else {
          expect(['ignore', 'protocol-error']).toContain(cell)
          expect(machine.fire(e)).toBe(cell)
          expect(machine.state).toBe(s)
        }
      }
    }
    expect(cells).toBe(m.states.length * m.events.length)
  })

  it('reaches every state from the initial one, and a terminal state from every state', () => {
    expect([...reachable(m, m.initial)].sort()).toEqual([...m.states].sort())
    for (const s of m.states) {
      if (m.terminal.length === 0) {
        expect(reachable(m, s).has(m.initial), `${s} returns to ${m.initial}`).toBe(true)
      } else {
        expect(
          m.terminal.some((t) => reachable(m, s).has(t)),
          `${s} can end`,
        ).toBe(true)
      }
    }
  })

  it('changeState() refuses a successor the table does not allow', () => {
    for (const from of m.states) {
      for (const to of m.states) {
        const machine = new StateMachine(m.table, from)
        if (isLegalSuccessor(m.table, from, to)) {
          machine.changeState(to, 'completed')
          expect(machine.state).toBe(to)
        } else {
          expect(() => machine.changeState(to, 'completed')).toThrow(AssertionError)
        }
      }
    }
  })

  it('renders a mermaid diagram with one line per transition cell', () => {
    const text = mermaid(m.table)
    const transitions = m.states.flatMap((s) =>
      m.events.filter((e) => typeof m.table[s]![e] === 'object'),
    )
    expect(text.split('\n').slice(1)).toHaveLength(transitions.length)
    expect(text.startsWith('stateDiagram-v2')).toBe(true)
  })
})

describe('StateMachine', () => {
  it('bounds the steps of one input', () => {
    const machine = new StateMachine(ECP_RX_TRANSITIONS, 'RX_WAIT', 3)
    machine.beginInput()
    for (let i = 0; i < 3; i++) machine.fire('new-ecpdu')
    expect(() => machine.fire('new-ecpdu')).toThrow(AssertionError)
    machine.beginInput()
    expect(machine.fire('duplicate-ecpdu')).toMatchObject({ to: 'RX_WAIT' })
  })

  it('names the bridge states as the standard does (lldpad VDP22_BR_*)', () => {
    expect(BRIDGE_STATES).toEqual([
      'INIT',
      'PROCESS',
      'SEND',
      'KEEP',
      'DEASSOC',
      'WAITCMD',
      'ALIVE',
      'DEASSOCIATED',
      'END',
    ])
    expect(BRIDGE_TRANSITIONS.WAITCMD['request-same-mode']).toEqual({
      to: 'ALIVE',
      reason: 'keepalive-received',
    })
    expect(STATION_TRANSITIONS.WAIT_SYSCMD['keepalive-due']).toEqual({
      to: 'TXMIT_KA',
      reason: 'keepalive-due',
    })
  })
})

describe('agent/port/README.md', () => {
  it('shows the diagrams of the current tables', async () => {
    const { readFileSync } = await import('node:fs')
    const readme = readFileSync(new URL('../../../agent/port/README.md', import.meta.url), 'utf8')
    for (const m of machines) expect(readme).toContain('```mermaid\n' + mermaid(m.table) + '\n```')
  })
})
