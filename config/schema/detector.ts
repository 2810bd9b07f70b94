import { z } from 'zod';

export const DetectorSchema = z
  .strictObject({
    model_path: z
      .string()
      .optional()
      .describe('ONNX model file; relative to the config file. Default: the bundled models/nanodet-int8.onnx (int8; models/nanodet.onnx is the fp32 original)'),
    decoder: z
      .enum(['nanodet', 'yolov8', 'decoded'])
      .default('nanodet')
      .describe('Output layout: nanodet (GFL heads), yolov8 ([1, 4+C, N], also YOLO11), decoded ([1, K, 6] x1,y1,x2,y2,score,class). Default nanodet'),
    input_size: z
      .strictObject({
        width: z.number().int().min(32).max(2048).describe('Model input width, pixels'),
        height: z.number().int().min(32).max(2048).describe('Model input height, pixels'),
      })
      .default({ width: 416, height: 416 })
      .describe('Model input size. Default 416x416'),
    resize: z.enum(['stretch', 'letterbox']).default('stretch').describe('How frames are fitted to the input: stretch or letterbox (keeps aspect). Default stretch'),
    class_names: z.array(z.string()).optional().describe('Class names in model output order. Default: the 80 COCO names'),
    classes: z
      .array(z.string())
      .default(['person', 'bicycle', 'car', 'motorcycle', 'bus', 'truck'])
      .describe('Classes kept; others are dropped after NMS. Default road users'),
    threads: z.number().int().min(1).max(16).default(2).describe('ONNX Runtime intra-op threads. Default 2'),
    cpus: z
      .array(z.number().int().min(0).max(1023))
      .min(1)
      .refine((l) => new Set(l).size === l.length, 'each CPU once')
      .optional()
      .describe(
        'CPU ids reserved for inference: the detector thread and ONNX Runtime threads run only there, so decoding and the agent main thread never take their time. Unset: any CPU. E.g. [2, 3] on a 4-core box with threads: 2',
      ),
    spinning: z.boolean().default(false).describe('Let ORT threads spin between runs (faster, hotter). Default false'),
    score_threshold: z.number().min(0).max(1).default(0.3).describe('Minimum score, 0-1. Default 0.3 (NanoDet scores run low)'),
    class_thresholds: z.record(z.string(), z.number().min(0).max(1)).default({}).describe('Per-class minimum score overriding score_threshold, e.g. {person: 0.4}'),
    nms_iou: z.number().min(0).max(1).default(0.5).describe('IoU above which overlapping boxes of one class are suppressed. Default 0.5'),
    min_area_px: z.number().min(0).default(64).describe('Drop boxes smaller than this, in camera pixels squared. Default 64'),
    stuck_timeout_s: z.number().positive().default(10).describe('A run longer than this restarts the detector worker, seconds. Default 10'),
    max_restarts: z
      .number()
      .int()
      .min(1)
      .default(5)
      .describe('Worker restarts (stuck or crashed) within restart_window_s that count as a fatal failure: the agent exits non-zero for systemd to restart it. Default 5'),
    restart_window_s: z.number().positive().default(600).describe('Window for max_restarts, seconds. Default 600 (10 min)'),
    max_detections: z.number().int().min(1).max(1000).default(100).describe('Most detections kept per frame, best scores first. Default 100'),
  })
  .describe('Object detector (ONNX Runtime, CPU)');
export type DetectorConfig = z.infer<typeof DetectorSchema>;
