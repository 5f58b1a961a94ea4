/**
 * MQTT topic names (docs/mqtt.md) and the retained switch status payload. Every topic of a
 * switch lives under `<prefix>/switch/<switchId>/`, so a broker ACL of
 * `<prefix>/switch/%u/#` (username = switch id) confines a switch to its own topics.
 *
 * | channel    | direction     | QoS | retained | payload                         |
 * | ---------- | ------------- | --- | -------- | ------------------------------- |
 * | `events`   | switch → edge | 1   | no       | `FleetEvent` (events.ts)         |
 * | `status`   | switch → edge | 1   | yes      | `SwitchStatus`; last will = offline |
 * | `policy`   | edge → switch | 1   | yes      | `SwitchPolicy` (policy.ts)       |
 * | `commands` | edge → switch | 1   | no       | `Command` (commands.ts)          |
 * | `replies`  | switch → edge | 1   | no       | `CommandReply` (commands.ts)     |
 *
 * @module
 */
import type { SwitchId } from '../ids.ts'
import { decodeVersioned, encodeCbor, validateVersioned } from './cbor.ts'
import { SWITCH_ID_RE, bootIdField, switchIdField, timeMsField } from './fields.ts'
import { literal, optional, record, text, type Infer } from './schema.ts'

export const DEFAULT_TOPIC_PREFIX = 'vdp'
export const TOPIC_CHANNELS = ['events', 'status', 'policy', 'commands', 'replies'] as const
export type TopicChannel = (typeof TOPIC_CHANNELS)[number]

/** A prefix is one or more topic levels without wildcards, no leading or trailing `/`. */
const PREFIX_RE = /^[A-Za-z0-9._-]+(\/[A-Za-z0-9._-]+)*$/

export function validateTopicPrefix(prefix: string): string {
  if (!PREFIX_RE.test(prefix) || prefix.length > 128) {
    throw new Error(`Cannot use topic prefix "${prefix}": expected levels of [A-Za-z0-9._-] joined by "/"`)
  }
  return prefix
}

/**
 * @example
 * ```ts
 * switchTopic('vdp', switchId('tor1'), 'events') // 'vdp/switch/tor1/events'
 * ```
 */
export function switchTopic(prefix: string, id: SwitchId, channel: TopicChannel): string {
  if (!SWITCH_ID_RE.test(id)) throw new Error(`Cannot build topic: switch id "${id}" is not one topic level`)
  return `${prefix}/switch/${id}/${channel}`
}

/** Subscription filter for one channel of every switch, e.g. `vdp/switch/+/events`. */
export const allSwitchesFilter = (prefix: string, channel: TopicChannel): string => `${prefix}/switch/+/${channel}`

/** Shared-subscription filter (MQTT 5 / EMQX / HiveMQ) so several edge instances split the load. */
export const sharedFilter = (group: string, filter: string): string => `$share/${group}/${filter}`

/** Parses a topic of this scheme; undefined when it is not one. */
export function parseSwitchTopic(prefix: string, topic: string): { switchId: SwitchId; channel: TopicChannel } | undefined {
  if (!topic.startsWith(prefix + '/switch/')) return undefined
  const rest = topic.slice(prefix.length + '/switch/'.length).split('/')
  if (rest.length !== 2) return undefined
  const [id, channel] = rest as [string, string]
  if (!SWITCH_ID_RE.test(id) || !(TOPIC_CHANNELS as readonly string[]).includes(channel)) return undefined
  return { switchId: id as SwitchId, channel: channel as TopicChannel }
}

export const STATUS_SCHEMA_VERSION = 1

/** Retained on `.../status`: 'online' at connect, 'offline' as last will and at clean stop. */
export const switchStatusSchema = record({
  v: literal(STATUS_SCHEMA_VERSION),
  switchId: switchIdField,
  state: literal('online', 'offline'),
  /** Set while online; the last will cannot know the time of death, so it is optional. */
  bootId: optional(bootIdField),
  time: optional(timeMsField),
  agentVersion: optional(text({ max: 64 })),
})
export type SwitchStatus = Infer<typeof switchStatusSchema>

export const encodeSwitchStatus = (s: SwitchStatus): Uint8Array =>
  encodeCbor(validateVersioned(s, STATUS_SCHEMA_VERSION, switchStatusSchema))
/** Throws `ApiDecodeError`. */
export const decodeSwitchStatus = (bytes: Uint8Array): SwitchStatus =>
  decodeVersioned(bytes, 1024, STATUS_SCHEMA_VERSION, switchStatusSchema)
