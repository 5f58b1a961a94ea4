/** Runs Debian's tshark on a capture file and returns selected fields per frame. */
import { execFileSync } from 'node:child_process'
import { existsSync } from 'node:fs'

export const TSHARK = '/usr/bin/tshark'

export function requireTshark(): void {
  if (!existsSync(TSHARK)) throw new Error('tshark is missing: install the Debian package "tshark" (.ci/run does)')
}

/** `tshark -r FILE -T fields -e …` as rows of strings (one row per frame, in order). */
export function tsharkFields(file: string, fields: string[], displayFilter?: string): string[][] {
  requireTshark()
  const args = ['-r', file, '-T', 'fields', '-E', 'separator=\t', ...fields.flatMap((f) => ['-e', f])]
  if (displayFilter) args.push('-Y', displayFilter)
  const out = execFileSync(TSHARK, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] })
  return out.split('\n').filter((l) => l.length > 0).map((l) => l.split('\t'))
}
