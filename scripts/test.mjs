#!/usr/bin/env node
// Runs every test with vitest: the unit project first, then the integration project (root,
// network namespaces, lldpad, tshark, mosquitto, redis), one after the other so that the
// CPU-heavy property tests do not starve the real peers' timers. Closes with one plain line
// "tests: N passed, N failed, N skipped". Extra arguments go to both vitest runs.
import { spawnSync } from 'node:child_process'
import { existsSync, mkdirSync, readFileSync, rmSync } from 'node:fs'

mkdirSync('test-results', { recursive: true })
let passed = 0
let failed = 0
let skipped = 0
let ok = true
for (const project of ['unit', 'integration']) {
  const out = `test-results/${project}.json`
  if (existsSync(out)) rmSync(out)
  const args = ['vitest', 'run', '--project', project, '--reporter=default', '--reporter=json', `--outputFile.json=${out}`, ...process.argv.slice(2)]
  const run = spawnSync('npx', args, { stdio: 'inherit' })
  if (existsSync(out)) {
    const r = JSON.parse(readFileSync(out, 'utf8'))
    passed += r.numPassedTests
    failed += r.numFailedTests
    skipped += r.numPendingTests + (r.numTodoTests ?? 0)
    // A suite that failed to load counts as a failure even with no failed test.
    if (r.numFailedTestSuites > 0 && r.numFailedTests === 0) failed += r.numFailedTestSuites
  } else if (run.status !== 0) {
    failed += 1
  }
  if (run.status !== 0) ok = false
}
console.log(`tests: ${passed} passed, ${failed} failed, ${skipped} skipped`)
process.exit(ok && failed === 0 && passed > 0 ? 0 : 1)
