/**
 * OpenAPI 3.1 document of the edge API, written by hand to match the routes of `app.ts`
 * (test/edge/openapi.test.ts checks that every route is here and nothing else). Served at
 * `/api/v1/openapi.json`.
 *
 * @module
 */

type Json = Record<string, unknown>

const ref = (name: string): Json => ({ $ref: `#/components/schemas/${name}` })
const jsonContent = (schema: Json): Json => ({ 'application/json': { schema } })
const ok = (description: string, schema: Json = { type: 'object' }): Json => ({ description, content: jsonContent(schema) })
const errors = (...codes: number[]): Json =>
  Object.fromEntries(codes.map((c) => [String(c), { $ref: `#/components/responses/Error${c}` }]))
const pathParam = (name: string, description: string, schema: Json = { type: 'string' }): Json => ({
  name,
  in: 'path',
  required: true,
  description,
  schema,
})
const queryParam = (name: string, description: string, schema: Json = { type: 'string' }): Json => ({
  name,
  in: 'query',
  required: false,
  description,
  schema,
})
const readSec = [{ bearer: ['read'] }]
const adminSec = [{ bearer: ['admin'] }]
const body = (schema: Json): Json => ({ required: true, content: jsonContent(schema) })

const limit = queryParam('limit', 'Page size, 1..1000', { type: 'integer', minimum: 1, maximum: 1000 })
const vnName = pathParam('name', 'VN name')
const switchIdParam = pathParam('switchId', 'Switch id (`--switch-id`)')
const hostIdParam = pathParam('hostId', 'Host id')
const vsiTypeParams = [
  pathParam('typeId', 'VSI Type ID, 24 bits', { type: 'integer' }),
  pathParam('typeVersion', 'VSI Type Version, 8 bits', { type: 'integer' }),
]

export const openApiDocument = {
  openapi: '3.1.0',
  info: {
    title: 'vdp-edge fleet API',
    version: '1.0.0',
    description:
      'Fleet-wide virtual-network state from VDP (IEEE 802.1Qbg) switch agents, and the policy and commands sent back. See docs/api.md.',
  },
  servers: [{ url: '/' }],
  components: {
    securitySchemes: {
      bearer: {
        type: 'http',
        scheme: 'bearer',
        description: 'Tokens have scope read or admin (admin implies read). `?token=` is accepted too.',
      },
    },
    responses: Object.fromEntries(
      [400, 401, 403, 404, 409, 413, 415, 422, 503].map((c) => [`Error${c}`, { description: `Error ${c}`, content: jsonContent(ref('Error')) }]),
    ),
    schemas: {
      Error: {
        type: 'object',
        required: ['error'],
        properties: {
          error: {
            type: 'object',
            required: ['code', 'message'],
            properties: { code: { type: 'string' }, message: { type: 'string' }, path: { type: 'string' } },
          },
        },
      },
      VsiTypeRef: {
        type: 'object',
        required: ['typeId'],
        properties: { typeId: { type: 'integer', maximum: 16777215 }, typeVersion: { type: 'integer', maximum: 255 } },
      },
      VnInput: {
        type: 'object',
        required: ['vni', 'tenant'],
        properties: {
          name: { type: 'string', description: 'Required on POST' },
          vni: { type: 'integer', minimum: 1, maximum: 16777215 },
          tenant: { type: 'string' },
          allowedVsiTypes: { type: 'array', items: ref('VsiTypeRef'), description: 'Empty: any type' },
          vid: { type: 'integer', minimum: 2, maximum: 4094, description: 'Pin one VID on every switch' },
          description: { type: 'string' },
        },
      },
      Vn: {
        allOf: [ref('VnInput'), { type: 'object', properties: { createdAt: { type: 'integer' }, updatedAt: { type: 'integer' } } }],
      },
      VsiType: {
        type: 'object',
        properties: { typeId: { type: 'integer' }, typeVersion: { type: 'integer' }, name: { type: 'string' }, description: { type: 'string' } },
      },
      Host: {
        type: 'object',
        description: 'Keys are listed by id only: secrets are write-only.',
        properties: {
          hostId: { type: 'string' },
          managerId: { type: 'string' },
          stationMacs: { type: 'array', items: { type: 'string' } },
          keys: {
            type: 'array',
            items: { type: 'object', properties: { keyId: { type: 'integer' }, notAfter: { type: 'integer' }, createdAt: { type: 'integer' } } },
          },
          updatedAt: { type: 'integer' },
        },
      },
      Place: {
        type: 'object',
        description: 'A VSI at one station on one port of one switch (newest event there).',
        properties: {
          switchId: { type: 'string' },
          port: { type: 'string' },
          stationMac: { type: 'string' },
          state: { enum: ['associated', 'pre-associated', 'de-associated', 'rejected', 'timeout'] },
          vni: { type: 'integer' },
          vid: { type: 'integer' },
          macs: { type: 'array', items: { type: 'string' } },
          ipv4: { type: 'array', items: { type: 'string' } },
          ipv6: { type: 'array', items: { type: 'string' } },
          time: { type: 'integer' },
          since: { type: 'integer' },
        },
      },
      Migration: {
        type: 'object',
        properties: {
          migrationId: { type: 'string' },
          from: { type: 'object' },
          to: { type: 'object' },
          state: { enum: ['in-progress', 'completed', 'aborted'] },
          startedAt: { type: 'integer' },
          associatedAt: { type: 'integer' },
          endedAt: { type: 'integer' },
          overlapped: { type: 'boolean' },
          indicated: { type: 'boolean' },
          cleanupCommandId: { type: 'string' },
        },
      },
      Vsi: {
        type: 'object',
        properties: {
          vsiId: { type: 'string' },
          state: { enum: ['associated', 'pre-associated', 'gone'] },
          current: ref('Place'),
          holding: { type: 'array', items: ref('Place') },
          history: { type: 'array', items: ref('Place') },
          migrations: { type: 'array', items: ref('Migration') },
        },
      },
      Switch: {
        type: 'object',
        properties: {
          switchId: { type: 'string' },
          status: { enum: ['online', 'offline', 'unknown'] },
          boot: { type: 'object' },
          lastEventTime: { type: 'integer' },
          peers: { type: 'array', items: { type: 'object' } },
          vlans: { type: 'array', items: { type: 'object' } },
        },
      },
      SwitchConfig: {
        type: 'object',
        required: ['vidPool'],
        properties: {
          vidPool: { type: 'array', items: { type: 'object', properties: { first: { type: 'integer' }, last: { type: 'integer' } } } },
          lagGroups: { type: 'array', items: { type: 'object' } },
          unknownHosts: { enum: ['allow', 'deny'] },
        },
      },
      Command: {
        type: 'object',
        description: 'shared/api/commands.ts (CBOR on MQTT, JSON here)',
        required: ['v', 'kind', 'commandId', 'switchId', 'issuedAt', 'reason'],
        properties: {
          v: { const: 1 },
          kind: { enum: ['disconnect-vsi', 'disconnect-vn'] },
          commandId: { type: 'string' },
          switchId: { type: 'string' },
          issuedAt: { type: 'integer', description: 'ms since the epoch (edge clock)' },
          expiresAt: { type: 'integer', description: 'ms since the epoch; a switch receiving it later answers expired without executing it' },
          reason: { type: 'string' },
          vsiId: { type: 'string' },
          vni: { type: 'integer' },
          port: { type: 'string' },
          mode: { enum: ['de-associate', 'deactivate'] },
          state: { $ref: '#/components/schemas/CommandState', description: 'in POST answers only' },
        },
      },
      CommandState: {
        enum: ['pending', 'delivered', 'answered', 'expired'],
        description: 'pending: recorded, not acknowledged by the switch; delivered: acknowledged (embedded broker only); answered: replied; expired: no reply before expiresAt, or answered expired. See docs/api.md.',
      },
      CommandReply: {
        type: 'object',
        required: ['v', 'commandId', 'switchId', 'time', 'status', 'affected'],
        properties: {
          v: { const: 1 },
          commandId: { type: 'string' },
          switchId: { type: 'string' },
          time: { type: 'integer', description: 'ms since the epoch (switch clock)' },
          status: { enum: ['done', 'not-found', 'failed', 'expired'] },
          affected: { type: 'integer' },
          detail: { type: 'string' },
        },
      },
      CommandRecord: {
        type: 'object',
        required: ['command', 'origin', 'state', 'stateAt', 'resends'],
        properties: {
          command: ref('Command'),
          origin: { enum: ['operator', 'migration-cleanup'] },
          state: ref('CommandState'),
          stateAt: { type: 'integer', description: 'ms since the epoch (edge clock) of the last state change' },
          resends: { type: 'integer', description: 'publications after the first (edge start, switch online)' },
          reply: ref('CommandReply'),
        },
      },
    },
  },
  paths: {
    '/healthz': { get: { summary: 'Liveness and store counts', responses: { '200': ok('Healthy') } } },
    '/metrics': {
      get: {
        summary: 'Prometheus metrics',
        security: readSec,
        responses: { '200': { description: 'Text format 0.0.4', content: { 'text/plain': { schema: { type: 'string' } } } }, ...errors(401) },
      },
    },
    '/': { get: { summary: 'Fleet view web page', responses: { '200': { description: 'HTML', content: { 'text/html': {} } } } } },
    '/api/v1/openapi.json': { get: { summary: 'This document', responses: { '200': ok('OpenAPI 3.1') } } },
    '/api/v1/fleet': {
      get: { summary: 'Fleet summary for the web page', security: readSec, responses: { '200': ok('VNs, switches, VSIs (first 500), recent migrations'), ...errors(401) } },
    },
    '/api/v1/vns': {
      get: { summary: 'List VNs', security: readSec, responses: { '200': ok('VNs', { type: 'object', properties: { vns: { type: 'array', items: ref('Vn') } } }), ...errors(401) } },
      post: {
        summary: 'Create a VN (pushes policy)',
        security: adminSec,
        requestBody: body(ref('VnInput')),
        responses: { '201': ok('Created', ref('Vn')), ...errors(400, 401, 403, 409, 415) },
      },
    },
    '/api/v1/vns/{name}': {
      parameters: [vnName],
      get: { summary: 'One VN', security: readSec, responses: { '200': ok('VN', ref('Vn')), ...errors(401, 404) } },
      put: {
        summary: 'Create or replace a VN (pushes policy)',
        security: adminSec,
        requestBody: body(ref('VnInput')),
        responses: { '200': ok('Saved', ref('Vn')), ...errors(400, 401, 403, 409, 415) },
      },
      delete: { summary: 'Delete a VN (pushes policy)', security: adminSec, responses: { '204': { description: 'Deleted' }, ...errors(401, 403, 404) } },
    },
    '/api/v1/vsi-types': {
      get: { summary: 'List VSI types', security: readSec, responses: { '200': ok('VSI types'), ...errors(401) } },
    },
    '/api/v1/vsi-types/{typeId}/{typeVersion}': {
      parameters: vsiTypeParams,
      put: {
        summary: 'Create or replace a VSI type',
        security: adminSec,
        requestBody: body({ type: 'object', required: ['name'], properties: { name: { type: 'string' }, description: { type: 'string' } } }),
        responses: { '200': ok('Saved', ref('VsiType')), ...errors(400, 401, 403, 415) },
      },
      delete: { summary: 'Delete a VSI type', security: adminSec, responses: { '204': { description: 'Deleted' }, ...errors(401, 403, 404) } },
    },
    '/api/v1/hosts': {
      get: { summary: 'List hosts (no secrets)', security: readSec, responses: { '200': ok('Hosts'), ...errors(401) } },
    },
    '/api/v1/hosts/{hostId}': {
      parameters: [hostIdParam],
      get: { summary: 'One host (no secrets)', security: readSec, responses: { '200': ok('Host', ref('Host')), ...errors(401, 404) } },
      put: {
        summary: 'Create or update a host (pushes policy)',
        security: adminSec,
        requestBody: body({
          type: 'object',
          required: ['stationMacs'],
          properties: { managerId: { type: 'string' }, stationMacs: { type: 'array', items: { type: 'string' } } },
        }),
        responses: { '200': ok('Updated', ref('Host')), '201': ok('Created', ref('Host')), ...errors(400, 401, 403, 415) },
      },
      delete: { summary: 'Delete a host and its keys (pushes policy)', security: adminSec, responses: { '204': { description: 'Deleted' }, ...errors(401, 403, 404) } },
    },
    '/api/v1/hosts/{hostId}/keys': {
      parameters: [hostIdParam],
      post: {
        summary: 'Add a key (write-only; pushes policy)',
        security: adminSec,
        requestBody: body({
          type: 'object',
          required: ['keyId', 'key'],
          properties: {
            keyId: { type: 'integer', minimum: 0, maximum: 65535 },
            key: { type: 'string', contentEncoding: 'base64', description: '16..64 bytes' },
            notAfter: { type: 'integer' },
          },
        }),
        responses: { '201': ok('Host without secrets', ref('Host')), ...errors(400, 401, 403, 404, 409, 415) },
      },
    },
    '/api/v1/hosts/{hostId}/keys/{keyId}': {
      parameters: [hostIdParam, pathParam('keyId', 'Key id', { type: 'integer' })],
      delete: { summary: 'Delete a key (pushes policy)', security: adminSec, responses: { '204': { description: 'Deleted' }, ...errors(401, 403, 404) } },
    },
    '/api/v1/switches': {
      get: { summary: 'List switches with status, peers and VLAN use', security: readSec, responses: { '200': ok('Switches'), ...errors(401) } },
    },
    '/api/v1/switches/{switchId}': {
      parameters: [switchIdParam],
      get: { summary: 'One switch and its config', security: readSec, responses: { '200': ok('Switch', ref('Switch')), ...errors(401, 404) } },
    },
    '/api/v1/switches/{switchId}/config': {
      parameters: [switchIdParam],
      put: {
        summary: 'Set VID pool, LAG groups, unknown-host rule (pushes policy)',
        security: adminSec,
        requestBody: body(ref('SwitchConfig')),
        responses: { '200': ok('Saved', ref('SwitchConfig')), ...errors(400, 401, 403, 415) },
      },
    },
    '/api/v1/switches/{switchId}/policy': {
      parameters: [switchIdParam],
      get: { summary: 'The policy the switch gets, keys redacted', security: readSec, responses: { '200': ok('Policy'), ...errors(401, 404) } },
    },
    '/api/v1/switches/{switchId}/policy/push': {
      parameters: [switchIdParam],
      post: { summary: 'Push the policy again', security: adminSec, responses: { '202': ok('Pushed'), ...errors(401, 403, 404) } },
    },
    '/api/v1/vsis': {
      get: {
        summary: 'Find VSIs',
        security: readSec,
        parameters: [
          queryParam('mac', 'A MAC of the VSI'),
          queryParam('ip', 'An IPv4 or IPv6 address of the VSI'),
          queryParam('vni', 'VNI of its VN', { type: 'integer' }),
          queryParam('switch', 'Held on this switch'),
          queryParam('port', 'Held on this port (needs switch)'),
          queryParam('state', 'associated, pre-associated or gone'),
          limit,
          queryParam('after', 'Cursor: `next` of the previous page'),
        ],
        responses: {
          '200': ok('A page', { type: 'object', properties: { vsis: { type: 'array', items: ref('Vsi') }, next: { type: ['string', 'null'] } } }),
          ...errors(400, 401),
        },
      },
    },
    '/api/v1/vsis/{vsiId}': {
      parameters: [pathParam('vsiId', 'VSIID: 32 hex digits or a UUID')],
      get: { summary: 'One VSI: current place, history, migrations', security: readSec, responses: { '200': ok('VSI', ref('Vsi')), ...errors(400, 401, 404) } },
    },
    '/api/v1/migrations': {
      get: { summary: 'Most recent migrations', security: readSec, parameters: [limit], responses: { '200': ok('Migrations'), ...errors(400, 401) } },
    },
    '/api/v1/events': {
      get: {
        summary: 'Audit log of applied events, paged by cursor',
        security: readSec,
        parameters: [
          queryParam('after', 'Cursor (exclusive)', { type: 'integer' }),
          limit,
          queryParam('switch', 'Only this switch'),
          queryParam('vsi', 'Only this VSIID'),
          queryParam('kind', 'Only this event kind'),
        ],
        responses: { '200': ok('A page', { type: 'object', properties: { events: { type: 'array' }, next: { type: ['integer', 'null'] } } }), ...errors(400, 401) },
      },
    },
    '/api/v1/stream': {
      get: {
        summary: 'Server-Sent Events: one `fleet-event` per applied event (tail of the audit log)',
        security: readSec,
        parameters: [queryParam('after', 'Start after this cursor (default: now); Last-Event-ID wins', { type: 'integer' })],
        responses: { '200': { description: 'text/event-stream', content: { 'text/event-stream': {} } }, ...errors(400, 401) },
      },
    },
    '/api/v1/tokens': {
      get: { summary: 'Tokens issued through the API (no secrets)', security: adminSec, responses: { '200': ok('Tokens'), ...errors(401, 403) } },
      post: {
        summary: 'Issue a token (returned once; only its SHA-256 is stored)',
        security: adminSec,
        requestBody: body({ type: 'object', required: ['name', 'scope'], properties: { name: { type: 'string' }, scope: { enum: ['read', 'admin'] } } }),
        responses: {
          '201': ok('Issued', { type: 'object', properties: { id: { type: 'string' }, name: { type: 'string' }, scope: { type: 'string' }, token: { type: 'string' } } }),
          ...errors(400, 401, 403, 415),
        },
      },
    },
    '/api/v1/tokens/{id}': {
      parameters: [pathParam('id', 'Token id (16 hex digits)')],
      delete: { summary: 'Revoke a token', security: adminSec, responses: { '204': { description: 'Revoked' }, ...errors(400, 401, 403, 404) } },
    },
    '/api/v1/commands': {
      get: {
        summary: 'Recent commands with their state and reply, newest first',
        security: readSec,
        parameters: [limit, queryParam('state', 'Only commands in this state', ref('CommandState')), queryParam('switch', 'Only commands to this switch')],
        responses: { '200': ok('Commands', { type: 'object', properties: { commands: { type: 'array', items: ref('CommandRecord') } } }), ...errors(400, 401) },
      },
    },
    '/api/v1/commands/{commandId}': {
      parameters: [pathParam('commandId', 'Command id')],
      get: { summary: 'One command with its state and reply', security: readSec, responses: { '200': ok('Command', ref('CommandRecord')), ...errors(401, 404) } },
    },
    '/api/v1/commands/disconnect-vsi': {
      post: {
        summary: 'Disconnect (de-associate or deactivate) a VSI',
        security: adminSec,
        requestBody: body({
          type: 'object',
          required: ['vsiId'],
          properties: {
            vsiId: { type: 'string' },
            switchId: { type: 'string', description: 'Absent: every switch holding the VSI' },
            port: { type: 'string' },
            mode: { enum: ['de-associate', 'deactivate'] },
            reason: { type: 'string' },
          },
        }),
        responses: { '202': ok('Recorded and published (or pending: sent when the switch comes online)', { type: 'object', properties: { commands: { type: 'array', items: ref('Command') } } }), ...errors(400, 401, 403, 404, 415) },
      },
    },
    '/api/v1/commands/disconnect-vn': {
      post: {
        summary: 'Disconnect every VSI of a VN from a port',
        security: adminSec,
        requestBody: body({
          type: 'object',
          required: ['switchId', 'port'],
          properties: { switchId: { type: 'string' }, port: { type: 'string' }, vni: { type: 'integer' }, vn: { type: 'string' }, reason: { type: 'string' } },
        }),
        responses: { '202': ok('Recorded and published (or pending: sent when the switch comes online)', { type: 'object', properties: { commands: { type: 'array', items: ref('Command') } } }), ...errors(400, 401, 403, 404, 415) },
      },
    },
    '/api/v1/ingest/events': {
      post: {
        summary: 'Ingest events (CBOR: one event or an array), e.g. from a broker rule engine',
        security: adminSec,
        requestBody: { required: true, content: { 'application/cbor': { schema: { description: 'docs/events.cddl' } } } },
        responses: {
          '200': ok('Applied', {
            type: 'object',
            properties: {
              applied: { type: 'integer' },
              duplicates: { type: 'integer' },
              stale: { type: 'integer' },
              migrations: { type: 'array', items: { type: 'string' } },
              commands: { type: 'array', items: { type: 'string' } },
            },
          }),
          ...errors(400, 401, 403, 413, 415, 422),
        },
      },
    },
  },
} as const
