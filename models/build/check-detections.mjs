#!/usr/bin/env node
// Sanity check of ../nanodet.onnx on real pictures: a simple GFL decode + per-class NMS, printing
// the detections in original image pixels. Not part of the agent: the agent has its own decoder;
// this only gives reference numbers and proves the converted model detects real objects.
//
// Usage: node check-detections.mjs [--threshold 0.3] [--expect dog.jpg=dog,bicycle,car|truck ...] file.jpg|file.mp4@seconds ...
//   An .mp4/.avi argument takes one frame at the given second (default 5) through ffmpeg.
//   --expect makes the script exit non-zero when an expected class (alternatives with |) is missing.
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { basename, dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

import { readJpeg, rgb24ToModelInput, toModelInput } from './image.mjs';

const here = dirname(fileURLToPath(import.meta.url));
const repoRoot = resolve(here, '..', '..');
const ort = createRequire(join(repoRoot, 'package.json'))('onnxruntime-node');
const CLASSES = JSON.parse(readFileSync(join(repoRoot, 'models', 'coco-classes.json'), 'utf8'));

const { values: opts, positionals } = parseArgs({
  allowPositionals: true,
  options: {
    model: { type: 'string', default: join(repoRoot, 'models', 'nanodet.onnx') },
    threshold: { type: 'string', default: '0.3' },
    iou: { type: 'string', default: '0.5' },
    expect: { type: 'string', multiple: true, default: [] },
    json: { type: 'boolean', default: false },
  },
});

const SIZE = 416;
const STRIDES = [8, 16, 32];
const BINS = 11; // reg_max + 1

/** GFL decode: sigmoid scores are already in cls_*; reg_* holds 4 x 11 distance logits per cell. */
export function decode(outputs, threshold) {
  const boxes = [];
  for (const stride of STRIDES) {
    const cls = outputs[`cls_s${stride}`].data;
    const reg = outputs[`reg_s${stride}`].data;
    const g = SIZE / stride;
    for (let i = 0; i < g * g; i++) {
      let best = -1;
      let score = threshold;
      for (let c = 0; c < 80; c++) {
        const s = cls[i * 80 + c];
        if (s >= score) {
          score = s;
          best = c;
        }
      }
      if (best < 0) continue;
      const d = [0, 0, 0, 0];
      for (let side = 0; side < 4; side++) {
        const o = i * 44 + side * BINS;
        let max = -Infinity;
        for (let k = 0; k < BINS; k++) max = Math.max(max, reg[o + k]);
        let sum = 0;
        let acc = 0;
        for (let k = 0; k < BINS; k++) {
          const e = Math.exp(reg[o + k] - max);
          sum += e;
          acc += e * k;
        }
        d[side] = (acc / sum) * stride;
      }
      const cx = ((i % g) + 0.5) * stride;
      const cy = (Math.floor(i / g) + 0.5) * stride;
      boxes.push({
        cls: best,
        score,
        box: [
          Math.max(cx - d[0], 0),
          Math.max(cy - d[1], 0),
          Math.min(cx + d[2], SIZE),
          Math.min(cy + d[3], SIZE),
        ],
        stride,
      });
    }
  }
  return boxes;
}

function iou(a, b) {
  const w = Math.max(0, Math.min(a[2], b[2]) - Math.max(a[0], b[0]));
  const h = Math.max(0, Math.min(a[3], b[3]) - Math.max(a[1], b[1]));
  const inter = w * h;
  return inter / ((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter);
}

export function nms(boxes, iouThreshold) {
  const kept = [];
  for (const b of [...boxes].sort((x, y) => y.score - x.score)) {
    if (kept.every((k) => k.cls !== b.cls || iou(k.box, b.box) < iouThreshold)) kept.push(b);
  }
  return kept;
}

function loadInput(arg) {
  const m = /^(.*\.(?:mp4|avi|mkv|ts))(?:@([\d.]+))?$/.exec(arg);
  if (!m) {
    const img = readJpeg(arg);
    return { width: img.width, height: img.height, input: toModelInput(img, SIZE) };
  }
  const seconds = m[2] ?? '5';
  const probe = execFileSync('ffprobe', ['-v', 'error', '-select_streams', 'v:0', '-show_entries', 'stream=width,height', '-of', 'csv=p=0', m[1]])
    .toString()
    .trim()
    .split(',')
    .map(Number);
  const [width, height] = probe;
  const buf = execFileSync('ffmpeg', ['-v', 'error', '-ss', seconds, '-i', m[1], '-frames:v', '1', '-f', 'rawvideo', '-pix_fmt', 'rgb24', '-'], {
    maxBuffer: 64 << 20,
  });
  return { width, height, input: rgb24ToModelInput(buf, width, height, SIZE) };
}

const session = await ort.InferenceSession.create(opts.model, { intraOpNumThreads: 2, graphOptimizationLevel: 'all' });
const threshold = Number(opts.threshold);
const expectations = new Map(
  opts.expect.map((e) => {
    const [file, list] = e.split('=');
    return [file, list.split(',').map((alt) => alt.split('|'))];
  }),
);
let failed = false;
const report = {};
for (const arg of positionals) {
  const { width, height, input } = loadInput(arg);
  const out = await session.run({ images: new ort.Tensor('float32', input, [1, 3, SIZE, SIZE]) });
  const dets = nms(decode(out, threshold), Number(opts.iou)).map((d) => ({
    class: CLASSES[d.cls],
    score: Number(d.score.toFixed(3)),
    box: [d.box[0] * (width / SIZE), d.box[1] * (height / SIZE), d.box[2] * (width / SIZE), d.box[3] * (height / SIZE)].map((v) => Math.round(v * 10) / 10),
    stride: d.stride,
  }));
  report[basename(arg)] = dets;
  if (!opts.json) {
    console.log(`${arg} (${width}x${height}): ${dets.length} detections >= ${threshold}`);
    for (const d of dets) console.log(`  ${d.class.padEnd(14)} ${d.score.toFixed(3)}  [${d.box.join(', ')}]  (stride ${d.stride})`);
  }
  const want = expectations.get(basename(arg).replace(/@.*$/, ''));
  for (const alts of want ?? []) {
    if (!dets.some((d) => alts.includes(d.class))) {
      console.error(`  MISSING: ${alts.join(' or ')}`);
      failed = true;
    }
  }
}
if (opts.json) console.log(JSON.stringify(report, null, 1));
process.exit(failed ? 1 : 0);
