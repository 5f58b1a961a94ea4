/**
 * lldpad / lldptool / vdptool as the independent 802.1Qbg peer of the integration tests and
 * benchmarks (Debian package `lldpad`). How lldpad has to be run, and why, is in
 * `../shared/spec/lldpad-interop.md`; the gotcha numbers quoted below are from there.
 *
 * - {@link startLldpad}: one lldpad in a network namespace, private `/dev/shm` (gotcha 1),
 *   `-p`, own `-f` config, `-V7` log to a file; EVB configured first and the NCB agent enabled
 *   last (gotcha 3); waits until EVB pushed its parameters to VDP (gotcha 5).
 * - {@link VdpTool}: typed `vdptool` (associate, pre-associate, de-associate, query).
 * - {@link parseEvbTlv}: `lldptool -t [-n] -i IF -g ncb -V evb` into typed fields.
 *
 * Needs root. Nothing here touches the root network namespace.
 *
 * @module
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process'
import { closeSync, existsSync, mkdtempSync, openSync, readFileSync, readSync, rmSync, statSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'

// ---------------------------------------------------------------------------------------------
// process helpers

export interface RunResult {
  readonly stdout: string
  readonly stderr: string
  /** Exit code; `null` when the process was killed by a signal. */
  readonly code: number | null
  /** Wall-clock time from spawn to exit, milliseconds. */
  readonly elapsedMs: number
}

export interface RunOptions {
  /** Kill the command after this many milliseconds (default 30 s). */
  readonly timeoutMs?: number
}

/** Runs `file args...` and resolves with its output whatever the exit code. */
export function run(file: string, args: readonly string[], options: RunOptions = {}): Promise<RunResult> {
  const startedAt = performance.now()
  return new Promise((resolve, reject) => {
    execFile(
      file,
      [...args],
      { timeout: options.timeoutMs ?? 30_000, maxBuffer: 64 * 1024 * 1024, encoding: 'utf8' },
      (error, stdout, stderr) => {
        const elapsedMs = performance.now() - startedAt
        if (error === null) {
          resolve({ stdout, stderr, code: 0, elapsedMs })
          return
        }
        const code = (error as { code?: unknown }).code
        if (typeof code === 'string') {
          reject(new Error(`cannot run ${file}: ${error.message}`))
          return
        }
        resolve({ stdout, stderr, code: typeof code === 'number' ? code : null, elapsedMs })
      },
    )
  })
}

/** Runs a command; throws with its output when it exits non-zero. */
export async function runOk(file: string, args: readonly string[], options: RunOptions = {}): Promise<RunResult> {
  const r = await run(file, args, options)
  if (r.code !== 0) {
    const output = (r.stderr + r.stdout).trim().slice(0, 2000)
    throw new Error(`\`${file} ${args.join(' ')}\` exited with ${String(r.code)}: ${output}`)
  }
  return r
}

/** `ip netns exec <netns> <file> <args...>` */
export function runIn(netns: string, file: string, args: readonly string[], options: RunOptions = {}): Promise<RunResult> {
  return run('ip', ['netns', 'exec', netns, file, ...args], options)
}

/** `ip netns exec <netns> <file> <args...>`, throwing on a non-zero exit. */
export function runInOk(netns: string, file: string, args: readonly string[], options: RunOptions = {}): Promise<RunResult> {
  return runOk('ip', ['netns', 'exec', netns, file, ...args], options)
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms))
}

/** Polls `probe` every `intervalMs` until it returns something other than `undefined`. */
export async function waitFor<T>(
  what: string,
  probe: () => Promise<T | undefined> | T | undefined,
  timeoutMs: number,
  intervalMs = 50,
): Promise<T> {
  const deadline = performance.now() + timeoutMs
  for (;;) {
    const value = await probe()
    if (value !== undefined) return value
    if (performance.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`)
    await sleep(intervalMs)
  }
}

/** Waits for a spawned child to exit; resolves `false` if it is still running after `timeoutMs`. */
export function waitForExit(child: ChildProcess, timeoutMs: number): Promise<boolean> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve(true)
  return new Promise((resolve) => {
    const timer = setTimeout(() => resolve(false), timeoutMs)
    child.once('exit', () => {
      clearTimeout(timer)
      resolve(true)
    })
  })
}

/**
 * Ends a process group we started (`detached: true` makes the child its leader): SIGTERM,
 * then SIGKILL after `graceMs`.
 */
export async function killGroup(child: ChildProcess, graceMs = 3000, signal: NodeJS.Signals = 'SIGTERM'): Promise<void> {
  const pid = child.pid
  if (pid === undefined || child.exitCode !== null || child.signalCode !== null) return
  try {
    process.kill(-pid, signal)
  } catch {
    return // already gone
  }
  if (await waitForExit(child, graceMs)) return
  try {
    process.kill(-pid, 'SIGKILL')
  } catch {
    return
  }
  await waitForExit(child, 2000)
}

// ---------------------------------------------------------------------------------------------
// EVB settings

export type EvbRole = 'station' | 'bridge'

/**
 * EVB TLV settings of one lldpad NCB agent (`lldptool -T -g ncb -V evb -c key=value`, see
 * `man lldptool-evb22`). Unset fields keep lldpad's defaults (retries 3, RTE 8, RWD 20, RKA 20,
 * GroupID / RR off). lldpad negotiates each of retries/RTE/RWD/RKA to the larger of the two
 * ends, so a small RKA must be configured on both.
 */
export interface EvbSettings {
  /** `enabletx`: send the EVB TLV (default here: true; lldpad refuses VDP requests without it). */
  readonly enableTx?: boolean
  /** `evbgpid`: GroupID filter formats (both ends need it). */
  readonly gpid?: boolean
  /** `evbrrreq`: station asks for reflective relay. */
  readonly rrReq?: boolean
  /** `evbrrcap`: bridge can do reflective relay. */
  readonly rrCap?: boolean
  /** `ecpretries`, 0..7. */
  readonly ecpRetries?: number
  /** `ecprte`, 0..31: ECP ack timer 10 us * 2^RTE. */
  readonly ecpRte?: number
  /** `vdprwd`, 0..31: resource wait delay 10 us * 2^RWD. */
  readonly vdpRwd?: number
  /**
   * `vdprka`, 0..31 (`man lldptool-evb22`): keep-alive period 10 us * 2^RKA. 14 = 163.84 ms,
   * 20 = 10.49 s (default). See {@link keepAliveTimings}.
   */
  readonly vdpRka?: number
}

export interface KeepAliveTimings {
  readonly ackTimerMs: number
  /** Station: re-sends each VSI TLV this often. */
  readonly reinitKeepAliveMs: number
  /** Bridge: drops a VSI (unsolicited De-Associate) after this long without a keep-alive. */
  readonly toutKeepAliveMs: number
  /** Station: drops a VSI whose request got no response for this long. */
  readonly respWaitDelayMs: number
}

/** Timer values lldpad derives from the operational EVB parameters (vdp-spec.md §3.2). */
export function keepAliveTimings(p: { retries: number; rte: number; rwd: number; rka: number }): KeepAliveTimings {
  const ackTimerMs = 0.01 * 2 ** p.rte
  const reinitKeepAliveMs = 0.01 * 2 ** p.rka
  const resourceWaitDelayMs = 0.01 * 2 ** p.rwd
  return {
    ackTimerMs,
    reinitKeepAliveMs,
    toutKeepAliveMs: 1.5 * (reinitKeepAliveMs + (2 * p.retries + 1) * ackTimerMs),
    respWaitDelayMs: 1.5 * (resourceWaitDelayMs + (2 * p.retries + 1) * ackTimerMs),
  }
}

function checkRange(name: string, value: number | undefined, max: number): void {
  if (value === undefined) return
  if (!Number.isInteger(value) || value < 0 || value > max) {
    throw new RangeError(`EVB setting ${name} must be an integer in 0..${max}, got ${value}`)
  }
}

/** The `-c key=value` list for lldptool, EVB mode first. */
export function evbConfigPairs(role: EvbRole, s: EvbSettings): string[] {
  checkRange('ecpRetries', s.ecpRetries, 7)
  checkRange('ecpRte', s.ecpRte, 31)
  checkRange('vdpRwd', s.vdpRwd, 31)
  checkRange('vdpRka', s.vdpRka, 31)
  const yesNo = (b: boolean): string => (b ? 'yes' : 'no')
  const pairs = [`evbmode=${role}`, `enabletx=${yesNo(s.enableTx ?? true)}`]
  if (s.gpid !== undefined) pairs.push(`evbgpid=${yesNo(s.gpid)}`)
  if (s.rrReq !== undefined) pairs.push(`evbrrreq=${yesNo(s.rrReq)}`)
  if (s.rrCap !== undefined) pairs.push(`evbrrcap=${yesNo(s.rrCap)}`)
  if (s.ecpRetries !== undefined) pairs.push(`ecpretries=${s.ecpRetries}`)
  if (s.ecpRte !== undefined) pairs.push(`ecprte=${s.ecpRte}`)
  if (s.vdpRwd !== undefined) pairs.push(`vdprwd=${s.vdpRwd}`)
  if (s.vdpRka !== undefined) pairs.push(`vdprka=${s.vdpRka}`)
  return pairs
}

// ---------------------------------------------------------------------------------------------
// EVB TLV as lldptool prints it

/**
 * One EVB TLV (802.1Qbg-2012, OUI 00-80-C2 subtype 0x0D) as `lldptool -t -i IF -g ncb -V evb`
 * prints it (local TLV; with `-n` the neighbour's):
 *
 * ```
 * EVB Configuration TLV
 * 	bridge:bgid,rrcap,rrctr(0x7)
 * 	station:sgid,rrreq,rrstat(0xd)
 * 	retries:3 rte:8
 * 	mode:station r/l:1 rwd:20
 * 	r/l:1 rka:14
 * ```
 */
export interface EvbTlv {
  readonly bridgeStatus: { readonly raw: number; readonly bgid: boolean; readonly rrcap: boolean; readonly rrctr: boolean }
  readonly stationStatus: { readonly raw: number; readonly sgid: boolean; readonly rrreq: boolean; readonly rrstat: number }
  readonly retries: number
  readonly rte: number
  readonly mode: EvbRole | 'unknown'
  /** ROL bit of octet 9: 1 = the remote RWD was adopted. */
  readonly rwdRemote: boolean
  readonly rwd: number
  /** ROL bit of octet 10: 1 = the remote RKA was adopted. */
  readonly rkaRemote: boolean
  readonly rka: number
}

/** Parses lldptool's EVB TLV printout; `undefined` when no TLV is shown (none known / TX off). */
export function parseEvbTlv(text: string): EvbTlv | undefined {
  const num = (re: RegExp): number | undefined => {
    const m = re.exec(text)
    return m?.[1] === undefined ? undefined : Number.parseInt(m[1], 10)
  }
  // status octets are printed in hex, with or without 0x: "bridge:bgid,rrcap,rrctr(0x7)", "bridge:(00)"
  const status = (re: RegExp): number | undefined => {
    const m = re.exec(text)
    return m?.[1] === undefined ? undefined : Number.parseInt(m[1], 16)
  }
  const bridgeRaw = status(/^\s*bridge:[^(\n]*\((?:0x)?([0-9a-f]+)\)/im)
  const stationRaw = status(/^\s*station:[^(\n]*\((?:0x)?([0-9a-f]+)\)/im)
  const retries = num(/retries:(\d+)/)
  const rte = num(/rte:(\d+)/)
  const modeMatch = /mode:(\w+)\s+r\/l:(\d)\s+rwd:(\d+)/.exec(text)
  const rkaMatch = /^\s*r\/l:(\d)\s+rka:(\d+)/m.exec(text)
  if (
    bridgeRaw === undefined || stationRaw === undefined || retries === undefined || rte === undefined ||
    modeMatch === null || rkaMatch === null
  ) {
    return undefined
  }
  const modeWord = modeMatch[1]
  return {
    bridgeStatus: { raw: bridgeRaw, bgid: (bridgeRaw & 0x4) !== 0, rrcap: (bridgeRaw & 0x2) !== 0, rrctr: (bridgeRaw & 0x1) !== 0 },
    stationStatus: { raw: stationRaw, sgid: (stationRaw & 0x8) !== 0, rrreq: (stationRaw & 0x4) !== 0, rrstat: stationRaw & 0x3 },
    retries,
    rte,
    mode: modeWord === 'bridge' || modeWord === 'station' ? modeWord : 'unknown',
    rwdRemote: modeMatch[2] === '1',
    rwd: Number(modeMatch[3]),
    rkaRemote: rkaMatch[1] === '1',
    rka: Number(rkaMatch[2]),
  }
}

/** Operational VDP parameters, as lldpad's `data_from_evb` log line reports them. */
export interface VdpEvbParams {
  readonly rwd: number
  readonly rka: number
  readonly gpid: boolean
  readonly retries: number
  readonly rte: number
  readonly evb: boolean
}

/** All `data_from_evb:IF rwd:.. rka:.. gpid:.. retry:.. rte:.. evb:..` lines of a log, in order. */
export function parseDataFromEvb(log: string, ifname: string): VdpEvbParams[] {
  const out: VdpEvbParams[] = []
  const re = /^\S+ data_from_evb:(\S+) rwd:(\d+) rka:(\d+) gpid:(\d+) retry:(\d+) rte:(\d+) evb:(\d+)/gm
  for (const m of log.matchAll(re)) {
    if (m[1] !== ifname) continue
    out.push({
      rwd: Number(m[2]),
      rka: Number(m[3]),
      gpid: m[4] === '1',
      retries: Number(m[5]),
      rte: Number(m[6]),
      evb: m[7] === '1',
    })
  }
  return out
}

// ---------------------------------------------------------------------------------------------
// VSI events in lldpad's log

/** A VSI event as lldpad logs it when it notifies its clients (`vdp22_sendevent`). */
export interface LoggedVsiEvent {
  /** Log timestamp as printed (HH:MM:SS.us). */
  readonly time: string
  readonly mode: VdpMode
  readonly mgrid2: string
  readonly typeId: number
  readonly typeVersion: number
  readonly uuid: string
  /** Exact outcome: low octet status, high octet keep-alive/ack timeout, tx error bits. */
  readonly hints: number
  readonly filters: readonly string[]
}

/**
 * Decodes the `msg:` of `vdp22_sendevent` lines: 4 hex digits total length, then per field
 * 2 hex digits key length, key, 4 hex digits value length, value (lldpad's clif encoding).
 */
export function parseLoggedVsiEvents(log: string, ifname: string): LoggedVsiEvent[] {
  const out: LoggedVsiEvent[] = []
  const re = /^(\S+) vdp22_sendevent:(\S+) .*? msg:([0-9a-f]{4})(\S*)$/gm
  for (const m of log.matchAll(re)) {
    if (m[2] !== ifname) continue
    const body = m[4] ?? ''
    const fields = new Map<string, string>()
    const filters: string[] = []
    let at = 0
    while (at + 2 <= body.length) {
      const keyLength = Number.parseInt(body.slice(at, at + 2), 16)
      const key = body.slice(at + 2, at + 2 + keyLength)
      const valueLength = Number.parseInt(body.slice(at + 2 + keyLength, at + 6 + keyLength), 16)
      const value = body.slice(at + 6 + keyLength, at + 6 + keyLength + valueLength)
      if (Number.isNaN(keyLength) || Number.isNaN(valueLength)) break
      if (key === 'filter') filters.push(value)
      else fields.set(key, value)
      at += 6 + keyLength + valueLength
    }
    const mode = fields.get('mode')
    if (mode !== 'assoc' && mode !== 'deassoc' && mode !== 'preassoc' && mode !== 'preassoc-rr') continue
    out.push({
      time: m[1] ?? '',
      mode,
      mgrid2: fields.get('mgrid2') ?? '',
      typeId: Number(fields.get('typeid')),
      typeVersion: Number(fields.get('typeidver')),
      uuid: (fields.get('uuid') ?? '').toLowerCase(),
      hints: Number(fields.get('hints')),
      filters,
    })
  }
  return out
}

// ---------------------------------------------------------------------------------------------
// lldpad process

export interface StartLldpadOptions {
  readonly netns: string
  readonly ifname: string
  readonly role: EvbRole
  readonly evb?: EvbSettings
  /** Directory for config and log (created if missing); default: a new temp dir, removed by stop(). */
  readonly dir?: string
  /** Log verbosity, `-V` (default 7: the harness reads debug lines from the log). */
  readonly verbosity?: number
  /**
   * Wait until EVB pushed its parameters to VDP (`data_from_evb:IF ... evb:1`, gotcha 5)
   * before resolving (default true). With no EVB peer on the link yet, lldpad still pushes its
   * own values after ~1 s.
   */
  readonly waitForEvb?: boolean
  readonly startTimeoutMs?: number
}

export interface LldpadHandle {
  readonly netns: string
  readonly ifname: string
  readonly role: EvbRole
  readonly pid: number
  readonly dir: string
  readonly configPath: string
  readonly logPath: string
  readonly vdptool: VdpTool
  /** `lldptool <args>` inside the namespace. */
  lldptool(args: readonly string[]): Promise<RunResult>
  /** Our EVB TLV as lldpad sends it (`-t -i IF -g ncb -V evb`). */
  evbLocal(): Promise<EvbTlv | undefined>
  /** The peer's last EVB TLV (`-t -n -i IF -g ncb -V evb`). */
  evbNeighbor(): Promise<EvbTlv | undefined>
  /** The configured EVB keys (`-t -i IF -g ncb -V evb -c`), e.g. `{ vdprka: '14', evbmode: 'station' }`. */
  evbConfig(): Promise<Record<string, string>>
  /** Waits until the neighbour's EVB TLV is known and satisfies `predicate`. */
  waitForNeighborEvb(predicate?: (tlv: EvbTlv) => boolean, timeoutMs?: number): Promise<EvbTlv>
  /**
   * Waits for a `data_from_evb ... evb:1` line (after log offset `fromOffset`) whose values
   * satisfy `predicate`; resolves with those values.
   */
  waitForVdpParams(predicate?: (p: VdpEvbParams) => boolean, timeoutMs?: number, fromOffset?: number): Promise<VdpEvbParams>
  /** The last parameters EVB pushed to VDP, if any. */
  vdpParams(): VdpEvbParams | undefined
  /**
   * The VSI events lldpad sent to its clients (`vdp22_sendevent` log lines, -V7), with the
   * exact `hints` outcome number that `vdptool -W` only prints as text. From log offset
   * `fromOffset` on.
   */
  vsiEvents(fromOffset?: number): LoggedVsiEvent[]
  /** Waits for a logged VSI event (after `fromOffset`) for `uuid`. */
  waitForVsiEvent(uuid: string, predicate?: (e: LoggedVsiEvent) => boolean, timeoutMs?: number, fromOffset?: number): Promise<LoggedVsiEvent>
  /** The `-V7` log of this process so far (a restart in the same dir appends to the file). */
  log(): string
  /** Current log size in bytes (an offset for {@link waitForLog}). */
  logOffset(): number
  /** Waits until the log (after `fromOffset`) matches `re`; resolves with the match. */
  waitForLog(re: RegExp, timeoutMs?: number, fromOffset?: number): Promise<RegExpExecArray>
  /** VmRSS of the lldpad process, kB. */
  rssKb(): number | undefined
  readonly exited: boolean
  /** SIGTERM the process group (SIGKILL after 3 s); removes the temp dir unless kept. */
  stop(options?: { keepFiles?: boolean }): Promise<void>
}

/**
 * Starts lldpad in `netns` and configures the NCB agent of `ifname` as EVB `role`.
 *
 * The private `/dev/shm` lives in the mount namespace that `ip netns exec` creates for this
 * process only (iproute2 makes `/` a slave first), so it goes away with the process; nothing is
 * mounted in the caller's namespace.
 */
export async function startLldpad(options: StartLldpadOptions): Promise<LldpadHandle> {
  const { netns, ifname, role } = options
  const evb = options.evb ?? {}
  const pairs = evbConfigPairs(role, evb) // validates before anything starts
  const ownDir = options.dir === undefined
  const dir = options.dir ?? mkdtempSync(join(tmpdir(), `lldpad-${netns}-`))
  await runOk('mkdir', ['-p', dir])
  const configPath = join(dir, `lldpad-${ifname}.conf`)
  const logPath = join(dir, `lldpad-${ifname}.log`)
  // a restart in the same dir appends to the log: everything here reads from this offset on
  const baseOffset = existsSync(logPath) ? statSync(logPath).size : 0
  const logFd = openSync(logPath, 'a')
  const script = 'mount -t tmpfs -o size=8m lldpad-shm /dev/shm && exec stdbuf -oL -eL lldpad -p -V"$1" -f "$2"'
  const child = spawn(
    'ip',
    ['netns', 'exec', netns, 'sh', '-c', script, 'lldpad-start', String(options.verbosity ?? 7), configPath],
    { detached: true, stdio: ['ignore', logFd, logFd] },
  )
  closeSync(logFd)
  let exited = false
  child.once('exit', () => {
    exited = true
  })
  const pid = child.pid
  if (pid === undefined) throw new Error(`could not start lldpad in ${netns}`)

  const logOffset = (): number => {
    try {
      return statSync(logPath).size
    } catch {
      return 0
    }
  }
  const lldptool = (args: readonly string[]): Promise<RunResult> => runIn(netns, 'lldptool', args, { timeoutMs: 10_000 })
  /** Log bytes from `from` to the current end (the -V7 log grows by megabytes: no full reads). */
  const readLogFrom = (from: number): string => {
    const size = logOffset()
    if (size <= from) return ''
    const buffer = Buffer.alloc(size - from)
    const fd = openSync(logPath, 'r')
    try {
      const n = readSync(fd, buffer, 0, buffer.length, from)
      return buffer.subarray(0, n).toString('utf8')
    } finally {
      closeSync(fd)
    }
  }
  const logTail = (): string => readLogFrom(Math.max(0, logOffset() - 3000))
  /** Polls the complete log lines after `fromOffset` until `extract` finds something. */
  const pollLog = <T>(what: string, fromOffset: number, timeoutMs: number, extract: (text: string) => T | undefined): Promise<T> => {
    let cursor = fromOffset
    let text = ''
    return waitFor(`${what} in ${logPath}`, () => {
      if (exited) throw new Error(`lldpad in ${netns} exited; log tail:\n${logTail()}`)
      const chunk = readLogFrom(cursor)
      const lastNewline = chunk.lastIndexOf('\n')
      if (lastNewline < 0) return undefined
      text += chunk.slice(0, lastNewline + 1)
      cursor += Buffer.byteLength(chunk.slice(0, lastNewline + 1))
      return extract(text)
    }, timeoutMs, 25)
  }
  const waitForLog = (re: RegExp, timeoutMs = 10_000, fromOffset = baseOffset): Promise<RegExpExecArray> =>
    pollLog(`/${re.source}/`, fromOffset, timeoutMs, (text) => re.exec(text) ?? undefined)
  const vdpParams = (): VdpEvbParams | undefined => parseDataFromEvb(readLogFrom(baseOffset), ifname).at(-1)
  const waitForVdpParams = (
    predicate: (p: VdpEvbParams) => boolean = () => true,
    timeoutMs = 10_000,
    fromOffset = baseOffset,
  ): Promise<VdpEvbParams> =>
    pollLog(`data_from_evb:${ifname} ... evb:1`, fromOffset, timeoutMs, (text) =>
      parseDataFromEvb(text, ifname).find((p) => p.evb && predicate(p)),
    )
  const evbLocal = async (): Promise<EvbTlv | undefined> =>
    parseEvbTlv((await lldptool(['-t', '-i', ifname, '-g', 'ncb', '-V', 'evb'])).stdout)
  const evbNeighbor = async (): Promise<EvbTlv | undefined> =>
    parseEvbTlv((await lldptool(['-t', '-n', '-i', ifname, '-g', 'ncb', '-V', 'evb'])).stdout)

  let stopped = false
  const handle: LldpadHandle = {
    netns,
    ifname,
    role,
    pid,
    dir,
    configPath,
    logPath,
    vdptool: new VdpTool(netns, ifname, {
      offset: logOffset,
      waitForEvent: async (uuid, fromOffset, timeoutMs) => {
        const wanted = normalizeUuid(uuid)
        const find = (text: string): LoggedVsiEvent | undefined =>
          parseLoggedVsiEvents(text, ifname).find((e) => normalizeUuid(e.uuid) === wanted)
        if (timeoutMs <= 0) return find(readLogFrom(fromOffset))
        try {
          return await pollLog(`VSI event for ${uuid}`, fromOffset, timeoutMs, find)
        } catch {
          return undefined
        }
      },
    }),
    lldptool,
    evbLocal,
    evbNeighbor,
    evbConfig: async () => {
      const r = await lldptool(['-t', '-i', ifname, '-g', 'ncb', '-V', 'evb', '-c'])
      const out: Record<string, string> = {}
      for (const m of r.stdout.matchAll(/^(\w+)=(.*)$/gm)) if (m[1] !== undefined) out[m[1]] = (m[2] ?? '').trim()
      return out
    },
    waitForNeighborEvb: (predicate = () => true, timeoutMs = 10_000) =>
      waitFor(`EVB TLV of the peer of ${ifname}`, async () => {
        const tlv = await evbNeighbor()
        return tlv !== undefined && predicate(tlv) ? tlv : undefined
      }, timeoutMs, 100),
    waitForVdpParams,
    vdpParams,
    vsiEvents: (fromOffset = baseOffset) => parseLoggedVsiEvents(readLogFrom(fromOffset), ifname),
    waitForVsiEvent: (uuid, predicate = () => true, timeoutMs = 10_000, fromOffset = baseOffset) => {
      const wanted = normalizeUuid(uuid)
      return pollLog(`VSI event for ${uuid}`, fromOffset, timeoutMs, (text) =>
        parseLoggedVsiEvents(text, ifname).find((e) => normalizeUuid(e.uuid) === wanted && predicate(e)),
      )
    },
    log: () => readLogFrom(baseOffset),
    logOffset,
    waitForLog,
    rssKb: () => {
      try {
        const m = /^VmRSS:\s+(\d+)\s+kB/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))
        return m?.[1] === undefined ? undefined : Number(m[1])
      } catch {
        return undefined
      }
    },
    get exited() {
      return exited
    },
    stop: async ({ keepFiles = false } = {}) => {
      if (stopped) return
      stopped = true
      await killGroup(child)
      if (ownDir && !keepFiles) rmSync(dir, { recursive: true, force: true })
    },
  }

  try {
    const startTimeoutMs = options.startTimeoutMs ?? 10_000
    // control socket up: `lldptool -p` prints lldpad's pid once it answers (gotcha 2)
    await waitFor(`lldpad control socket in ${netns}`, async () => {
      if (exited) throw new Error(`lldpad in ${netns} exited at start; log tail:\n${logTail()}`)
      const r = await lldptool(['-p'])
      return r.code === 0 && /^\d+\s*$/m.test(r.stdout) ? true : undefined
    }, startTimeoutMs, 25)
    // gotcha 3: EVB first, enable the agent last
    for (const pair of pairs) {
      const r = await lldptool(['-T', '-i', ifname, '-g', 'ncb', '-V', 'evb', '-c', pair])
      if (r.code === 0) continue
      // restarted on a kept config: `enabletx=yes` answers "Failed" when it is already on
      const [key = '', value = ''] = pair.split('=')
      const current = await handle.evbConfig()
      const have = current[key] ?? current[key === 'enabletx' ? 'enableTx' : key]
      const normalized = have === 'true' ? 'yes' : have === 'false' ? 'no' : have
      if (normalized !== value) {
        throw new Error(`lldptool -V evb -c ${pair} on ${ifname} failed: ${(r.stdout + r.stderr).trim()}`)
      }
    }
    const admin = await lldptool(['-L', '-i', ifname, '-g', 'ncb', 'adminStatus=rxtx'])
    if (admin.code !== 0 || !/adminStatus = rxtx/.test(admin.stdout)) {
      throw new Error(`lldptool adminStatus=rxtx on ${ifname} failed: ${(admin.stdout + admin.stderr).trim()}`)
    }
    // the role VDP22 latched on the first EVB tick (1 = bridge, 2 = station)
    const started = await waitForLog(new RegExp(`evb22_start_modules:${ifname} START role:(\\d)`), startTimeoutMs)
    const latched = started[1] === '1' ? 'bridge' : 'station'
    if (latched !== role) throw new Error(`lldpad on ${ifname} started VDP22 as ${latched}, wanted ${role} (gotcha 3)`)
    if (options.waitForEvb ?? true) await waitForVdpParams(() => true, startTimeoutMs)
  } catch (error) {
    await handle.stop({ keepFiles: true })
    throw new Error(`startLldpad(${netns}/${ifname}, ${role}) failed (files kept in ${dir}): ${(error as Error).message}`)
  }
  return handle
}

// ---------------------------------------------------------------------------------------------
// vdptool

/** One filter entry. `vid` is the 12-bit VID (0 = "bridge, pick one"). */
export interface VdpFilter {
  readonly vid: number
  readonly mac?: string
  readonly groupId?: number
  /** PS bit (priority present). */
  readonly ps?: boolean
  /** Priority code point 0..7. */
  readonly pcp?: number
}

export type VdpHints = 'none' | 'to' | 'from'

export interface VsiSpec {
  /** Manager ID: up to 15 alphanumerics (vdptool `mgrid2`). */
  readonly mgrid2: string
  readonly typeId: number
  readonly typeVersion: number
  readonly uuid: string
  /** Migration hints: `to` = M bit, `from` = S bit (default none). */
  readonly hints?: VdpHints
  /** One or more entries, all of the same format. */
  readonly filters: readonly VdpFilter[]
}

/** vdptool's `-V` / `mode=` words. */
export type VdpMode = 'preassoc' | 'preassoc-rr' | 'assoc' | 'deassoc'

/** Filter Info formats (802.1Q 41.2.9). */
export type FilterFormat = 1 | 2 | 3 | 4

export interface ParsedFilter {
  readonly format: FilterFormat
  /** The whole 16-bit PS/PCP/VID word. */
  readonly vidWord: number
  readonly vid: number
  readonly ps: boolean
  readonly pcp: number
  readonly mac?: string
  readonly groupId?: number
}

/**
 * Outcome of a VSI request as lldpad reports it in the event's `hints` field: low octet the
 * bridge's status with the R bit stripped (0 = success, 1..5 error code, 252 de-assoc, 253
 * timeout, 254 keep; +0x20 Keep, +0x10 Hard), high octet lldpad's own bits (keep-alive
 * timeout, ack/response timeout, transmit error).
 *
 * `vdptool -W` does not print the number, only a text per known code; {@link hints} is
 * rebuilt from that text. Codes without a text read as 0: 255 "no response so far" (e.g. an
 * ACK timeout is logged as 0x2ff, rebuilt here as 0x200) and errors combined with Keep/Hard
 * bits. The exact number is in lldpad's log: {@link LldpadHandle.vsiEvents}.
 */
export interface VdpOutcome {
  readonly hints: number
  readonly status: number
  readonly bridgeError?: string
  readonly keepAliveTimeout: boolean
  readonly ackTimeout: boolean
  readonly txError: boolean
  readonly success: boolean
}

export interface VsiEvent {
  readonly mode: VdpMode
  readonly mgrid2: string
  readonly typeId: number
  readonly typeVersion: number
  readonly uuid: string
  readonly filters: readonly ParsedFilter[]
  readonly outcome: VdpOutcome
}

/** A VSI as `vdptool -t` lists it (`hints` is always printed as 0 there, gotcha 7). */
export interface VsiRecord {
  readonly mode: VdpMode
  readonly mgrid2: string
  readonly typeId: number
  readonly typeVersion: number
  readonly uuid: string
  readonly hints: number
  readonly filters: readonly ParsedFilter[]
}

interface VdpCommandCommon {
  readonly args: readonly string[]
  readonly stdout: string
  readonly exitCode: number | null
  /** Wall-clock time of the vdptool call (incl. `ip netns exec`), ms. */
  readonly elapsedMs: number
}

export type VdpCommandResult = VdpCommandCommon &
  (
    /**
     * `-W`: the bridge's answer for this VSI (mode `deassoc` when the VSI ended). `source`
     * `lldpad-log`: vdptool printed another VSI's event (`foreignEvent`, gotcha 6) and this
     * VSI's event was taken from lldpad's log instead (its `outcome.hints` is then exact).
     */
    | {
        readonly kind: 'response'
        readonly event: VsiEvent
        readonly source: 'vdptool' | 'lldpad-log'
        readonly foreignEvent?: VsiEvent
      }
    /** No `-W`: the request was queued, no event awaited. */
    | { readonly kind: 'sent' }
    /** vdptool/lldpad refused the command locally (`FAILED: ...`); nothing was sent. */
    | { readonly kind: 'refused'; readonly reason: string; readonly event?: VsiEvent }
    /** `-W` waited 5 s and got no event (gotcha 6). */
    | { readonly kind: 'no-event' }
    /** `-W` printed the event of another VSI (gotcha 6). */
    | { readonly kind: 'foreign-event'; readonly event: VsiEvent }
  )

export interface VdpCommandOptions {
  /** `-W`: wait (at most 5 s) for the bridge's response and parse it. */
  readonly wait?: boolean
  /**
   * With `wait`, when vdptool prints another VSI's event or none (gotcha 6), look for this
   * VSI's event in lldpad's log for up to this long (default 5000 ms; 0 = don't). Only for a
   * VdpTool that knows the log (`LldpadHandle.vdptool`).
   */
  readonly logFallbackMs?: number
}

/** Where a {@link VdpTool} finds lldpad's logged VSI events (gotcha 6 fallback). */
export interface VsiEventLog {
  offset(): number
  waitForEvent(uuid: string, fromOffset: number, timeoutMs: number): Promise<LoggedVsiEvent | undefined>
}

/** A logged VSI event as a {@link VsiEvent}, with the exact outcome. */
export function vsiEventFromLog(e: LoggedVsiEvent, expectedFormat?: FilterFormat): VsiEvent {
  const status = e.hints & 0xff
  const bits = e.hints >> 8
  const bridgeError = Object.entries(BRIDGE_ERRORS).find(([, code]) => code === status)?.[0]
  return {
    mode: e.mode,
    mgrid2: e.mgrid2,
    typeId: e.typeId,
    typeVersion: e.typeVersion,
    uuid: e.uuid,
    filters: e.filters.map((f) => parseFilter(f, expectedFormat)),
    outcome: {
      hints: e.hints,
      status,
      ...(bridgeError === undefined ? {} : { bridgeError }),
      keepAliveTimeout: (bits & 1) !== 0,
      ackTimeout: (bits & 2) !== 0,
      txError: (bits & 4) !== 0,
      success: e.hints === 0,
    },
  }
}

const VID_MAX = 0xfff

/** The `filter=` value for one entry: `vid`, `vid-mac`, `vid--group`, `vid-mac-group`. */
export function formatFilter(f: VdpFilter): string {
  if (!Number.isInteger(f.vid) || f.vid < 0 || f.vid > VID_MAX) throw new RangeError(`VID must be 0..4095, got ${f.vid}`)
  const pcp = f.pcp ?? 0
  if (!Number.isInteger(pcp) || pcp < 0 || pcp > 7) throw new RangeError(`PCP must be 0..7, got ${pcp}`)
  const word = (f.ps === true ? 0x8000 : 0) | (pcp << 12) | f.vid
  const mac = f.mac?.toLowerCase()
  if (mac !== undefined && !/^([0-9a-f]{2}:){5}[0-9a-f]{2}$/.test(mac)) throw new RangeError(`bad MAC ${f.mac}`)
  const g = f.groupId
  if (g !== undefined && (!Number.isInteger(g) || g < 0 || g > 0xffffffff)) throw new RangeError(`bad GroupID ${g}`)
  if (mac === undefined && g === undefined) return `${word}`
  if (g === undefined) return `${word}-${mac}`
  if (mac === undefined) return `${word}--${g}`
  return `${word}-${mac}-${g}`
}

export function filterFormatOf(f: VdpFilter): FilterFormat {
  if (f.groupId === undefined) return f.mac === undefined ? 1 : 2
  return f.mac === undefined ? 3 : 4
}

/** The `-c key=value` arguments of one VSI command. */
export function vsiArgs(mode: VdpMode, vsi: VsiSpec): string[] {
  if (vsi.filters.length === 0) throw new RangeError('a VSI needs at least one filter entry')
  const format = filterFormatOf(vsi.filters[0] as VdpFilter)
  if (vsi.filters.some((f) => filterFormatOf(f) !== format)) throw new RangeError('all filter entries must have the same format')
  if (!/^[0-9A-Za-z]{1,15}$/.test(vsi.mgrid2)) throw new RangeError(`mgrid2 must be 1..15 alphanumerics, got ${vsi.mgrid2}`)
  const args = [
    '-c', `mode=${mode}`,
    '-c', `mgrid2=${vsi.mgrid2}`,
    '-c', `typeid=${vsi.typeId}`,
    '-c', `typeidver=${vsi.typeVersion}`,
    '-c', `uuid=${vsi.uuid}`,
    '-c', `hints=${vsi.hints ?? 'none'}`,
  ]
  for (const f of vsi.filters) args.push('-c', `filter=${formatFilter(f)}`)
  return args
}

/**
 * Parses one printed filter. Query output prints format 3 as `vid-group` (not `vid--group`),
 * the `-W` printout shows GroupIDs as 0 (gotcha 7). `expected` disambiguates `vid-group`.
 */
export function parseFilter(text: string, expected?: FilterFormat): ParsedFilter {
  const parts = text.trim().split('-')
  const word = Number(parts[0])
  if (!Number.isInteger(word)) throw new Error(`bad filter ${text}`)
  const base = { vidWord: word, vid: word & VID_MAX, ps: (word & 0x8000) !== 0, pcp: (word >> 12) & 7 }
  if (parts.length === 1) return { format: 1, ...base }
  if (parts.length === 2) {
    const second = parts[1] as string
    if (second.includes(':')) return { format: 2, ...base, mac: second.toLowerCase() }
    return { format: expected === 2 ? 2 : 3, ...base, groupId: Number(second) }
  }
  if (parts.length === 3) {
    const mac = parts[1] as string
    if (mac === '') return { format: 3, ...base, groupId: Number(parts[2]) }
    return { format: 4, ...base, mac: mac.toLowerCase(), groupId: Number(parts[2]) }
  }
  throw new Error(`bad filter ${text}`)
}

const BRIDGE_ERRORS: Readonly<Record<string, number>> = {
  'VDP TLV Format is Invalid': 1,
  'Insufficient resources at bridge': 2,
  'Unable to contact VSI Mgr': 3,
  'Other Failures': 4,
  'Invalid VID, GroupID or MAC address field': 5,
  'Deassoc received from switch': 252,
  'Timeout Error': 253,
}

function parseOutcome(lines: readonly string[]): VdpOutcome {
  let status = 0
  let bridgeError: string | undefined
  let keepAliveTimeout = false
  let ackTimeout = false
  let txError = false
  for (const line of lines) {
    const be = /Error returned by Bridge: (.*)$/.exec(line)
    if (be?.[1] !== undefined) {
      bridgeError = be[1].trim()
      status = BRIDGE_ERRORS[bridgeError] ?? (bridgeError.startsWith('Command rejected by bridge') ? 254 : 4)
    }
    const ie = /Internal Error : (.*)$/.exec(line)
    if (ie?.[1] !== undefined) {
      const what = ie[1].trim()
      if (what === 'Keepalive Timeout') keepAliveTimeout = true
      else if (what === 'Ack not received from bridge') ackTimeout = true
      else if (what === 'Transmission Error') txError = true
    }
  }
  const hints = status | ((keepAliveTimeout ? 1 : 0) | (ackTimeout ? 2 : 0) | (txError ? 4 : 0)) << 8
  return {
    hints,
    status,
    ...(bridgeError === undefined ? {} : { bridgeError }),
    keepAliveTimeout,
    ackTimeout,
    txError,
    success: hints === 0,
  }
}

function keyValues(lines: readonly string[]): { map: Map<string, string>; filters: string[]; rest: string[] } {
  const map = new Map<string, string>()
  const filters: string[] = []
  const rest: string[] = []
  for (const line of lines) {
    const m = /^\s*(\w+) = (.*)$/.exec(line)
    if (m?.[1] === undefined || m[2] === undefined) {
      rest.push(line)
      continue
    }
    if (m[1] === 'filter') filters.push(m[2])
    else map.set(m[1], m[2].trim())
  }
  return { map, filters, rest }
}

function asMode(word: string | undefined): VdpMode {
  if (word === 'assoc' || word === 'deassoc' || word === 'preassoc' || word === 'preassoc-rr') return word
  throw new Error(`unknown VSI mode ${String(word)}`)
}

/** Splits vdptool output into blocks starting at lines matching `header`. */
function blocks(stdout: string, header: RegExp): string[][] {
  const out: string[][] = []
  let current: string[] | undefined
  for (const line of stdout.split('\n')) {
    if (header.test(line)) {
      current = []
      out.push(current)
    } else if (current !== undefined && line.trim() !== '') {
      current.push(line)
    }
  }
  return out
}

/** Parses the `Response from VDP` blocks of `vdptool -W` output. */
export function parseVdpEvents(stdout: string, expectedFormat?: FilterFormat): VsiEvent[] {
  return blocks(stdout, /^Response from VDP/).map((lines) => {
    const { map, filters, rest } = keyValues(lines)
    return {
      mode: asMode(map.get('mode')),
      mgrid2: map.get('mgrid2') ?? '',
      typeId: Number(map.get('typeid')),
      typeVersion: Number(map.get('typeidver')),
      uuid: (map.get('uuid') ?? '').toLowerCase(),
      filters: filters.map((f) => parseFilter(f, expectedFormat)),
      outcome: parseOutcome(rest),
    }
  })
}

/** Parses `vdptool -t` output (`VSI  n:` blocks). */
export function parseVsiList(stdout: string, expectedFormat?: FilterFormat): VsiRecord[] {
  return blocks(stdout, /^VSI\s+\d+:/).map((lines) => {
    const { map, filters } = keyValues(lines)
    return {
      mode: asMode(map.get('mode')),
      mgrid2: map.get('mgrid2') ?? '',
      typeId: Number(map.get('typeid')),
      typeVersion: Number(map.get('typeidver')),
      uuid: (map.get('uuid') ?? '').toLowerCase(),
      hints: Number(map.get('hints') ?? 0),
      filters: filters.map((f) => parseFilter(f, expectedFormat)),
    }
  })
}

/** Canonical lower-case 8-4-4-4-12 form of a UUID given with or without dashes. */
export function normalizeUuid(uuid: string): string {
  const hex = uuid.replace(/-/g, '').toLowerCase()
  if (!/^[0-9a-f]{32}$/.test(hex)) return uuid.toLowerCase()
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`
}

/** Typed `vdptool -i IF` in one network namespace (talks to that namespace's lldpad, gotcha 2). */
export class VdpTool {
  constructor(
    readonly netns: string,
    readonly ifname: string,
    /** lldpad's log, for the gotcha-6 fallback (see {@link VdpCommandOptions.logFallbackMs}). */
    readonly eventLog?: VsiEventLog,
  ) {}

  associate(vsi: VsiSpec, options: VdpCommandOptions = {}): Promise<VdpCommandResult> {
    return this.command('assoc', vsi, options)
  }

  preAssociate(vsi: VsiSpec, options: VdpCommandOptions = {}): Promise<VdpCommandResult> {
    return this.command('preassoc', vsi, options)
  }

  preAssociateRr(vsi: VsiSpec, options: VdpCommandOptions = {}): Promise<VdpCommandResult> {
    return this.command('preassoc-rr', vsi, options)
  }

  /** De-Associate: the filter must be the one the station holds (with the bridge's VID). */
  deAssociate(vsi: VsiSpec, options: VdpCommandOptions = {}): Promise<VdpCommandResult> {
    return this.command('deassoc', vsi, options)
  }

  /** Full argument list of `vdptool` (without `ip netns exec`) for a command. */
  commandArgs(mode: VdpMode, vsi: VsiSpec, options: VdpCommandOptions = {}): string[] {
    return ['-i', this.ifname, '-T', ...(options.wait === true ? ['-W'] : []), '-V', mode, ...vsiArgs(mode, vsi)]
  }

  async command(mode: VdpMode, vsi: VsiSpec, options: VdpCommandOptions = {}): Promise<VdpCommandResult> {
    const args = this.commandArgs(mode, vsi, options)
    const logOffset = this.eventLog?.offset()
    const r = await runIn(this.netns, 'vdptool', args, { timeoutMs: 15_000 })
    const common: VdpCommandCommon = { args, stdout: r.stdout, exitCode: r.code, elapsedMs: r.elapsedMs }
    const format = filterFormatOf(vsi.filters[0] as VdpFilter)
    const events = parseVdpEvents(r.stdout, format)
    const uuid = normalizeUuid(vsi.uuid)
    const mine = events.find((e) => normalizeUuid(e.uuid) === uuid)
    const failed = /^FAILED: ?(.*)$/m.exec(r.stdout)
    if (failed !== null) {
      return { ...common, kind: 'refused', reason: (failed[1] ?? '').trim(), ...(events[0] === undefined ? {} : { event: events[0] }) }
    }
    if (r.code !== 0) {
      return { ...common, kind: 'refused', reason: `vdptool exited with ${String(r.code)}: ${(r.stdout + r.stderr).trim()}` }
    }
    if (options.wait !== true) return { ...common, kind: 'sent' }
    if (mine !== undefined) return { ...common, kind: 'response', event: mine, source: 'vdptool' }
    const fallbackMs = options.logFallbackMs ?? 5000
    if (this.eventLog !== undefined && logOffset !== undefined && fallbackMs > 0) {
      const logged = await this.eventLog.waitForEvent(uuid, logOffset, events[0] === undefined ? 0 : fallbackMs)
      if (logged !== undefined) {
        return {
          ...common,
          kind: 'response',
          event: vsiEventFromLog(logged, format),
          source: 'lldpad-log',
          ...(events[0] === undefined ? {} : { foreignEvent: events[0] }),
        }
      }
    }
    if (events[0] !== undefined) return { ...common, kind: 'foreign-event', event: events[0] }
    return { ...common, kind: 'no-event' }
  }

  /**
   * The VSIs lldpad lists for `mode` (`-t -V mode`). Once the reply exceeds vdptool's 4 KiB
   * buffer (gotcha 7; here 26 format-2 VSIs listed, 27 gave nothing) vdptool prints nothing and
   * exits 0, which cannot be told from an empty table: use {@link query} per UUID.
   */
  async list(mode: Exclude<VdpMode, 'deassoc'> = 'assoc'): Promise<VsiRecord[]> {
    const r = await runIn(this.netns, 'vdptool', ['-i', this.ifname, '-t', '-V', mode], { timeoutMs: 10_000 })
    if (/^FAILED/m.test(r.stdout)) throw new Error(`vdptool -t -V ${mode}: ${r.stdout.trim()}`)
    return parseVsiList(r.stdout)
  }

  /**
   * Polls {@link query} until the station's record of `uuid` satisfies `predicate` (use after a
   * `foreign-event` or a command without -W); `undefined` in the predicate = VSI unknown.
   */
  async waitForVsi(
    uuid: string,
    predicate: (v: VsiRecord | undefined) => boolean,
    timeoutMs = 10_000,
    expectedFormat?: FilterFormat,
  ): Promise<VsiRecord | undefined> {
    const deadline = performance.now() + timeoutMs
    for (;;) {
      const record = await this.query(uuid, expectedFormat)
      if (predicate(record)) return record
      if (performance.now() > deadline) {
        throw new Error(`timed out after ${timeoutMs} ms waiting for VSI ${uuid}; last: ${JSON.stringify(record)}`)
      }
      await sleep(50)
    }
  }

  /**
   * The station's record of one VSI, looked up by UUID in the assoc, preassoc and preassoc-rr
   * lists (pre-associated VSIs are only listed there, gotcha 7); `undefined` when unknown.
   */
  async query(uuid: string, expectedFormat?: FilterFormat): Promise<VsiRecord | undefined> {
    const wanted = normalizeUuid(uuid)
    for (const mode of ['assoc', 'preassoc', 'preassoc-rr'] as const) {
      const r = await runIn(this.netns, 'vdptool', ['-i', this.ifname, '-t', '-V', mode, '-c', `uuid=${uuid}`], {
        timeoutMs: 10_000,
      })
      if (/^FAILED/m.test(r.stdout)) throw new Error(`vdptool -t -V ${mode} -c uuid=${uuid}: ${r.stdout.trim()}`)
      const hit = parseVsiList(r.stdout, expectedFormat).find((v) => normalizeUuid(v.uuid) === wanted)
      if (hit !== undefined) return hit
    }
    return undefined
  }
}
