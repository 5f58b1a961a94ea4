/**
 * `vdp-agent` entry point: flags and config → `Agent.start()` on AF_PACKET links, with the
 * MQTT uplink when `--mqtt` is given. SIGTERM and SIGINT stop it cleanly (exit 0); a bad
 * config exits 2 with the reason on stderr, a start-up failure exits 1.
 *
 * @module
 */
import { hostname } from 'node:os'
import { setFlagsFromString } from 'node:v8'
import { AGENT_USAGE, ConfigError, loadAgentConfig } from './config.ts'
import { Agent, AGENT_VERSION } from './agent.ts'
import { monotonicClock } from './runtime/clock.ts'
import { createJsonLogger } from './runtime/logger.ts'
import { switchId } from '../shared/ids.ts'

export async function main(argv: string[]): Promise<number> {
  let parsed
  try {
    parsed = loadAgentConfig(argv, { hostname: hostname() })
  } catch (e) {
    process.stderr.write(`vdp-agent: ${(e as Error).message}\n`)
    return e instanceof ConfigError ? 2 : 1
  }
  if (parsed.kind === 'help') {
    process.stdout.write(AGENT_USAGE)
    return 0
  }
  if (parsed.kind === 'version') {
    process.stdout.write(`vdp-agent ${AGENT_VERSION}\n`)
    return 0
  }
  const config = parsed.config
  // A switch agent lives in a small memory budget: let V8 grow the heap in small steps and
  // collect sooner (its memory-reducing growth factors). At 48 ports and 10,000 VSIs this took
  // the heap from 75-130 MB to ~46 MB for the same ~35 MB of live data, with no measurable
  // CPU change (README, Performance). It is read at every collection, so setting it here at
  // start (not only as a node option) takes effect; VDP_AGENT_V8_DEFAULTS=1 leaves V8 as is.
  if (process.env.VDP_AGENT_V8_DEFAULTS !== '1') setFlagsFromString('--optimize-for-size')
  const log = createJsonLogger({ level: config.logLevel, write: (l) => process.stderr.write(l), base: { app: 'vdp-agent' } })
  let agent: Agent
  try {
    agent = await Agent.start(config, {
      clock: monotonicClock,
      log,
      openLink: async (p) => {
        if (config.link !== 'af-packet') throw new Error(`Cannot open port ${p.name}: link "${config.link}" runs only inside a demo process`)
        const { openAfPacketLink } = await import('./transport/af-packet.ts')
        return openAfPacketLink(p.name)
      },
      ...(config.link === 'af-packet' ? { takeAbsorbedAcks: (await import('./transport/af-packet.ts')).takeAbsorbedEcpAcks } : {}),
      openUplink: async ({ config: c, bootId, bootTimeMs, onPolicy, onCommand, onResyncNeeded, log: ulog }) => {
        const { MqttUplink } = await import('./uplink/mqtt-uplink.ts')
        return MqttUplink.open(
          {
            url: c.mqtt.url,
            switchId: switchId(c.switchId),
            ...(c.mqtt.username ? { username: c.mqtt.username } : {}),
            ...(c.mqtt.password || process.env.VDP_MQTT_PASSWORD ? { password: c.mqtt.password || process.env.VDP_MQTT_PASSWORD! } : {}),
            topicPrefix: c.mqtt.topicPrefix,
            stateDir: c.stateDir,
            bootId,
            bootTimeMs,
            agentVersion: AGENT_VERSION,
            outboxEventsMax: c.mqtt.outboxEventsMax,
          },
          { onPolicy, onCommand, onResyncNeeded },
          {
            debug: (msg, f) => ulog.debug('uplink', { msg, ...f }),
            info: (msg, f) => ulog.info('uplink', { msg, ...f }),
            warn: (msg, f) => ulog.warn('uplink', { msg, ...f }),
            error: (msg, f) => ulog.error('uplink', { msg, ...f }),
          },
        )
      },
    })
  } catch (e) {
    log.error('agent-start-failed', { error: e })
    process.stderr.write(`vdp-agent: ${(e as Error).message}\n`)
    return 1
  }
  await new Promise<void>((resolve) => {
    const stop = (signal: string) => {
      log.info('agent-stopping', { signal })
      resolve()
    }
    process.once('SIGTERM', () => stop('SIGTERM'))
    process.once('SIGINT', () => stop('SIGINT'))
  })
  await agent.stop()
  return 0
}

const isMain = process.argv[1] !== undefined && import.meta.url === new URL(`file://${process.argv[1]}`).href
if (isMain || process.env.VDP_AGENT_MAIN === '1') {
  main(process.argv.slice(2)).then((code) => process.exit(code))
}
