import { describe, expect, it } from 'vitest'
import { ConfigError, loadAgentConfig } from '../../agent/config.ts'

const env = (files: Record<string, string> = {}) => ({
  hostname: 'leaf1.example',
  readFile: (p: string) => {
    if (!(p in files)) throw Object.assign(new Error('missing'), { code: 'ENOENT' })
    return files[p]!
  },
})
const pathOf = (f: () => unknown) => {
  try { f() } catch (e) { return (e as ConfigError).path }
  return undefined
}

describe('loadAgentConfig()', () => {
  it('takes the common case from flags and defaults the rest', () => {
    const r = loadAgentConfig(['--port', 'Ethernet0', '--port', 'Ethernet4', '--vid-pool', '100-199,300', '--dataplane', 'sonic'], env())
    expect(r.kind).toBe('run')
    if (r.kind !== 'run') return
    expect(r.config.ports.map((p) => p.name)).toEqual(['Ethernet0', 'Ethernet4'])
    expect(r.config.switchId).toBe('leaf1')
    expect(r.config.vidPool).toBe('100-199,300')
    expect(r.config.dataplane).toBe('sonic')
    expect(r.config.evb.rte).toBe(8)
  })

  it('merges a JSON file under the flags', () => {
    const r = loadAgentConfig(['--config', 'a.json', '--switch-id', 'tor7'], env({ 'a.json': JSON.stringify({ switchId: 'x', ports: [{ name: 'eth1', mac: '02:00:00:00:00:01' }], evb: { rka: 14 } }) }))
    if (r.kind !== 'run') throw new Error('expected run')
    expect(r.config.switchId).toBe('tor7')
    expect(r.config.ports).toEqual([{ name: 'eth1', mac: '02:00:00:00:00:01' }])
    expect(r.config.evb).toMatchObject({ rka: 14, rte: 8 })
    expect(r.config.stateSaveDelayMs).toBe(20)
    expect(r.config.ecpAckAbsorb).toBe(true)
    const off = loadAgentConfig(['--config', 'b.json'], env({ 'b.json': JSON.stringify({ ports: [{ name: 'eth1' }], ecpAckAbsorb: false }) }))
    expect(off.kind === 'run' && off.config.ecpAckAbsorb).toBe(false)
    expect(r.config.keepAliveAnswers).toBe(true)
    const noAnswers = loadAgentConfig(['--config', 'c.json'], env({ 'c.json': JSON.stringify({ ports: [{ name: 'eth1' }], keepAliveAnswers: false }) }))
    expect(noAnswers.kind === 'run' && noAnswers.config.keepAliveAnswers).toBe(false)
    expect(r.config.answerOffers).toBe(true)
    const noOffers = loadAgentConfig(['--config', 'c.json'], env({ 'c.json': JSON.stringify({ ports: [{ name: 'eth1' }], answerOffers: false }) }))
    expect(noOffers.kind === 'run' && noOffers.config.answerOffers).toBe(false)
  })

  it('answers --help and --version', () => {
    expect(loadAgentConfig(['--help'], env()).kind).toBe('help')
    expect(loadAgentConfig(['--version'], env()).kind).toBe('version')
  })

  it('rejects bad input with the path of the offending value', () => {
    expect(pathOf(() => loadAgentConfig([], env()))).toBe('ports')
    expect(pathOf(() => loadAgentConfig(['--port', 'a', '--role', 'router'], env()))).toBe('role')
    expect(pathOf(() => loadAgentConfig(['--port', 'a', '--bogus'], env()))).toBe('argv')
    expect(pathOf(() => loadAgentConfig(['--port', 'a-name-far-too-long'], env()))).toBe('ports[0].name')
    expect(pathOf(() => loadAgentConfig(['--port', 'a', '--port', 'a'], env()))).toBe('ports[1].name')
    expect(pathOf(() => loadAgentConfig(['--port', 'a', '--mqtt', 'http://x'], env()))).toBe('mqtt.url')
    expect(pathOf(() => loadAgentConfig(['--port', 'a', '--switch-id', 'a/b'], env()))).toBe('switchId')
    expect(pathOf(() => loadAgentConfig(['--config', 'x.json'], env()))).toBe('config')
    expect(pathOf(() => loadAgentConfig(['--config', 'x.json'], env({ 'x.json': '{ not json' })))).toBe('config')
    expect(pathOf(() => loadAgentConfig(['--config', 'x.json'], env({ 'x.json': '{"evb":{"rte":40}}' })))).toBe('ports')
    expect(pathOf(() => loadAgentConfig(['--port', 'a', '--config', 'x.json'], env({ 'x.json': '{"evb":{"rte":40}}' })))).toBe('evb.rte')
    expect(pathOf(() => loadAgentConfig(['--port', 'a', '--config', 'x.json'], env({ 'x.json': '{"evb":{"rtee":4}}' })))).toBe('evb.rtee')
    expect(pathOf(() => loadAgentConfig(['--port', 'a', '--config', 'x.json'], env({ 'x.json': '[]' })))).toBe('(root)')
    expect(pathOf(() => loadAgentConfig(['--port', 'a', '--config', 'x.json'], env({ 'x.json': '{"stateSaveDelayMs":-1}' })))).toBe('stateSaveDelayMs')
    expect(pathOf(() => loadAgentConfig(['--port', 'a', '--config', 'x.json'], env({ 'x.json': '{"stateSaveDelayMs":"1s"}' })))).toBe('stateSaveDelayMs')
    expect(pathOf(() => loadAgentConfig(['--port', 'a', '--config', 'x.json'], env({ 'x.json': '{"ecpAckAbsorb":"yes"}' })))).toBe('ecpAckAbsorb')
    expect(pathOf(() => loadAgentConfig(['--port', 'a', '--config', 'x.json'], env({ 'x.json': '{"keepAliveAnswers":1}' })))).toBe('keepAliveAnswers')
    expect(pathOf(() => loadAgentConfig(['--port', 'a', '--config', 'x.json'], env({ 'x.json': '{"answerOffers":"yes"}' })))).toBe('answerOffers')
    expect(pathOf(() => loadAgentConfig(['--config', 'x.json'], env({ 'x.json': '{"ports":[{"name":"e","mac":"01:00:5e:00:00:01"}]}' })))).toBe('ports[0].mac')
  })
})
