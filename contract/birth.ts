import { z } from 'zod';
import { ConfigState } from './commands.js';
import { BrokerNode, HealthSummary } from './health.js';
import { Session } from './status.js';

/** What the controller knows about the box; given to the uplink as the `birth()` callback's result. */
export const BirthInfo = z
  .strictObject({
    agent_version: z.string().describe('roadside-agent version (package.json)'),
    model: z
      .strictObject({
        name: z.string().describe('Detection model name, e.g. "nanodet-m-416"'),
        version: z.string().optional().describe('Model version or build tag'),
        sha256: z.string().optional().describe('sha256 of the model file, hex'),
      })
      .describe('Detection model in use'),
    config_hash: z.string().describe('sha256 of the config file text, first 16 hex digits'),
    config: ConfigState.optional().describe('The config in force: when it was applied, its probation after a push, the last automatic rollback (config-apply)'),
    cameras: z
      .array(
        z.strictObject({
          id: z.string().describe('Camera id (topic level)'),
          lines: z.array(z.string()).default([]).describe('Counting line ids'),
          zones: z.array(z.string()).default([]).describe('Zone ids'),
        }),
      )
      .describe('Cameras configured on the box (never their URLs or credentials)'),
    capabilities: z.array(z.string()).describe('Features on this box, e.g. "speed", "wrong_way", "snapshot"'),
    last_reboot_reason: z.string().describe('Why the agent last (re)started, e.g. "first_start", "stopped", "crash", "power_loss", "watchdog", "detector_failed", "config_reload", "config_apply", "config_rollback"'),
    restarts: z.number().int().min(0).optional().describe('Agent starts counted on this box (survives restarts)'),
    health: HealthSummary.optional().describe('Health summary at the time of the birth'),
    location: z
      .strictObject({ lat: z.number(), lon: z.number(), description: z.string().optional() })
      .optional()
      .describe('device.location from the config'),
  })
  .describe('Box description supplied by the controller');
export type BirthInfo = z.input<typeof BirthInfo>;

/** `{base}/birth`, retained, QoS 1: published after every connect, before `online`, and on `rebirth`. */
export const BirthPayload = BirthInfo.extend({
  contract_version: z.number().int().min(1).describe('Version of this MQTT contract (contract/topics.ts CONTRACT_VERSION)'),
  session: Session,
  ts: z.iso.datetime({ offset: true }).describe('ISO 8601 time of publication'),
  commands: z.array(z.string()).describe('Command names accepted on {base}/cmd/{name}'),
  broker: BrokerNode.optional().describe('The broker node this session is connected to (set by the uplink; absent from agents before broker failover)'),
}).describe('Birth certificate: what runs on the box');
export type BirthPayload = z.infer<typeof BirthPayload>;
