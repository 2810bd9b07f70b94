// The bundled model is what its build script produced: hash, licence and notice ship with it.
import { createHash } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';

describe('models/nanodet.onnx', () => {
  it('matches the sha256 recorded by models/build', () => {
    const [hash, name] = readFileSync('models/nanodet.onnx.sha256', 'utf8').trim().split(/\s+/);
    expect(name).toBe('nanodet.onnx');
    expect(createHash('sha256').update(readFileSync('models/nanodet.onnx')).digest('hex')).toBe(hash);
  });

  it('ships with its licence, notice and class list', () => {
    expect(readFileSync('models/LICENSE.nanodet', 'utf8')).toContain('Apache License');
    expect(readFileSync('models/NOTICE', 'utf8')).toMatch(/NanoDet/);
    const classes = JSON.parse(readFileSync('models/coco-classes.json', 'utf8')) as string[];
    expect(classes).toHaveLength(80);
    expect(classes.slice(0, 8)).toEqual(['person', 'bicycle', 'car', 'motorcycle', 'airplane', 'bus', 'train', 'truck']);
    expect(existsSync('models/build/convert.mjs')).toBe(true);
  });
});
