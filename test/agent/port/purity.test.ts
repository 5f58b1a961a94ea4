/**
 * The no-I/O rule (STYLE.md §3) for agent/port, checked on the source text: no `node:*` or
 * shell imports, no clock, randomness, timers, console, process or Buffer.
 */
import { readdirSync, readFileSync } from 'node:fs'
import { describe, expect, it } from 'vitest'

const dir = new URL('../../../agent/port/', import.meta.url)
const files = readdirSync(dir).filter((f) => f.endsWith('.ts'))

/** Source without comments and string contents, so prose cannot trip the check. */
function code(text: string): string {
  return text
    .replace(/\/\*[\s\S]*?\*\//g, '')
    .replace(/\/\/.*$/gm, '')
    .replace(/`(?:\\.|[^`\\])*`/g, '``')
}

const FORBIDDEN: [string, RegExp][] = [
  ['node: import', /from\s+['"]node:/],
  ['shell import', /from\s+['"][^'"]*(agent\/runtime|agent\/transport|\/edge\/|\.\.\/runtime|\.\.\/transport)/],
  ['Date.now', /\bDate\.now\b/],
  ['new Date', /\bnew Date\b/],
  ['performance.now', /\bperformance\.now\b/],
  ['Math.random', /\bMath\.random\b/],
  ['timers', /\b(setTimeout|setInterval|setImmediate|queueMicrotask)\b/],
  ['console', /\bconsole\./],
  ['process', /\bprocess\./],
  ['Buffer', /\bBuffer\b/],
]

describe('agent/port purity', () => {
  it('has source files to check', () => {
    expect(files).toContain('port-core.ts')
  })

  it.each(files)('%s does no I/O and reads no clock', (file) => {
    const text = code(readFileSync(new URL(file, dir), 'utf8'))
    for (const [what, re] of FORBIDDEN) expect(re.test(text), `${file}: ${what}`).toBe(false)
  })
})
