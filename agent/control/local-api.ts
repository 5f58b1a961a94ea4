/**
 * The agent's local control socket: a Unix stream socket speaking JSON lines,
 * `{"id":1,"method":"vsis","params":{…}}` → `{"id":1,"result":…}` or
 * `{"id":1,"error":{"code":"…","message":"…"}}`. `vdpctl` is its client. The socket is
 * created mode 0660 (root and the socket's group); a stale socket file from a killed agent
 * is replaced, a live one is refused.
 *
 * @module
 */
import { chmodSync, existsSync, mkdirSync, unlinkSync } from 'node:fs'
import { createConnection, createServer, type Server, type Socket } from 'node:net'
import { dirname } from 'node:path'
import type { Logger } from '../runtime/logger.ts'

export class ControlError extends Error {
  override readonly name = 'ControlError'
  constructor(readonly code: string, message: string) {
    super(message)
  }
}

export type ControlHandler = (params: Record<string, unknown>) => unknown | Promise<unknown>

/** Largest request line accepted; longer input closes the connection. */
const REQUEST_BYTES_MAX = 64 * 1024

async function socketAlive(path: string): Promise<boolean> {
  return new Promise((resolve) => {
    const s = createConnection(path)
    s.once('connect', () => {
      s.destroy()
      resolve(true)
    })
    s.once('error', () => resolve(false))
  })
}

export interface ControlServer {
  readonly path: string
  close(): Promise<void>
}

/**
 * @example
 * ```ts
 * const srv = await startControlServer('/run/vdp-agent.sock', { ports: () => agent.ports() }, log)
 * ```
 */
export async function startControlServer(path: string, handlers: Record<string, ControlHandler>, log: Logger): Promise<ControlServer> {
  mkdirSync(dirname(path), { recursive: true })
  if (existsSync(path)) {
    if (await socketAlive(path)) throw new Error(`Cannot listen on ${path}: another agent is running there`)
    unlinkSync(path)
  }
  const sockets = new Set<Socket>()
  const server: Server = createServer((socket) => {
    sockets.add(socket)
    socket.on('close', () => sockets.delete(socket))
    socket.on('error', () => socket.destroy())
    let buf = ''
    socket.setEncoding('utf8')
    socket.on('data', (chunk: string) => {
      buf += chunk
      if (buf.length > REQUEST_BYTES_MAX && !buf.includes('\n')) {
        log.warn('control-request-too-large', { bytes: buf.length })
        socket.end(JSON.stringify({ id: null, error: { code: 'too-large', message: `Request exceeds ${REQUEST_BYTES_MAX} bytes` } }) + '\n')
        buf = ''
        return
      }
      let nl: number
      while ((nl = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, nl)
        buf = buf.slice(nl + 1)
        if (line.trim() === '') continue
        void answer(line).then((reply) => {
          if (!socket.destroyed) socket.write(reply + '\n')
        })
      }
    })
  })
  const answer = async (line: string): Promise<string> => {
    let id: unknown = null
    try {
      const req = JSON.parse(line) as { id?: unknown; method?: unknown; params?: unknown }
      id = req.id ?? null
      if (typeof req.method !== 'string') throw new ControlError('bad-request', 'Cannot handle request: "method" must be a string')
      const handler = Object.hasOwn(handlers, req.method) ? handlers[req.method] : undefined
      if (!handler) throw new ControlError('unknown-method', `Cannot handle request: unknown method "${req.method}"`)
      const params = typeof req.params === 'object' && req.params !== null ? (req.params as Record<string, unknown>) : {}
      const result = await handler(params)
      return JSON.stringify({ id, result: result ?? null })
    } catch (e) {
      const code = e instanceof ControlError ? e.code : e instanceof SyntaxError ? 'bad-json' : 'internal'
      if (code === 'internal') log.error('control-handler-failed', { error: e })
      const message = e instanceof Error ? e.message : String(e)
      return JSON.stringify({ id, error: { code, message } })
    }
  }
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject)
    server.listen(path, () => resolve())
  })
  chmodSync(path, 0o660)
  return {
    path,
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy()
        server.close(() => {
          try {
            unlinkSync(path)
          } catch {
            // already gone
          }
          resolve()
        })
      }),
  }
}

/**
 * One request to a running agent.
 * @example
 * ```ts
 * const vsis = await callAgent('/run/vdp-agent.sock', 'vsis', { port: 'Ethernet0' })
 * ```
 */
export function callAgent(path: string, method: string, params: Record<string, unknown> = {}, timeoutMs = 5000): Promise<unknown> {
  return new Promise((resolve, reject) => {
    const s = createConnection(path)
    let buf = ''
    const timer = setTimeout(() => {
      s.destroy()
      reject(new ControlError('timeout', `No answer from the agent at ${path} within ${timeoutMs} ms`))
    }, timeoutMs)
    s.setEncoding('utf8')
    s.once('error', (e: NodeJS.ErrnoException) => {
      clearTimeout(timer)
      reject(new ControlError('unreachable', `Cannot reach the agent at ${path}: ${e.code ?? e.message} (is vdp-agent running? --control-socket)`))
    })
    s.once('connect', () => s.write(JSON.stringify({ id: 1, method, params }) + '\n'))
    s.on('data', (chunk: string) => {
      buf += chunk
      const nl = buf.indexOf('\n')
      if (nl < 0) return
      clearTimeout(timer)
      s.end()
      try {
        const reply = JSON.parse(buf.slice(0, nl)) as { result?: unknown; error?: { code: string; message: string } }
        if (reply.error) reject(new ControlError(reply.error.code, reply.error.message))
        else resolve(reply.result)
      } catch (e) {
        reject(new ControlError('bad-reply', `Cannot parse the agent's reply: ${(e as Error).message}`))
      }
    })
  })
}
