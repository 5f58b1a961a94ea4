/**
 * `npm start`: the edge on its embedded defaults (HTTP API and page, aedes broker, SQLite
 * store) with a small demonstration fleet that speaks real VDP: two switches (`leaf1`,
 * `leaf2`, `vdp-agent` in bridge role with the MQTT uplink) and two hypervisors (`hv1`,
 * `hv2`, `vdp-agent` in station role). As root the hypervisors run in network namespaces
 * joined to the switches by veth pairs and the frames go over AF_PACKET sockets; otherwise
 * they are joined by in-process links carrying the same frames. VMs associate, and one of
 * them migrates between the hypervisors every `--migrate-every-s` seconds, so associations
 * and migrations show up in the API and on the page within seconds.
 *
 * @module
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { mkdirSync, rmSync, writeFileSync } from 'node:fs'
import { join, resolve } from 'node:path'
import { parseArgs } from 'node:util'
import { Agent } from '../agent/agent.ts'
import { loadAgentConfig } from '../agent/config.ts'
import { callAgent } from '../agent/control/local-api.ts'
import { monotonicClock } from '../agent/runtime/clock.ts'
import { createJsonLogger } from '../agent/runtime/logger.ts'
import { MemoryHub } from '../agent/transport/memory-link.ts'
import type { FrameLink } from '../agent/transport/frame-link.ts'
import { MqttUplink } from '../agent/uplink/mqtt-uplink.ts'
import { parseMac } from '../shared/ethernet/mac.ts'
import { managerIdFromText, switchId, vsiIdFromUuid } from '../shared/ids.ts'
import { hashBrokerPassword } from './broker/embedded-broker.ts'
import { jsonLogger, parseEdgeArgs, startEdge } from './main.ts'

const USAGE = `Usage: npm start [-- options]   (or: node --import tsx edge/demo.ts [options])

The fleet edge with its embedded broker and store, and a demonstration fleet of two switches
and two hypervisors exchanging real VDP frames.

Options:
  --http HOST:PORT        edge HTTP API and page (default 127.0.0.1:8080)
  --mqtt-listen HOST:PORT embedded broker (default 127.0.0.1:1883)
  --dir DIR               state of the demo: store, tokens, agents (default .vdp-demo)
  --links memory|veth     how hypervisors reach switches (default: veth as root, else memory)
  --migrate-every-s N     seconds between VM migrations (default 20)
  --help
`

interface Switch {
  id: string
  agent: Agent
  password: string
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms))

export async function runDemo(argv: string[]): Promise<number> {
  const { values } = parseArgs({
    args: argv,
    options: {
      http: { type: 'string' },
      'mqtt-listen': { type: 'string' },
      dir: { type: 'string' },
      links: { type: 'string' },
      'migrate-every-s': { type: 'string' },
      help: { type: 'boolean' },
    },
  })
  if (values.help) {
    process.stdout.write(USAGE)
    return 0
  }
  const isRoot = process.getuid?.() === 0
  const links = values.links ?? (isRoot ? 'veth' : 'memory')
  if (links !== 'memory' && links !== 'veth') throw new Error(`Cannot use --links ${links}: memory or veth`)
  if (links === 'veth' && !isRoot) throw new Error('Cannot use --links veth: needs root (network namespaces)')
  const migrateEveryMs = 1000 * Number(values['migrate-every-s'] ?? 20)
  const dir = resolve(values.dir ?? '.vdp-demo')
  rmSync(dir, { recursive: true, force: true })
  mkdirSync(dir, { recursive: true, mode: 0o700 })

  // Accounts and tokens, new for every run.
  const readToken = randomBytes(16).toString('hex')
  const adminToken = randomBytes(16).toString('hex')
  const switches = ['leaf1', 'leaf2'].map((id) => ({ id, password: randomBytes(12).toString('hex') }))
  writeFileSync(join(dir, 'tokens.json'), JSON.stringify([{ name: 'demo-read', token: readToken, scope: 'read' }, { name: 'demo-admin', token: adminToken, scope: 'admin' }]), { mode: 0o600 })
  writeFileSync(join(dir, 'mqtt-users.json'), JSON.stringify(switches.map((s) => ({ username: s.id, passwordHash: hashBrokerPassword(s.password) }))), { mode: 0o600 })

  const edgeLog = jsonLogger('warn')
  const edgeOptions = parseEdgeArgs([
    '--http', values.http ?? '127.0.0.1:8080',
    '--mqtt-listen', values['mqtt-listen'] ?? '127.0.0.1:1883',
    '--db', join(dir, 'fleet.sqlite'),
    '--tokens', join(dir, 'tokens.json'),
    '--mqtt-users', join(dir, 'mqtt-users.json'),
    '--migration-grace-ms', '5000',
  ])
  if (typeof edgeOptions === 'string') throw new Error(`Cannot parse edge options: ${edgeOptions}`)
  const edge = await startEdge(edgeOptions, edgeLog)
  const base = `http://${edgeOptions.httpHost}:${edge.httpPort}`
  const api = async (method: string, path: string, body?: unknown) => {
    const res = await fetch(`${base}/api/v1${path}`, {
      method,
      headers: { authorization: `Bearer ${adminToken}`, ...(body ? { 'content-type': 'application/json' } : {}) },
      ...(body ? { body: JSON.stringify(body) } : {}),
    })
    if (!res.ok && res.status !== 409) throw new Error(`Cannot ${method} ${path}: ${res.status} ${await res.text()}`)
  }
  await api('POST', '/vns', { name: 'web', vni: 5001, tenant: 'acme', allowedVsiTypes: [] })
  await api('POST', '/vns', { name: 'db', vni: 5002, tenant: 'acme', allowedVsiTypes: [] })

  const log = createJsonLogger({ level: 'warn', write: (l) => process.stderr.write(l) })
  const cleanups: Array<() => Promise<void> | void> = []
  const nsPrefix = `vdpdemo${process.pid % 1000}`
  const running: Switch[] = []
  const stationSockets: string[] = []
  const children: ChildProcess[] = []

  try {
    for (const [i, sw] of switches.entries()) {
      const n = i + 1
      const swPort = links === 'veth' ? `${nsPrefix}s${n}` : `mem-leaf${n}`
      const hvPort = links === 'veth' ? 'eth0' : `mem-hv${n}`
      const hvMac = parseMac(`02:76:64:00:0${n}:01`)
      const swMac = parseMac(`02:76:64:00:0${n}:02`)
      // One segment per switch port and its hypervisor.
      const hub = links === 'memory' ? new MemoryHub() : undefined
      let openLink: (name: string, mac: string) => FrameLink
      if (hub) {
        openLink = (name, mac) => hub.attach(name, parseMac(mac))
      } else {
        const ns = `${nsPrefix}-hv${n}`
        execFileSync('ip', ['netns', 'add', ns])
        cleanups.push(() => { try { execFileSync('ip', ['netns', 'del', ns]) } catch { /* gone */ } })
        execFileSync('ip', ['link', 'add', swPort, 'address', swMac, 'type', 'veth', 'peer', 'name', hvPort, 'netns', ns, 'address', hvMac])
        execFileSync('ip', ['link', 'set', swPort, 'up'])
        execFileSync('ip', ['-n', ns, 'link', 'set', hvPort, 'up'])
        const { openAfPacketLink } = await import('../agent/transport/af-packet.ts')
        openLink = (name) => openAfPacketLink(name)
      }
      const evb = { retries: 3, rte: 8, rwd: 20, rka: 16, groupId: true, reflectiveRelay: false }
      const swConfig = loadAgentConfig(['--port', swPort, '--switch-id', sw.id, '--vid-pool', `${100 * n + 100}-${100 * n + 199}`, '--mqtt', edge.mqttUrl, '--state-dir', join(dir, sw.id), '--control-socket', join(dir, `${sw.id}.sock`), '--metrics', ''], { hostname: sw.id })
      if (swConfig.kind !== 'run') throw new Error('Cannot configure the demo switch')
      const agent = await Agent.start(
        { ...swConfig.config, evb, lldpTxIntervalS: 5, mqtt: { ...swConfig.config.mqtt, username: sw.id, password: sw.password } },
        {
          clock: monotonicClock,
          log: log.child({ app: 'vdp-agent', switchId: sw.id }),
          openLink: (p) => openLink(p.name, swMac),
          openUplink: async ({ config: c, bootId, bootTimeMs, onPolicy, onCommand, onResyncNeeded }) =>
            MqttUplink.open(
              { url: c.mqtt.url, switchId: switchId(c.switchId), username: c.mqtt.username, password: c.mqtt.password, topicPrefix: c.mqtt.topicPrefix, stateDir: c.stateDir, bootId, bootTimeMs, agentVersion: 'demo' },
              { onPolicy, onCommand, onResyncNeeded },
            ),
        },
      )
      running.push({ id: sw.id, agent, password: sw.password })
      cleanups.push(() => agent.stop())

      const hvId = `hv${n}`
      const sock = join(dir, `${hvId}.sock`)
      stationSockets.push(sock)
      const stArgs = ['--role', 'station', '--port', hvPort, '--switch-id', hvId, '--state-dir', join(dir, hvId), '--control-socket', sock, '--metrics', '']
      if (hub) {
        const stConfig = loadAgentConfig(stArgs, { hostname: hvId })
        if (stConfig.kind !== 'run') throw new Error('Cannot configure the demo hypervisor')
        const station = await Agent.start({ ...stConfig.config, evb, lldpTxIntervalS: 5 }, { clock: monotonicClock, log: log.child({ app: 'vdp-agent', switchId: hvId }), openLink: (p) => openLink(p.name, hvMac) })
        cleanups.push(() => station.stop())
      } else {
        const cfgFile = join(dir, `${hvId}.json`)
        writeFileSync(cfgFile, JSON.stringify({ evb, lldpTxIntervalS: 5 }))
        const child = spawn('ip', ['netns', 'exec', `${nsPrefix}-hv${n}`, process.execPath, '--import', 'tsx', resolve('agent/main.ts'), ...stArgs, '--config', cfgFile, '--log-level', 'warn'], { stdio: ['ignore', 'ignore', 'inherit'], env: { ...process.env, VDP_AGENT_MAIN: '1' } })
        children.push(child)
        cleanups.push(async () => {
          if (child.exitCode !== null || child.signalCode !== null) return
          const exited = new Promise((r) => child.once('exit', r))
          child.kill('SIGTERM')
          await Promise.race([exited, sleep(5000)])
        })
      }
    }
    // Wait for the hypervisors' control sockets and the EVB exchange (fast LLDP at start).
    for (const sock of stationSockets) {
      for (let k = 0; k < 100; k++) {
        try {
          await callAgent(sock, 'status')
          break
        } catch {
          await sleep(100)
        }
      }
    }
    await sleep(1500)

    const vm = (k: number) => ({
      uuid: `5644504c-4142-4000-8000-0000000000${(0x10 + k).toString(16)}`,
      mac: `02:76:64:71:00:${(0x10 + k).toString(16)}`,
      vni: k % 2 === 0 ? 5001 : 5002,
    })
    const request = (kind: string, sock: string, k: number, hints: 'none' | 'to' | 'from' = 'none') =>
      callAgent(sock, kind, {
        waitMs: 3000,
        command: {
          managerId: managerIdFromText('demo'), typeId: 5, typeVersion: 1,
          vsiId: { format: 5, id: vsiIdFromUuid(vm(k).uuid) }, filterFormat: 4,
          entries: [{ vid: 0, ps: false, pcp: 0, mac: vm(k).mac, groupId: vm(k).vni }],
          hints: { migratingTo: hints === 'to', migratingFrom: hints === 'from' },
        },
      }, 8000)
    for (let k = 0; k < 4; k++) await request('associate', stationSockets[k % 2]!, k)

    process.stdout.write(
      `\nvdp-fabric demo is running (${links === 'veth' ? 'veth pairs in network namespaces, AF_PACKET sockets' : 'in-process links'}).\n` +
        `  fleet page:   ${base}/?token=${readToken}\n` +
        `  API (read):   curl -H 'Authorization: Bearer ${readToken}' ${base}/api/v1/vsis\n` +
        `  API (admin):  token ${adminToken}\n` +
        `  MQTT broker:  ${edge.mqttUrl}\n` +
        `  switches:     vdpctl vsis --socket ${join(dir, 'leaf1.sock')}\n` +
        `VM ${vm(0).uuid} migrates between hv1 and hv2 every ${migrateEveryMs / 1000} s. Ctrl-C stops everything.\n`,
    )

    let at = 0
    let stopping = false
    const stop = new Promise<void>((resolveStop) => {
      const onSignal = () => {
        stopping = true
        resolveStop()
      }
      process.once('SIGINT', onSignal)
      process.once('SIGTERM', onSignal)
    })
    while (!stopping) {
      await Promise.race([sleep(migrateEveryMs), stop])
      if (stopping) break
      const from = stationSockets[at]!
      const to = stationSockets[1 - at]!
      // Destination first (M bit), then the source lets go (S bit, then De-Associate).
      await request('associate', to, 0, 'to').catch((e: Error) => log.warn('demo-migration-failed', { error: e.message }))
      await callAgent(from, 'de-associate', { vsiId: { format: 5, id: vsiIdFromUuid(vm(0).uuid) }, waitMs: 3000 }, 8000).catch((e: Error) => log.warn('demo-migration-failed', { error: e.message }))
      at = 1 - at
    }
    return 0
  } finally {
    for (const c of cleanups.reverse()) await c()
    await edge.stop()
  }
}

const isMain = process.argv[1] !== undefined && import.meta.url === new URL(`file://${process.argv[1]}`).href
if (isMain || process.env.VDP_DEMO_MAIN === '1') {
  runDemo(process.argv.slice(2)).then(
    (code) => process.exit(code),
    (e: Error) => {
      process.stderr.write(`vdp-demo: ${e.message}\n`)
      process.exit(1)
    },
  )
}
