import { z } from 'zod';

/** States of `{base}/status`. `offline` is only ever the MQTT Will, published by the broker. */
export const AGENT_STATES = ['online', 'stopped', 'offline'] as const;
export type AgentState = (typeof AGENT_STATES)[number];

export const Session = z
  .number()
  .int()
  .min(1)
  .describe('Connection session number: grows by one at every connect attempt and survives restarts (stored in the outbox). A Will with a lower session than the last online is late and can be ignored');

/**
 * Conditions the retained status carries while they last. disk_full: the outbox cannot write (events wait in
 * memory, bounded; health reports are published directly, outside the outbox, with QoS 1).
 */
export const STATUS_CONDITIONS = ['disk_full'] as const;
export type StatusCondition = (typeof STATUS_CONDITIONS)[number];

/** `{base}/status`, retained, QoS 1. */
export const StatusPayload = z
  .strictObject({
    state: z
      .enum(AGENT_STATES)
      .describe('online: connected and birth published; stopped: clean shutdown; offline: the Will, published by the broker when the connection died'),
    session: Session,
    ts: z.iso
      .datetime({ offset: true })
      .describe('ISO 8601. online/stopped: when published. offline (Will): when the connection that set the Will was opened, since the broker sends the Will unchanged'),
    conditions: z
      .array(z.enum(STATUS_CONDITIONS))
      .optional()
      .describe(
        'Degraded conditions while online (absent when none). disk_full: the outbox cannot write; events wait in memory and health reports bypass it. The status is published again (same session, new ts) when a condition starts or ends',
      ),
  })
  .describe('Agent availability (Sparkplug-style death certificate with a session number)');
export type StatusPayload = z.infer<typeof StatusPayload>;

/** `{base}/cameras/{camera}/status`, retained, QoS 1: published by the camera supervisor through `Uplink.publishNow`. */
export const CameraStatusPayload = z
  .strictObject({
    camera: z.string().describe('Camera id'),
    state: z.enum(['online', 'offline', 'stalled']).describe('online: frames arrive; offline: no stream; stalled: connected but no frames'),
    reason: z.string().max(500).optional().describe('Why the camera is not online, e.g. "rtsp 401 Unauthorized"'),
    ts: z.iso.datetime({ offset: true }).describe('ISO 8601 time of the state change'),
  })
  .describe('Camera stream state');
export type CameraStatusPayload = z.infer<typeof CameraStatusPayload>;
