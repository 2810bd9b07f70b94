import { z } from 'zod';

export const PlatesSchema = z
  .strictObject({
    enabled: z.boolean().default(false).describe('Read number plates of selected tracks (PP-OCRv4 models in a worker thread). Default false'),
    classes: z
      .array(z.string().min(1))
      .default(['car', 'truck', 'bus', 'motorcycle'])
      .describe('Detector classes whose plates are read. Default car, truck, bus, motorcycle'),
    on_violation: z.boolean().default(true).describe('Read the plate of a track that commits a violation (red light, wrong way, speeding…). Default true'),
    on_crossing_classes: z
      .array(z.string().min(1))
      .default([])
      .describe('Also read on every line crossing of tracks of these classes, e.g. [truck] for a truck census. Default none'),
    min_crop_px: z
      .number()
      .int()
      .min(16)
      .default(100)
      .describe('Vehicle crops whose shorter side is under this are not read (their plates are too small to read reliably), camera pixels. Default 100'),
    threads: z.number().int().min(1).max(8).default(1).describe('ONNX Runtime intra-op threads of each plate model. Default 1 (the detector keeps the other cores)'),
  })
  .describe('Number plate reading (Vietnamese formats: 51F-123.45 one-line, 59-X1 / 234.56 two-line)');
export type PlatesConfig = z.infer<typeof PlatesSchema>;

export const RecognizersSchema = z
  .strictObject({
    plates: PlatesSchema.prefault({}),
  })
  .describe('Second-stage recognizers run on crops of selected tracks, off the main thread');
export type RecognizersConfig = z.infer<typeof RecognizersSchema>;
