/**
 * Child process for the durability test: ingests batches into a SQLite fleet store and prints
 * `committed <n>` after each batch returns (n = events committed so far). Bounded: stops
 * after `maxBatches` batches.
 */
import { SqliteFleetStore } from '../../../edge/store/sqlite-fleet-store.ts'
import { vsiEvent, T0 } from './events.ts'

const [path, batchSizeText = '50', maxBatchesText = '2000'] = process.argv.slice(2)
const batchSize = Number(batchSizeText)
const store = new SqliteFleetStore({ path: path!, synchronous: 'FULL' })
let seq = 0
for (let b = 0; b < Number(maxBatchesText); b++) {
  const events = Array.from({ length: batchSize }, () => {
    seq++
    return vsiEvent({ seq, vsi: seq, time: T0 + seq })
  })
  store.applyEvents(events, { nowMs: T0 + seq, migrationGraceMs: 30_000 })
  process.stdout.write(`committed ${seq}\n`)
}
store.close()
