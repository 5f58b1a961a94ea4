/**
 * Builds the policy of one switch from the fleet store (VNs, hosts with their keys opened,
 * the switch's VID pool, LAG groups) and pushes it. Keys are opened only here, in memory,
 * to be encoded into the retained policy message.
 *
 * @module
 */
import type { SwitchPolicy } from '../shared/api/policy.ts'
import type { SwitchId } from '../shared/ids.ts'
import type { EdgeDeps } from './deps.ts'
import type { SecretBox } from './secrets.ts'
import type { FleetStore } from './store/fleet-store.ts'

export const hostKeyContext = (hostId: string, keyId: number): string => `${hostId}/${keyId}`

export async function buildSwitchPolicy(
  store: FleetStore,
  secrets: SecretBox,
  switchId: SwitchId,
  revision: number,
  nowMs: number,
): Promise<SwitchPolicy> {
  const config = store.getSwitchConfig(switchId)
  const hosts = await Promise.all(
    store.hostSecrets().map(async (h) => ({
      hostId: h.hostId,
      ...(h.managerId !== undefined ? { managerId: h.managerId } : {}),
      stationMacs: h.stationMacs,
      keys: await Promise.all(
        h.keys
          .filter((k) => k.notAfter === undefined || k.notAfter > nowMs)
          .map(async (k) => ({
            keyId: k.keyId,
            key: await secrets.open(k.sealed, hostKeyContext(h.hostId, k.keyId)),
            ...(k.notAfter !== undefined ? { notAfter: k.notAfter } : {}),
          })),
      ),
    })),
  )
  return {
    v: 1,
    switchId,
    revision,
    issuedAt: nowMs,
    vns: store.listVns().map((vn) => ({
      name: vn.name,
      vni: vn.vni,
      tenant: vn.tenant,
      allowedVsiTypes: vn.allowedVsiTypes,
      ...(vn.vid !== undefined ? { vid: vn.vid } : {}),
    })),
    vidPool: config?.vidPool ?? [],
    hosts,
    lagGroups: config?.lagGroups ?? [],
    unknownHosts: config?.unknownHosts ?? 'allow',
  }
}

/**
 * Publishes a fresh policy (new revision) to the given switches, or to every known switch
 * and every configured one. Returns the revision; failures are logged, not thrown: the
 * policy is retained and the next change pushes again.
 */
export async function pushPolicies(deps: EdgeDeps, only?: SwitchId[]): Promise<number> {
  const ids = only ?? [
    ...new Set([
      ...deps.store.listSwitches().map((s) => s.switchId),
      ...deps.store.listSwitchConfigs().map((c) => c.switchId),
    ]),
  ]
  const revision = deps.store.nextPolicyRevision()
  const now = deps.clock.nowMs()
  for (const id of ids) {
    try {
      await deps.publish.policy(await buildSwitchPolicy(deps.store, deps.secrets, id, revision, now))
    } catch (err) {
      deps.logger.warn('policy push failed', { switchId: id, revision, error: err instanceof Error ? err.message : String(err) })
    }
  }
  return revision
}
