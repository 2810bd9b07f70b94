import { z } from 'zod';
import { BirthPayload } from './birth.js';
import { CommandRequest, CommandResponse } from './command.js';
import { WireEventSchema } from './event.js';
import { HealthMessage } from './health.js';
import { CameraStatusPayload, StatusPayload } from './status.js';

/** Version of the MQTT contract, sent in the birth message. Bump on any incompatible payload change. */
export const CONTRACT_VERSION = 1;

/**
 * Fields the uplink adds to every message it sends from the outbox (events, health). The body of a traffic
 * event is defined in contract/event.ts (analytics); these keys are reserved there.
 */
export const DeliveryFields = z.looseObject({
  id: z.string().describe('Unique message id: the center drops duplicates by it (delivery is at-least-once)'),
  seq: z.number().int().min(1).describe('Per-device sequence number, monotonic across restarts: gaps mean lost or evicted messages'),
  sent_at: z.iso.datetime({ offset: true }).describe('ISO 8601 time this copy was sent'),
  replayed: z.boolean().describe('true when sent from the backlog (queued while offline, resent after a crash, or by the resend command)'),
});

export interface TopicSpec {
  /** Topic with placeholders: {base} = {prefix}/{site}/{device}, {camera}, {name}. */
  pattern: string;
  /** publish: the agent sends; subscribe: the agent receives. */
  direction: 'publish' | 'subscribe';
  retained: boolean;
  qos: 0 | 1;
  schema: z.ZodType;
  description: string;
}

/** Every MQTT topic of the agent: the source of the generated AsyncAPI / JSON Schema documents. */
export const TOPICS = {
  status: {
    pattern: '{base}/status',
    direction: 'publish',
    retained: true,
    qos: 1,
    schema: StatusPayload,
    description: 'Availability: online after birth, stopped on clean shutdown, offline as the MQTT Will. The session number grows at each connect',
  },
  birth: {
    pattern: '{base}/birth',
    direction: 'publish',
    retained: true,
    qos: 1,
    schema: BirthPayload,
    description: 'Birth certificate, published after every connect (before online) and on the rebirth command',
  },
  events: {
    pattern: '{base}/events/{camera}',
    direction: 'publish',
    retained: false,
    qos: 1,
    schema: WireEventSchema,
    description: 'Traffic events from the outbox (body: contract/event.ts). Live events first, then the backlog oldest-first per priority with replayed: true',
  },
  health: {
    pattern: '{base}/health',
    direction: 'publish',
    retained: false,
    qos: 1,
    schema: HealthMessage,
    description: 'Periodic health report, sent through the outbox with the lowest priority (body: agent/health)',
  },
  camera_status: {
    pattern: '{base}/cameras/{camera}/status',
    direction: 'publish',
    retained: true,
    qos: 1,
    schema: CameraStatusPayload,
    description: 'Camera stream state; the latest is republished after each birth',
  },
  command: {
    pattern: '{base}/cmd/{name}',
    direction: 'subscribe',
    retained: false,
    qos: 1,
    schema: CommandRequest,
    description: 'Command request. MQTT 5 Response Topic and Correlation Data are honoured. Larger than 64 KiB: refused',
  },
  command_result: {
    pattern: '{base}/cmd/{name}/result',
    direction: 'publish',
    retained: false,
    qos: 1,
    schema: CommandResponse,
    description: 'Command response when the request had no MQTT 5 Response Topic (always with MQTT 3.1.1). Dropped while offline',
  },
} as const satisfies Record<string, TopicSpec>;

export type TopicName = keyof typeof TOPICS;

const LEVEL_CHARS = /^[^/+#]+$/;
const isLevel = (l: string): boolean => LEVEL_CHARS.test(l) && !l.includes('\u0000');

/** `{prefix}/{site}/{device}`. */
export function baseTopic(prefix: string, site: string, device: string): string {
  for (const l of [prefix, site, device]) if (!isLevel(l)) throw new Error(`invalid topic level "${l}"`);
  return `${prefix}/${site}/${device}`;
}

/** True for a relative topic such as `events/cam1`: non-empty levels, no wildcards, no leading or trailing slash. */
export function isRelativeTopic(topic: string): boolean {
  return topic.length > 0 && topic.length <= 512 && topic.split('/').every(isLevel);
}

/** Topic builders for one device. */
export function topicsFor(base: string) {
  return {
    base,
    status: `${base}/status`,
    birth: `${base}/birth`,
    health: `${base}/health`,
    events: (camera: string) => `${base}/events/${camera}`,
    cameraStatus: (camera: string) => `${base}/cameras/${camera}/status`,
    command: (name: string) => `${base}/cmd/${name}`,
    commandResult: (name: string) => `${base}/cmd/${name}/result`,
    /** The only subscription of the agent. */
    commandFilter: `${base}/cmd/+`,
  } as const;
}
export type Topics = ReturnType<typeof topicsFor>;

/** Relative topics (outbox `topic` column) for the two outbox-fed topics. */
export const relativeTopic = {
  events: (camera: string) => `events/${camera}`,
  health: 'health',
} as const;
