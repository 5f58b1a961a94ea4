/**
 * The durable outbox on a real file system: reopen, crash (SIGKILL of a child process that is
 * appending, at random instants), torn and corrupted WAL tails, and the size bounds.
 */
import { spawn } from 'node:child_process'
import { copyFileSync, existsSync, mkdtempSync, readFileSync, rmSync, statSync, truncateSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import { Outbox, type UplinkLogger } from '../../agent/uplink/outbox.ts'

const OUTBOX_MODULE = resolve(import.meta.dirname, '../../agent/uplink/outbox.ts')
const dirs: string[] = []
const tempDir = (): string => {
  const d = mkdtempSync(join(tmpdir(), 'vdp-outbox-'))
  dirs.push(d)
  return d
}
afterAll(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true })
})

/** Deterministic payload of a given seq so a reader can check every byte. */
function payloadFor(seq: number): Uint8Array {
  const head = `event-${seq}-`
  const out = new Uint8Array(100 + (seq % 50))
  out.set(new TextEncoder().encode(head))
  for (let i = head.length; i < out.length; i++) out[i] = (seq * 31 + i) & 0xff
  return out
}

function expectPayloadsIntact(outbox: Outbox): number[] {
  const seqs: number[] = []
  for (const r of outbox.unacked()) {
    expect(Buffer.from(r.payload).equals(Buffer.from(payloadFor(r.seq)))).toBe(true)
    seqs.push(r.seq)
  }
  return seqs
}

/** Child: appends in commits of 1..40 records forever and prints `c <lastSeq>` after each fsync. */
const CHILD_APPEND = `
const { Outbox } = await import(process.env.OUTBOX_MODULE)
const payloadFor = ${payloadFor.toString()}
const outbox = Outbox.open({ stateDir: process.env.STATE_DIR, autoCommit: false })
let i = 0
for (;;) {
  const n = 1 + (i++ % 40)
  let last = 0
  for (let k = 0; k < n; k++) last = outbox.append(payloadFor)
  if (process.env.ACK_HALF === '1') for (const r of outbox.unacked().slice(0, 3)) outbox.ack(r.seq)
  outbox.commit()
  process.stdout.write('c ' + last + '\\n')
  if (process.env.STOP_AFTER && last >= Number(process.env.STOP_AFTER)) { process.stdout.write('done\\n'); await new Promise(() => {}) }
}
`

interface ChildRun {
  committed: number[]
  acked: boolean
}

function runChild(stateDir: string, opts: { killAfterMs?: number; stopAfter?: number; ackHalf?: boolean }): Promise<ChildRun> {
  return new Promise((resolvePromise, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', CHILD_APPEND], {
      env: {
        ...process.env,
        OUTBOX_MODULE,
        STATE_DIR: stateDir,
        ACK_HALF: opts.ackHalf ? '1' : '0',
        ...(opts.stopAfter ? { STOP_AFTER: String(opts.stopAfter) } : {}),
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    })
    const committed: number[] = []
    let buf = ''
    let stderr = ''
    let started = false
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()))
    child.stdout.on('data', (d: Buffer) => {
      buf += d.toString()
      let nl: number
      while ((nl = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, nl)
        buf = buf.slice(nl + 1)
        if (line.startsWith('c ')) committed.push(Number(line.slice(2)))
        if (!started) {
          started = true
          // Kill at a random instant once the child is writing.
          const delayMs = opts.killAfterMs ?? 0
          if (opts.stopAfter === undefined) setTimeout(() => child.kill('SIGKILL'), delayMs)
        }
        if (line === 'done') child.kill('SIGKILL')
      }
    })
    const guard = setTimeout(() => child.kill('SIGKILL'), 60_000)
    child.on('exit', (code, signal) => {
      clearTimeout(guard)
      if (signal !== 'SIGKILL') reject(new Error(`child exited with ${code}: ${stderr}`))
      else resolvePromise({ committed, acked: opts.ackHalf ?? false })
    })
  })
}

describe('Outbox', () => {
  it('Outbox keeps unacknowledged records and the seq counter across reopen', () => {
    const dir = tempDir()
    const a = Outbox.open({ stateDir: dir, autoCommit: false })
    for (let i = 0; i < 10; i++) a.append(payloadFor)
    a.commit()
    a.ack(1)
    a.ack(2)
    a.ack(5)
    a.close()
    const b = Outbox.open({ stateDir: dir, autoCommit: false })
    expect(expectPayloadsIntact(b)).toEqual([3, 4, 6, 7, 8, 9, 10])
    expect(b.nextSeq).toBe(11)
    // Acknowledge everything: the counter still never goes back.
    for (const r of b.unacked()) b.ack(r.seq)
    b.close()
    const c = Outbox.open({ stateDir: dir, autoCommit: false })
    expect(c.unacked()).toEqual([])
    expect(c.append(payloadFor)).toBe(11)
    c.close()
  })

  it('Outbox hands records to onCommitted only after the group commit', async () => {
    const dir = tempDir()
    const outbox = Outbox.open({ stateDir: dir })
    const seen: number[] = []
    outbox.onCommitted((records) => seen.push(...records.map((r) => r.seq)))
    outbox.append(payloadFor)
    outbox.append(payloadFor)
    expect(seen).toEqual([])
    await new Promise((r) => setImmediate(r))
    expect(seen).toEqual([1, 2])
    expect(outbox.metrics().outbox_commits_total).toBe(1)
    outbox.close()
  })

  it('Outbox survives SIGKILL at random instants: every committed record is kept, seq never reused', async () => {
    const dir = tempDir()
    let everCommittedMax = 0
    for (let round = 0; round < 6; round++) {
      const run = await runChild(dir, { killAfterMs: 20 + Math.floor(Math.random() * 200), ackHalf: round % 2 === 1 })
      expect(run.committed.length).toBeGreaterThan(0)
      const lastCommitted = run.committed[run.committed.length - 1]!
      const outbox = Outbox.open({ stateDir: dir, autoCommit: false })
      const seqs = expectPayloadsIntact(outbox)
      // Contiguous unless the child acknowledged the head; everything reported as committed is present
      // unless acknowledged (the child acks only the oldest three per commit).
      expect(seqs[seqs.length - 1]!).toBeGreaterThanOrEqual(lastCommitted)
      for (let i = 1; i < seqs.length; i++) expect(seqs[i]!).toBeGreaterThan(seqs[i - 1]!)
      if (!run.acked) {
        const first = seqs[0]!
        expect(seqs).toEqual(Array.from({ length: seqs.length }, (_, i) => first + i))
      }
      expect(outbox.nextSeq).toBeGreaterThan(Math.max(lastCommitted, everCommittedMax))
      everCommittedMax = Math.max(everCommittedMax, lastCommitted)
      outbox.close()
    }
  })

  it('Outbox drops a torn or corrupted WAL tail and keeps every earlier commit', async () => {
    const dir = tempDir()
    await runChild(dir, { stopAfter: 400 })
    const wal = join(dir, 'outbox.sqlite-wal')
    expect(existsSync(wal)).toBe(true)
    const walSize = statSync(wal).size
    expect(walSize).toBeGreaterThan(4096)
    const original = readFileSync(wal)
    let prefixes = 0
    for (let round = 0; round < 12; round++) {
      const copy = tempDir()
      copyFileSync(join(dir, 'outbox.sqlite'), join(copy, 'outbox.sqlite'))
      const torn = Buffer.from(original)
      const cut = 32 + Math.floor(Math.random() * (walSize - 32))
      if (round % 2 === 0) {
        // A write torn at an arbitrary byte.
        writeFileSync(join(copy, 'outbox.sqlite-wal'), torn)
        truncateSync(join(copy, 'outbox.sqlite-wal'), cut)
      } else {
        // Garbage where the last pages were being written.
        for (let i = cut; i < Math.min(walSize, cut + 512); i++) torn[i] = (torn[i]! ^ 0x5a) & 0xff
        writeFileSync(join(copy, 'outbox.sqlite-wal'), torn)
      }
      const outbox = Outbox.open({ stateDir: copy, autoCommit: false })
      const seqs = expectPayloadsIntact(outbox)
      // A prefix of the committed stream: 1..k without holes.
      expect(seqs).toEqual(Array.from({ length: seqs.length }, (_, i) => i + 1))
      if (seqs.length > 0) prefixes++
      // Still writable and the counter continues after what survived.
      expect(outbox.append(payloadFor)).toBe(seqs.length + 1)
      outbox.close()
    }
    expect(prefixes).toBeGreaterThan(0)
    // The untouched copy has everything.
    const whole = Outbox.open({ stateDir: dir, autoCommit: false })
    expect(expectPayloadsIntact(whole).length).toBeGreaterThanOrEqual(400)
    whole.close()
  })

  it('Outbox refuses events when outboxEventsMax is reached, logs once, and asks for a resync after draining', () => {
    const dir = tempDir()
    const logs: string[] = []
    const log: UplinkLogger = {
      info: (m) => logs.push(`info ${m}`),
      warn: (m) => logs.push(`warn ${m}`),
      error: (m) => logs.push(`error ${m}`),
    }
    const outbox = Outbox.open({ stateDir: dir, autoCommit: false, outboxEventsMax: 20 }, log)
    let resyncs = 0
    outbox.onResyncNeeded(() => resyncs++)
    for (let i = 0; i < 20; i++) expect(outbox.append(payloadFor)).toBe(i + 1)
    expect(outbox.append(payloadFor)).toBeUndefined()
    expect(outbox.append(payloadFor)).toBeUndefined()
    expect(outbox.full).toBe(true)
    outbox.commit()
    const m = outbox.metrics()
    expect(m.outbox_dropped_total).toBe(2)
    expect(m.outbox_events).toBe(20)
    expect(m.outbox_full).toBe(1)
    expect(logs.filter((l) => l.startsWith('warn')).length).toBe(1)
    outbox.ack(1)
    expect(outbox.full).toBe(true) // hysteresis: 90 %
    outbox.ack(2)
    expect(outbox.full).toBe(false)
    expect(resyncs).toBe(1)
    // The refused events used no seq: the stream has no gap.
    expect(outbox.append(payloadFor)).toBe(21)
    outbox.close()
  })

  it('Outbox bounds stored bytes by outboxBytesMax', () => {
    const dir = tempDir()
    const outbox = Outbox.open({ stateDir: dir, autoCommit: false, outboxBytesMax: 4096 })
    const big = () => new Uint8Array(1000)
    let accepted = 0
    for (let i = 0; i < 10; i++) if (outbox.append(big) !== undefined) accepted++
    expect(accepted).toBe(3) // 3 × (1000 + 32) ≤ 4096 < 4 × 1032
    expect(outbox.metrics().outbox_bytes).toBeLessThanOrEqual(4096)
    expect(outbox.metrics().outbox_dropped_total).toBe(7)
    outbox.close()
  })
})
