/**
 * Ingest inside the embedded broker: switch publications reach `EventIngestor` through the
 * broker's publish hook, and aedes PUBACKs each one only after the batch holding it has been
 * committed to the fleet store (or dropped as invalid). So with the embedded broker, an event
 * leaves the switch's outbox only once it is durable in the fleet store: killing the edge at
 * any instant loses nothing, and no MQTT subscription race exists at start (the hook sees
 * every publication, whether or not anybody subscribed). Policy and commands are published
 * into aedes in-process; a switch's PUBACK of a command marks it `delivered` in the store.
 *
 * Batching is the same as for `MqttIngest`: aedes dispatches all PUBLISHes of one socket read
 * concurrently and the batch closes at the end of the event-loop turn, so a busy switch gets
 * its PUBACKs per commit, not per event.
 *
 * @module
 */
import { encodeCommand, type Command } from '../../shared/api/commands.ts'
import { encodePolicy, type SwitchPolicy } from '../../shared/api/policy.ts'
import { switchTopic } from '../../shared/api/topics.ts'
import type { SwitchId } from '../../shared/ids.ts'
import type { EmbeddedBroker } from '../broker/embedded-broker.ts'
import { EventIngestor, type EdgeMessaging, type IngestDeps, type IngestMetrics, type IngestOptions } from './ingest.ts'

export class EmbeddedIngest implements EdgeMessaging {
  readonly #broker: EmbeddedBroker
  readonly #core: EventIngestor
  #closed = false

  private constructor(broker: EmbeddedBroker, options: IngestOptions, deps: IngestDeps) {
    this.#broker = broker
    this.#core = new EventIngestor(options, deps)
    this.#core.publishCommand = (c) => this.publishCommand(c)
    this.#core.m.ingest_connected = 1
    broker.setPublishHook((topic, payload, _username, done) => {
      if (this.#closed) return // no PUBACK: the switch keeps the event
      this.#core.submit(topic, payload, done)
    })
    broker.setDeliveryHook((topic, payload, username) => {
      if (!this.#closed) this.#core.delivered(topic, payload, username)
    })
  }

  /**
   * @example
   * ```ts
   * const broker = await EmbeddedBroker.start({ port: 1883, accounts })
   * const messaging = EmbeddedIngest.attach(broker, {}, { store, log })
   * ```
   */
  static attach(broker: EmbeddedBroker, options: IngestOptions, deps: IngestDeps): EmbeddedIngest {
    const ingest = new EmbeddedIngest(broker, options, deps)
    deps.onReady?.()
    return ingest
  }

  async publishPolicy(policy: SwitchPolicy): Promise<void> {
    await this.#broker.publish(switchTopic(this.#core.prefix, policy.switchId, 'policy'), encodePolicy(policy), { retain: true })
    this.#core.m.ingest_policies_published_total++
  }

  async clearPolicy(switchId: SwitchId): Promise<void> {
    await this.#broker.publish(switchTopic(this.#core.prefix, switchId, 'policy'), new Uint8Array(0), { retain: true })
  }

  async publishCommand(command: Command): Promise<void> {
    await this.#broker.publish(switchTopic(this.#core.prefix, command.switchId, 'commands'), encodeCommand(command))
    this.#core.m.ingest_commands_published_total++
  }

  metrics(): IngestMetrics {
    return this.#core.metrics()
  }

  /** Commits what is pending (its PUBACKs go out), then detaches from the broker. */
  async close(): Promise<void> {
    if (this.#closed) return
    this.#core.flush()
    this.#closed = true
    this.#core.stop()
    this.#broker.setPublishHook(undefined)
    this.#broker.setDeliveryHook(undefined)
  }
}
