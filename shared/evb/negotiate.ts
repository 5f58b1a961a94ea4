/**
 * EVB TLV negotiation, as lldpad implements it (`lldp_evb22.c`: common_tlv, bridge_tlv,
 * station_tlv) and HPE documents it: for R, RTE, RWD and RKA each side transmits
 * max(local configured, last received), with ROL set when the remote value was adopted
 * (remote >= local); the transmitted values are the operational ones, so both ends
 * converge. GroupID formats are usable iff BGID and SGID are both set.
 *
 * @module
 */
import { EvbMode, type EvbTlv } from './evb-tlv.ts'

export interface EvbConfig {
  role: 'bridge' | 'station'
  /** R, 0..7. lldpad default 3. */
  retries: number
  /** RTE, 0..31. lldpad default 8 (2.56 ms). */
  rte: number
  /** RWD, 0..31. lldpad default 20. */
  rwd: number
  /** RKA, 0..31. lldpad default 20 (10.49 s). */
  rka: number
  /** Advertise GroupID support (BGID on a bridge, SGID on a station). */
  groupId: boolean
  /** Bridge: reflective relay capable (RRCAP). Station: request it (RRREQ). */
  reflectiveRelay: boolean
}

export const defaultEvbConfig: Readonly<EvbConfig> = {
  role: 'bridge',
  retries: 3,
  rte: 8,
  rwd: 20,
  rka: 20,
  groupId: true,
  reflectiveRelay: false,
}

export interface EvbOperational {
  retries: number
  rte: number
  rwd: number
  rka: number
  /** GroupID filter formats may be used on this port. */
  groupIdEnabled: boolean
  /** Reflective relay on (bridge RRCTR). */
  reflectiveRelay: boolean
  /** A TLV from the peer has been received. */
  peerSeen: boolean
}

export function validateEvbConfig(c: EvbConfig): EvbConfig {
  const check = (v: number, max: number, name: string) => {
    if (!Number.isInteger(v) || v < 0 || v > max) throw new Error(`Invalid EVB config: ${name} ${v} is not an integer in 0..${max}`)
  }
  check(c.retries, 7, 'retries')
  check(c.rte, 31, 'rte')
  check(c.rwd, 31, 'rwd')
  check(c.rka, 31, 'rka')
  if (c.role !== 'bridge' && c.role !== 'station') throw new Error(`Invalid EVB config: role "${String(c.role)}" is not bridge or station`)
  return c
}

/**
 * Computes the TLV to transmit and the operational values from the local configuration and
 * the last TLV received from the peer (undefined before the first one).
 * @example
 * ```ts
 * const { tlv, operational } = negotiateEvb(config, lastReceived)
 * ackTimeoutUs = 10 * 2 ** operational.rte
 * ```
 */
export function negotiateEvb(local: EvbConfig, received: EvbTlv | undefined): { tlv: EvbTlv; operational: EvbOperational } {
  const pick = (mine: number, theirs: number | undefined) =>
    theirs === undefined ? { value: mine, rol: false } : { value: Math.max(mine, theirs), rol: theirs >= mine }
  const retries = pick(local.retries, received?.retries).value
  const rte = pick(local.rte, received?.rte).value
  const rwd = pick(local.rwd, received?.rwd)
  const rka = pick(local.rka, received?.rka)
  let tlv: EvbTlv
  let groupIdEnabled: boolean
  let reflectiveRelay: boolean
  if (local.role === 'bridge') {
    const rrctr = local.reflectiveRelay && (received?.station.rrreq ?? false)
    tlv = {
      bridge: { bgid: local.groupId, rrcap: local.reflectiveRelay, rrctr },
      station: received ? { ...received.station } : { sgid: false, rrreq: false, rrstat: 0 },
      retries, rte, mode: EvbMode.Bridge, rwdRol: rwd.rol, rwd: rwd.value, rkaRol: rka.rol, rka: rka.value,
    }
    groupIdEnabled = local.groupId && (received?.station.sgid ?? false)
    reflectiveRelay = rrctr
  } else {
    const rrstat = received === undefined ? 3 : received.bridge.rrctr ? 1 : 0
    tlv = {
      bridge: received ? { ...received.bridge } : { bgid: false, rrcap: false, rrctr: false },
      station: { sgid: local.groupId, rrreq: local.reflectiveRelay, rrstat },
      retries, rte, mode: EvbMode.Station, rwdRol: rwd.rol, rwd: rwd.value, rkaRol: rka.rol, rka: rka.value,
    }
    groupIdEnabled = local.groupId && (received?.bridge.bgid ?? false)
    reflectiveRelay = received?.bridge.rrctr ?? false
  }
  return {
    tlv,
    operational: { retries, rte, rwd: rwd.value, rka: rka.value, groupIdEnabled, reflectiveRelay, peerSeen: received !== undefined },
  }
}
