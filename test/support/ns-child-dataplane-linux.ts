/**
 * Child that runs the Linux data-plane driver (agent/dataplane/linux.ts) where the kernel
 * is, for test/integration/dataplane-linux-vm.test.ts: bundled with esbuild into one .mjs
 * for the arm64 VM's Node.js 18 and driven over the console with the JSON lines of
 * ns-child-runtime.ts.
 *
 * Requests:
 * - `run { argv }`: runs a program (no shell: iproute2's `ip` and `bridge` from PATH, not
 *   busybox's applets) and answers `{ code, stdout, stderr }`;
 * - `open { options, ownershipPath }`: opens a driver on the ownership record file. A second
 *   `open` drops the previous driver without closing it: a restarted agent that only has the
 *   record on disk;
 * - `apply { ops }`, `reconcile { desired }`: the driver's calls, answered
 *   `{ report, ms }` or `{ error: { code, message, failures }, ms }` (failures kept whole);
 * - `owned`: the items in the record file as saved.
 *
 * @module
 */
import { execFile } from 'node:child_process'
import { readFile } from 'node:fs/promises'
import { DataplaneError } from '../../agent/dataplane/driver.ts'
import { openLinuxDriver, type LinuxDriver, type LinuxDriverOptions } from '../../agent/dataplane/linux.ts'
import { OwnershipRecord } from '../../agent/dataplane/ownership.ts'
import type { DataplaneOp, DataplaneState } from '../../agent/resources/dataplane-ops.ts'
import { serveJsonLines } from './ns-child-runtime.ts'

let driver: LinuxDriver | undefined
let ownershipPath = ''

async function timed(f: () => Promise<unknown>): Promise<Record<string, unknown>> {
  const t0 = performance.now()
  try {
    const report = await f()
    return { report, ms: Math.round(performance.now() - t0) }
  } catch (e) {
    if (!(e instanceof DataplaneError)) throw e
    return { error: { code: e.code, message: e.message, failures: e.failures }, ms: Math.round(performance.now() - t0) }
  }
}

function need(): LinuxDriver {
  if (driver === undefined) throw new Error('Cannot use the driver: send "open" first')
  return driver
}

serveJsonLines({
  run: (p) =>
    new Promise((resolve) => {
      const argv = p.argv as string[]
      execFile(argv[0]!, argv.slice(1), { encoding: 'utf8' }, (err, stdout, stderr) => {
        const code = err === null ? 0 : typeof err.code === 'number' ? err.code : -1
        resolve({ code, stdout, stderr })
      })
    }),
  open: async (p) => {
    const options = p.options as Omit<LinuxDriverOptions, 'ownership'>
    ownershipPath = String(p.ownershipPath)
    const ownership = await OwnershipRecord.load(ownershipPath, 'linux', options.bridge)
    driver = await openLinuxDriver({ ...options, ownership })
    return { owned: ownership.items() }
  },
  apply: (p) => timed(() => need().apply(p.ops as DataplaneOp[])),
  reconcile: (p) => timed(() => need().reconcile(p.desired as DataplaneState)),
  owned: async () => {
    const doc = JSON.parse(await readFile(ownershipPath, 'utf8').catch(() => '{"items":[]}')) as { items: string[] }
    return doc.items
  },
})
