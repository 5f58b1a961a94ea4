import { mkdtempSync, rmSync, statSync } from 'node:fs'
import { createConnection } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import { callAgent, ControlError, startControlServer, type ControlServer } from '../../../agent/control/local-api.ts'
import { silentLogger } from '../../../agent/runtime/logger.ts'

let server: ControlServer | undefined
const dirs: string[] = []
afterEach(async () => {
  await server?.close()
  server = undefined
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true })
})

const sock = () => {
  const dir = mkdtempSync(join(tmpdir(), 'vdpctl-'))
  dirs.push(dir)
  return join(dir, 'control.sock')
}

describe('control socket', () => {
  it('answers a method call and reports errors by code', async () => {
    const path = sock()
    server = await startControlServer(path, { echo: (p) => ({ got: p }), boom: () => { throw new Error('bug') } }, silentLogger)
    expect(statSync(path).mode & 0o777).toBe(0o660)
    expect(await callAgent(path, 'echo', { a: 1 })).toEqual({ got: { a: 1 } })
    await expect(callAgent(path, 'nope')).rejects.toMatchObject({ code: 'unknown-method' })
    await expect(callAgent(path, 'boom')).rejects.toMatchObject({ code: 'internal' })
    await expect(callAgent(path, 'constructor')).rejects.toMatchObject({ code: 'unknown-method' })
  })

  it('survives garbage on the socket and keeps serving', async () => {
    const path = sock()
    server = await startControlServer(path, { ping: () => 'pong' }, silentLogger)
    const reply = await new Promise<string>((resolve) => {
      const s = createConnection(path)
      let buf = ''
      s.on('data', (d) => { buf += d; if (buf.includes('\n')) { s.end(); resolve(buf) } })
      s.write('{this is not json\n')
    })
    expect(JSON.parse(reply).error.code).toBe('bad-json')
    expect(await callAgent(path, 'ping')).toBe('pong')
  })

  it('replaces a stale socket file but refuses to start beside a live agent', async () => {
    const path = sock()
    server = await startControlServer(path, {}, silentLogger)
    await expect(startControlServer(path, {}, silentLogger)).rejects.toThrow(/another agent/)
  })

  it('tells a client clearly when no agent runs', async () => {
    const err = await callAgent(join(tmpdir(), 'no-such-agent.sock'), 'ping').catch((e: unknown) => e)
    expect(err).toBeInstanceOf(ControlError)
    expect((err as ControlError).code).toBe('unreachable')
  })
})
