#!/usr/bin/env node
// Runs the benchmarks of test/bench/ and prints their figures. `npm run bench` runs the quick
// ones; `npm run bench -- NAME…` runs the named ones (file names without .ts), e.g.
// `npm run bench -- codec core-pair`. Several need root (namespaces, lldpad).
import { spawnSync } from 'node:child_process'
import { readdirSync } from 'node:fs'

const all = readdirSync('test/bench').filter((f) => f.endsWith('.ts')).map((f) => f.slice(0, -3)).sort()
const quick = ['codec', 'core-pair']
const wanted = process.argv.slice(2)
const names = wanted.length ? wanted : quick
for (const n of names) {
  if (!all.includes(n)) {
    console.error(`No benchmark "${n}"; there are: ${all.join(', ')}`)
    process.exit(2)
  }
}
let status = 0
for (const n of names) {
  console.log(`\n=== ${n} (npx tsx test/bench/${n}.ts)`)
  const r = spawnSync('npx', ['tsx', `test/bench/${n}.ts`], { stdio: 'inherit' })
  if (r.status !== 0) status = 1
}
process.exit(status)
