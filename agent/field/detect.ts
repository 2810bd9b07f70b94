// `roadside-agent detect`: the agent's detector on still images, and what it finds there (class, score, box in
// image pixels), optionally drawn over the picture. For checking a model, a threshold or a camera snapshot
// without a camera, a broker or a config.
import sharp from 'sharp';
import { DetectorSchema, type DetectorConfig } from '../../config/schema/index.js';
import type { Logger } from '../../core/log.js';
import { Detector } from '../../inference/detector/index.js';

export interface DetectSettings {
  /** ONNX model; default the bundled one. */
  model?: string;
  /** Minimum score, 0-1. */
  threshold?: number;
  decoder?: DetectorConfig['decoder'];
  inputSize?: { width: number; height: number };
}

export interface DetectedObject {
  class: string;
  score: number;
  /** [x1, y1, x2, y2] in image pixels (after the EXIF orientation is applied). */
  box: [number, number, number, number];
}

export interface ImageDetections {
  image: string;
  width: number;
  height: number;
  inference_ms: number;
  objects: DetectedObject[];
}

const round = (v: number, digits: number): number => Math.round(v * 10 ** digits) / 10 ** digits;

/** The image's size as the detector sees it: EXIF orientation applied (5-8 swap width and height). */
async function orientedSize(image: string): Promise<{ width: number; height: number }> {
  const m = await sharp(image).metadata();
  const swap = (m.orientation ?? 1) >= 5;
  return { width: (swap ? m.height : m.width) ?? 0, height: (swap ? m.width : m.height) ?? 0 };
}

/** Runs one detector over every image in turn (the model loads once); every class the model knows is kept. */
export async function detectImages(images: readonly string[], s: DetectSettings, log: Logger): Promise<ImageDetections[]> {
  const cfg = DetectorSchema.parse({
    classes: [],
    ...(s.model ? { model_path: s.model } : {}),
    ...(s.threshold === undefined ? {} : { score_threshold: s.threshold }),
    ...(s.decoder ? { decoder: s.decoder } : {}),
    ...(s.inputSize ? { input_size: s.inputSize } : {}),
  });
  const detector = new Detector(cfg, log);
  await detector.start();
  try {
    const out: ImageDetections[] = [];
    for (const image of images) {
      const res = await detector.detectImage(image);
      const objects = res.detections
        .map((d) => ({ class: d.class_name, score: round(d.score, 3), box: d.box.map((v) => round(v, 1)) as DetectedObject['box'] }))
        .sort((a, b) => b.score - a.score);
      out.push({ image, ...(await orientedSize(image)), inference_ms: round(res.timing.model_ms, 1), objects });
    }
    return out;
  } finally {
    await detector.stop();
  }
}

const PALETTE = ['#00e5ff', '#76ff03', '#ffea00', '#ff3d00', '#d500f9', '#ff9100', '#1de9b6', '#f50057'];

function colorOf(name: string): string {
  let h = 0;
  for (const c of name) h = (h * 31 + c.charCodeAt(0)) >>> 0;
  return PALETTE[h % PALETTE.length]!;
}

const escapeXml = (s: string): string => s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

/** An SVG the size of the image: one box and one "class score" label per object. */
export function overlaySvg(objects: readonly DetectedObject[], width: number, height: number): string {
  const stroke = Math.max(2, Math.round(Math.min(width, height) / 250));
  const font = Math.max(12, Math.round(Math.min(width, height) / 40));
  const shapes = objects.map((o) => {
    const [x1, y1, x2, y2] = o.box.map((v, i) => Math.min(Math.max(v, 0), i % 2 === 0 ? width : height)) as DetectedObject['box'];
    const color = colorOf(o.class);
    const label = escapeXml(`${o.class} ${o.score.toFixed(2)}`);
    const labelWidth = Math.round(label.length * font * 0.6) + 8;
    const labelY = y1 >= font + 4 ? y1 - font - 4 : y1;
    return (
      `<rect x="${x1}" y="${y1}" width="${Math.max(0, x2 - x1)}" height="${Math.max(0, y2 - y1)}" fill="none" stroke="${color}" stroke-width="${stroke}"/>` +
      `<rect x="${x1}" y="${labelY}" width="${labelWidth}" height="${font + 4}" fill="${color}"/>` +
      `<text x="${x1 + 4}" y="${labelY + font}" font-family="sans-serif" font-size="${font}" fill="#000">${label}</text>`
    );
  });
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}">${shapes.join('')}</svg>`;
}

/** Writes `image` (EXIF orientation applied) with the objects drawn over it to `out` (format by its extension). */
export async function drawDetections(image: string, objects: readonly DetectedObject[], out: string): Promise<void> {
  const { data, info } = await sharp(image).rotate().raw().toBuffer({ resolveWithObject: true });
  await sharp(data, { raw: { width: info.width, height: info.height, channels: info.channels } })
    .composite([{ input: Buffer.from(overlaySvg(objects, info.width, info.height)), top: 0, left: 0 }])
    .toFile(out);
}
