/**
 * Commands from the edge to one switch (`<prefix>/switch/<switchId>/commands`, QoS 1, not
 * retained) and the switch's replies (`.../replies`), schema version 1, CBOR.
 *
 * Rules:
 * 1. `commandId` is chosen by the edge and unique; the switch executes a command id at most
 *    once (its reply is kept in the agent's state directory, across agent restarts) and
 *    answers every delivery with the same reply: QoS 1 may deliver twice, and the edge
 *    publishes a command again until it is answered (docs/mqtt.md, "Commands").
 * 4. `expiresAt` (edge clock, ms since the epoch): a switch that receives the command later
 *    does not execute it and answers `expired`. Absent: no deadline on the switch.
 * 2. `disconnect-vsi` is the NVE-initiated De-Associate (mode 'de-associate') or deactivate,
 *    associate to pre-associate (mode 'deactivate'); without `port` it acts on every port
 *    holding the VSI.
 * 3. `disconnect-vn` de-associates every VSI of the VN on one port (RFC 8394 Req-6).
 *
 * @module
 */
import { decodeVersioned, encodeCbor, validateVersioned } from './cbor.ts'
import { idField, portField, reasonField, switchIdField, timeMsField, vniField, vsiIdField } from './fields.ts'
import { integer, literal, optional, record, tagged, text, type Infer } from './schema.ts'

export const COMMAND_SCHEMA_VERSION = 1
export const COMMAND_BYTES_MAX = 4096

const commandHeader = {
  v: literal(COMMAND_SCHEMA_VERSION),
  commandId: idField,
  switchId: switchIdField,
  issuedAt: timeMsField,
  reason: reasonField,
  expiresAt: optional(timeMsField),
}

export const commandSchema = tagged('kind', {
  'disconnect-vsi': record({
    ...commandHeader,
    kind: literal('disconnect-vsi'),
    vsiId: vsiIdField,
    port: optional(portField),
    mode: literal('de-associate', 'deactivate'),
  }),
  'disconnect-vn': record({
    ...commandHeader,
    kind: literal('disconnect-vn'),
    vni: vniField,
    port: portField,
  }),
})
export type Command = Infer<typeof commandSchema>
export type CommandKind = Command['kind']

export const commandReplySchema = record({
  v: literal(COMMAND_SCHEMA_VERSION),
  commandId: idField,
  switchId: switchIdField,
  time: timeMsField,
  /**
   * 'done': executed; 'not-found': nothing matched; 'failed': see detail; 'expired': received
   * after `expiresAt`, not executed.
   */
  status: literal('done', 'not-found', 'failed', 'expired'),
  /** VSIs de-associated or deactivated. */
  affected: integer(0, 1_000_000),
  detail: optional(text({ max: 200 })),
})
export type CommandReply = Infer<typeof commandReplySchema>

export const validateCommand = (value: unknown): Command =>
  validateVersioned(value, COMMAND_SCHEMA_VERSION, commandSchema)
export const encodeCommand = (command: Command): Uint8Array => encodeCbor(validateCommand(command))
/** Throws `ApiDecodeError`. */
export const decodeCommand = (bytes: Uint8Array): Command =>
  decodeVersioned(bytes, COMMAND_BYTES_MAX, COMMAND_SCHEMA_VERSION, commandSchema)

export const validateCommandReply = (value: unknown): CommandReply =>
  validateVersioned(value, COMMAND_SCHEMA_VERSION, commandReplySchema)
export const encodeCommandReply = (reply: CommandReply): Uint8Array => encodeCbor(validateCommandReply(reply))
/** Throws `ApiDecodeError`. */
export const decodeCommandReply = (bytes: Uint8Array): CommandReply =>
  decodeVersioned(bytes, COMMAND_BYTES_MAX, COMMAND_SCHEMA_VERSION, commandReplySchema)
