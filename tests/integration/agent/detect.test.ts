// `roadside-agent detect`: the bundled detector on a real photo (darknet's dog.jpg), in-process through cli():
// the objects per image as text and JSON lines, and the picture with the boxes drawn (--out).
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import sharp from 'sharp';
import { afterAll, describe, expect, it } from 'vitest';
import type { CliIo } from '../../../cli/io.js';
import { cli } from '../../../cli/main.js';
import type { ImageDetections } from '../../../agent/field/detect.js';
import { iou } from '../../../inference/detector/index.js';

const DOG = 'tests/fixtures/photos/dog.jpg';
const PERSON = 'tests/fixtures/photos/person.jpg';
const dir = mkdtempSync(join(tmpdir(), 'detect-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function capture(): CliIo & { out: () => string; err: () => string } {
  const out: string[] = [];
  const err: string[] = [];
  return { env: {}, interactive: false, stdout: (t) => out.push(t), stderr: (t) => err.push(t), out: () => out.join(''), err: () => err.join('') };
}

/** Hand-drawn reference boxes of dog.jpg (tests/integration/inference/detector-real.test.ts). */
const DOG_REFS: { classes: string[]; box: [number, number, number, number] }[] = [
  { classes: ['bicycle'], box: [125, 128, 568, 418] },
  { classes: ['dog'], box: [130, 222, 312, 540] },
  { classes: ['truck', 'car'], box: [466, 82, 690, 168] },
];

describe('roadside-agent detect', () => {
  it('--json: one line per image with class, score and box; dog.jpg has the dog, the bicycle and the pickup', async () => {
    const io = capture();
    expect(await cli(['detect', DOG, PERSON, '--json'], io)).toBe(0);
    const lines = io.out().trimEnd().split('\n');
    expect(lines).toHaveLength(2);
    const [dog, person] = lines.map((l) => JSON.parse(l) as ImageDetections);
    expect(dog).toMatchObject({ image: DOG, width: 768, height: 576 });
    expect(dog!.inference_ms).toBeGreaterThan(0);
    for (const ref of DOG_REFS) {
      const best = Math.max(0, ...dog!.objects.filter((o) => ref.classes.includes(o.class)).map((o) => iou(o.box, ref.box)));
      expect(best, ref.classes.join('/')).toBeGreaterThanOrEqual(0.5);
    }
    for (const o of dog!.objects) {
      expect(o.score).toBeGreaterThanOrEqual(0.3);
      expect(o.score).toBeLessThanOrEqual(1);
      expect(o.box).toHaveLength(4);
    }
    // Every class of the model, not only the road users the agent keeps by default: a horse and a dog too.
    expect(person!.objects.map((o) => o.class)).toEqual(expect.arrayContaining(['person', 'horse', 'dog']));
  });

  it('text output, and --threshold drops what scores below it', async () => {
    const io = capture();
    expect(await cli(['detect', DOG], io)).toBe(0);
    expect(io.out()).toMatch(/^tests\/fixtures\/photos\/dog\.jpg: 768x576, \d+ object\(s\), inference [\d.]+ ms\n/);
    expect(io.out()).toMatch(/^ {2}dog\s+0\.\d\d {2}\[[\d.]+, [\d.]+, [\d.]+, [\d.]+\]$/m);
    const strict = capture();
    expect(await cli(['detect', DOG, '--json', '--threshold', '0.6'], strict)).toBe(0);
    const objects = (JSON.parse(strict.out()) as ImageDetections).objects;
    expect(objects.length).toBeGreaterThan(0);
    expect(objects.every((o) => o.score >= 0.6)).toBe(true);
    expect(objects.map((o) => o.class)).not.toContain('dog');
  });

  it('--out writes the picture with the boxes drawn over it', async () => {
    const out = join(dir, 'dog-boxes.png');
    const io = capture();
    expect(await cli(['detect', DOG, '--json', '--out', out], io)).toBe(0);
    expect(io.err()).toContain(`wrote ${out}`);
    const meta = await sharp(out).metadata();
    expect(meta).toMatchObject({ format: 'png', width: 768, height: 576 });
    // The dog's box edge is painted in the box colour: far from the photo's pixels there.
    const dog = (JSON.parse(io.out()) as ImageDetections).objects.find((o) => o.class === 'dog')!;
    const [x1, y1, , y2] = dog.box.map(Math.round) as [number, number, number, number];
    const y = Math.round((y1 + y2) / 2);
    const pixel = async (file: string) => [...(await sharp(file).extract({ left: x1, top: y, width: 1, height: 1 }).removeAlpha().raw().toBuffer())];
    const [drawn, photo] = await Promise.all([pixel(out), pixel(DOG)]);
    expect(drawn.reduce((s, v, i) => s + Math.abs(v - photo[i]!), 0)).toBeGreaterThan(60);
  });

  it('refuses bad input before loading the model: missing image, --out with two images, an unknown format', async () => {
    const cases: [string[], string][] = [
      [['detect', join(dir, 'nope.jpg')], `${join(dir, 'nope.jpg')}: no such image file`],
      [['detect', DOG, PERSON, '--out', join(dir, 'x.png')], '--out draws one image, got 2'],
      [['detect', DOG, '--out', join(dir, 'x.gif')], '--out'],
      [['detect', DOG, '--model', join(dir, 'none.onnx')], `--model ${join(dir, 'none.onnx')}: no such file`],
      [['detect', DOG, '--threshold', '2'], '--threshold 2: expected a score from 0 to 1'],
    ];
    for (const [argv, message] of cases) {
      const io = capture();
      expect(await cli(argv, io), argv.join(' ')).toBe(64);
      expect(io.err()).toContain(`roadside-agent detect: ${message}`);
    }
    expect(existsSync(join(dir, 'x.png'))).toBe(false);
  });
});
