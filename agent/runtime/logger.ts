/**
 * JSON-lines logger with stable event names: one object per line, `{ time, level, event, … }`.
 * `event` is a kebab-case name that operators can alert on (`vsi-associated`,
 * `outbox-full`, …); the other fields are data. Keys and secrets are never passed in.
 *
 * @module
 */
export type LogLevel = 'debug' | 'info' | 'warn' | 'error'
const RANK: Record<LogLevel, number> = { debug: 10, info: 20, warn: 30, error: 40 }

export interface Logger {
  debug(event: string, fields?: Record<string, unknown>): void
  info(event: string, fields?: Record<string, unknown>): void
  warn(event: string, fields?: Record<string, unknown>): void
  error(event: string, fields?: Record<string, unknown>): void
  child(fields: Record<string, unknown>): Logger
}

export function isLogLevel(s: string): s is LogLevel {
  return s in RANK
}

/**
 * @example
 * ```ts
 * const log = createJsonLogger({ level: 'info', write: (l) => process.stderr.write(l) })
 * log.info('agent-ready', { ports: 2 })
 * ```
 */
export function createJsonLogger(options: { level: LogLevel; write: (line: string) => void; base?: Record<string, unknown>; now?: () => number }): Logger {
  const min = RANK[options.level]
  const now = options.now ?? Date.now
  const make = (base: Record<string, unknown>): Logger => {
    const emit = (level: LogLevel, event: string, fields?: Record<string, unknown>) => {
      if (RANK[level] < min) return
      let line: string
      try {
        line = JSON.stringify({ time: new Date(now()).toISOString(), level, event, ...base, ...fields }, replacer)
      } catch {
        line = JSON.stringify({ time: new Date(now()).toISOString(), level, event, ...base, note: 'fields not serialisable' })
      }
      options.write(line + '\n')
    }
    return {
      debug: (e, f) => emit('debug', e, f),
      info: (e, f) => emit('info', e, f),
      warn: (e, f) => emit('warn', e, f),
      error: (e, f) => emit('error', e, f),
      child: (f) => make({ ...base, ...f }),
    }
  }
  return make(options.base ?? {})
}

function replacer(_key: string, value: unknown): unknown {
  if (value instanceof Uint8Array) return Buffer.from(value).toString('hex')
  if (value instanceof Error) return { name: value.name, message: value.message, ...('code' in value ? { code: (value as { code: unknown }).code } : {}) }
  if (typeof value === 'bigint') return value.toString()
  return value
}

/** A logger that drops everything (tests, library use). */
export const silentLogger: Logger = {
  debug() {},
  info() {},
  warn() {},
  error() {},
  child() {
    return silentLogger
  },
}
