/**
 * Network-namespace labs for integration tests: namespaces, veth pairs and Linux bridges whose
 * names all start with the test's name plus a random id, and child processes inside them.
 *
 * Rules:
 * - A raw socket must be opened in the namespace of its interface, so links are opened by a
 *   child process started with `ip netns exec` (`lab.spawnNode`), which the test drives over
 *   stdin/stdout with JSON lines (`NsChild.request`, child side: `ns-child-runtime.ts`).
 *   `openLinkInNetns` wraps that child (`LINK_CHILD`) as a `FrameLink` for the test process.
 * - `NetnsLab.create` also deletes labs of the same test name left by a killed run.
 * - Everything a lab creates is removed by `lab.cleanup()`: idempotent, safe after a failed
 *   setup, and also run (synchronously) when the process exits.
 * - Tests that need root fail, not skip, when not root (`requireRoot`).
 *
 * @example
 * ```ts
 * const lab = await NetnsLab.create('afp')               // names "afp-k3x9-…"
 * const [nsA, nsB] = [await lab.addNamespace('a'), await lab.addNamespace('b')]
 * await lab.addVethPair({ ns: nsA, ifname: lab.ifname('a'), mac: '02:00:00:00:00:0a' },
 *                       { ns: nsB, ifname: lab.ifname('b'), mac: '02:00:00:00:00:0b' })
 * const b = await lab.spawnNode(nsB, LINK_CHILD, [lab.ifname('b')])
 * await b.request('open')
 * ...
 * await lab.cleanup()
 * ```
 *
 * @module
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process'
import { readdirSync, statSync } from 'node:fs'
import { randomBytes } from 'node:crypto'
import { dirname, resolve } from 'node:path'
import { createInterface } from 'node:readline'
import { fileURLToPath } from 'node:url'
import { FrameLinkError, type FrameLink, type FrameLinkStats } from '../../agent/transport/frame-link.ts'
import type { Mac } from '../../shared/ethernet/mac.ts'

export const IFNAMSIZ_MAX = 15
/** Repository root, the working directory of children (so that `--import tsx` resolves). */
export const REPO_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..')

/** Throws a clear error when not root: the caller's tests then fail instead of skipping. */
export function requireRoot(what: string): void {
  const uid = process.getuid?.()
  if (uid !== 0) {
    throw new Error(
      `Cannot run ${what}: needs root for network namespaces and raw sockets (running as uid ${uid ?? 'unknown'}); run the integration tests as root`,
    )
  }
}

export interface ExecResult {
  stdout: string
  stderr: string
  code: number | null
  signal: NodeJS.Signals | null
}

export interface ExecOptions {
  /** Resolve also on a non-zero exit (default: reject with stderr in the message). */
  allowFailure?: boolean
  timeoutMs?: number
  input?: string
  cwd?: string
}

/** Runs a command to completion. */
export function exec(file: string, args: readonly string[], options: ExecOptions = {}): Promise<ExecResult> {
  return new Promise((resolvePromise, reject) => {
    const child = spawn(file, args, {
      stdio: [options.input === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'],
      ...(options.cwd === undefined ? {} : { cwd: options.cwd }),
    })
    let stdout = ''
    let stderr = ''
    child.stdout!.setEncoding('utf8').on('data', (d: string) => (stdout += d))
    child.stderr!.setEncoding('utf8').on('data', (d: string) => (stderr += d))
    const timer = setTimeout(() => child.kill('SIGKILL'), options.timeoutMs ?? 30_000)
    child.on('error', (e) => {
      clearTimeout(timer)
      reject(new Error(`Cannot run ${file}: ${e.message}`))
    })
    child.on('close', (code, signal) => {
      clearTimeout(timer)
      const result = { stdout, stderr, code, signal }
      if (code === 0 || options.allowFailure) resolvePromise(result)
      else reject(new Error(`Cannot run ${[file, ...args].join(' ')}: exit ${code ?? signal}: ${stderr.trim()}`))
    })
    if (child.stdin) {
      child.stdin.on('error', () => {}) // EPIPE when the command exits without reading
      child.stdin.end(options.input)
    }
  })
}

/** `ip netns exec <ns> file args…` */
export function execInNetns(ns: string, file: string, args: readonly string[], options: ExecOptions = {}): Promise<ExecResult> {
  return exec('ip', ['netns', 'exec', ns, file, ...args], options)
}

/** 4 characters of [a-z0-9]: enough to keep concurrent or leftover labs apart. */
export function shortId(): string {
  const alphabet = 'abcdefghijklmnopqrstuvwxyz0123456789'
  return [...randomBytes(4)].map((b) => alphabet[b % alphabet.length]).join('')
}

export function checkIfname(ifname: string): void {
  if (ifname.length > IFNAMSIZ_MAX || !/^[a-zA-Z0-9_-]+$/.test(ifname)) {
    throw new Error(`Cannot use interface name "${ifname}": needs 1..${IFNAMSIZ_MAX} characters of [a-zA-Z0-9_-]`)
  }
}

export interface VethEnd {
  ns: string
  ifname: string
  /** Default: the kernel's random address. */
  mac?: string
}

export interface SpawnNodeOptions {
  /** Extra arguments for node before the script, e.g. ['--expose-gc']. */
  nodeArgs?: readonly string[]
  /** Run the child as this user (setpriv), e.g. 65534 to check the not-root error. */
  uid?: number
  env?: Record<string, string>
}

/** A message the child printed on its own (not a reply): `{ event: 'frame', … }`. */
export interface NsEvent {
  event: string
  [key: string]: unknown
}

export class NsChildError extends Error {
  override readonly name = 'NsChildError'
  constructor(message: string, readonly code: string | undefined) {
    super(message)
  }
}

/**
 * A Node process in a namespace, driven with JSON lines. Parent → child:
 * `{ "id": 1, "op": "send", ...params }`. Child → parent: a reply
 * `{ "id": 1, "ok": true, "result": … }` or `{ "id": 1, "ok": false, "error": { message, code } }`,
 * or an event `{ "event": "…", … }`. Anything else on stdout, and all of stderr, is kept for
 * failure messages.
 */
export class NsChild {
  readonly ns: string
  readonly process: ChildProcess
  readonly events: NsEvent[] = []
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>
  #nextId = 1
  #pending = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void; op: string }>()
  #eventListeners = new Set<(e: NsEvent) => void>()
  #stderr = ''
  #noise: string[] = []
  #exitInfo: { code: number | null; signal: NodeJS.Signals | null } | undefined

  constructor(ns: string, child: ChildProcess) {
    this.ns = ns
    this.process = child
    child.stderr!.setEncoding('utf8').on('data', (d: string) => {
      this.#stderr += d
      if (this.#stderr.length > 64_000) this.#stderr = this.#stderr.slice(-32_000)
    })
    createInterface({ input: child.stdout! }).on('line', (line) => this.#onLine(line))
    child.stdin!.on('error', () => {}) // EPIPE after the child died: reported through `exited`
    this.exited = new Promise((resolvePromise) => {
      child.on('exit', (code, signal) => {
        this.#exitInfo = { code, signal }
        const why = `child in ${ns} exited (${code ?? signal}) before replying; stderr: ${this.stderr().trim().slice(-2000)}`
        for (const p of this.#pending.values()) p.reject(new Error(`Cannot complete "${p.op}": ${why}`))
        this.#pending.clear()
        resolvePromise({ code, signal })
      })
    })
  }

  get pid(): number {
    return this.process.pid ?? -1
  }

  get hasExited(): boolean {
    return this.#exitInfo !== undefined
  }

  stderr(): string {
    return this.#stderr
  }

  /** Sends one request and waits for its reply. Rejects with NsChildError (carrying `code`). */
  request<T = unknown>(op: string, params: Record<string, unknown> = {}, timeoutMs = 30_000): Promise<T> {
    if (this.#exitInfo) return Promise.reject(new Error(`Cannot send "${op}": child in ${this.ns} has exited`))
    const id = this.#nextId++
    return new Promise<T>((resolvePromise, reject) => {
      const timer = setTimeout(() => {
        this.#pending.delete(id)
        reject(new Error(`Cannot complete "${op}": no reply from child in ${this.ns} within ${timeoutMs} ms; stderr: ${this.stderr().trim().slice(-2000)}`))
      }, timeoutMs)
      this.#pending.set(id, {
        op,
        resolve: (v) => {
          clearTimeout(timer)
          resolvePromise(v as T)
        },
        reject: (e) => {
          clearTimeout(timer)
          reject(e)
        },
      })
      this.process.stdin!.write(`${JSON.stringify({ id, op, ...params })}\n`)
    })
  }

  /** Calls `listener` for every later event. Returns a function that removes it. */
  onEvent(listener: (e: NsEvent) => void): () => void {
    this.#eventListeners.add(listener)
    return () => this.#eventListeners.delete(listener)
  }

  /**
   * Resolves with the first matching event, looking at those already received from index
   * `fromIndex` on (default 0: all of them), then at later ones.
   */
  waitForEvent(predicate: (e: NsEvent) => boolean, timeoutMs = 10_000, fromIndex = 0): Promise<NsEvent> {
    const seen = this.events.slice(fromIndex).find(predicate)
    if (seen) return Promise.resolve(seen)
    return new Promise((resolvePromise, reject) => {
      const timer = setTimeout(() => {
        off()
        reject(new Error(`Cannot find the expected event from child in ${this.ns} within ${timeoutMs} ms; got ${JSON.stringify(this.events.slice(-5))}`))
      }, timeoutMs)
      const off = this.onEvent((e) => {
        if (!predicate(e)) return
        clearTimeout(timer)
        off()
        resolvePromise(e)
      })
    })
  }

  /**
   * Ends stdin (the child's signal to finish) and waits for a voluntary exit; kills it when
   * it does not exit within `timeoutMs`. Reports whether it exited by itself.
   */
  async close(timeoutMs = 5_000): Promise<{ code: number | null; signal: NodeJS.Signals | null; exitedByItself: boolean }> {
    if (!this.#exitInfo) this.process.stdin!.end()
    let timer: NodeJS.Timeout | undefined
    const timedOut = new Promise<'timeout'>((r) => (timer = setTimeout(() => r('timeout'), timeoutMs)))
    const first = await Promise.race([this.exited, timedOut])
    clearTimeout(timer)
    if (first !== 'timeout') return { ...first, exitedByItself: true }
    this.kill('SIGKILL')
    return { ...(await this.exited), exitedByItself: false }
  }

  kill(signal: NodeJS.Signals = 'SIGTERM'): void {
    if (this.#exitInfo || this.process.pid === undefined) return
    try {
      process.kill(this.process.pid, signal)
    } catch {
      // already gone
    }
  }

  #onLine(line: string): void {
    let msg: { id?: number; ok?: boolean; result?: unknown; error?: { message: string; code?: string } } & Partial<NsEvent>
    try {
      msg = JSON.parse(line)
    } catch {
      this.#noise.push(line)
      return
    }
    if (typeof msg.id === 'number') {
      const p = this.#pending.get(msg.id)
      if (!p) return
      this.#pending.delete(msg.id)
      if (msg.ok) p.resolve(msg.result)
      else p.reject(new NsChildError(msg.error?.message ?? 'unknown error', msg.error?.code))
      return
    }
    if (typeof msg.event === 'string') {
      const e = msg as NsEvent
      this.events.push(e)
      for (const l of [...this.#eventListeners]) l(e)
    }
  }
}

/**
 * Starts `node --import tsx <script> args…` inside `ns` (a TypeScript or JS file whose child
 * side uses `serveJsonLines` from ns-child-runtime.ts) and waits for its `ready` event.
 */
export async function spawnInNetns(
  ns: string,
  scriptPath: string,
  args: readonly string[] = [],
  options: SpawnNodeOptions = {},
): Promise<NsChild> {
  const nodeCmd = [process.execPath, '--import', 'tsx', ...(options.nodeArgs ?? []), scriptPath, ...args]
  const asUser =
    options.uid === undefined
      ? []
      : ['setpriv', `--reuid=${options.uid}`, `--regid=${options.uid}`, '--clear-groups', '--inh-caps=-all']
  const child = spawn('ip', ['netns', 'exec', ns, ...asUser, ...nodeCmd], {
    cwd: REPO_ROOT,
    stdio: ['pipe', 'pipe', 'pipe'],
    env: { ...process.env, ...options.env },
  })
  const nsChild = new NsChild(ns, child)
  const ready = nsChild.waitForEvent((e) => e.event === 'ready', 20_000)
  const died = nsChild.exited.then((x) => {
    throw new Error(`Cannot start ${scriptPath} in ${ns}: exited (${x.code ?? x.signal}); stderr: ${nsChild.stderr().trim().slice(-2000)}`)
  })
  await Promise.race([ready, died])
  return nsChild
}

/**
 * One test's namespaces, links and children. Create with `NetnsLab.create(testName)`; names
 * are `<test>-<id>-<suffix>` for namespaces and `<test><id><suffix>` for interfaces.
 */
export class NetnsLab {
  readonly prefix: string
  readonly #namespaces: string[] = []
  readonly #children = new Set<{ kill(signal?: NodeJS.Signals): void }>()
  readonly #exitHook = (): void => this.cleanupSync()
  #cleanedUp = false

  private constructor(prefix: string) {
    this.prefix = prefix
    process.on('exit', this.#exitHook)
  }

  /** Checks root and starts a lab whose names begin with `testName` (<= 8 chars of [a-z0-9]). */
  static async create(testName: string): Promise<NetnsLab> {
    requireRoot(`the "${testName}" integration tests`)
    if (!/^[a-z][a-z0-9]{0,7}$/.test(testName)) {
      throw new Error(`Cannot create a lab for "${testName}": use 1..8 characters [a-z0-9], starting with a letter`)
    }
    await sweepStaleNamespaces(testName)
    return new NetnsLab(`${testName}-${shortId()}`)
  }

  /** An interface name for this lab: prefix without dashes plus `suffix`, checked <= 15. */
  ifname(suffix: string): string {
    const name = `${this.prefix.replace(/-/g, '')}${suffix}`
    checkIfname(name)
    return name
  }

  /** Creates namespace `<prefix>-<suffix>` with loopback up and IPv6 off for new interfaces. */
  async addNamespace(suffix: string): Promise<string> {
    const ns = `${this.prefix}-${suffix}`
    this.#namespaces.push(ns)
    await exec('ip', ['netns', 'add', ns])
    await exec('ip', ['-n', ns, 'link', 'set', 'lo', 'up'])
    // No router solicitations, MLD or DAD frames on our links: clean captures and counts.
    await execInNetns(ns, 'sysctl', ['-q', '-w', 'net.ipv6.conf.all.disable_ipv6=1', 'net.ipv6.conf.default.disable_ipv6=1'])
    return ns
  }

  /** Creates a veth pair with one end in each namespace (may be the same), both up. */
  async addVethPair(a: VethEnd, b: VethEnd): Promise<void> {
    checkIfname(a.ifname)
    checkIfname(b.ifname)
    const args = ['-n', a.ns, 'link', 'add', a.ifname]
    if (a.mac) args.push('address', a.mac)
    args.push('type', 'veth', 'peer', 'name', b.ifname, 'netns', b.ns)
    if (b.mac) args.push('address', b.mac)
    await exec('ip', args)
    for (const end of [a, b]) {
      await this.disableIpv6(end.ns, end.ifname)
      await this.setUp(end.ns, end.ifname)
    }
  }

  /** Creates a Linux bridge (STP off, the kernel default) and enslaves `ports`. */
  async addBridge(ns: string, ifname: string, ports: readonly string[], mac?: string): Promise<void> {
    checkIfname(ifname)
    const args = ['-n', ns, 'link', 'add', 'name', ifname]
    if (mac) args.push('address', mac)
    await exec('ip', [...args, 'type', 'bridge'])
    await this.disableIpv6(ns, ifname)
    for (const port of ports) await exec('ip', ['-n', ns, 'link', 'set', port, 'master', ifname])
    await this.setUp(ns, ifname)
  }

  async setMac(ns: string, ifname: string, mac: string): Promise<void> {
    await exec('ip', ['-n', ns, 'link', 'set', ifname, 'address', mac])
  }

  async setUp(ns: string, ifname: string): Promise<void> {
    await exec('ip', ['-n', ns, 'link', 'set', ifname, 'up'])
  }

  async setDown(ns: string, ifname: string): Promise<void> {
    await exec('ip', ['-n', ns, 'link', 'set', ifname, 'down'])
  }

  async deleteLink(ns: string, ifname: string): Promise<void> {
    await exec('ip', ['-n', ns, 'link', 'del', ifname])
  }

  async disableIpv6(ns: string, ifname: string): Promise<void> {
    await execInNetns(ns, 'sysctl', ['-q', '-w', `net.ipv6.conf.${ifname}.disable_ipv6=1`])
  }

  /** Runs a command inside `ns`; rejects on a non-zero exit unless `allowFailure`. */
  exec(ns: string, file: string, args: readonly string[], options: ExecOptions = {}): Promise<ExecResult> {
    return execInNetns(ns, file, args, options)
  }

  /** Starts a long-running command inside `ns`; it is killed by `cleanup()`. */
  spawn(ns: string, file: string, args: readonly string[]): ChildProcess {
    const child = spawn('ip', ['netns', 'exec', ns, file, ...args], { stdio: ['ignore', 'pipe', 'pipe'] })
    this.#children.add({
      kill: () => {
        if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL')
      },
    })
    return child
  }

  /** `spawnInNetns`, tracked so that `cleanup()` ends it. */
  async spawnNode(ns: string, scriptPath: string, args: readonly string[] = [], options: SpawnNodeOptions = {}): Promise<NsChild> {
    const child = await spawnInNetns(ns, scriptPath, args, options)
    this.#children.add(child)
    return child
  }

  /**
   * Runs `fn` (exported as `exportName` from `modulePath`, called with `args`, may be async)
   * in a fresh Node process inside `ns`, and returns its JSON-serialisable result.
   */
  async runNode<T = unknown>(ns: string, modulePath: string, exportName: string, args: readonly unknown[] = []): Promise<T> {
    const child = await this.spawnNode(ns, NS_CHILD_RUN, [])
    try {
      return await child.request<T>('run', { modulePath: resolve(modulePath), exportName, args })
    } finally {
      await child.close()
      this.#children.delete(child)
    }
  }

  /** Ends children, deletes namespaces (and so every interface in them). Idempotent. */
  async cleanup(): Promise<void> {
    if (this.#cleanedUp) return
    this.#cleanedUp = true
    process.off('exit', this.#exitHook)
    for (const child of this.#children) child.kill('SIGKILL')
    this.#children.clear()
    for (const ns of this.#namespaces) await deleteNamespace(ns)
  }

  /** Same as cleanup, for the process 'exit' hook (no awaiting there). */
  cleanupSync(): void {
    if (this.#cleanedUp) return
    this.#cleanedUp = true
    for (const child of this.#children) child.kill('SIGKILL')
    for (const ns of this.#namespaces) {
      try {
        for (const pid of execFileSync('ip', ['netns', 'pids', ns], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).split(/\s+/)) {
          if (/^\d+$/.test(pid)) process.kill(Number(pid), 'SIGKILL')
        }
      } catch {
        // namespace already gone
      }
      try {
        execFileSync('ip', ['netns', 'del', ns], { stdio: 'ignore' })
      } catch {
        // already gone
      }
    }
  }
}

/**
 * Interfaces of the caller's network namespace (from /sys/class/net, which `ip netns exec`
 * remounts for the namespace). Handy with `runNode` to check where code runs.
 */
export function listInterfaces(): string[] {
  return readdirSync('/sys/class/net').sort()
}

/** Namespaces whose names start with `prefix`. */
export async function listNamespaces(prefix = ''): Promise<string[]> {
  const list = await exec('ip', ['netns', 'list'], { allowFailure: true })
  return list.stdout
    .split('\n')
    .map((line) => line.split(' ')[0] ?? '')
    .filter((ns) => ns !== '' && ns.startsWith(prefix))
}

/** A lab older than this is a leftover of a run that was killed (no exit hook ran). */
const STALE_LAB_MS = 30 * 60_000

/**
 * Deletes namespaces `<testName>-<id>-…` created more than 30 minutes ago (the mtime of
 * /run/netns/<ns>): leftovers of a killed run of the same tests, which no cleanup reached.
 */
export async function sweepStaleNamespaces(testName: string, olderThanMs = STALE_LAB_MS): Promise<string[]> {
  const pattern = new RegExp(`^${testName}-[a-z0-9]{4}-`)
  const swept: string[] = []
  for (const ns of await listNamespaces(`${testName}-`)) {
    if (!pattern.test(ns)) continue
    let createdMs: number
    try {
      createdMs = statSync(`/run/netns/${ns}`).mtimeMs
    } catch {
      continue
    }
    if (Date.now() - createdMs < olderThanMs) continue
    await deleteNamespace(ns)
    swept.push(ns)
  }
  return swept
}

/** Kills what still runs in `ns` (by pid) and deletes it; no error when it does not exist. */
export async function deleteNamespace(ns: string): Promise<void> {
  if (!(await listNamespaces(ns)).includes(ns)) return
  for (let round = 0; round < 3; round++) {
    const pids = (await exec('ip', ['netns', 'pids', ns], { allowFailure: true })).stdout.split(/\s+/).filter((p) => /^\d+$/.test(p))
    if (pids.length === 0) break
    for (const pid of pids) {
      try {
        process.kill(Number(pid), 'SIGKILL')
      } catch {
        // gone
      }
    }
    await new Promise((r) => setTimeout(r, 100))
  }
  await exec('ip', ['netns', 'del', ns], { allowFailure: true })
}

const NS_CHILD_RUN = resolve(dirname(fileURLToPath(import.meta.url)), 'ns-child-run.ts')

/** The link-serving child of the integration tests (see ns-child-link.ts for its requests). */
export const LINK_CHILD = resolve(dirname(fileURLToPath(import.meta.url)), 'ns-child-link.ts')

/** A `FrameLink` in this process whose raw socket lives in a child inside a namespace. */
export interface RemoteFrameLink extends FrameLink {
  readonly child: NsChild
  onError(handler: (error: FrameLinkError) => void): void
  /** Resolves once the child has handled every request sent so far (sends included). */
  flush(): Promise<void>
  /** The child's own counters (kernel drops included). */
  remoteStats(): Promise<FrameLinkStats & { kernel: { packets: number; drops: number; truncated: number } }>
  /** `close()`, then waits for the child to exit. */
  closeAndWait(): Promise<void>
}

/**
 * Opens `ifname` with the real AF_PACKET link in a child inside `ns`, and gives the test
 * process a `FrameLink` for it: an in-process port driver or core can then talk over a real
 * veth. `send` is fire-and-forget (ordered); frames arrive as child events. Track the child
 * with `lab` so that `lab.cleanup()` ends it.
 *
 * @example
 * ```ts
 * const link = await openLinkInNetns(nsB, lab.ifname('b'), { lab })
 * link.onFrame((frame) => core.handleFrame(clock.nowUs(), frame))
 * link.send(frame)
 * await link.closeAndWait()
 * ```
 */
export async function openLinkInNetns(
  ns: string,
  ifname: string,
  options: { lab?: NetnsLab; linkOptions?: Record<string, unknown> } = {},
): Promise<RemoteFrameLink> {
  const child = options.lab ? await options.lab.spawnNode(ns, LINK_CHILD) : await spawnInNetns(ns, LINK_CHILD)
  let opened: { mac: string }
  try {
    opened = await child.request<{ mac: string }>('open', { ifname, options: options.linkOptions ?? {} })
  } catch (e) {
    await child.close()
    throw e
  }
  let frameHandler: ((frame: Uint8Array, acked: boolean) => void) | undefined
  let errorHandler: ((error: FrameLinkError) => void) | undefined
  let listening = false
  let closed = false
  const counts = { rxFrames: 0, txFrames: 0, drops: 0, txErrors: 0, errors: 0 }
  const raise = (error: FrameLinkError): void => {
    if (closed) return
    counts.errors++
    errorHandler?.(error)
  }
  child.onEvent((e) => {
    if (closed) return
    if (e.event === 'frame' && frameHandler) {
      counts.rxFrames++
      frameHandler(Uint8Array.from(Buffer.from(String(e.hex), 'hex')), e.acked === true)
    } else if (e.event === 'link-error') {
      raise(new FrameLinkError(String(e.code), e.fatal === true, String(e.message), typeof e.syscall === 'string' ? e.syscall : undefined))
    }
  })
  const failed = (op: string) => (e: unknown) => {
    if (op === 'send') counts.txErrors++
    raise(new FrameLinkError('EIO', false, `Cannot ${op} through the child in ${ns}: ${(e as Error).message}`))
  }
  const link: RemoteFrameLink = {
    name: ifname,
    mac: opened.mac as Mac,
    child,
    send(frame) {
      if (closed) throw new FrameLinkError('EBADF', true, `Cannot send frame on ${ifname}: link is closed`)
      counts.txFrames++
      child.request('send', { hex: Buffer.from(frame).toString('hex') }).catch(failed('send'))
    },
    onFrame(handler) {
      frameHandler = handler
      if (listening) return
      listening = true
      child.request('listen', { mode: 'events' }).catch(failed('listen'))
    },
    onError(handler) {
      errorHandler = handler
    },
    stats: () => ({ ...counts }),
    flush: async () => {
      await child.request('stats')
    },
    remoteStats: () => child.request('stats'),
    close() {
      if (closed) return
      closed = true
      child.request('close').catch(() => {})
    },
    closeAndWait: async () => {
      link.close()
      await child.close()
    },
  }
  return link
}
