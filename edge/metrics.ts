/**
 * Edge counters and their Prometheus text exposition (`GET /metrics`). One instance per
 * edge process, shared by the HTTP app and the MQTT ingest.
 *
 * @module
 */

export interface EdgeMetrics {
  eventsApplied: number
  eventsDuplicate: number
  /** Applied to the audit log but older than the state already held. */
  eventsStale: number
  /** By reason: ApiDecodeError codes, 'store-error'. */
  eventsRejected: Map<string, number>
  migrationsStarted: number
  commandsIssued: Map<string, number>
  /** By status code. */
  httpRequests: Map<number, number>
}

export function createEdgeMetrics(): EdgeMetrics {
  return {
    eventsApplied: 0,
    eventsDuplicate: 0,
    eventsStale: 0,
    eventsRejected: new Map(),
    migrationsStarted: 0,
    commandsIssued: new Map(),
    httpRequests: new Map(),
  }
}

export const bump = <K>(m: Map<K, number>, k: K, n = 1): void => {
  m.set(k, (m.get(k) ?? 0) + n)
}

const esc = (v: string) => v.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n')

/** Prometheus text format 0.0.4. */
export function renderMetrics(m: EdgeMetrics, gauges: { vsis: number; switches: number; events: number }): string {
  const lines: string[] = []
  const counter = (name: string, help: string, values: [string, number][] | number) => {
    lines.push(`# HELP ${name} ${help}`, `# TYPE ${name} counter`)
    if (typeof values === 'number') lines.push(`${name} ${values}`)
    else for (const [labels, v] of values) lines.push(`${name}${labels} ${v}`)
  }
  const gauge = (name: string, help: string, v: number) => lines.push(`# HELP ${name} ${help}`, `# TYPE ${name} gauge`, `${name} ${v}`)
  counter('vdp_edge_events_applied_total', 'Events applied to the fleet store.', m.eventsApplied)
  counter('vdp_edge_events_duplicate_total', 'Events dropped as already applied (switchId, bootId, seq).', m.eventsDuplicate)
  counter('vdp_edge_events_stale_total', 'Events older than the state they would replace (audit log only).', m.eventsStale)
  counter(
    'vdp_edge_events_rejected_total',
    'Events or payloads rejected, by reason.',
    [...m.eventsRejected].map(([r, v]) => [`{reason="${esc(r)}"}`, v]),
  )
  counter('vdp_edge_migrations_total', 'VSI migrations reconstructed.', m.migrationsStarted)
  counter(
    'vdp_edge_commands_total',
    'Commands issued to switches, by kind and origin.',
    [...m.commandsIssued].map(([k, v]) => {
      const [kind, origin] = k.split('|')
      return [`{kind="${esc(kind ?? '')}",origin="${esc(origin ?? '')}"}`, v]
    }),
  )
  counter(
    'vdp_edge_http_requests_total',
    'HTTP requests, by status code.',
    [...m.httpRequests].sort((a, b) => a[0] - b[0]).map(([s, v]) => [`{status="${s}"}`, v]),
  )
  gauge('vdp_edge_vsis', 'VSIs known to the fleet store.', gauges.vsis)
  gauge('vdp_edge_switches', 'Switches known to the fleet store.', gauges.switches)
  gauge('vdp_edge_events_stored', 'Events in the audit log.', gauges.events)
  return lines.join('\n') + '\n'
}
