/**
 * Configuration of one port core: role, EVB exponents proposed in the EVB TLV, LLDP timing of
 * the Nearest Customer Bridge agent, ECP addressing and the bounds of every table and queue.
 * The shell validates once at start-up (`validatePortConfig`); the core then trusts the
 * numbers (their units are in their names).
 *
 * @module
 */
import { isGroupMac, isMac, type Mac } from '../../shared/ethernet/mac.ts'
import type { PortName } from '../../shared/ids.ts'
import type { Us } from '../../shared/time.ts'

export type PortRole = 'bridge' | 'station'

/** What this port proposes in its EVB TLV (802.1Qbg-2012 D.2.12); the max of both ends runs. */
export interface EvbSettings {
  /** R: ECP retransmissions after the first send, 0..7 (D.2.12.6). */
  retries: number
  /** RTE: ackTimer = 10 µs · 2^RTE, 0..31 (D.2.12.7). */
  rte: number
  /** RWD: resourceWaitDelay = 10 µs · 2^RWD, 0..31 (D.2.12.8). */
  rwd: number
  /** RKA: reinitKeepAlive = 10 µs · 2^RKA, 0..31 (D.2.12.9). */
  rka: number
  /** BGID (bridge) / SGID (station): GroupID filter formats supported. */
  groupId: boolean
  /** RRCAP (bridge) / RRREQ (station): reflective relay capable / requested. */
  reflectiveRelay: boolean
}

export interface LldpSettings {
  /** Run the NCB LLDP agent (transmit and receive the EVB TLV). */
  enabled: boolean
  /** msgTxInterval (802.1AB 9.2.5.7), µs. */
  txIntervalUs: Us
  /** msgFastTx (802.1AB 9.2.5.5), µs. */
  txFastIntervalUs: Us
  /** txFastInit: LLDPDUs sent at the fast rate after start or a change (802.1AB 9.2.5.19). */
  txFastCount: number
  /** msgTxHold: TTL = txInterval · txHold, rounded up to seconds (802.1AB 9.2.5.6). */
  txHold: number
}

export interface PortConfig {
  port: PortName
  /** The port's own MAC: ECP/LLDP source, chassis ID and port ID. */
  mac: Mac
  role: PortRole
  evb: EvbSettings
  lldp: LldpSettings
  /**
   * Destination of the ECPDUs this port sends to a known peer. `ncb-group` is what lldpad does
   * (01-80-C2-00-00-00 for requests and ACKs); `peer-unicast` addresses the peer's MAC, which
   * several stations sharing one bridge port need (RFC 8394 Req-1/2).
   */
  ecpDestination: 'ncb-group' | 'peer-unicast'
  /**
   * Least time between two new ECPDUs to one peer, µs; 0 = the next leaves as soon as the ACK
   * arrives. lldpad stations lose ECPDUs closer than ~2 ms (lldpad-interop.md note 5): use
   * about 2,500 for them.
   */
  ecpTxGapUs: Us
  /** Gap after an ECPDU that itself waited for `ecpTxGapUs` (a burst), µs; at least that. */
  ecpTxBurstGapUs: Us
  /**
   * Bridge, group-addressed mode: the first ECP sequence number of the port's shared space.
   * Far from 1 because stations count from 1 (see port-core `#groupPacer`); a restarted agent
   * should pick another one, so a station does not take its first ECPDU for a duplicate of the
   * last one it heard from the previous run.
   */
  bridgeFirstSequence: number
  /** VDP TLVs waiting for ECP per peer (beyond one ECPDU in flight). */
  pendingEcpduMax: number
  /** VSIs held by this port. */
  vsiCountMax: number
  /** ECP peers (station MACs on a bridge port). */
  peerCountMax: number
  /** Undrained events; more are counted as dropped. */
  eventQueueMax: number
  /** Undrained frames; more are counted as dropped. */
  transmitQueueMax: number
  /** Period of the `counters` event, µs; 0 = only on demand. */
  countersIntervalUs: Us
}

export type PortConfigInput = Pick<PortConfig, 'port' | 'mac'> &
  Partial<Omit<PortConfig, 'port' | 'mac' | 'evb' | 'lldp'>> & {
    evb?: Partial<EvbSettings>
    lldp?: Partial<LldpSettings>
  }

export const defaultPortConfig: Readonly<Omit<PortConfig, 'port' | 'mac'>> = Object.freeze({
  role: 'bridge',
  // lldpad defaults R 3, RWD 20, RKA 20; RTE 14 as the spec digest recommends (§6.6).
  evb: Object.freeze({
    retries: 3,
    rte: 14,
    rwd: 20,
    rka: 20,
    groupId: true,
    reflectiveRelay: false,
  }),
  lldp: Object.freeze({
    enabled: true,
    txIntervalUs: 30_000_000,
    txFastIntervalUs: 1_000_000,
    txFastCount: 4,
    txHold: 4,
  }),
  ecpDestination: 'ncb-group',
  ecpTxGapUs: 0,
  ecpTxBurstGapUs: 0,
  bridgeFirstSequence: 0x8001,
  pendingEcpduMax: 4096,
  vsiCountMax: 4096,
  peerCountMax: 64,
  eventQueueMax: 65_536,
  transmitQueueMax: 65_536,
  countersIntervalUs: 30_000_000,
})

/** Defaults merged under `input`, then validated. */
export function resolvePortConfig(input: PortConfigInput): PortConfig {
  const config: PortConfig = {
    ...defaultPortConfig,
    ...input,
    evb: { ...defaultPortConfig.evb, ...input.evb },
    lldp: { ...defaultPortConfig.lldp, ...input.lldp },
  }
  validatePortConfig(config)
  return config
}

function intIn(name: string, value: number, min: number, max: number): void {
  if (!Number.isInteger(value) || value < min || value > max) {
    throw new Error(`Cannot use port config: ${name} ${value} is not an integer in ${min}..${max}`)
  }
}

/** Throws a specific message for the first invalid field. */
export function validatePortConfig(config: PortConfig): void {
  if (!isMac(config.mac) || isGroupMac(config.mac)) {
    throw new Error(`Cannot use port config: mac "${config.mac}" is not a unicast MAC`)
  }
  if (config.role !== 'bridge' && config.role !== 'station') {
    throw new Error(
      `Cannot use port config: role "${String(config.role)}" is not bridge or station`,
    )
  }
  if (config.ecpDestination !== 'ncb-group' && config.ecpDestination !== 'peer-unicast') {
    throw new Error(
      `Cannot use port config: ecpDestination "${String(config.ecpDestination)}" is unknown`,
    )
  }
  intIn('evb.retries', config.evb.retries, 0, 7)
  intIn('evb.rte', config.evb.rte, 0, 31)
  intIn('evb.rwd', config.evb.rwd, 0, 31)
  intIn('evb.rka', config.evb.rka, 0, 31)
  intIn('lldp.txIntervalUs', config.lldp.txIntervalUs, 1_000_000, 3_600_000_000)
  intIn('lldp.txFastIntervalUs', config.lldp.txFastIntervalUs, 1_000, 3_600_000_000)
  intIn('lldp.txFastCount', config.lldp.txFastCount, 0, 8)
  intIn('lldp.txHold', config.lldp.txHold, 1, 100)
  intIn('ecpTxGapUs', config.ecpTxGapUs, 0, 10_000_000)
  intIn('ecpTxBurstGapUs', config.ecpTxBurstGapUs, 0, 10_000_000)
  intIn('bridgeFirstSequence', config.bridgeFirstSequence, 1, 0xffff)
  intIn('pendingEcpduMax', config.pendingEcpduMax, 1, 1_000_000)
  intIn('vsiCountMax', config.vsiCountMax, 1, 1_000_000)
  intIn('peerCountMax', config.peerCountMax, 1, 65_536)
  intIn('eventQueueMax', config.eventQueueMax, 16, 10_000_000)
  intIn('transmitQueueMax', config.transmitQueueMax, 16, 10_000_000)
  intIn('countersIntervalUs', config.countersIntervalUs, 0, 86_400_000_000)
}
