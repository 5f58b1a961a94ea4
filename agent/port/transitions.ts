/**
 * Typed, exhaustive transition tables of the four machines of a port (FRR's `FSM[][]`): the
 * VDP bridge and station machines per VSI (802.1Qbg-2012 41.5.5, figures 41-x, as openlldp
 * `qbg/vdp22sm.c` implements them) and the ECP transmit and receive machines per peer
 * (802.1Qbg-2012 43.3.7 / 43.3.8, openlldp `qbg/ecp22.c`). The standard's figures were not at
 * hand: state names follow openlldp, which mirrors them (vdp-spec §6.15); sub-clause numbers
 * are recalled ([R]).
 *
 * Every state × event cell is explicit. A cell is either a transition `{ to, reason }` or one
 * of three verdicts:
 * - `'ignore'`: the event is legal and changes nothing;
 * - `'protocol-error'`: the peer sent something the state does not allow; the caller counts it
 *   and raises `RemoteProtocolError` (never escapes `PortCore`);
 * - `'impossible'`: our own code fired it; `fire()` asserts (a bug, the core is discarded).
 *
 * `changeState(next, reason)` asserts that `next` is a successor the table allows from the
 * current state (openlldp `vdp22st_change_state`) and records the kebab-case reason, which
 * the events carry (GoBGP `fsmStateReason`). `mermaid(table)` renders the table for the docs.
 *
 * @module
 */
import { assert } from '../../shared/assert.ts'

/** Why a machine moved; surfaced in events and logs. */
export type TransitionReason =
  // VDP bridge
  | 'request-received'
  | 'keepalive-received'
  | 'mode-change-received'
  | 'deassoc-received'
  | 'resources-granted'
  | 'resources-kept'
  | 'resources-refused'
  | 'reply-sent'
  | 'no-prior-state'
  | 'keepalive-timeout'
  | 'local-deassoc'
  // VDP station
  | 'command-received'
  | 'request-sent'
  | 'associate-confirmed'
  | 'pre-associate-confirmed'
  | 'deassoc-confirmed'
  | 'keep-received'
  | 'error-received'
  | 'response-mismatch'
  | 'resp-wait-expired'
  | 'tx-error'
  | 'deassoc-from-bridge'
  | 'local-change'
  | 'local-change-deferred'
  | 'keepalive-due'
  | 'keepalive-confirmed'
  | 'completed'
  // ECP transmit
  | 'data-queued'
  | 'ecpdu-sent'
  | 'ack-received'
  | 'ack-timeout'
  | 'retries-exhausted'
  | 'error-reported'
  // ECP receive
  | 'first-ecpdu'
  | 'new-ecpdu'
  | 'duplicate-ecpdu'
  | 'port-reset'

export type Cell<S extends string> =
  { readonly to: S; readonly reason: TransitionReason } | 'ignore' | 'protocol-error' | 'impossible'

export type TransitionTable<S extends string, E extends string> = Readonly<
  Record<S, Readonly<Record<E, Cell<S>>>>
>

const go = <S extends string>(to: S, reason: TransitionReason): Cell<S> => ({ to, reason })

// ---------------------------------------------------------------------------------------------
// VDP bridge, per VSI (802.1Qbg-2012 41.5.5, bridge figure; openlldp vdp22br_* / VDP22_BR_*)

export const BRIDGE_STATES = [
  'INIT',
  'PROCESS',
  'SEND',
  'KEEP',
  'DEASSOC',
  'WAITCMD',
  'ALIVE',
  'DEASSOCIATED',
  'END',
] as const
export type BridgeState = (typeof BRIDGE_STATES)[number]

export const BRIDGE_EVENTS = [
  /** First request (not De-Associate) for a VSI key the bridge does not hold. */
  'new-request',
  /** Station TLV with the confirmed mode and matching filter: a keep-alive. */
  'request-same-mode',
  /** Station TLV with another mode (or other filter data): process it again. */
  'request-new-mode',
  /** Station De-Associate for a VSI the bridge holds. */
  'deassoc-received',
  'resources-granted',
  'resources-keep',
  'resources-refused',
  'reply-sent',
  /** A Keep answer for a VSI that had no confirmed state: nothing is left to keep. */
  'no-prior-state',
  /** toutKeepAlive expired (41.5.5.13). */
  'keepalive-timeout',
  /** The bridge's own management de-associates the VSI. */
  'local-deassoc',
  /** A TLV with the Req/Rsp bit set sent to a bridge. */
  'response-received',
] as const
export type BridgeEvent = (typeof BRIDGE_EVENTS)[number]

const bridgeRow = (
  cells: Partial<Record<BridgeEvent, Cell<BridgeState>>>,
  rest: Cell<BridgeState> = 'impossible',
): Record<BridgeEvent, Cell<BridgeState>> => {
  const row = {} as Record<BridgeEvent, Cell<BridgeState>>
  for (const e of BRIDGE_EVENTS) row[e] = cells[e] ?? rest
  // A bridge never receives responses: every state reports it as the peer's fault.
  if (cells['response-received'] === undefined) row['response-received'] = 'protocol-error'
  return row
}

export const BRIDGE_TRANSITIONS: TransitionTable<BridgeState, BridgeEvent> = {
  INIT: bridgeRow({ 'new-request': go('PROCESS', 'request-received') }),
  PROCESS: bridgeRow({
    'resources-granted': go('SEND', 'resources-granted'),
    'resources-keep': go('KEEP', 'resources-kept'),
    'resources-refused': go('DEASSOC', 'resources-refused'),
  }),
  SEND: bridgeRow({ 'reply-sent': go('WAITCMD', 'reply-sent') }),
  KEEP: bridgeRow({
    'reply-sent': go('WAITCMD', 'reply-sent'),
    'no-prior-state': go('END', 'no-prior-state'),
  }),
  DEASSOC: bridgeRow({ 'reply-sent': go('END', 'reply-sent') }),
  WAITCMD: bridgeRow({
    'request-same-mode': go('ALIVE', 'keepalive-received'),
    'request-new-mode': go('PROCESS', 'mode-change-received'),
    'deassoc-received': go('DEASSOC', 'deassoc-received'),
    'keepalive-timeout': go('DEASSOCIATED', 'keepalive-timeout'),
    'local-deassoc': go('DEASSOCIATED', 'local-deassoc'),
  }),
  ALIVE: bridgeRow({ 'reply-sent': go('WAITCMD', 'reply-sent') }),
  DEASSOCIATED: bridgeRow({ 'reply-sent': go('END', 'reply-sent') }),
  // A deleted VSI: a late timer or command for it changes nothing.
  END: bridgeRow({}, 'ignore'),
}

// ---------------------------------------------------------------------------------------------
// VDP station, per VSI (802.1Qbg-2012 41.5.5, station figure; openlldp vdp22st_* / VDP22_S_*)

export const STATION_STATES = [
  'INIT',
  'STATION_PROC',
  'PROCWAIT',
  'ASSOC_NEW',
  'PREASSOC_NEW',
  'ASSOC_COMPL',
  'WAIT_SYSCMD',
  'TXMIT_KA',
  'TXMIT_KAWAIT',
  'END',
] as const
export type StationState = (typeof STATION_STATES)[number]

export const STATION_EVENTS = [
  /** A local command (the standard's `localChange`). */
  'local-change',
  'request-sent',
  /** Success response with an Associate TLV. */
  'response-associate',
  /** Success response with a Pre-Associate (or with RR) TLV. */
  'response-pre-associate',
  /** Success response with a De-Associate TLV. */
  'response-de-associate',
  /** Error response with Keep, and a confirmed state to keep. */
  'response-keep',
  /** Error response without Keep (or Keep with nothing to keep). */
  'response-error',
  /** Response whose filter data does not match the request (41.2.9, lldpad `cmp_fdata1`). */
  'response-mismatch',
  /** respWaitDelay expired (41.5.5.9). */
  'resp-wait-expired',
  /** ECP gave up on the ECPDU that carried the request. */
  'tx-error',
  /** De-Associate with the Req/Rsp bit clear: the bridge removes the VSI (41.2.4). */
  'bridge-deassoc',
  /** reinitKeepAlive expired (41.5.5.5). */
  'keepalive-due',
  'completed',
] as const
export type StationEvent = (typeof STATION_EVENTS)[number]

const RESPONSES = [
  'response-associate',
  'response-pre-associate',
  'response-de-associate',
  'response-keep',
  'response-error',
  'response-mismatch',
] as const satisfies readonly StationEvent[]

const stationRow = (
  cells: Partial<Record<StationEvent, Cell<StationState>>>,
  rest: Cell<StationState> = 'impossible',
): Record<StationEvent, Cell<StationState>> => {
  const row = {} as Record<StationEvent, Cell<StationState>>
  for (const e of STATION_EVENTS) row[e] = cells[e] ?? rest
  return row
}

/** Responses that arrive while nothing waits for them: duplicates or a confused bridge. */
const unexpectedResponses = Object.fromEntries(
  RESPONSES.map((e) => [e, 'protocol-error']),
) as Record<(typeof RESPONSES)[number], Cell<StationState>>

export const STATION_TRANSITIONS: TransitionTable<StationState, StationEvent> = {
  INIT: stationRow({ 'local-change': go('STATION_PROC', 'command-received') }),
  STATION_PROC: stationRow({ 'request-sent': go('PROCWAIT', 'request-sent') }),
  PROCWAIT: stationRow({
    'local-change': go('PROCWAIT', 'local-change-deferred'),
    'response-associate': go('ASSOC_NEW', 'associate-confirmed'),
    'response-pre-associate': go('PREASSOC_NEW', 'pre-associate-confirmed'),
    'response-de-associate': go('END', 'deassoc-confirmed'),
    'response-keep': go('WAIT_SYSCMD', 'keep-received'),
    'response-error': go('END', 'error-received'),
    'response-mismatch': go('END', 'response-mismatch'),
    'resp-wait-expired': go('END', 'resp-wait-expired'),
    'tx-error': go('END', 'tx-error'),
    'bridge-deassoc': go('END', 'deassoc-from-bridge'),
  }),
  ASSOC_NEW: stationRow({ completed: go('ASSOC_COMPL', 'completed') }),
  PREASSOC_NEW: stationRow({ completed: go('WAIT_SYSCMD', 'completed') }),
  ASSOC_COMPL: stationRow({ completed: go('WAIT_SYSCMD', 'completed') }),
  WAIT_SYSCMD: stationRow({
    ...unexpectedResponses,
    'local-change': go('STATION_PROC', 'local-change'),
    'keepalive-due': go('TXMIT_KA', 'keepalive-due'),
    'bridge-deassoc': go('END', 'deassoc-from-bridge'),
    // The ACKs of an ECPDU were lost but its response arrived: the VSI is fine.
    'tx-error': 'ignore',
  }),
  TXMIT_KA: stationRow({ 'request-sent': go('TXMIT_KAWAIT', 'request-sent') }),
  TXMIT_KAWAIT: stationRow({
    'local-change': go('TXMIT_KAWAIT', 'local-change-deferred'),
    'response-associate': go('WAIT_SYSCMD', 'keepalive-confirmed'),
    'response-pre-associate': go('WAIT_SYSCMD', 'keepalive-confirmed'),
    'response-de-associate': go('END', 'deassoc-confirmed'),
    'response-keep': go('WAIT_SYSCMD', 'keep-received'),
    'response-error': go('END', 'error-received'),
    'response-mismatch': go('END', 'response-mismatch'),
    'resp-wait-expired': go('END', 'resp-wait-expired'),
    'tx-error': go('END', 'tx-error'),
    'bridge-deassoc': go('END', 'deassoc-from-bridge'),
  }),
  END: stationRow({}, 'ignore'),
}

// ---------------------------------------------------------------------------------------------
// ECP transmit, per peer (802.1Qbg-2012 43.3.7; openlldp ECP22_TX_*)

export const ECP_TX_STATES = [
  'WAIT_FOR_REQUEST',
  'TRANSMIT_ECPDU',
  'WAIT_FOR_ACK',
  'ERROR',
] as const
export type EcpTxState = (typeof ECP_TX_STATES)[number]

export const ECP_TX_EVENTS = [
  'data-queued',
  'ecpdu-sent',
  /** ACK whose sequence number equals the outstanding ECPDU's. */
  'ack-received',
  /** ACK with another sequence number, or with nothing outstanding. */
  'ack-mismatch',
  'ack-timer-expired',
  'retries-exhausted',
  'error-reported',
] as const
export type EcpTxEvent = (typeof ECP_TX_EVENTS)[number]

const ecpTxRow = (
  cells: Partial<Record<EcpTxEvent, Cell<EcpTxState>>>,
): Record<EcpTxEvent, Cell<EcpTxState>> => {
  const row = {} as Record<EcpTxEvent, Cell<EcpTxState>>
  for (const e of ECP_TX_EVENTS) row[e] = cells[e] ?? 'impossible'
  return row
}

export const ECP_TX_TRANSITIONS: TransitionTable<EcpTxState, EcpTxEvent> = {
  WAIT_FOR_REQUEST: ecpTxRow({
    'data-queued': go('TRANSMIT_ECPDU', 'data-queued'),
    // A late second ACK of a retransmitted ECPDU: ordinary, counted by the owner.
    'ack-mismatch': 'ignore',
  }),
  TRANSMIT_ECPDU: ecpTxRow({ 'ecpdu-sent': go('WAIT_FOR_ACK', 'ecpdu-sent') }),
  WAIT_FOR_ACK: ecpTxRow({
    // 43.3.7: one ECPDU outstanding; more data waits in the queue.
    'data-queued': 'ignore',
    'ack-received': go('WAIT_FOR_REQUEST', 'ack-received'),
    'ack-mismatch': 'ignore',
    'ack-timer-expired': go('TRANSMIT_ECPDU', 'ack-timeout'),
    'retries-exhausted': go('ERROR', 'retries-exhausted'),
  }),
  ERROR: ecpTxRow({ 'error-reported': go('WAIT_FOR_REQUEST', 'error-reported') }),
}

// ---------------------------------------------------------------------------------------------
// ECP receive, per peer (802.1Qbg-2012 43.3.8; openlldp ECP22_RX_*)

export const ECP_RX_STATES = ['RX_FIRST', 'RX_WAIT'] as const
export type EcpRxState = (typeof ECP_RX_STATES)[number]

export const ECP_RX_EVENTS = ['new-ecpdu', 'duplicate-ecpdu', 'port-reset'] as const
export type EcpRxEvent = (typeof ECP_RX_EVENTS)[number]

export const ECP_RX_TRANSITIONS: TransitionTable<EcpRxState, EcpRxEvent> = {
  // 43.3.8: the first ECPDU after initialisation is always new (lastSeq primed to seq - 1).
  RX_FIRST: {
    'new-ecpdu': go('RX_WAIT', 'first-ecpdu'),
    'duplicate-ecpdu': 'impossible',
    'port-reset': go('RX_FIRST', 'port-reset'),
  },
  RX_WAIT: {
    'new-ecpdu': go('RX_WAIT', 'new-ecpdu'),
    'duplicate-ecpdu': go('RX_WAIT', 'duplicate-ecpdu'),
    'port-reset': go('RX_FIRST', 'port-reset'),
  },
}

// ---------------------------------------------------------------------------------------------

const successorCache = new WeakMap<object, Map<string, ReadonlySet<string>>>()

/** Whether the table allows `to` as a successor of `from` through any event. */
export function isLegalSuccessor<S extends string, E extends string>(
  table: TransitionTable<S, E>,
  from: S,
  to: S,
): boolean {
  let byState = successorCache.get(table)
  if (byState === undefined) {
    byState = new Map()
    for (const [state, row] of Object.entries(table) as [S, Record<E, Cell<S>>][]) {
      const next = new Set<string>()
      for (const cell of Object.values(row) as Cell<S>[])
        if (typeof cell === 'object') next.add(cell.to)
      byState.set(state, next)
    }
    successorCache.set(table, byState)
  }
  return byState.get(from)?.has(to) ?? false
}

/**
 * A machine's current state plus the checked way to move it. Bounded evaluation: `fire()`
 * counts transitions of one input and asserts the count stays under `stepsMax`.
 */
export class StateMachine<S extends string, E extends string> {
  #state: S
  #reason: TransitionReason | undefined
  #steps = 0

  constructor(
    readonly table: TransitionTable<S, E>,
    initial: S,
    readonly stepsMax = 16,
  ) {
    this.#state = initial
  }

  get state(): S {
    return this.#state
  }

  /** Reason of the last transition. */
  get reason(): TransitionReason | undefined {
    return this.#reason
  }

  /** Starts a new input: the step bound counts from here. */
  beginInput(): void {
    this.#steps = 0
  }

  /**
   * Looks the event up and applies a transition cell. Returns the cell so the caller can act
   * on `'ignore'` / `'protocol-error'`; asserts on `'impossible'`.
   */
  fire(event: E): Cell<S> {
    const cell = this.table[this.#state][event]
    if (cell === 'impossible')
      assert(false, `Cannot handle event ${event}: impossible in state ${this.#state}`)
    // A cell of the current state's row names a successor by construction: no table check
    // (a keep-alive fires six transitions; each check cost three hash lookups).
    if (typeof cell === 'object') this.#move(cell.to, cell.reason)
    return cell
  }

  /** Moves to `next`, asserting the table allows it from the current state. */
  changeState(next: S, reason: TransitionReason): void {
    if (!isLegalSuccessor(this.table, this.#state, next))
      assert(false, `Cannot change state to ${next}: not a successor of ${this.#state}`)
    this.#move(next, reason)
  }

  #move(next: S, reason: TransitionReason): void {
    if (++this.#steps > this.stepsMax)
      assert(false, `Cannot settle machine: more than ${this.stepsMax} steps`)
    this.#state = next
    this.#reason = reason
  }
}

/** Renders a transition table as a mermaid `stateDiagram-v2` (ignore/error cells omitted). */
export function mermaid<S extends string, E extends string>(table: TransitionTable<S, E>): string {
  const lines = ['stateDiagram-v2']
  for (const [from, row] of Object.entries(table) as [S, Record<E, Cell<S>>][]) {
    for (const [event, cell] of Object.entries(row) as [E, Cell<S>][]) {
      if (typeof cell === 'object') lines.push(`  ${from} --> ${cell.to}: ${event}`)
    }
  }
  return lines.join('\n')
}
