/**
 * Durable commands: every command is recorded in the fleet store before it is published
 * (`pending`), and the store, not the broker, is what keeps it until the switch answers.
 * The aedes broker embedded in `vdp-edge` keeps its queues in memory, and an external broker
 * may lose a session, so the edge publishes every open command (pending or delivered) again:
 * - at its start, once the MQTT side is ready (`resend()`): an external broker with a
 *   persistent session for the switch queues it;
 * - when a switch comes online (`resend(switchId)`, on its retained `online` status, which
 *   the agent publishes only after its command subscription is in place): this is what
 *   reaches a switch after an embedded-broker restart, whose sessions are gone.
 * A switch may therefore receive a command more than once; the agent executes a command id
 * once and answers every delivery with the same reply (shared/api/commands.ts rule 1).
 * `expire()` (from the edge's sweep timer) ends open commands past their deadline: the
 * command's `expiresAt`, set from `commandTtlMs` when it is issued, else `issuedAt +
 * commandTtlMs`. An expired command is not published again, and a switch that receives a
 * copy after `expiresAt` answers `expired` without executing it.
 *
 * @example
 * ```ts
 * const commands = new CommandDispatcher({ store, clock, logger, publish: (c) => messaging.publishCommand(c) }, { commandTtlMs: 3_600_000 })
 * await commands.resend()              // at start
 * await commands.resend(switchId)      // on `online`
 * commands.expire()                    // every few seconds
 * ```
 *
 * @module
 */
import type { Command } from '../shared/api/commands.ts'
import type { SwitchId } from '../shared/ids.ts'
import type { Clock, Logger } from './deps.ts'
import type { CommandRecord, FleetStore } from './store/fleet-store.ts'

/** Default lifetime of an unanswered command: an hour. */
export const DEFAULT_COMMAND_TTL_MS = 3_600_000

/** Open commands published again per call at most (one switch or the whole fleet). */
const RESEND_BATCH_MAX = 10_000

export interface CommandDispatcherDeps {
  store: FleetStore
  clock: Clock
  logger: Logger
  publish(command: Command): Promise<void>
}

export interface CommandDispatcherOptions {
  /** Unanswered commands expire this long after they were issued. */
  commandTtlMs: number
}

export class CommandDispatcher {
  readonly #deps: CommandDispatcherDeps
  readonly #ttlMs: number

  constructor(deps: CommandDispatcherDeps, options: CommandDispatcherOptions) {
    if (!Number.isSafeInteger(options.commandTtlMs) || options.commandTtlMs < 1) {
      throw new Error(`Cannot create the command dispatcher: commandTtlMs ${options.commandTtlMs} is not a positive integer`)
    }
    this.#deps = deps
    this.#ttlMs = options.commandTtlMs
  }

  get commandTtlMs(): number {
    return this.#ttlMs
  }

  /** Marks overdue open commands `expired`; returns them. Never throws. */
  expire(): CommandRecord[] {
    try {
      const expired = this.#deps.store.expireCommands(this.#deps.clock.nowMs(), this.#ttlMs)
      for (const r of expired) {
        this.#deps.logger.warn('command expired without a reply', {
          commandId: r.command.commandId,
          switchId: r.command.switchId,
          kind: r.command.kind,
        })
      }
      return expired
    } catch (err) {
      this.#deps.logger.error('Cannot expire commands', { error: String(err) })
      return []
    }
  }

  /**
   * Publishes the open commands of `switchId` (every switch when absent) again, oldest first,
   * after expiring the overdue ones. Resolves with the number published; never rejects.
   */
  async resend(switchId?: SwitchId): Promise<number> {
    this.expire()
    let open: CommandRecord[]
    try {
      open = this.#deps.store.openCommands(switchId, RESEND_BATCH_MAX)
    } catch (err) {
      this.#deps.logger.error('Cannot read open commands', { error: String(err) })
      return 0
    }
    let sent = 0
    for (const r of open) {
      try {
        await this.#deps.publish(r.command)
        this.#deps.store.markCommandResent(r.command.commandId)
        sent++
      } catch (err) {
        this.#deps.logger.warn('Cannot publish command again: it stays open', {
          commandId: r.command.commandId,
          switchId: r.command.switchId,
          error: String(err),
        })
      }
    }
    if (sent > 0) this.#deps.logger.info('Open commands published again', { commands: sent, ...(switchId !== undefined ? { switchId } : {}) })
    return sent
  }
}
