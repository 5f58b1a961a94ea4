#!/usr/bin/env node
// Runs every test (unit and integration) with vitest and closes with one plain line
// "tests: N passed, N failed, N skipped". Extra arguments go to vitest (e.g. a file filter).
import { spawnSync } from 'node:child_process'
import { mkdirSync, readFileSync, existsSync, rmSync } from 'node:fs'

mkdirSync('test-results', { recursive: true })
const out = 'test-results/vitest.json'
if (existsSync(out)) rmSync(out)
const args = ['vitest', 'run', '--reporter=default', '--reporter=json', `--outputFile.json=${out}`, ...process.argv.slice(2)]
const run = spawnSync('npx', args, { stdio: 'inherit' })
let passed = 0, failed = 0, skipped = 0
if (existsSync(out)) {
  const r = JSON.parse(readFileSync(out, 'utf8'))
  passed = r.numPassedTests; failed = r.numFailedTests; skipped = r.numPendingTests + (r.numTodoTests ?? 0)
}
console.log(`tests: ${passed} passed, ${failed} failed, ${skipped} skipped`)
process.exit(run.status === 0 && failed === 0 && passed > 0 ? 0 : 1)
