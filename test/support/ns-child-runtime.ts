/**
 * Child side of the JSON-lines protocol of `test/support/netns.ts` (`spawnInNetns`): reads
 * requests `{ id, op, ...params }` from stdin, answers `{ id, ok, result | error }` on stdout,
 * and lets the child print events `{ event, ... }`. Requests are handled one at a time, in
 * order. When stdin ends, `onEnd` runs and nothing forces an exit: a child that leaves a
 * handle open (an unclosed socket) then stays alive, which is what the close tests detect.
 *
 * @module
 */
import { createInterface } from 'node:readline'

export type Handler = (params: Record<string, unknown>) => unknown

export interface JsonLinesServer {
  emit(event: string, data?: Record<string, unknown>): void
}

function errorJson(e: unknown): { message: string; code?: string } {
  const err = e as { message?: string; code?: unknown }
  const out: { message: string; code?: string } = { message: String(err?.message ?? e) }
  if (typeof err?.code === 'string') out.code = err.code
  return out
}

export function serveJsonLines(
  handlers: Record<string, Handler>,
  options: { onEnd?: () => void | Promise<void> } = {},
): JsonLinesServer {
  const write = (msg: unknown): void => {
    process.stdout.write(`${JSON.stringify(msg)}\n`)
  }
  let queue: Promise<void> = Promise.resolve()
  const rl = createInterface({ input: process.stdin })
  rl.on('line', (line) => {
    queue = queue.then(async () => {
      let req: { id?: number; op?: string } & Record<string, unknown>
      try {
        req = JSON.parse(line)
      } catch {
        return
      }
      const handler = req.op === undefined ? undefined : handlers[req.op]
      if (handler === undefined) {
        write({ id: req.id, ok: false, error: { message: `Cannot handle request: unknown op "${req.op}"`, code: 'EUNKNOWNOP' } })
        return
      }
      try {
        write({ id: req.id, ok: true, result: (await handler(req)) ?? null })
      } catch (e) {
        write({ id: req.id, ok: false, error: errorJson(e) })
      }
    })
  })
  rl.on('close', () => {
    queue = queue.then(async () => {
      await options.onEnd?.()
    })
  })
  const server = { emit: (event: string, data: Record<string, unknown> = {}) => write({ event, ...data }) }
  // Deferred so that the caller's module finishes its setup before the parent hears "ready".
  setImmediate(() => server.emit('ready', { pid: process.pid }))
  return server
}
