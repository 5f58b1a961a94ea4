/**
 * HTTP worker processes (`vdp-edge --http-workers N`): one Node process handles about 20,000
 * lookups/s, so the HTTP API can be spread over N processes (node:cluster, sharing the
 * listening port) that read the same SQLite database through read-only connections (WAL lets
 * readers run beside the writer). The process that started them stays the only writer: it
 * keeps the MQTT broker or session, the ingest, the migration sweep and the counters, and
 * serves its full app on a private Unix socket.
 *
 * Rules:
 * 1. A worker answers GET and HEAD itself, with the same `createApp` over a read-only store,
 *    except `/metrics` (the counters live in the writer). Every other request (writes, and
 *    `/metrics`) is passed through to the writer's socket unchanged, streamed both ways.
 * 2. A worker sends the status counts of the requests it answered to the writer once a
 *    second, so `/metrics` counts every request (up to 1 s late).
 * 3. A worker that exits while the edge is not stopping is started again, after a delay
 *    that grows (to `RESTART_DELAY_MAX_MS`) while workers keep dying young.
 * 4. A worker exits when the writer tells it to (stopping) or its IPC channel closes (the
 *    writer died), closing its connections, event streams included. It ignores SIGINT: a
 *    Ctrl-C reaches the whole process group and the writer stops the workers.
 *
 * @module
 */
import cluster, { type Worker } from 'node:cluster'
import { Agent, createServer, request as httpRequest, type IncomingMessage, type ServerResponse } from 'node:http'
import { getRequestListener } from '@hono/node-server'
import type { Hono } from 'hono'
import type { Logger } from './deps.ts'
import type { LookupShortcut } from './lookup-shortcut.ts'
import type { EdgeOptions } from './main.ts'
import { bump, type EdgeMetrics } from './metrics.ts'
import type { AppEnv } from './routes/context.ts'

/** Environment variable that carries a worker's `HttpWorkerConfig` (JSON). */
export const HTTP_WORKER_ENV = 'VDP_EDGE_HTTP_WORKER'
export const HTTP_WORKERS_MAX = 64
const COUNTS_INTERVAL_MS = 1000
const RESTART_DELAY_MIN_MS = 100
const RESTART_DELAY_MAX_MS = 10_000
/** A worker that dies younger than this counts as crash-looping: the next start waits longer. */
const YOUNG_WORKER_MS = 5_000
const STOP_TIMEOUT_MS = 5_000

/** What the writer hands to each worker. */
export interface HttpWorkerConfig {
  /** Unix socket of the writer's full app. */
  writerSocket: string
  host: string
  port: number
  /** The writer's options: the worker opens the same database, tokens and key. */
  options: EdgeOptions
}

type WriterMessage = { kind: 'stop' }
type WorkerMessage =
  | { kind: 'listening'; port: number }
  | { kind: 'failed'; message: string }
  | { kind: 'http-requests'; counts: [number, number][] }

/** Rule 1: whether a worker answers this request itself. */
export function servedByWorker(method: string | undefined, url: string | undefined): boolean {
  if (method !== 'GET' && method !== 'HEAD') return false
  const q = (url ?? '/').indexOf('?')
  let path = q < 0 ? (url ?? '/') : url!.slice(0, q)
  // Hono routes on the decoded path: decide on the same one.
  if (path.includes('%')) {
    try {
      path = decodeURI(path)
    } catch {
      return false
    }
  }
  return path !== '/metrics'
}

export interface HttpWorkerPool {
  /** The public port (the one given, or the one the system chose for port 0). */
  port: number
  pids(): number[]
  stop(): Promise<void>
}

/**
 * Writer side: forks `count` workers running `workerScript` (which must call
 * `runHttpWorker` when `HTTP_WORKER_ENV` is set) and resolves once all of them listen.
 */
export async function startHttpWorkers(options: {
  count: number
  workerScript: string
  config: HttpWorkerConfig
  metrics: EdgeMetrics
  log: Logger
}): Promise<HttpWorkerPool> {
  const { count, config, metrics, log } = options
  // The writer's node flags carry over (e.g. `node --cpu-prof bin/vdp-edge.mjs` profiles the workers too).
  cluster.setupPrimary({ exec: options.workerScript, args: [], execArgv: process.execArgv, silent: false })
  const workers = new Set<Worker>()
  let stopping = false
  let port = config.port
  let restartDelayMs = RESTART_DELAY_MIN_MS
  let restartTimer: NodeJS.Timeout | undefined
  let startup: { resolve: () => void; reject: (err: Error) => void; waiting: number } | undefined

  const fork = (): void => {
    const startedAt = Date.now()
    // Workers all ask for the configured port, 0 included: the cluster shares one listening
    // handle per address and port asked for, so they all get the same one.
    const worker = cluster.fork({ [HTTP_WORKER_ENV]: JSON.stringify(config) })
    workers.add(worker)
    worker.on('message', (m: WorkerMessage) => {
      if (m.kind === 'http-requests') {
        for (const [status, n] of m.counts) bump(metrics.httpRequests, status, n)
      } else if (m.kind === 'listening') {
        port = m.port
        log.info('HTTP worker started', { pid: worker.process.pid, port: m.port })
        if (startup && --startup.waiting === 0) startup.resolve()
      } else if (m.kind === 'failed') {
        startup?.reject(new Error(`Cannot start HTTP worker: ${m.message}`))
      }
    })
    worker.on('exit', (code, signal) => {
      workers.delete(worker)
      if (stopping) return
      if (startup) {
        startup.reject(new Error(`Cannot start HTTP worker: it exited (code ${code}, signal ${signal})`))
        return
      }
      const young = Date.now() - startedAt < YOUNG_WORKER_MS
      restartDelayMs = young ? Math.min(RESTART_DELAY_MAX_MS, restartDelayMs * 2) : RESTART_DELAY_MIN_MS
      log.warn('HTTP worker exited: starting another', { pid: worker.process.pid, code, signal, delayMs: restartDelayMs })
      restartTimer = setTimeout(() => {
        restartTimer = undefined
        if (!stopping) fork()
      }, restartDelayMs)
    })
  }

  const stop = async (): Promise<void> => {
    stopping = true
    if (restartTimer) clearTimeout(restartTimer)
    const exits = [...workers].map(
      (w) =>
        new Promise<void>((resolve) => {
          if (w.isDead()) return resolve()
          const force = setTimeout(() => w.process.kill('SIGKILL'), STOP_TIMEOUT_MS)
          w.once('exit', () => {
            clearTimeout(force)
            resolve()
          })
          // Not worker.disconnect(): that waits for open keep-alive connections and streams.
          w.send({ kind: 'stop' } satisfies WriterMessage)
        }),
    )
    await Promise.all(exits)
  }

  const started = (n: number) =>
    new Promise<void>((resolve, reject) => {
      startup = { resolve, reject, waiting: n }
      for (let i = 0; i < n; i++) fork()
    })
  try {
    await started(count)
  } catch (err) {
    await stop()
    throw err
  } finally {
    startup = undefined
  }
  return { port, pids: () => [...workers].flatMap((w) => (w.process.pid === undefined ? [] : [w.process.pid])), stop }
}

/** Connection-level headers stay on their hop; Node frames each side's body itself. */
const HOP_BY_HOP = new Set(['connection', 'keep-alive', 'transfer-encoding', 'proxy-connection', 'upgrade', 'te', 'trailer'])
const endToEnd = (raw: string[]): string[] => {
  const out: string[] = []
  for (let i = 0; i + 1 < raw.length; i += 2) if (!HOP_BY_HOP.has(raw[i]!.toLowerCase())) out.push(raw[i]!, raw[i + 1]!)
  return out
}

/**
 * Worker side: serves `app` (built over a read-only store, with the lookup shortcut in front)
 * on the shared port, passes what it does not answer to the writer, and reports its request counts. `close` releases the
 * worker's resources (the store) once the server has stopped.
 */
export function runHttpWorker(
  config: HttpWorkerConfig,
  app: Hono<AppEnv>,
  shortcut: LookupShortcut,
  metrics: EdgeMetrics,
  close: () => void,
): void {
  const send = (m: WorkerMessage) => process.send?.(m)
  const local = getRequestListener(app.fetch)
  const agent = new Agent({ keepAlive: true, maxSockets: 256 })
  const forward = (req: IncomingMessage, res: ServerResponse): void => {
    const upstream = httpRequest(
      { socketPath: config.writerSocket, method: req.method, path: req.url, headers: endToEnd(req.rawHeaders), agent },
      (up) => {
        res.writeHead(up.statusCode ?? 502, endToEnd(up.rawHeaders))
        up.pipe(res)
      },
    )
    upstream.on('error', () => {
      if (res.headersSent) return res.destroy()
      const body = JSON.stringify({ error: { code: 'unavailable', message: 'Cannot reach the writer process' } })
      res.writeHead(502, { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(body) }).end(body)
    })
    res.on('close', () => {
      if (!res.writableFinished) upstream.destroy() // the client left (e.g. an event stream)
    })
    req.pipe(upstream)
  }
  const server = createServer((req, res) => {
    if (!servedByWorker(req.method, req.url)) forward(req, res)
    else if (!shortcut(req, res)) void local(req, res)
  })
  server.once('error', (err) => {
    send({ kind: 'failed', message: err.message })
    process.exit(1)
  })
  server.listen({ host: config.host, port: config.port }, () => {
    const address = server.address()
    send({ kind: 'listening', port: typeof address === 'object' && address ? address.port : config.port })
  })
  const counts = setInterval(() => {
    if (metrics.httpRequests.size === 0) return
    send({ kind: 'http-requests', counts: [...metrics.httpRequests] })
    metrics.httpRequests.clear()
  }, COUNTS_INTERVAL_MS)
  counts.unref()
  let stopping = false
  const stop = () => {
    if (stopping) return
    stopping = true
    clearInterval(counts)
    if (metrics.httpRequests.size > 0 && process.connected) send({ kind: 'http-requests', counts: [...metrics.httpRequests] })
    server.close(() => {
      close()
      process.exit(0)
    })
    server.closeAllConnections()
    agent.destroy()
  }
  process.on('SIGINT', () => {}) // rule 4
  process.on('message', (m: WriterMessage) => {
    if (m.kind === 'stop') stop()
  })
  process.once('disconnect', stop)
}
