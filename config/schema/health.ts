import { z } from 'zod';

export const HealthSchema = z
  .strictObject({
    interval_s: z.number().min(1).max(3600).default(30).describe('Health report period, seconds. Default 30'),
    slow_interval_s: z.number().min(1).max(86_400).default(300).describe('Period of slow probes (disk, network, clock sync, vcgencmd), seconds. Default 300'),
    temperature_warn_c: z.number().default(80).describe('SoC temperature that turns health to warn, degrees C. Default 80'),
    disk_min_free_mb: z
      .number()
      .min(0)
      .default(500)
      .describe('Free space on the data partition below which health turns to error (and /healthz to 503), MB. Default 500'),
    memory_warn_pct: z.number().min(1).max(100).default(90).describe('Memory use (total minus available) that turns health to warn, percent. Default 90'),
    event_loop_lag_warn_ms: z
      .number()
      .min(1)
      .default(200)
      .describe('Event-loop delay (99th percentile over a sample period) that turns health to warn, ms. Default 200'),
    clock_offset_warn_ms: z.number().min(0).default(1000).describe('Clock offset from NTP that turns health to warn, ms. Default 1000'),
    detector_stall_s: z
      .number()
      .min(1)
      .default(30)
      .describe('No inference finished for this long while a camera is online: the detector counts as stuck (health error, watchdog keep-alives withheld), seconds. Default 30'),
  })
  .describe('Health sampling');
export type HealthConfig = z.infer<typeof HealthSchema>;
