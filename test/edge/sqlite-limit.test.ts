// SQLite plans a query with the value bound to a bare `LIMIT ?`, so every new value expires the
// prepared statement and each run prepares it again (12% of a lookup worker's CPU at 1,000,000
// VSIs). The store binds row counts through LIMIT_BOUND; this keeps a bare `LIMIT ?` out.
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { expect, it } from 'vitest'

it('the SQLite store binds no row count as a bare LIMIT ? (or OFFSET ?)', () => {
  const source = readFileSync(join(import.meta.dirname, '../../edge/store/sqlite-fleet-store.ts'), 'utf8')
  expect(source).toContain("LIMIT_BOUND = 'LIMIT CAST(? AS INTEGER)'")
  const code = source.replace(/\/\*[\s\S]*?\*\//g, '').replace(/^\s*\/\/.*$/gm, '')
  expect(code).toContain('${LIMIT_BOUND}')
  expect(code.match(/\b(LIMIT|OFFSET)\s+\?/gi) ?? []).toEqual([])
})
