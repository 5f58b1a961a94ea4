/**
 * Helpers for end-to-end fleet tests: a `vdp-edge` child process (bin/vdp-edge.mjs) on free
 * loopback ports, a small client for its HTTP API, and switch ports in the ROOT network
 * namespace (the edge and the broker listen on 127.0.0.1 there, which a process inside a
 * namespace cannot reach).
 *
 * A root-side port is the switch end of an lldpad lab's veth pair moved into the root
 * namespace: the pair still carries the lab's prefix, deleting the lab's host namespace
 * deletes it, and `RootPort.remove()` (also run at process exit) deletes it when it is left.
 *
 * @module
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process'
import { join } from 'node:path'
import { exec, REPO_ROOT } from './netns.ts'
import type { LldpadLab } from './lldpad-lab.ts'

// ---------------------------------------------------------------------------------------------
// root-side ports

export interface RootPort {
  readonly ifname: string
  /** Deletes the link in the root namespace if it still exists. Idempotent. */
  remove(): Promise<void>
}

function linkExists(ifname: string): boolean {
  try {
    execFileSync('ip', ['link', 'show', 'dev', ifname], { stdio: 'ignore' })
    return true
  } catch {
    return false
  }
}

/**
 * Moves the switch end of `lab`'s veth pair (`lab.switchIf`, left free with `bridge: 'none'`)
 * from the lab's switch namespace into the namespace of this process (the root one), brings
 * it up with IPv6 off, and returns it. A `vdp-agent` started without `netns` opens it there.
 */
export async function moveSwitchPortToRoot(lab: LldpadLab): Promise<RootPort> {
  const ifname = lab.switchIf
  if (!ifname.startsWith(lab.netns.prefix.replace(/-/g, ''))) throw new Error(`Cannot move ${ifname}: not a link of lab ${lab.netns.prefix}`)
  const removeSync = (): void => {
    if (!linkExists(ifname)) return
    try {
      execFileSync('ip', ['link', 'del', 'dev', ifname], { stdio: 'ignore' })
    } catch {
      // gone meanwhile
    }
  }
  process.on('exit', removeSync)
  await exec('ip', ['-n', lab.switchNs, 'link', 'set', ifname, 'netns', String(process.pid)])
  await exec('sysctl', ['-q', '-w', `net.ipv6.conf.${ifname}.disable_ipv6=1`])
  await exec('ip', ['link', 'set', ifname, 'up'])
  let removed = false
  return {
    ifname,
    remove: async () => {
      if (removed) return
      removed = true
      process.off('exit', removeSync)
      if (linkExists(ifname)) await exec('ip', ['link', 'del', 'dev', ifname], { allowFailure: true })
    },
  }
}

// ---------------------------------------------------------------------------------------------
// vdp-edge as a process

export interface EdgeProcess {
  readonly child: ChildProcess
  /** `http://127.0.0.1:PORT` */
  readonly httpUrl: string
  /** The broker switches connect to (embedded: the edge's own; external: the one given). */
  readonly mqttUrl: string
  /** JSON log lines so far. */
  log(): Array<Record<string, unknown>>
  waitForLog(msg: string, predicate?: (e: Record<string, unknown>) => boolean, timeoutMs?: number): Promise<Record<string, unknown>>
  /** SIGTERM, wait for the exit; resolves with the exit code. */
  stop(): Promise<number | null>
}

/** Starts `node bin/vdp-edge.mjs <args>` and waits for its `vdp-edge started` line. */
export async function startEdgeProcess(args: readonly string[], env: Record<string, string> = {}): Promise<EdgeProcess> {
  const child = spawn(process.execPath, [join(REPO_ROOT, 'bin/vdp-edge.mjs'), ...args], {
    cwd: REPO_ROOT,
    env: { ...process.env, ...env },
    stdio: ['ignore', 'ignore', 'pipe'],
  })
  const killOnExit = (): void => {
    child.kill('SIGKILL')
  }
  process.on('exit', killOnExit)
  let text = ''
  let exited = false
  const exitP = new Promise<number | null>((resolve) =>
    child.once('exit', (code) => {
      exited = true
      process.off('exit', killOnExit)
      resolve(code)
    }),
  )
  child.stderr!.setEncoding('utf8').on('data', (d: string) => (text += d))
  const parse = (): Array<Record<string, unknown>> =>
    text
      .split('\n')
      .filter((l) => l.startsWith('{'))
      .flatMap((l) => {
        try {
          return [JSON.parse(l) as Record<string, unknown>]
        } catch {
          return []
        }
      })
  const waitForLog: EdgeProcess['waitForLog'] = async (msg, predicate = () => true, timeoutMs = 15_000) => {
    const end = Date.now() + timeoutMs
    for (;;) {
      const hit = parse().find((e) => e.msg === msg && predicate(e))
      if (hit) return hit
      if (exited) throw new Error(`vdp-edge exited before logging "${msg}":\n${text.slice(-3000)}`)
      if (Date.now() > end) throw new Error(`vdp-edge did not log "${msg}" within ${timeoutMs} ms:\n${text.slice(-3000)}`)
      await new Promise((r) => setTimeout(r, 25))
    }
  }
  let started: Record<string, unknown>
  try {
    started = await waitForLog('vdp-edge started', () => true, 30_000)
  } catch (e) {
    child.kill('SIGKILL')
    await exitP
    throw e
  }
  return {
    child,
    httpUrl: `http://${String(started.http)}`,
    mqttUrl: String(started.mqtt),
    log: parse,
    waitForLog,
    stop: async () => {
      if (!exited) child.kill('SIGTERM')
      const timer = setTimeout(() => child.kill('SIGKILL'), 12_000)
      const code = await exitP
      clearTimeout(timer)
      return code
    },
  }
}

// ---------------------------------------------------------------------------------------------
// HTTP API

export class EdgeApiError extends Error {
  override readonly name = 'EdgeApiError'
  constructor(message: string, readonly status: number, readonly body: unknown) {
    super(message)
  }
}

/** A bearer-token client of the edge's `/api/v1`. */
export class EdgeApi {
  constructor(readonly baseUrl: string, readonly token: string) {}

  async request<T = unknown>(method: string, path: string, body?: unknown): Promise<{ status: number; body: T }> {
    const res = await fetch(`${this.baseUrl}/api/v1${path}`, {
      method,
      headers: { authorization: `Bearer ${this.token}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    })
    const text = await res.text()
    let parsed: unknown = text
    try {
      parsed = text === '' ? undefined : JSON.parse(text)
    } catch {
      // not JSON: keep the text
    }
    return { status: res.status, body: parsed as T }
  }

  async get<T = unknown>(path: string): Promise<T> {
    const r = await this.request<T>('GET', path)
    if (r.status !== 200) throw new EdgeApiError(`GET ${path}: ${r.status} ${JSON.stringify(r.body)}`, r.status, r.body)
    return r.body
  }

  /** GET that answers undefined on 404. */
  async find<T = unknown>(path: string): Promise<T | undefined> {
    const r = await this.request<T>('GET', path)
    if (r.status === 404) return undefined
    if (r.status !== 200) throw new EdgeApiError(`GET ${path}: ${r.status} ${JSON.stringify(r.body)}`, r.status, r.body)
    return r.body
  }
}

/** Polls `probe` until it returns something other than undefined; throws with `what` and the last value. */
export async function eventually<T>(what: string, probe: () => Promise<T | undefined>, timeoutMs = 8000, everyMs = 100): Promise<T> {
  const end = Date.now() + timeoutMs
  let last: unknown
  for (;;) {
    try {
      const v = await probe()
      if (v !== undefined) return v
    } catch (e) {
      last = e
    }
    if (Date.now() > end) throw new Error(`Timed out after ${timeoutMs} ms waiting for ${what}${last ? `: ${String(last)}` : ''}`)
    await new Promise((r) => setTimeout(r, everyMs))
  }
}
