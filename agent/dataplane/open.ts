/**
 * Opens the configured data-plane driver with its ownership record in the state directory
 * (`<stateDir>/dataplane-owned.json`). The input matches the agent config's `dataplane`,
 * `sonic` and `linux` keys.
 *
 * @module
 */
import { join } from 'node:path'
import { createDryRunDriver } from './dry-run.ts'
import { silentLogger, type DataplaneDriver, type DataplaneLogger } from './driver.ts'
import { openLinuxDriver, type VxlanLayout } from './linux.ts'
import { OwnershipRecord } from './ownership.ts'
import { openSonicDriver } from './sonic.ts'

export const OWNERSHIP_FILE = 'dataplane-owned.json'

export interface OpenDataplaneOptions {
  dataplane: 'sonic' | 'linux' | 'dry-run'
  stateDir: string
  /** `vxlanTunnel` empty = no VLAN-to-VNI maps. */
  sonic?: { redisUrl: string; vxlanTunnel: string }
  /** `vxlanDevice` empty = VLANs only; otherwise the single external VXLAN device. */
  linux?: { bridge: string; vxlanDevice: string; vxlan?: VxlanLayout; netns?: string }
  logger?: DataplaneLogger
}

/**
 * @example
 * ```ts
 * const dp = await openDataplane({ dataplane: config.dataplane, stateDir: config.stateDir, sonic: config.sonic, linux: config.linux, logger })
 * ```
 */
export async function openDataplane(o: OpenDataplaneOptions): Promise<DataplaneDriver> {
  const logger = o.logger ?? silentLogger
  const path = join(o.stateDir, OWNERSHIP_FILE)
  switch (o.dataplane) {
    case 'dry-run':
      return createDryRunDriver({ logger })
    case 'sonic': {
      const s = o.sonic ?? { redisUrl: 'redis://127.0.0.1:6379', vxlanTunnel: 'vtep' }
      const ownership = await OwnershipRecord.load(path, 'sonic', s.redisUrl)
      return openSonicDriver({
        redis: s.redisUrl,
        ...(s.vxlanTunnel === '' ? {} : { vxlanTunnel: s.vxlanTunnel }),
        ownership,
        logger,
      })
    }
    case 'linux': {
      const l = o.linux ?? { bridge: 'br0', vxlanDevice: 'vxlan0' }
      const ownership = await OwnershipRecord.load(path, 'linux', `${l.netns ?? ''}/${l.bridge}`)
      const vxlan: VxlanLayout = l.vxlan ?? (l.vxlanDevice === '' ? { mode: 'none' } : { mode: 'single', device: l.vxlanDevice })
      return openLinuxDriver({ bridge: l.bridge, vxlan, ownership, logger, ...(l.netns === undefined ? {} : { netns: l.netns }) })
    }
  }
}
