import { z } from 'zod';
import { Slug } from './common.js';

export const AnalyticsSchema = z
  .strictObject({
    tracker: z
      .strictObject({
        high_score: z.number().min(0).max(1).default(0.45).describe('Detections at or above this start and extend tracks. Default 0.45'),
        low_score: z.number().min(0).max(1).default(0.2).describe('Weaker detections only extend existing tracks (ByteTrack second pass). Default 0.2'),
        match_iou: z.number().min(0).max(1).default(0.3).describe('Minimum IoU between a predicted track box and a detection. Default 0.3'),
        max_age_s: z.number().positive().default(2).describe('A track unseen this long ends, seconds. Default 2'),
        min_hits: z.number().int().min(1).default(2).describe('Detections before a track is confirmed and can raise events. Default 2'),
        merge_iou: z
          .number()
          .min(0)
          .max(1)
          .default(0.5)
          .describe('Boxes of different classes of one class group (e.g. a car box and a truck box on one pickup) overlapping at least this IoU are one object: merged into one detection before tracking. 1 turns merging off. Default 0.5'),
        class_groups: z
          .record(Slug, z.array(z.string().min(1)).min(1))
          .optional()
          .describe('Classes the tracker treats as one kind of object (tracks match across them, the class is voted), group name → class names. A class in no group is its own group. Default {vehicle: [car, truck, bus, motorcycle]}'),
      })
      .prefault({})
      .describe('Multi-object tracker'),
    update_interval_s: z.number().positive().default(10).describe('At most one object update event per track per this period, seconds. Default 10'),
    flow_bin_s: z.number().int().min(10).max(3600).default(60).describe('Flow statistics bin length, seconds. Default 60'),
    signals: z
      .array(
        z.strictObject({
          id: Slug.describe('Signal id referenced by stop lines'),
          description: z.string().max(200).optional().describe('Which signal head this is, for operators'),
        }),
      )
      .default([])
      .describe('Traffic signals for red-light enforcement. Their states ("red", "amber", "green") arrive with the `signal` command on {base}/cmd/signal, from the center or a local signal-controller bridge'),
    evidence: z
      .strictObject({
        dir: z
          .string()
          .min(1)
          .default('evidence')
          .describe('Evidence JPEG directory; relative to device.data_dir and, after symlinks, inside it (unless allow_outside_data_dir). Default evidence'),
        allow_outside_data_dir: z
          .boolean()
          .default(false)
          .describe('Allow evidence.dir to lead outside device.data_dir (another disk, an absolute path elsewhere). Default false'),
        max_mb: z
          .number()
          .min(1)
          .default(256)
          .describe('Space for evidence, MB. Beyond it the oldest packages the center acknowledged are deleted first, unacknowledged ones last. Default 256'),
        max_days: z
          .number()
          .positive()
          .max(3650)
          .default(30)
          .describe('Evidence packages older than this are deleted, days (acknowledged or not: a data-protection bound). Default 30'),
        pre_s: z.number().min(0).max(60).default(5).describe('Video kept before a violation in its evidence clip, seconds. Default 5'),
        post_s: z.number().min(0).max(60).default(5).describe('Video kept after a violation in its evidence clip, seconds (the event waits for it). Default 5'),
        stills_offset_s: z
          .number()
          .positive()
          .max(10)
          .default(1)
          .describe('still-before.jpg and still-after.jpg are taken this long before and after the violation, seconds. Default 1'),
        sign_key: z
          .string()
          .min(1)
          .optional()
          .describe(
            'EC P-256 private key (PEM) that signs evidence manifests, relative to the config file. Default: the mTLS client key (mqtt.tls.key), else a key generated in device.data_dir on first use',
          ),
      })
      .prefault({})
      .describe('Evidence of violations: one package per violation (clip, full-resolution stills, vehicle and plate crops, signed manifest) in <dir>/<event id>/'),
  })
  .describe('Traffic analytics');
export type AnalyticsConfig = z.infer<typeof AnalyticsSchema>;
