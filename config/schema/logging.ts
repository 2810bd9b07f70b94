import { z } from 'zod';

export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace'] as const;

export const LoggingSchema = z
  .strictObject({
    level: z.enum(LOG_LEVELS).default('info').describe('Log level (env ROADSIDE_LOG_LEVEL overrides). Default info'),
    pretty: z.enum(['auto', 'always', 'never']).default('auto').describe('Human-readable logs: auto = when stdout is a terminal. Default auto'),
  })
  .describe('Logging (JSON lines on stdout for journald)');
export type LoggingConfig = z.infer<typeof LoggingSchema>;
