import { z } from 'zod';
import { AnalyticsSchema } from './analytics.js';
import { CamerasSchema } from './cameras.js';
import { DetectorSchema } from './detector.js';
import { DeviceSchema } from './device.js';
import { HealthSchema } from './health.js';
import { LoggingSchema } from './logging.js';
import { MqttSchema } from './mqtt.js';
import { OutboxSchema } from './outbox.js';
import { RecognizersSchema } from './recognizers.js';
import { StatusSchema } from './status.js';

export const ConfigSchema = z
  .strictObject({
    device: DeviceSchema,
    cameras: CamerasSchema,
    detector: DetectorSchema.prefault({}),
    analytics: AnalyticsSchema.prefault({}),
    recognizers: RecognizersSchema.prefault({}),
    outbox: OutboxSchema.prefault({}),
    mqtt: MqttSchema,
    health: HealthSchema.prefault({}),
    status: StatusSchema.prefault({}),
    logging: LoggingSchema.prefault({}),
  })
  .describe('roadside-agent configuration');

/** The validated configuration, with defaults filled in and relative paths resolved. */
export type Config = z.infer<typeof ConfigSchema>;
export type ConfigInput = z.input<typeof ConfigSchema>;

export * from './analytics.js';
export * from './cameras.js';
export * from './common.js';
export * from './detector.js';
export * from './device.js';
export * from './health.js';
export * from './logging.js';
export * from './mqtt.js';
export * from './outbox.js';
export * from './recognizers.js';
export * from './status.js';
