/**
 * A `Publisher` over any MQTT-like send function: encodes with the `shared/api` codecs and
 * picks the topic, QoS and retain flag of docs/mqtt.md. The MQTT client or the embedded
 * broker supplies `send`.
 *
 * @example
 * ```ts
 * const publish = topicPublisher((topic, payload, o) => client.publishAsync(topic, Buffer.from(payload), o), 'vdp')
 * ```
 *
 * @module
 */
import { encodeCommand } from '../shared/api/commands.ts'
import { encodePolicy } from '../shared/api/policy.ts'
import { switchTopic } from '../shared/api/topics.ts'
import type { Publisher } from './deps.ts'

export type SendFunction = (topic: string, payload: Uint8Array, options: { qos: 1; retain: boolean }) => Promise<unknown>

export function topicPublisher(send: SendFunction, prefix: string): Publisher {
  return {
    async policy(policy) {
      await send(switchTopic(prefix, policy.switchId, 'policy'), encodePolicy(policy), { qos: 1, retain: true })
    },
    async command(command) {
      await send(switchTopic(prefix, command.switchId, 'commands'), encodeCommand(command), { qos: 1, retain: false })
    },
  }
}
