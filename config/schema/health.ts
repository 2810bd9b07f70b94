import { z } from 'zod';

export const HealthSchema = z
  .strictObject({
    interval_s: z.number().min(1).max(3600).default(30).describe('Health report period, seconds. Default 30'),
    slow_interval_s: z.number().min(1).max(86_400).default(300).describe('Period of slow probes (disk, network, clock sync), seconds. Default 300'),
    temperature_warn_c: z.number().default(80).describe('SoC temperature that turns health to warn, degrees C. Default 80'),
    disk_min_free_mb: z.number().min(0).default(500).describe('Free space on the data partition below which health warns, MB. Default 500'),
  })
  .describe('Health sampling');
export type HealthConfig = z.infer<typeof HealthSchema>;
