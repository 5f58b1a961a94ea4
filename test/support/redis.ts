/**
 * A private `redis-server` for integration tests: loopback only, a free port, no persistence
 * (`--save '' --appendonly no`), its own temp directory; `stop()` kills it and removes the
 * directory. Fails loudly (does not skip) when redis-server is not installed.
 *
 * @module
 */
import { spawn, type ChildProcess } from 'node:child_process'
import { existsSync } from 'node:fs'
import { mkdtemp, rm } from 'node:fs/promises'
import { createServer } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'

export const REDIS_SERVER = '/usr/bin/redis-server'

export interface RedisServer {
  /** `redis://127.0.0.1:<port>` */
  url: string
  port: number
  /** Stops the server (SIGKILL when `kill`, like a crash; otherwise SIGTERM). */
  stop(options?: { kill?: boolean }): Promise<void>
}

/** A TCP port free on 127.0.0.1 right now. */
export async function freeLoopbackPort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer()
    srv.once('error', reject)
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address()
      const port = typeof addr === 'object' && addr ? addr.port : 0
      srv.close(() => resolve(port))
    })
  })
}

export async function startRedis(options: { port?: number } = {}): Promise<RedisServer> {
  if (!existsSync(REDIS_SERVER)) {
    throw new Error(`Cannot start Redis: ${REDIS_SERVER} is missing (apt-get install redis-server)`)
  }
  const dir = await mkdtemp(join(tmpdir(), 'vdp-redis-'))
  const port = options.port ?? (await freeLoopbackPort())
  const child: ChildProcess = spawn(
    REDIS_SERVER,
    ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', dir, '--protected-mode', 'yes'],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  )
  let output = ''
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`Cannot start Redis on port ${port}: not ready after 10 s\n${output}`)), 10_000)
    const onData = (b: Buffer) => {
      output += b.toString()
      if (output.includes('Ready to accept connections')) {
        clearTimeout(timer)
        resolve()
      }
    }
    child.stdout!.on('data', onData)
    child.stderr!.on('data', onData)
    child.once('exit', (code) => {
      clearTimeout(timer)
      reject(new Error(`Cannot start Redis on port ${port}: exited with ${code}\n${output}`))
    })
  })
  let stopped = false
  return {
    url: `redis://127.0.0.1:${port}`,
    port,
    async stop({ kill = false } = {}) {
      if (stopped) return
      stopped = true
      if (child.exitCode === null) {
        const exited = new Promise((r) => child.once('exit', r))
        child.kill(kill ? 'SIGKILL' : 'SIGTERM')
        await exited
      }
      await rm(dir, { recursive: true, force: true })
    },
  }
}
