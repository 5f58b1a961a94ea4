/**
 * A small Prometheus registry: counters and gauges with labels, rendered in the text
 * exposition format (version 0.0.4). Gauges may be collected on scrape from a callback so
 * table sizes are never stale.
 *
 * @module
 */
type Labels = Record<string, string | number>

interface Family {
  name: string
  help: string
  type: 'counter' | 'gauge'
  values: Map<string, { labels: Labels; value: number }>
  collect?: () => Array<{ labels: Labels; value: number }>
}

const labelKey = (labels: Labels): string =>
  Object.keys(labels).sort().map((k) => `${k}=${String(labels[k])}`).join(',')

const escape = (v: string): string => v.replace(/\\/g, '\\\\').replace(/\n/g, '\\n').replace(/"/g, '\\"')

export class MetricsRegistry {
  readonly #families = new Map<string, Family>()

  #family(name: string, help: string, type: Family['type']): Family {
    let f = this.#families.get(name)
    if (!f) {
      f = { name, help, type, values: new Map() }
      this.#families.set(name, f)
    }
    return f
  }

  /** Declares a counter; `inc()` adds to one labelled series. */
  counter(name: string, help: string): { inc(labels?: Labels, by?: number): void; get(labels?: Labels): number } {
    const f = this.#family(name, help, 'counter')
    return {
      inc(labels = {}, by = 1) {
        const k = labelKey(labels)
        const cur = f.values.get(k)
        if (cur) cur.value += by
        else f.values.set(k, { labels, value: by })
      },
      get(labels = {}) {
        return f.values.get(labelKey(labels))?.value ?? 0
      },
    }
  }

  gauge(name: string, help: string): { set(labels: Labels, value: number): void; get(labels?: Labels): number } {
    const f = this.#family(name, help, 'gauge')
    return {
      set(labels, value) {
        f.values.set(labelKey(labels), { labels, value })
      },
      get(labels = {}) {
        return f.values.get(labelKey(labels))?.value ?? 0
      },
    }
  }

  /** A gauge or counter whose series are computed at scrape time. */
  collected(name: string, help: string, type: Family['type'], collect: () => Array<{ labels: Labels; value: number }>): void {
    const f = this.#family(name, help, type)
    f.collect = collect
  }

  render(): string {
    let out = ''
    for (const f of this.#families.values()) {
      out += `# HELP ${f.name} ${f.help}\n# TYPE ${f.name} ${f.type}\n`
      const series = f.collect ? f.collect() : [...f.values.values()]
      for (const s of series) {
        const keys = Object.keys(s.labels)
        const l = keys.length ? `{${keys.map((k) => `${k}="${escape(String(s.labels[k]))}"`).join(',')}}` : ''
        out += `${f.name}${l} ${Number.isFinite(s.value) ? s.value : 0}\n`
      }
    }
    return out
  }
}
