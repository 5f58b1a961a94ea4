/**
 * Model-based test (fast-check `fc.commands`): random sequences of associate, pre-associate,
 * de-associate, drop-next-frame and advance-time run against a bridge/station pair and a tiny
 * model of the VSI modes; after each command both cores must agree with the model.
 */
import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { LocalProtocolError } from '../../../agent/port/errors.ts'
import type { PortCore } from '../../../agent/port/port-core.ts'
import { BridgeStationPair } from '../../support/pair.ts'
import { associate, preAssociate, vsiIdOf } from './fixtures.ts'

type Mode = 'associate' | 'pre-associate'

interface Model {
  modes: Map<number, Mode>
}

interface Real {
  pair: BridgeStationPair
}

function table(core: PortCore): Record<string, string> {
  return Object.fromEntries(core.vsiSnapshot().map((v) => [v.vsi.vsiId.id, `${v.confirmedMode}`]))
}

function vids(core: PortCore): Record<string, string> {
  return Object.fromEntries(
    core.vsiSnapshot().map((v) => [v.vsi.vsiId.id, v.vsi.entries.map((e) => e.vid).join(',')]),
  )
}

function agree(model: Model, real: Real): void {
  const want = Object.fromEntries([...model.modes].map(([n, m]) => [vsiIdOf(n).id, m]))
  const { pair } = real
  expect(table(pair.station), pair.dumpFrames(30)).toEqual(want)
  expect(table(pair.bridge), pair.dumpFrames(30)).toEqual(want)
  expect(vids(pair.bridge)).toEqual(vids(pair.station))
  for (const v of pair.station.vsiSnapshot())
    expect(v.vsi.entries[0]!.vid).toBeGreaterThanOrEqual(100)
}

class RequestCommand implements fc.Command<Model, Real> {
  constructor(
    readonly mode: Mode,
    readonly n: number,
  ) {}
  check = () => true
  run(model: Model, real: Real): void {
    const { pair } = real
    pair.command(pair.station, this.mode === 'associate' ? associate(this.n) : preAssociate(this.n))
    pair.settle()
    model.modes.set(this.n, this.mode)
    agree(model, real)
  }
  toString = () => `${this.mode}(${this.n})`
}

class DeassociateCommand implements fc.Command<Model, Real> {
  constructor(readonly n: number) {}
  check = () => true
  run(model: Model, real: Real): void {
    const { pair } = real
    const command = { kind: 'de-associate', vsiId: vsiIdOf(this.n) } as const
    if (!model.modes.has(this.n)) {
      expect(() => pair.command(pair.station, command)).toThrow(LocalProtocolError)
    } else {
      pair.command(pair.station, command)
      pair.settle()
      model.modes.delete(this.n)
    }
    agree(model, real)
  }
  toString = () => `de-associate(${this.n})`
}

class DropNextFrameCommand implements fc.Command<Model, Real> {
  check = () => true
  run(_model: Model, real: Real): void {
    // At most R drops armed at once: ECP then always gets one of its 1 + R tries through
    // (more is a different test: tx-error, covered in pair.test.ts).
    if (real.pair.pendingDrops < real.pair.station.operational().retries) real.pair.dropNext(1)
  }
  toString = () => 'drop-next-frame'
}

class AdvanceTimeCommand implements fc.Command<Model, Real> {
  constructor(readonly us: number) {}
  check = () => true
  run(model: Model, real: Real): void {
    real.pair.advanceBy(this.us)
    real.pair.settle()
    agree(model, real)
  }
  toString = () => `advance-time(${this.us})`
}

const vsiNumber = fc.integer({ min: 1, max: 4 })
const allCommands = [
  vsiNumber.map((n) => new RequestCommand('associate', n)),
  vsiNumber.map((n) => new RequestCommand('pre-associate', n)),
  vsiNumber.map((n) => new DeassociateCommand(n)),
  fc.constant(new DropNextFrameCommand()),
  fc.integer({ min: 0, max: 40_000_000 }).map((us) => new AdvanceTimeCommand(us)),
]

describe('PortCore pair against a model of VSI modes', () => {
  it('keeps station, bridge and model in agreement under any command sequence', () => {
    fc.assert(
      fc.property(
        fc.commands(allCommands, { maxCommands: 40 }),
        fc.integer({ min: 1, max: 1000 }),
        (cmds, seed) => {
          const setup = () => ({
            model: { modes: new Map<number, Mode>() },
            real: { pair: new BridgeStationPair({ seed, delayUs: { min: 10, max: 300 } }) },
          })
          fc.modelRun(setup, cmds)
        },
      ),
      { numRuns: 150 },
    )
  })
})
