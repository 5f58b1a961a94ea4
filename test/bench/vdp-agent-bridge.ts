// `vdp-agent` as the bridge under test of test/bench/lldpad-baseline.ts, so the lldpad bridge
// and ours are measured in the same run against the same lldpad station:
//   npm run build && npx tsx test/bench/lldpad-baseline.ts --bridge-module test/bench/vdp-agent-bridge.ts
// Runs the esbuild bundle (dist/vdp-agent) when it exists, else the sources through tsx.
import { existsSync } from 'node:fs'
import { join } from 'node:path'
import { startAgentProcess } from '../support/agent-process.ts'
import { REPO_ROOT } from '../support/netns.ts'
import type { BridgeUnderTest } from './lldpad-baseline.ts'

const bundle = join(REPO_ROOT, 'dist/vdp-agent/vdp-agent.mjs')

export const bridgeUnderTest: BridgeUnderTest = {
  name: existsSync(bundle) ? 'vdp-agent' : 'vdp-agent (tsx)',
  start: async (lab, evb) => {
    const agent = await startAgentProcess({
      netns: lab.switchNs,
      ...(existsSync(bundle) ? { entry: bundle } : {}),
      args: ['--port', lab.switchIf, '--vid-pool', '100-999', '--switch-id', 'bench', '--dataplane', 'dry-run'],
      config: {
        evb: { retries: evb.ecpRetries ?? 3, rte: evb.ecpRte ?? 8, rwd: evb.vdpRwd ?? 20, rka: evb.vdpRka ?? 20, groupId: evb.gpid ?? true, reflectiveRelay: evb.rrCap ?? true },
        lldpTxIntervalS: 1,
      },
    })
    await lab.waitForBridgeEvb((t) => t.mode === 'bridge', 20_000)
    return { stop: async () => { await agent.stop() }, rssKb: () => agent.rssKb() }
  },
}
