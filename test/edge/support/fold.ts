/** Folds events through the pure reducers alone (no store): the reference for property tests. */
import { eventKey, isVsiEvent, type FleetEvent } from '../../../shared/api/events.ts'
import type { SwitchRecord, VsiRecord, VsiView } from '../../../edge/store/model.ts'
import { applySwitchEvent, applyVsiEvent, vsiView, type BootOf } from '../../../edge/store/reducers.ts'

export interface Folded {
  vsis: Map<string, VsiRecord>
  switches: Map<string, SwitchRecord>
  bootOf: BootOf
}

export function fold(events: readonly FleetEvent[]): Folded {
  const seen = new Set<string>()
  const vsis = new Map<string, VsiRecord>()
  const switches = new Map<string, SwitchRecord>()
  const bootOf: BootOf = (id) => switches.get(id)?.boot
  for (const e of events) {
    if (seen.has(eventKey(e))) continue
    seen.add(eventKey(e))
    switches.set(e.switchId, applySwitchEvent(switches.get(e.switchId), e).record)
    if (isVsiEvent(e)) {
      const r = applyVsiEvent(vsis.get(e.vsiId), e, bootOf)
      if (r.changed) vsis.set(e.vsiId, r.record)
    }
  }
  return { vsis, switches, bootOf }
}

/** The order-independent part of a VSI view: state and the winning/holding places. */
export function latestState(view: VsiView): unknown {
  const strip = ({ since: _s, ...p }: { since: number } & Record<string, unknown>) => p
  return {
    state: view.state,
    current: view.current ? strip(view.current as never) : undefined,
    holding: view.holding.map((p) => strip(p as never)),
  }
}

export function latestStates(f: Folded): Record<string, unknown> {
  const out: Record<string, unknown> = {}
  for (const [id, r] of [...f.vsis].sort(([a], [b]) => (a < b ? -1 : 1))) out[id] = latestState(vsiView(r, f.bootOf))
  return out
}
