// `vdp-agent` as the bridge under test of test/bench/lldpad-baseline.ts, so the lldpad bridge
// and ours are measured in the same run against the same lldpad station:
//   npm run build && npx tsx test/bench/lldpad-baseline.ts --bridge-module test/bench/vdp-agent-bridge.ts
// Runs the esbuild bundle (dist/vdp-agent) when it exists, else the sources through tsx.
// With redis-server installed the agent programs a real SONiC CONFIG_DB (a private redis on a
// unix socket, which the switch namespace reaches through the file system) and the bench
// reports its commit time apart from the wire figures; without it (or with
// VDP_BENCH_DATAPLANE=dry-run), the dry-run driver.
// Query parameters on the module path make variants that run side by side in one bench run
// (each query is a module of its own), e.g. the previous commit's build against this one:
//   --bridge-module 'test/bench/vdp-agent-bridge.ts?bundle=/tmp/prev/vdp-agent/vdp-agent.mjs&label=prev'
//   --bridge-module test/bench/vdp-agent-bridge.ts
// `bundle=` another build (`node scripts/build.mjs --only agent --out DIR`), `dataplane=`
// sonic or dry-run, `node-args=` options for node (instead of VDP_BENCH_NODE_ARGS), `env=`
// NAME=value pairs (comma-separated) for the agent's environment, `label=` its name in the table.
import { spawn, type ChildProcess } from 'node:child_process'
import { existsSync, mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { startAgentProcess } from '../support/agent-process.ts'
import { REPO_ROOT } from '../support/netns.ts'
import { REDIS_SERVER } from '../support/redis.ts'
import type { BridgeUnderTest } from './lldpad-baseline.ts'

const variant = new URL(import.meta.url).searchParams
const bundle = variant.get('bundle') ?? join(REPO_ROOT, 'dist/vdp-agent/vdp-agent.mjs')
/** VDP_BENCH_DATAPLANE=dry-run: the dry-run driver even where redis-server is installed. */
const sonic = existsSync(REDIS_SERVER) && (variant.get('dataplane') ?? process.env.VDP_BENCH_DATAPLANE) !== 'dry-run'

async function startRedis(dir: string): Promise<{ socket: string; child: ChildProcess }> {
  const socket = join(dir, 'redis.sock')
  const child = spawn(REDIS_SERVER, ['--port', '0', '--unixsocket', socket, '--unixsocketperm', '700', '--save', '', '--appendonly', 'no', '--dir', dir], { stdio: 'ignore' })
  for (let i = 0; i < 200 && !existsSync(socket); i++) await new Promise((r) => setTimeout(r, 10))
  if (!existsSync(socket)) throw new Error(`redis-server did not open ${socket}`)
  return { socket, child }
}

/** Count and sum of one histogram series in Prometheus text. */
function histogram(text: string, name: string): { labels: string; count: number; sum: number } | undefined {
  const count = new RegExp(`^${name}_count\\{([^}]*)\\} (\\S+)$`, 'm').exec(text)
  const sum = new RegExp(`^${name}_sum\\{[^}]*\\} (\\S+)$`, 'm').exec(text)
  if (!count || !sum) return undefined
  return { labels: count[1]!, count: Number(count[2]), sum: Number(sum[1]) }
}

export const bridgeUnderTest: BridgeUnderTest = {
  name: `${variant.get('label') ?? 'vdp-agent'}${existsSync(bundle) ? '' : ' (tsx)'}${sonic ? ' sonic' : ''}`,
  start: async (lab, evb) => {
    const dir = mkdtempSync(join(tmpdir(), 'vdp-bench-redis-'))
    const redis = sonic ? await startRedis(dir) : undefined
    try {
      const agent = await startAgentProcess({
        netns: lab.switchNs,
        ...(existsSync(bundle) ? { entry: bundle } : {}),
        nodeArgs: (variant.get('node-args') ?? process.env.VDP_BENCH_NODE_ARGS)?.split(' ').filter(Boolean) ?? [],
        // env=NAME=value,NAME=value: the agent's environment for this variant only.
        env: Object.fromEntries((variant.get('env') ?? '').split(',').filter(Boolean).map((kv) => [kv.slice(0, kv.indexOf('=')), kv.slice(kv.indexOf('=') + 1)])),
        args: ['--port', lab.switchIf, '--vid-pool', '100-999', '--switch-id', 'bench', '--dataplane', redis ? 'sonic' : 'dry-run'],
        config: {
          evb: { retries: evb.ecpRetries ?? 3, rte: evb.ecpRte ?? 8, rwd: evb.vdpRwd ?? 20, rka: evb.vdpRka ?? 20, groupId: evb.gpid ?? true, reflectiveRelay: evb.rrCap ?? true },
          lldpTxIntervalS: 1,
          ...(redis ? { sonic: { redisUrl: redis.socket, vxlanTunnel: 'vtep' } } : {}),
        },
      })
      await lab.waitForBridgeEvb((t) => t.mode === 'bridge', 20_000)
      return {
        stop: async () => {
          await agent.stop()
          redis?.child.kill('SIGKILL')
          rmSync(dir, { recursive: true, force: true })
        },
        rssKb: () => agent.rssKb(),
        agentResponses: async () => {
          const h = histogram(String(await agent.call('metrics')), 'vdp_agent_vdp_response_seconds')
          return h ? { count: h.count, meanMs: h.count === 0 ? 0 : (h.sum / h.count) * 1000 } : undefined
        },
        dataplaneCommits: async () => {
          const h = histogram(String(await agent.call('metrics')), 'vdp_agent_dataplane_commit_seconds')
          if (!h || h.count === 0) return undefined
          return { dataplane: /dataplane="([^"]+)"/.exec(h.labels)?.[1] ?? '?', count: h.count, meanMs: (h.sum / h.count) * 1000 }
        },
      }
    } catch (e) {
      redis?.child.kill('SIGKILL')
      rmSync(dir, { recursive: true, force: true })
      throw e
    }
  },
}
