import { z } from 'zod';
import { LOG_LEVELS, LOG_PRETTY } from '../../core/log.js';

export const LoggingSchema = z
  .strictObject({
    level: z.enum(LOG_LEVELS).default('info').describe('Log level (env ROADSIDE_LOG_LEVEL overrides). Default info'),
    pretty: z.enum(LOG_PRETTY).default('auto').describe('Human-readable logs: auto = when stdout is a terminal. Default auto'),
  })
  .describe('Logging (JSON lines on stdout for journald)');
export type LoggingConfig = z.infer<typeof LoggingSchema>;
