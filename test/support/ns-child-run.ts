/**
 * Runs one exported function of a module inside a namespace, for `NetnsLab.runNode`:
 * request `{ op: 'run', modulePath, exportName, args }`, reply with the function's result.
 *
 * @module
 */
import { pathToFileURL } from 'node:url'
import { serveJsonLines } from './ns-child-runtime.ts'

serveJsonLines({
  run: async (p) => {
    const mod = (await import(pathToFileURL(String(p.modulePath)).href)) as Record<string, unknown>
    const fn = mod[String(p.exportName)]
    if (typeof fn !== 'function') throw new Error(`Cannot run ${String(p.exportName)}: not a function exported by ${String(p.modulePath)}`)
    return await (fn as (...a: unknown[]) => unknown)(...((p.args as unknown[]) ?? []))
  },
})
