import { z } from 'zod';
import { PrioritySchema } from '../../contract/event.js';

const DAY_S = 86_400;

/**
 * The outbox's priority classes in delivery order: the event priorities of the wire contract (one definition,
 * contract/event.ts), then health reports, sent last and evicted first.
 */
export const OUTBOX_PRIORITIES = [...PrioritySchema.options, 'health'] as const;
export type OutboxPriority = (typeof OUTBOX_PRIORITIES)[number];

export const OutboxSchema = z
  .strictObject({
    path: z
      .string()
      .min(1)
      .default('outbox.db')
      .describe('SQLite file; relative to device.data_dir and, after symlinks, inside it (unless allow_outside_data_dir). Default outbox.db'),
    allow_outside_data_dir: z
      .boolean()
      .default(false)
      .describe('Allow outbox.path to lead outside device.data_dir (an absolute path elsewhere, "..", a symlink out). Default false'),
    max_rows: z.number().int().min(100).default(1_000_000).describe('Row cap; beyond it the oldest lowest-priority rows are evicted. Default 1000000'),
    max_mb: z.number().min(1).default(512).describe('Size cap of stored payloads, MB. Default 512'),
    ttl_s: z
      .strictObject({
        violation: z.number().positive().default(30 * DAY_S).describe('Seconds a violation is kept unsent. Default 30 days'),
        event: z.number().positive().default(7 * DAY_S).describe('Seconds a traffic event is kept unsent. Default 7 days'),
        statistics: z.number().positive().default(7 * DAY_S).describe('Seconds a flow statistic is kept unsent. Default 7 days'),
        health: z.number().positive().default(DAY_S).describe('Seconds a health report is kept unsent. Default 1 day'),
      })
      .prefault({})
      .describe('Time to live per priority class'),
    commit_interval_ms: z.number().int().min(1).max(1000).default(100).describe('Group commit: longest wait before appended rows are written, ms. Default 100'),
    commit_rows: z.number().int().min(1).max(100_000).default(1000).describe('Group commit: rows that trigger an immediate write. Default 1000'),
    synchronous: z
      .enum(['NORMAL', 'FULL'])
      .default('FULL')
      .describe('SQLite synchronous mode. FULL: a committed batch survives a power cut. NORMAL (WAL): faster, may lose the last batch on power loss. Default FULL'),
    keep_acked_s: z.number().min(0).default(3600).describe('Keep acknowledged rows this long so the center can ask for a resend, seconds. Default 3600'),
    pending_max_rows: z
      .number()
      .int()
      .min(100)
      .default(50_000)
      .describe(
        'Rows held in memory while commits fail (e.g. disk full); beyond it the oldest lowest-priority pending rows are evicted (counted). Also the burst size that forces a commit inside append(). Default 50000',
      ),
  })
  .describe('Durable event outbox (SQLite)');
export type OutboxConfig = z.infer<typeof OutboxSchema>;
