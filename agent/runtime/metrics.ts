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
  type: 'counter' | 'gauge' | 'histogram'
  values: Map<string, { labels: Labels; value: number }>
  collect?: () => Array<{ labels: Labels; value: number }>
  histograms?: Map<string, HistogramSeries>
  buckets?: readonly number[]
}

interface HistogramSeries {
  labels: Labels
  /** Observations per bucket (not cumulative); the last slot is +Inf. */
  counts: number[]
  sum: number
  count: number
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

  /**
   * Declares a histogram with upper bounds `buckets` (ascending, in the metric's unit);
   * `observe()` adds one value to one labelled series. `bind(labels)` returns an observer of
   * one series that skips the label lookup (for a hot path).
   */
  histogram(
    name: string,
    help: string,
    buckets: readonly number[],
  ): {
    observe(value: number, labels?: Labels): void
    bind(labels: Labels): (value: number) => void
    get(labels?: Labels): { count: number; sum: number }
  } {
    const f = this.#family(name, help, 'histogram')
    f.buckets = buckets
    f.histograms ??= new Map()
    const series = f.histograms
    const seriesOf = (labels: Labels): HistogramSeries => {
      const k = labelKey(labels)
      let h = series.get(k)
      if (!h) {
        h = { labels, counts: new Array<number>(buckets.length + 1).fill(0), sum: 0, count: 0 }
        series.set(k, h)
      }
      return h
    }
    const add = (h: HistogramSeries, value: number): void => {
      let i = 0
      while (i < buckets.length && value > buckets[i]!) i++
      h.counts[i]!++
      h.sum += value
      h.count++
    }
    return {
      observe(value, labels = {}) {
        add(seriesOf(labels), value)
      },
      bind(labels) {
        const h = seriesOf(labels)
        return (value) => add(h, value)
      },
      get(labels = {}) {
        const h = series.get(labelKey(labels))
        return { count: h?.count ?? 0, sum: h?.sum ?? 0 }
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
      if (f.type === 'histogram') {
        out += renderHistogram(f)
        continue
      }
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

function labelText(labels: Labels, extra?: string): string {
  const parts = Object.keys(labels).map((k) => `${k}="${escape(String(labels[k]))}"`)
  if (extra !== undefined) parts.push(extra)
  return parts.length ? `{${parts.join(',')}}` : ''
}

function renderHistogram(f: Family): string {
  let out = ''
  const buckets = f.buckets ?? []
  for (const h of f.histograms?.values() ?? []) {
    let cumulative = 0
    buckets.forEach((le, i) => {
      cumulative += h.counts[i]!
      out += `${f.name}_bucket${labelText(h.labels, `le="${le}"`)} ${cumulative}\n`
    })
    out += `${f.name}_bucket${labelText(h.labels, 'le="+Inf"')} ${h.count}\n`
    out += `${f.name}_sum${labelText(h.labels)} ${h.sum}\n`
    out += `${f.name}_count${labelText(h.labels)} ${h.count}\n`
  }
  return out
}
