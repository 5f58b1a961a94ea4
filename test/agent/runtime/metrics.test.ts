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

  it('renders histograms with cumulative buckets, sum and count per label set', () => {
    const m = new MetricsRegistry()
    const h = m.histogram('vdp_commit_seconds', 'Commit', [0.001, 0.01])
    h.observe(0.0005, { dataplane: 'sonic' })
    h.observe(0.001, { dataplane: 'sonic' }) // on the bound: counts in that bucket
    h.observe(0.005, { dataplane: 'sonic' })
    h.observe(2, { dataplane: 'sonic' })
    h.observe(0.02, { dataplane: 'linux' })
    const text = m.render()
    expect(text).toContain('# TYPE vdp_commit_seconds histogram\n')
    expect(text).toContain(
      'vdp_commit_seconds_bucket{dataplane="sonic",le="0.001"} 2\n' +
        'vdp_commit_seconds_bucket{dataplane="sonic",le="0.01"} 3\n' +
        'vdp_commit_seconds_bucket{dataplane="sonic",le="+Inf"} 4\n' +
        'vdp_commit_seconds_sum{dataplane="sonic"} 2.0065\n' +
        'vdp_commit_seconds_count{dataplane="sonic"} 4\n',
    )
    expect(text).toContain('vdp_commit_seconds_bucket{dataplane="linux",le="0.01"} 0\n')
    expect(text).toContain('vdp_commit_seconds_bucket{dataplane="linux",le="+Inf"} 1\n')
    expect(h.get({ dataplane: 'sonic' }).count).toBe(4)
  })

  it('binds an observer to one series: the same series observe() with those labels adds to', () => {
    const m = new MetricsRegistry()
    const h = m.histogram('vdp_response_seconds', 'Response', [0.0001])
    const sw0 = h.bind({ port: 'sw0' })
    expect(m.render()).toContain('vdp_response_seconds_count{port="sw0"} 0\n')
    sw0(0.00005)
    sw0(0.5)
    h.observe(0.00002, { port: 'sw0' })
    h.bind({ port: 'sw1' })(0.00003)
    expect(h.get({ port: 'sw0' })).toEqual({ count: 3, sum: 0.50007 })
    const text = m.render()
    expect(text).toContain('vdp_response_seconds_bucket{port="sw0",le="0.0001"} 2\n')
    expect(text).toContain('vdp_response_seconds_bucket{port="sw0",le="+Inf"} 3\n')
    expect(text).toContain('vdp_response_seconds_count{port="sw1"} 1\n')
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
