import { z } from 'zod';
import { Slug } from './common.js';

const BrokerUrl = z
  .string()
  .refine((u) => /^(mqtts?|wss?):\/\/[^/\s]+/.test(u) && URL.canParse(u), 'expected a broker URL: mqtt://, mqtts://, ws:// or wss:// with a host');

/** Most nodes a box rotates through: a cluster is reached through a few of its nodes, not all of them. */
export const MAX_BROKER_URLS = 16;

export const MqttSchema = z
  .strictObject({
    url: BrokerUrl.optional().describe('Broker URL (one broker). mqtts:// for TLS. Credentials go in username/password, never in the URL. Give url or urls, not both'),
    urls: z
      .array(BrokerUrl)
      .min(1)
      .max(MAX_BROKER_URLS)
      .optional()
      .describe(
        'Broker URLs of a cluster, in order of preference: the uplink connects to the first that answers and moves to the next one (round robin, with the reconnect backoff) when the connection is lost or an attempt fails. Each URL is checked like url. Give url or urls, not both',
      ),
    protocol: z.literal([5, 4]).default(5).describe('MQTT protocol version: 5, or 4 (= MQTT 3.1.1). Default 5'),
    client_id: z.string().min(1).max(128).optional().describe('MQTT client id. Default roadside-<site>-<device>'),
    username: z.string().optional().describe('User name (env ROADSIDE_MQTT_USERNAME overrides)'),
    password: z.string().optional().describe('Password (env ROADSIDE_MQTT_PASSWORD overrides); never logged'),
    tls: z
      .strictObject({
        ca: z.string().optional().describe('CA bundle (PEM) that signs the broker certificate. Default: the system CAs'),
        cert: z.string().optional().describe('Client certificate (PEM) for mutual TLS'),
        key: z.string().optional().describe('Client private key (PEM) for mutual TLS'),
        servername: z.string().optional().describe('TLS server name to verify, if not the URL host'),
      })
      .optional()
      .describe('TLS files, relative to the config file. Verification of the broker certificate is always on'),
    allow_insecure: z.boolean().default(false).describe('Allow plaintext mqtt:// to a non-loopback broker. Default false'),
    topic_prefix: Slug.default('roadside').describe('First topic level: {prefix}/{site}/{device}/... Default roadside'),
    keepalive_s: z.number().int().min(5).max(600).default(30).describe('MQTT keep-alive, seconds. Default 30'),
    inflight_window: z.number().int().min(1).max(1000).default(64).describe('Unacknowledged QoS 1 messages allowed at once. Default 64'),
    drain_rate_per_s: z.number().min(0).default(0).describe('Cap on backlog (replayed) messages per second, 0 = no cap. Default 0'),
    backoff: z
      .strictObject({
        initial_ms: z.number().int().min(100).default(1000).describe('First reconnect delay, ms. Default 1000'),
        max_ms: z.number().int().min(1000).default(60_000).describe('Longest reconnect delay, ms. Default 60000'),
        jitter: z.number().min(0).max(1).default(0.5).describe('Random fraction taken off each delay, 0-1, so a fleet does not reconnect in step. Default 0.5'),
      })
      .prefault({})
      .describe('Reconnect backoff'),
    embedded_broker: z
      .boolean()
      .default(false)
      .describe('Start an embedded MQTT 3.1.1 broker on the URL port (loopback only; demo use). Default false'),
  })
  .superRefine((m, ctx) => {
    if (m.url !== undefined && m.urls !== undefined) ctx.addIssue({ code: 'custom', path: ['urls'], message: 'give mqtt.url (one broker) or mqtt.urls (a cluster), not both' });
    if (m.url === undefined && m.urls === undefined) ctx.addIssue({ code: 'custom', path: ['url'], message: 'required: mqtt.url (one broker) or mqtt.urls (a cluster)' });
  })
  // One shape for the code: `urls` lists every node, `url` is the first (what single-broker code such as the
  // embedded broker and doctor's probe reads).
  .transform(({ url, urls, ...rest }) => {
    const list = urls ?? (url === undefined ? [] : [url]);
    return { ...rest, url: list[0] ?? '', urls: list };
  })
  .describe('Uplink to the provincial control center');
export type MqttConfig = z.infer<typeof MqttSchema>;
