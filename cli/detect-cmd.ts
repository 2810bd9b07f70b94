import { statSync } from 'node:fs';
import { extname, resolve } from 'node:path';
import { Command, Option } from 'commander';
import { createLogger } from '../core/log.js';
import { numberIn, sizeValue, usageError, type CliContext } from './framework.js';

interface DetectFlags {
  json?: boolean;
  model?: string;
  threshold?: number;
  decoder?: 'nanodet' | 'yolov8' | 'decoded';
  inputSize?: { width: number; height: number };
  out?: string;
}

const OUT_FORMATS = ['.png', '.jpg', '.jpeg', '.webp'];

const isFile = (p: string): boolean => {
  try {
    return statSync(p).isFile();
  } catch {
    return false;
  }
};

/** `detect IMAGE...`: the detector on still images (agent/field/detect.ts, loaded when the command runs). */
export function detectCommand(ctx: CliContext): Command {
  return new Command('detect')
    .summary('the detector on images: objects (class, score, box) per image, drawn with --out')
    .description(
      "Runs the agent's detector on images (JPEG, PNG, WebP…) and prints the objects it finds in each: class, score " +
        'and box [x1, y1, x2, y2] in image pixels. Every class of the model is kept. With --out (one image) writes ' +
        'the picture with the boxes drawn.',
    )
    .argument('<IMAGE...>', 'image files')
    .option('--json', 'one JSON line per image: {image, width, height, inference_ms, objects: [{class, score, box}]}')
    .option('--model <FILE>', 'ONNX model (default: the bundled models/nanodet-int8.onnx)')
    .addOption(new Option('--decoder <NAME>', "the model's output layout (default: nanodet)").choices(['nanodet', 'yolov8', 'decoded']))
    .option('--input-size <WxH>', 'model input size (default: 416x416)', sizeValue)
    .option('--threshold <X>', 'minimum score, 0-1 (default: 0.3)', numberIn(0, 1, 'a score'))
    .option('--out <FILE>', 'write the image with the boxes drawn (.png, .jpg or .webp; one IMAGE only)')
    .addHelpText('after', '\nExit codes: 0 done, 1 failure (the model does not load, an image cannot be decoded), 64 usage.')
    .action(async (images: string[], opts: DetectFlags, cmd: Command) => {
      const missing = images.find((i) => !isFile(i));
      if (missing !== undefined) usageError(cmd, `${missing}: no such image file`);
      if (opts.model !== undefined && !isFile(opts.model)) usageError(cmd, `--model ${opts.model}: no such file`);
      if (opts.out !== undefined) {
        if (images.length !== 1) usageError(cmd, `--out draws one image, got ${images.length}`);
        if (!OUT_FORMATS.includes(extname(opts.out).toLowerCase())) usageError(cmd, `--out ${opts.out}: expected a ${OUT_FORMATS.join(', ')} file`);
      }
      const { detectImages, drawDetections } = await import('../agent/field/detect.js');
      const { io } = ctx;
      const log = createLogger({ level: 'warn', pretty: 'never', destination: { write: (s: string) => io.stderr(s) } });
      const results = await detectImages(images, { ...opts, model: opts.model && resolve(opts.model) }, log);
      if (opts.out !== undefined && results[0]) {
        await drawDetections(results[0].image, results[0].objects, opts.out);
        io.stderr(`wrote ${opts.out}\n`);
      }
      if (opts.json) {
        for (const r of results) io.stdout(`${JSON.stringify(r)}\n`);
        return;
      }
      for (const r of results) {
        io.stdout(`${r.image}: ${r.width}x${r.height}, ${r.objects.length} object(s), inference ${r.inference_ms} ms\n`);
        const width = Math.max(5, ...r.objects.map((o) => o.class.length));
        for (const o of r.objects) io.stdout(`  ${o.class.padEnd(width)}  ${o.score.toFixed(2)}  [${o.box.join(', ')}]\n`);
      }
    });
}
