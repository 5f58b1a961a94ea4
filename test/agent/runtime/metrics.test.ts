import { describe, expect, it } from 'vitest'
import { MetricsRegistry } from '../../../agent/runtime/metrics.ts'
import { createJsonLogger } from '../../../agent/runtime/logger.ts'

describe('MetricsRegistry', () => {
  it('renders counters, gauges and collected series in Prometheus text format', () => {
    const m = new MetricsRegistry()
    const frames = m.counter('vdp_frames_total', 'Frames')
    frames.inc({ port: 'Ethernet0', dir: 'rx' })
    frames.inc({ dir: 'rx', port: 'Ethernet0' }, 2)
    m.gauge('vdp_vsis', 'VSIs').set({ port: 'Ethernet0' }, 7)
    m.collected('vdp_up', 'Up', 'gauge', () => [{ labels: { port: 'a"b' }, value: 1 }])
    const text = m.render()
    expect(text).toContain('# TYPE vdp_frames_total counter\nvdp_frames_total{port="Ethernet0",dir="rx"} 3\n')
    expect(text).toContain('vdp_vsis{port="Ethernet0"} 7')
    expect(text).toContain('vdp_up{port="a\\"b"} 1')
  })
})

describe('createJsonLogger()', () => {
  it('writes one JSON object per line with a stable event name and filters by level', () => {
    const lines: string[] = []
    const log = createJsonLogger({ level: 'info', write: (l) => lines.push(l), now: () => 0 }).child({ port: 'eth0' })
    log.debug('hidden')
    log.info('vsi-associated', { vid: 100, raw: new Uint8Array([1, 2]) })
    expect(lines).toHaveLength(1)
    expect(JSON.parse(lines[0]!)).toEqual({ time: '1970-01-01T00:00:00.000Z', level: 'info', event: 'vsi-associated', port: 'eth0', vid: 100, raw: '0102' })
  })
})
