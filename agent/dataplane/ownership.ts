/**
 * The ownership record: which data-plane items the agent created, kept as JSON in its state
 * directory and written atomically (temp file in the same directory, fsync, rename, fsync of
 * the directory), so after a crash at any instant the file is either the old or the new list.
 * Drivers add an item to the record before they create it (write-ahead) and remove it after
 * they deleted it: the record is always a superset of what the agent owns, so no owned item can
 * leak past a crash; an item recorded but never created is found missing and dropped at the
 * next reconciliation.
 *
 * @module
 */
import { mkdir, open, readFile, rename, unlink } from 'node:fs/promises'
import { basename, dirname, join } from 'node:path'
import { DataplaneError } from './driver.ts'

export interface OwnershipFile {
  version: 1
  /** Which driver wrote it ('sonic', 'linux'); a mismatch is a configuration error. */
  driver: string
  /** Where the items live (Redis address and DB, netns and bridge): informational. */
  scope: string
  items: string[]
}

export class OwnershipRecord {
  readonly #items: Set<string>
  #dirty = false

  private constructor(
    readonly path: string | undefined,
    readonly driver: string,
    readonly scope: string,
    items: Iterable<string>,
  ) {
    this.#items = new Set(items)
  }

  /** A record that lives only in memory (tests, dry runs). */
  static inMemory(driver: string, scope = '', items: Iterable<string> = []): OwnershipRecord {
    return new OwnershipRecord(undefined, driver, scope, items)
  }

  /** Loads `path`, or starts empty if it does not exist. */
  static async load(path: string, driver: string, scope: string): Promise<OwnershipRecord> {
    let text: string
    try {
      text = await readFile(path, 'utf8')
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return new OwnershipRecord(path, driver, scope, [])
      throw new DataplaneError('ownership-io', `Cannot read ownership record ${path}: ${(e as Error).message}`, [], { cause: e })
    }
    let doc: Partial<OwnershipFile>
    try {
      doc = JSON.parse(text) as Partial<OwnershipFile>
    } catch (e) {
      throw new DataplaneError('ownership-io', `Cannot parse ownership record ${path}: ${(e as Error).message}`, [], { cause: e })
    }
    if (doc.version !== 1 || !Array.isArray(doc.items) || doc.items.some((i) => typeof i !== 'string')) {
      throw new DataplaneError('ownership-io', `Cannot use ownership record ${path}: not a version 1 record`)
    }
    if (doc.driver !== driver) {
      throw new DataplaneError('bad-config', `Cannot use ownership record ${path}: written by driver "${doc.driver}", not "${driver}"`)
    }
    return new OwnershipRecord(path, driver, scope, doc.items)
  }

  has(item: string): boolean {
    return this.#items.has(item)
  }

  items(): string[] {
    return [...this.#items].sort()
  }

  add(items: Iterable<string>): void {
    for (const i of items) {
      if (!this.#items.has(i)) {
        this.#items.add(i)
        this.#dirty = true
      }
    }
  }

  delete(items: Iterable<string>): void {
    for (const i of items) if (this.#items.delete(i)) this.#dirty = true
  }

  /** Writes the record if it changed since the last save. */
  async save(): Promise<void> {
    if (!this.#dirty) return
    if (this.path !== undefined) {
      const doc: OwnershipFile = { version: 1, driver: this.driver, scope: this.scope, items: this.items() }
      try {
        await writeFileAtomic(this.path, JSON.stringify(doc, null, 2) + '\n')
      } catch (e) {
        throw new DataplaneError('ownership-io', `Cannot write ownership record ${this.path}: ${(e as Error).message}`, [], { cause: e })
      }
    }
    this.#dirty = false
  }
}

/** Replaces `path` with `data` atomically: temp file, fsync, rename, fsync of the directory. */
export async function writeFileAtomic(path: string, data: string): Promise<void> {
  const dir = dirname(path)
  await mkdir(dir, { recursive: true })
  const tmp = join(dir, `.${basename(path)}.${process.pid}.tmp`)
  const fh = await open(tmp, 'w', 0o600)
  try {
    await fh.writeFile(data, 'utf8')
    await fh.sync()
  } finally {
    await fh.close()
  }
  try {
    await rename(tmp, path)
  } catch (e) {
    await unlink(tmp).catch(() => {})
    throw e
  }
  const dh = await open(dir, 'r')
  try {
    await dh.sync()
  } finally {
    await dh.close()
  }
}
