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
    description:
      'Periodic health report, sent through the outbox with the lowest priority (body: agent/health). While the disk is full (status conditions: disk_full) each report is also published directly; the copy the outbox sends later carries the same id and seq',
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
    description:
      'Command request; never retained: a retained request is not executed (MQTT 5: the agent subscribes with Retain As Published so it sees the flag). MQTT 5 Correlation Data is echoed and the Response Topic is honoured only inside the reply namespace, {prefix}/_center/{id}/reply[/…] or {base}/reply[/…]; any other Response Topic is refused with RESPONSE_TOPIC_REFUSED on {base}/cmd/{name}/result and the command is not run. Larger than 64 KiB: refused',
  },
  command_result: {
    pattern: '{base}/cmd/{name}/result',
    direction: 'publish',
    retained: false,
    qos: 1,
    schema: CommandResponse,
    description:
      'Command response when the request had no MQTT 5 Response Topic (always with MQTT 3.1.1), and the RESPONSE_TOPIC_REFUSED error when its Response Topic was outside the reply namespace. Dropped while offline',
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

/** Relative topics (below `{base}`): the outbox `topic` column and the uplink's direct publishes. */
export const relativeTopic = {
  events: (camera: string) => `events/${camera}`,
  health: 'health',
  cameraStatus: (camera: string) => `cameras/${camera}/status`,
} as const;

/** The level under `{prefix}` that holds reply topics of centers; never a site id (sites start with a letter or digit). */
const CENTER_LEVEL = '_center';
const REPLY_LEVEL = 'reply';

/** `{prefix}/_center/{id}/reply`: where a center (or any requester with this id) receives command responses. */
export function centerReplyTopic(prefix: string, id: string): string {
  return `${prefix}/${CENTER_LEVEL}/${id.replace(/[/+#\s]/g, '_')}/${REPLY_LEVEL}`;
}

/**
 * Whether a command's MQTT 5 Response Topic may be used by the device at `base`: a center's reply topic
 * `{prefix}/_center/{id}/reply[/…]` or the device's own `{base}/reply[/…]`. Anything else (the box's own status,
 * birth, events, health or cmd topics, another device's tree, another tree) is refused: a request must not be
 * able to make the box publish there.
 */
export function isPermittedResponseTopic(base: string, topic: string): boolean {
  if (topic.length > 1024) return false;
  const levels = topic.split('/');
  if (!levels.every(isLevel)) return false;
  const own = `${base}/${REPLY_LEVEL}`;
  if (topic === own || topic.startsWith(`${own}/`)) return true;
  return levels.length >= 4 && levels[0] === base.split('/')[0] && levels[1] === CENTER_LEVEL && levels[3] === REPLY_LEVEL;
}

/** Topic builders for one device. */
export function topicsFor(base: string) {
  return {
    base,
    status: `${base}/status`,
    birth: `${base}/birth`,
    health: `${base}/${relativeTopic.health}`,
    events: (camera: string) => `${base}/${relativeTopic.events(camera)}`,
    cameraStatus: (camera: string) => `${base}/${relativeTopic.cameraStatus(camera)}`,
    /** Absolute topic of a relative one (relativeTopic, the outbox `topic` column). */
    resolve: (relative: string) => `${base}/${relative}`,
    command: (name: string) => `${base}/cmd/${name}`,
    /** The command name of a topic matched by commandFilter; undefined for any other topic. */
    commandName: (topic: string): string | undefined => {
      const prefix = `${base}/cmd/`;
      const name = topic.startsWith(prefix) ? topic.slice(prefix.length) : '';
      return isLevel(name) ? name : undefined;
    },
    commandResult: (name: string) => `${base}/cmd/${name}/result`,
    /** The device's own reply namespace (a permitted Response Topic, with any levels below). */
    reply: `${base}/${REPLY_LEVEL}`,
    /** The only subscription of the agent. */
    commandFilter: `${base}/cmd/+`,
  } as const;
}
export type Topics = ReturnType<typeof topicsFor>;

/** `{prefix}/{site}/{device}` for subscription filters: site and device may be the single-level wildcard `+`. */
export function baseFilter(prefix: string, site = '+', device = '+'): string {
  for (const l of [site, device]) if (l !== '+' && !isLevel(l)) throw new Error(`invalid topic level "${l}"`);
  if (!isLevel(prefix)) throw new Error(`invalid topic level "${prefix}"`);
  return `${prefix}/${site}/${device}`;
}

/** A topic of TOPICS as received: its device, which entry it is and the `{camera}` / `{name}` level if any. */
export interface DeviceTopic {
  site: string;
  device: string;
  name: TopicName;
  param?: string;
}

const PATTERN_LEVELS = (Object.keys(TOPICS) as TopicName[]).map((name) => ({ name, levels: TOPICS[name].pattern.split('/').slice(1) }));

/** The inverse of topicsFor: which entry of TOPICS `topic` is under `prefix`; null when none. */
export function parseTopic(prefix: string, topic: string): DeviceTopic | null {
  const l = topic.split('/');
  const [first, site, device] = l;
  if (first !== prefix || site === undefined || device === undefined || !isLevel(site) || !isLevel(device)) return null;
  for (const p of PATTERN_LEVELS) {
    if (p.levels.length !== l.length - 3) continue;
    let param: string | undefined;
    const match = p.levels.every((want, i) => {
      const got = l[i + 3] as string;
      if (!want.startsWith('{')) return want === got;
      param = got;
      return isLevel(got);
    });
    if (match) return param === undefined ? { site, device, name: p.name } : { site, device, name: p.name, param };
  }
  return null;
}

