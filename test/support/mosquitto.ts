/**
 * A private mosquitto for tests and benchmarks: a free 127.0.0.1 port, a generated
 * configuration (the one `docs/mosquitto.conf` documents), a password file written with
 * `mosquitto_passwd -b`, an ACL file, and on-disk persistence in a temporary directory, so
 * `stop()` + `start()` keeps sessions and queued QoS 1 messages like a real restart.
 *
 * @module
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process'
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { createConnection, createServer } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'

export const MOSQUITTO_BIN = '/usr/sbin/mosquitto'
export const MOSQUITTO_PASSWD_BIN = '/usr/bin/mosquitto_passwd'

export interface MosquittoOptions {
  /** username -> password. Empty: anonymous access, no ACL. */
  users?: Record<string, string>
  /** ACL file text; default: `defaultAcl(prefix, serviceUsers)`. */
  acl?: string
  /** Users with read/write on everything under the prefix (the edge's service account). */
  serviceUsers?: string[]
  /** Topic prefix for the default ACL. */
  prefix?: string
  /** Extra configuration lines. */
  extraConfig?: string[]
  /** Port; default: a free one chosen at the first start and kept across restarts. */
  port?: number
}

/** The per-switch ACL of docs/mosquitto.conf: a switch writes and reads only its own topics. */
export function defaultAcl(prefix: string, serviceUsers: readonly string[]): string {
  const lines: string[] = []
  for (const u of serviceUsers) lines.push(`user ${u}`, `topic readwrite ${prefix}/#`, `topic readwrite $share/#`, '')
  lines.push(
    `pattern write ${prefix}/switch/%u/events`,
    `pattern write ${prefix}/switch/%u/status`,
    `pattern write ${prefix}/switch/%u/replies`,
    `pattern read ${prefix}/switch/%u/policy`,
    `pattern read ${prefix}/switch/%u/commands`,
    '',
  )
  return lines.join('\n')
}

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer()
    srv.unref()
    srv.on('error', reject)
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address()
      const port = typeof addr === 'object' && addr ? addr.port : 0
      srv.close(() => resolve(port))
    })
  })
}

function canConnect(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = createConnection({ host: '127.0.0.1', port })
    s.once('connect', () => {
      s.destroy()
      resolve(true)
    })
    s.once('error', () => resolve(false))
  })
}

export class Mosquitto {
  readonly dir: string
  port = 0
  #child: ChildProcess | undefined
  #log = ''
  readonly #options: MosquittoOptions

  private constructor(options: MosquittoOptions) {
    this.#options = options
    this.dir = mkdtempSync(join(tmpdir(), 'vdp-mosquitto-'))
  }

  /** Writes the configuration and starts the broker; resolves once it accepts connections. */
  static async start(options: MosquittoOptions = {}): Promise<Mosquitto> {
    const m = new Mosquitto(options)
    m.port = options.port ?? (await freePort())
    m.#writeConfig()
    await m.start()
    return m
  }

  get url(): string {
    return `mqtt://127.0.0.1:${this.port}`
  }

  get running(): boolean {
    return this.#child !== undefined && this.#child.exitCode === null && this.#child.signalCode === null
  }

  /** Process id of the running broker (CPU accounting in benchmarks). */
  get pid(): number | undefined {
    return this.running ? this.#child?.pid : undefined
  }

  /** The broker's log so far (stderr/stdout of the process). */
  get log(): string {
    return this.#log
  }

  #writeConfig(): void {
    const o = this.#options
    const users = o.users ?? {}
    const prefix = o.prefix ?? 'vdp'
    mkdirSync(join(this.dir, 'data'), { recursive: true })
    const conf = [
      `listener ${this.port} 127.0.0.1`,
      // Tests run as root: stay root so the broker can read the files of this private directory.
      'user root',
      'persistence true',
      `persistence_location ${join(this.dir, 'data')}/`,
      'autosave_interval 10000',
      'autosave_on_changes true',
      'max_queued_messages 0',
      'max_queued_bytes 0',
      'max_inflight_messages 1000',
      'max_inflight_bytes 0',
      'max_packet_size 2097152',
      'set_tcp_nodelay true',
      'log_dest stderr',
      'log_type error',
      'log_type warning',
      'log_type notice',
    ]
    if (Object.keys(users).length > 0) {
      const pw = join(this.dir, 'passwd')
      writeFileSync(pw, '', { mode: 0o600 })
      for (const [user, pass] of Object.entries(users)) {
        const r = spawnSync(MOSQUITTO_PASSWD_BIN, ['-b', pw, user, pass], { encoding: 'utf8' })
        if (r.status !== 0) throw new Error(`Cannot write mosquitto password file: ${r.stderr}`)
      }
      const aclPath = join(this.dir, 'acl')
      writeFileSync(aclPath, o.acl ?? defaultAcl(prefix, o.serviceUsers ?? []), { mode: 0o600 })
      conf.push('allow_anonymous false', `password_file ${pw}`, `acl_file ${aclPath}`)
    } else {
      conf.push('allow_anonymous true')
    }
    conf.push(...(o.extraConfig ?? []))
    writeFileSync(join(this.dir, 'mosquitto.conf'), conf.join('\n') + '\n')
  }

  /** Starts (or restarts after `stop()`) the broker on the same port with the same data. */
  async start(): Promise<void> {
    if (this.running) return
    const child = spawn(MOSQUITTO_BIN, ['-c', join(this.dir, 'mosquitto.conf')], { stdio: ['ignore', 'pipe', 'pipe'] })
    this.#child = child
    // A test process that dies without close() must not leave a broker behind.
    const killOnExit = () => child.kill('SIGKILL')
    process.once('exit', killOnExit)
    child.once('exit', () => process.off('exit', killOnExit))
    const append = (d: Buffer): void => {
      this.#log += d.toString()
      if (this.#log.length > 200_000) this.#log = this.#log.slice(-100_000)
    }
    child.stdout?.on('data', append)
    child.stderr?.on('data', append)
    for (let i = 0; i < 200; i++) {
      if (!this.running) throw new Error(`Cannot start mosquitto: it exited: ${this.#log}`)
      if (await canConnect(this.port)) return
      await new Promise((r) => setTimeout(r, 25))
    }
    throw new Error(`Cannot start mosquitto: port ${this.port} not open after 5 s: ${this.#log}`)
  }

  /** Stops the broker: SIGTERM (persistence saved) or SIGKILL (as a crash). */
  async stop(signal: 'SIGTERM' | 'SIGKILL' = 'SIGTERM'): Promise<void> {
    const child = this.#child
    if (!child || !this.running) return
    const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()))
    child.kill(signal)
    const timer = setTimeout(() => child.kill('SIGKILL'), 5000)
    await exited
    clearTimeout(timer)
  }

  async restart(): Promise<void> {
    await this.stop()
    await this.start()
  }

  /** Stops the broker and removes its directory. */
  async close(): Promise<void> {
    await this.stop()
    rmSync(this.dir, { recursive: true, force: true })
  }
}
