/**
 * Runs `vdp-agent` (bin/vdp-agent.mjs, the real entry point) as a child process, inside a
 * network namespace when given one, with a private state dir and control socket; talks to
 * it through its control socket as `vdpctl` does, and reads its JSON log.
 *
 * The private folder (config, log, control socket, and the state dir unless one was given) is
 * deleted once the agent has exited through `stop()` or `kill()`: a restart test that keeps
 * the state passes a `stateDir` of its own.
 */
import { spawn, type ChildProcess } from 'node:child_process'
import { appendFileSync, mkdtempSync, readFileSync, writeFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { callAgent } from '../../agent/control/local-api.ts'
import { REPO_ROOT } from './netns.ts'

export interface AgentProcessOptions {
  netns?: string
  /** Extra flags (ports, role, pool…). */
  args: string[]
  /** Written as --config. */
  config?: Record<string, unknown>
  /** A state dir of the caller's, kept after the agent exits (restart tests). */
  stateDir?: string
  env?: Record<string, string>
  /** Options for node itself, e.g. ['--cpu-prof']. */
  nodeArgs?: string[]
  /** Script to run instead of bin/vdp-agent.mjs, e.g. the bundle dist/vdp-agent/vdp-agent.mjs. */
  entry?: string
}

export interface AgentProcess {
  readonly child: ChildProcess
  readonly stateDir: string
  readonly socket: string
  call(method: string, params?: Record<string, unknown>): Promise<unknown>
  log(): Array<Record<string, unknown>>
  waitForLog(event: string, predicate?: (e: Record<string, unknown>) => boolean, timeoutMs?: number): Promise<Record<string, unknown>>
  /** SIGTERM and wait for exit; resolves with the exit code. Deletes the private folder. */
  stop(): Promise<number | null>
  /** SIGKILL and wait. Deletes the private folder. */
  kill(): Promise<void>
  /** VmRSS of the agent process, kB. */
  rssKb(): number | undefined
}

export async function startAgentProcess(o: AgentProcessOptions): Promise<AgentProcess> {
  const dir = mkdtempSync(join(tmpdir(), 'vdp-agent-'))
  const stateDir = o.stateDir ?? join(dir, 'state')
  const socket = join(dir, 'control.sock')
  const args = [...(o.nodeArgs ?? []), o.entry ?? join(REPO_ROOT, 'bin/vdp-agent.mjs'), '--state-dir', stateDir, '--control-socket', socket, '--metrics', '', ...o.args]
  if (o.config) {
    writeFileSync(join(dir, 'config.json'), JSON.stringify(o.config))
    args.push('--config', join(dir, 'config.json'))
  }
  const logFile = join(dir, 'agent.log')
  writeFileSync(logFile, '')
  const cmd = o.netns ? ['ip', ['netns', 'exec', o.netns, process.execPath, ...args]] as const : [process.execPath, args] as const
  const child = spawn(cmd[0], cmd[1] as string[], { cwd: REPO_ROOT, env: { ...process.env, ...o.env }, stdio: ['ignore', 'pipe', 'pipe'] })
  let logText = ''
  let exited = false
  const exitP = new Promise<number | null>((resolve) => child.once('exit', (code) => { exited = true; resolve(code) }))
  child.stderr!.setEncoding('utf8').on('data', (d: string) => { logText += d; appendFileSync(logFile, d) })
  // Whatever the agent or node prints on stdout (e.g. --trace-gc) is kept beside the log.
  child.stdout!.on('data', (d: Buffer) => appendFileSync(join(dir, 'agent.out'), d))
  const parse = () => logText.split('\n').filter((l) => l.startsWith('{')).map((l) => { try { return JSON.parse(l) as Record<string, unknown> } catch { return {} } })
  const waitForLog: AgentProcess['waitForLog'] = async (event, predicate = () => true, timeoutMs = 15_000) => {
    const end = Date.now() + timeoutMs
    for (;;) {
      const hit = parse().find((e) => e.event === event && predicate(e))
      if (hit) return hit
      if (exited) throw new Error(`vdp-agent exited before logging ${event}:\n${logText.slice(-3000)}`)
      if (Date.now() > end) throw new Error(`vdp-agent did not log ${event} within ${timeoutMs} ms:\n${logText.slice(-3000)}`)
      await new Promise((r) => setTimeout(r, 25))
    }
  }
  await waitForLog('agent-ready', () => true, 20_000)
  return {
    child,
    stateDir,
    socket,
    call: (method, params = {}) => callAgent(socket, method, params),
    log: parse,
    waitForLog,
    stop: async () => {
      if (!exited) child.kill('SIGTERM')
      const code = await exitP
      removeDir(dir)
      return code
    },
    kill: async () => {
      if (!exited) child.kill('SIGKILL')
      await exitP
      removeDir(dir)
    },
    rssKb: () => {
      try {
        const m = /VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${child.pid}/status`, 'utf8'))
        return m ? Number(m[1]) : undefined
      } catch {
        return undefined
      }
    },
  }
}

export function removeDir(dir: string): void {
  rmSync(dir, { recursive: true, force: true })
}
