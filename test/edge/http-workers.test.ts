/**
 * `vdp-edge --http-workers N` (edge/http-workers.ts): lookups answered by worker processes
 * over read-only connections see what the writer commits; writes pass through to the writer;
 * a crashed worker is replaced; `/metrics` counts the workers' requests; SIGTERM stops all.
 */
import { spawn, type ChildProcess } from 'node:child_process'
import { createServer, get, request, type IncomingMessage } from 'node:http'
import type { AddressInfo } from 'node:net'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import { encodeEventBatch, type FleetEvent } from '../../shared/api/events.ts'
import { parseEdgeArgs, UsageError } from '../../edge/main.ts'
import { servedByWorker } from '../../edge/http-workers.ts'
import { agentStarted, ipOf, macOf, vsiEvent, vsiIdOf } from './support/events.ts'

const ROOT = resolve(import.meta.dirname, '../..')
const ADMIN = 'admin-token-0123456789'
const READ = 'read-token-0123456789'
const dirs: string[] = []
const children: ChildProcess[] = []
afterAll(() => {
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL')
  for (const d of dirs) rmSync(d, { recursive: true, force: true })
})

/** One request on a new connection: the cluster hands each connection to the next worker. */
function call(port: number, method: string, path: string, token: string, body?: Uint8Array): Promise<{ status: number; json: any }> {
  return new Promise((resolveCall, reject) => {
    const headers: Record<string, string> = { Authorization: `Bearer ${token}` }
    if (body) headers['Content-Type'] = 'application/cbor'
    const req = request({ host: '127.0.0.1', port, method, path, headers, agent: false }, (res) => {
      let text = ''
      res.setEncoding('utf8')
      res.on('data', (c: string) => (text += c))
      res.on('end', () => resolveCall({ status: res.statusCode ?? 0, json: text.startsWith('{') ? JSON.parse(text) : text }))
    })
    req.on('error', reject)
    req.end(body)
  })
}

const alive = (pid: number): boolean => {
  try {
    process.kill(pid, 0)
    return true
  } catch {
    return false
  }
}

async function until(what: string, cond: () => boolean, timeoutMs = 20_000): Promise<void> {
  const end = Date.now() + timeoutMs
  while (!cond()) {
    if (Date.now() > end) throw new Error(`Timed out waiting for ${what}`)
    await new Promise((r) => setTimeout(r, 25))
  }
}

describe('vdp-edge --http-workers', () => {
  it('parseEdgeArgs() reads --http-workers and refuses it with an in-memory database', () => {
    expect(parseEdgeArgs(['--http-workers', '2', '--db', 'x.sqlite'])).toMatchObject({ httpWorkers: 2 })
    expect(parseEdgeArgs([])).toMatchObject({ httpWorkers: 0 })
    for (const argv of [['--http-workers', 'two'], ['--http-workers', '65'], ['--http-workers', '2', '--db', ':memory:']]) {
      expect(() => parseEdgeArgs(argv)).toThrow(UsageError)
    }
  })

  it('servedByWorker() keeps writes and /metrics for the writer process', () => {
    expect(servedByWorker('GET', '/api/v1/vsis?mac=02:00:00:00:00:01')).toBe(true)
    expect(servedByWorker('HEAD', '/healthz')).toBe(true)
    expect(servedByWorker('GET', '/api/v1/stream')).toBe(true)
    expect(servedByWorker('POST', '/api/v1/ingest/events')).toBe(false)
    expect(servedByWorker('PUT', '/api/v1/vns/db')).toBe(false)
    expect(servedByWorker('GET', '/metrics')).toBe(false)
    expect(servedByWorker('GET', '/%6detrics?x=1')).toBe(false)
  })

  it('workers see what the writer commits, a killed worker is replaced, SIGTERM stops every process', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'vdp-edge-workers-'))
    dirs.push(dir)
    writeFileSync(
      join(dir, 'tokens.json'),
      JSON.stringify([
        { name: 'ops', token: ADMIN, scope: 'admin' },
        { name: 'viewer', token: READ, scope: 'read' },
      ]),
    )
    const child = spawn(
      process.execPath,
      [
        join(ROOT, 'bin/vdp-edge.mjs'),
        ...['--http', '127.0.0.1:0', '--mqtt-listen', '127.0.0.1:0', '--http-workers', '2'],
        ...['--db', join(dir, 'fleet.sqlite'), '--tokens', join(dir, 'tokens.json')],
      ],
      { stdio: ['ignore', 'ignore', 'pipe'] },
    )
    children.push(child)
    const lines: Record<string, any>[] = []
    let partial = ''
    child.stderr!.on('data', (d: Buffer) => {
      const parts = (partial + d.toString()).split('\n')
      partial = parts.pop()!
      for (const l of parts) if (l.startsWith('{')) lines.push(JSON.parse(l))
    })
    const logged = (msg: string) => lines.filter((l) => l.msg === msg)
    await until('vdp-edge started', () => logged('vdp-edge started').length > 0).catch((err: Error) => {
      throw new Error(`${err.message}; log: ${JSON.stringify(lines)} ${partial}`)
    })
    const port = Number(String(logged('vdp-edge started')[0]!.http).split(':')[1])
    const workerPids = logged('HTTP worker started').map((l) => l.pid as number)
    expect(workerPids).toHaveLength(2)
    expect(workerPids).not.toContain(child.pid)

    const lookups = async (path: string, n = 4) => Promise.all(Array.from({ length: n }, () => call(port, 'GET', path, READ)))
    const byMac = `/api/v1/vsis?mac=${macOf(7)}`
    for (const r of await lookups(byMac)) expect(r).toMatchObject({ status: 200, json: { vsis: [] } })

    // A write through the public port reaches the writer (body streamed through a worker).
    const ingest = (events: FleetEvent[]) => call(port, 'POST', '/api/v1/ingest/events', ADMIN, encodeEventBatch(events))
    expect(await ingest([agentStarted({ seq: 0 }), vsiEvent({ seq: 1, vsi: 7, ipv4: [ipOf(7)] })])).toMatchObject({
      status: 200,
      json: { applied: 2 },
    })
    for (const r of [...(await lookups(byMac)), ...(await lookups(`/api/v1/vsis?ip=${ipOf(7)}`))]) {
      expect(r.status).toBe(200)
      expect(r.json.vsis.map((v: { vsiId: string; state: string }) => [v.vsiId, v.state])).toEqual([[vsiIdOf(7), 'associated']])
    }
    // A new boot of the switch drops what it held: the workers' cached switch records follow.
    expect(await ingest([agentStarted({ bootId: 'boot-0002', bootTime: 1_700_000_100_000, seq: 0 })])).toMatchObject({ status: 200 })
    for (const r of await lookups(`/api/v1/vsis/${vsiIdOf(7)}`)) expect(r).toMatchObject({ status: 200, json: { state: 'gone' } })
    // Scopes hold in the workers too.
    expect(await call(port, 'GET', byMac, 'wrong-token-0123456789')).toMatchObject({ status: 401 })
    expect(await call(port, 'PUT', '/api/v1/vns/db', READ, new Uint8Array())).toMatchObject({ status: 403 })

    // The workers' requests show in the writer's /metrics within a second or so.
    await new Promise((r) => setTimeout(r, 1300))
    const metrics = await new Promise<string>((ok) =>
      get({ host: '127.0.0.1', port, path: '/metrics', headers: { Authorization: `Bearer ${READ}` }, agent: false }, (res) => {
        let t = ''
        res.on('data', (c) => (t += c))
        res.on('end', () => ok(t))
      }),
    )
    const served = Number(/vdp_edge_http_requests_total\{status="200"\} (\d+)/.exec(metrics)?.[1] ?? 0)
    expect(served).toBeGreaterThanOrEqual(18) // 16 lookups in the workers, 2 writes in the writer

    // A worker that dies is replaced, and lookups keep being answered.
    process.kill(workerPids[0]!, 'SIGKILL')
    await until('a new worker', () => logged('HTTP worker started').length === 3)
    expect(logged('HTTP worker exited: starting another')[0]).toMatchObject({ pid: workerPids[0], signal: 'SIGKILL' })
    const replacement = logged('HTTP worker started')[2]!.pid as number
    for (const r of await lookups(byMac, 6)) expect(r.status).toBe(200)

    // An open event stream (answered by a worker) does not hold the shutdown up.
    const stream = await new Promise<IncomingMessage>((ok) =>
      get({ host: '127.0.0.1', port, path: '/api/v1/stream', headers: { Authorization: `Bearer ${READ}` }, agent: false }, ok),
    )
    stream.on('error', () => {})
    await new Promise((r) => stream.once('data', r))
    const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)))
    const stopAt = Date.now()
    child.kill('SIGTERM')
    expect(await exited).toBe(0)
    expect(Date.now() - stopAt).toBeLessThan(4000)
    await until('workers to exit', () => !alive(workerPids[1]!) && !alive(replacement), 5000)
  }, 60_000)

  it('vdp-edge --http-workers exits 1 with the reason when the workers cannot listen', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'vdp-edge-workers-'))
    dirs.push(dir)
    const taken = createServer()
    await new Promise<void>((r) => taken.listen(0, '127.0.0.1', r))
    const port = (taken.address() as AddressInfo).port
    try {
      const child = spawn(
        process.execPath,
        [join(ROOT, 'bin/vdp-edge.mjs'), '--http', `127.0.0.1:${port}`, '--mqtt-listen', '127.0.0.1:0', '--http-workers', '2', '--db', join(dir, 'f.sqlite')],
        { stdio: ['ignore', 'ignore', 'pipe'] },
      )
      children.push(child)
      let log = ''
      child.stderr!.on('data', (d: Buffer) => (log += d.toString()))
      const code = await new Promise<number | null>((r) => child.once('exit', (c) => r(c)))
      expect(code).toBe(1)
      expect(log).toMatch(/Cannot start HTTP worker: .*EADDRINUSE/)
      expect(log).not.toContain('starting another')
    } finally {
      taken.close()
    }
  }, 30_000)
})
