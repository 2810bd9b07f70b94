#!/usr/bin/env node
// Sanity check of ../nanodet.onnx (or --model ../nanodet-int8.onnx) on real pictures: a simple GFL decode
// (gfl.mjs) + per-class NMS, printing the detections in original image pixels. Not part of the agent: the agent
// has its own decoder; this only gives reference numbers and proves the converted model detects real objects.
//
// Usage: node check-detections.mjs [--threshold 0.3] [--expect dog.jpg=dog,bicycle,car|truck ...] file.jpg|file.mp4@seconds ...
//   An .mp4/.avi argument takes one frame at the given second (default 5) through ffmpeg.
//   --expect makes the script exit non-zero when an expected class (alternatives with |) is missing.
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

import { candidateFeeds } from './frames.mjs';
import { decode, nms } from './gfl.mjs';
import { readJpeg, rgb24ToModelInput, toModelInput } from './image.mjs';
import { requireOrt } from './ort.mjs';

const here = dirname(fileURLToPath(import.meta.url));
const repoRoot = resolve(here, '..', '..');
const ort = requireOrt();
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
const inputMeta = session.inputMetadata[0];
/**
 * The feed in the model's input type: float32 NCHW as is, or uint8 NHWC bytes (nanodet-int8.onnx). The resized
 * RGB / 255 is rounded to bytes as the float-input int8 model's QuantizeLinear did (scale 1/255, half to even),
 * so both give the same detections.
 */
function feeds(input) {
  if (inputMeta.type !== 'uint8') return { [inputMeta.name]: new ort.Tensor('float32', input, [1, 3, SIZE, SIZE]) };
  const plane = SIZE * SIZE;
  const scale = Math.fround(1 / 255);
  const rgb = new Uint8Array(3 * plane);
  for (let i = 0; i < plane; i++) {
    for (let c = 0; c < 3; c++) {
      const x = Math.fround(input[c * plane + i] / scale);
      const r = Math.round(x);
      rgb[3 * i + c] = r - x === 0.5 && r % 2 !== 0 ? r - 1 : r; // half to even
    }
  }
  return { [inputMeta.name]: new ort.Tensor('uint8', rgb, [1, SIZE, SIZE, 3]) };
}
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
  const out = await session.run({ ...feeds(input), ...candidateFeeds(ort, session, threshold) });
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
