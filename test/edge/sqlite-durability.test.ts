import { spawn } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createInterface } from 'node:readline'
import { afterAll, describe, expect, it } from 'vitest'
import { SqliteFleetStore } from '../../edge/store/sqlite-fleet-store.ts'
import { T0, vsiEvent, vsiIdOf } from './support/events.ts'

const dir = mkdtempSync(join(tmpdir(), 'vdp-edge-durability-'))
afterAll(() => rmSync(dir, { recursive: true, force: true }))

/** Runs the child until it has reported `killAfter` commits, then SIGKILLs it mid-ingest. */
async function ingestAndKill(path: string, killAfter: number): Promise<number> {
  const child = spawn(process.execPath, ['--import', 'tsx', new URL('./support/ingest-child.ts', import.meta.url).pathname, path], {
    stdio: ['ignore', 'pipe', 'inherit'],
  })
  let committed = 0
  let lines = 0
  const exited = new Promise<NodeJS.Signals | null>((resolve) => child.on('exit', (_code, signal) => resolve(signal)))
  for await (const line of createInterface({ input: child.stdout })) {
    const m = /^committed (\d+)$/.exec(line)
    if (m) committed = Number(m[1])
    if (++lines >= killAfter) {
      child.kill('SIGKILL')
      break
    }
  }
  expect(await exited).toBe('SIGKILL')
  return committed
}

describe('SqliteFleetStore durability', () => {
  it('keeps every committed event of a child process SIGKILLed mid-ingest', async () => {
    for (const [round, killAfter] of [[1, 15], [2, 40]] as const) {
      const path = join(dir, `fleet-${round}.sqlite`)
      const acknowledged = await ingestAndKill(path, killAfter)
      expect(acknowledged).toBeGreaterThan(0)
      const store = new SqliteFleetStore({ path })
      try {
        expect(store.db.pragma('integrity_check', { simple: true })).toBe('ok')
        const { events, vsis } = store.counts()
        expect(events).toBeGreaterThanOrEqual(acknowledged)
        expect(vsis).toBe(events)
        // Batches are atomic: what is there is whole batches of 50.
        expect(events % 50).toBe(0)
        for (const n of [1, Math.ceil(acknowledged / 2), acknowledged]) {
          expect(store.getVsi(vsiIdOf(n))?.state).toBe('associated')
        }
        // Redelivery after the crash is deduplicated.
        const again = store.applyEvents([vsiEvent({ seq: acknowledged, vsi: acknowledged, time: T0 + acknowledged })], {
          nowMs: T0,
          migrationGraceMs: 1000,
        })
        expect(again).toMatchObject({ applied: 0, duplicates: 1 })
      } finally {
        store.close()
      }
    }
  })
})
