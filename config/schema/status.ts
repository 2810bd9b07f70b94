import { z } from 'zod';

export const StatusSchema = z
  .strictObject({
    enabled: z.boolean().default(true).describe('Serve /healthz, /metrics and the status page. Default true'),
    bind: z.string().default('127.0.0.1').describe('Listen address. Default 127.0.0.1; any other address requires a token'),
    port: z.number().int().min(1).max(65535).default(8080).describe('Listen port. Default 8080'),
    token: z.string().min(16, 'a token needs at least 16 characters').optional().describe('Bearer token required by the status server (env ROADSIDE_STATUS_TOKEN overrides); never logged'),
    preview_fps: z
      .number()
      .min(0.5)
      .max(15)
      .default(5)
      .describe('Frame rate of the status page live preview (a separate ffmpeg runs only while someone watches), frames per second. Default 5'),
    preview_width: z.number().int().min(160).max(1920).default(640).describe('Largest width of the live preview, pixels (smaller frames are not enlarged). Default 640'),
  })
  .describe('Local status server');
export type StatusConfig = z.infer<typeof StatusSchema>;
