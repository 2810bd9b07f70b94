// The plate models' inputs: the DB detector's resized, ImageNet-normalised BGR planes (libvips does the pixel
// work) and the recogniser's upright warp of rotated regions (bilinear, in one flat loop).
import { describe, expect, it } from 'vitest';
import { detInput, recInput, type Quad } from '../../../inference/recognizers/plate/tensor.js';
import type { RgbFrame } from '../../../ingest/frame.js';

function image(width: number, height: number, rgb: (x: number, y: number) => [number, number, number]): RgbFrame {
  const data = new Uint8Array(width * height * 3);
  for (let y = 0; y < height; y++) for (let x = 0; x < width; x++) data.set(rgb(x, y), (y * width + x) * 3);
  return { data, width, height };
}

describe('detInput', () => {
  it('scales the longer side to the target, rounds both to 32, and normalises into B, G, R planes', async () => {
    const crop = image(300, 200, () => [200, 100, 50]);
    const input = await detInput(crop, 320, 2);
    expect([input.width, input.height]).toEqual([320, 224]);
    expect(input.sx).toBeCloseTo(320 / 300, 9);
    expect(input.sy).toBeCloseTo(224 / 200, 9);
    const plane = input.width * input.height;
    expect(input.data).toHaveLength(3 * plane);
    const expected = [(50 / 255 - 0.485) / 0.229, (100 / 255 - 0.456) / 0.224, (200 / 255 - 0.406) / 0.225];
    for (let c = 0; c < 3; c++) {
      for (const i of [0, plane >> 1, plane - 1]) expect(input.data[c * plane + i]).toBeCloseTo(expected[c]!, 4);
    }
  });

  it('enlarges a small crop at most max_upscale times and keeps left and right where they were', async () => {
    const crop = image(60, 40, (x) => (x < 30 ? [255, 0, 0] : [0, 0, 255]));
    const input = await detInput(crop, 320, 2);
    expect([input.width, input.height]).toEqual([128, 96]);
    const plane = input.width * input.height;
    const row = 48 * input.width;
    // Left: red (R plane (1 - 0.406) / 0.225, B plane -0.485 / 0.229); right: blue.
    expect(input.data[2 * plane + row + 5]).toBeCloseTo(0.594 / 0.225, 4);
    expect(input.data[row + 5]).toBeCloseTo(-0.485 / 0.229, 4);
    expect(input.data[row + 120]).toBeCloseTo(0.515 / 0.229, 4);
    expect(input.data[2 * plane + row + 120]).toBeCloseTo(-0.406 / 0.225, 4);
  });
});

describe('recInput', () => {
  // Bilinear sampling reproduces a linear ramp (bytes, so within 0-255) exactly, so every output value is known in closed form.
  const ramp = (x: number, y: number): [number, number, number] => [x, 2 * y, 255 - x];
  const crop = image(200, 120, ramp);
  const expectRamp = (data: Float32Array, base: number, plane: number, width: number, w: number, at: (x: number, y: number) => [number, number]) => {
    for (const y of [0, 17, 47]) {
      for (const x of [0, Math.floor(w / 2), w - 1]) {
        const [sx, sy] = at(x, y);
        const [r, g, b] = ramp(sx, sy);
        const o = y * width + x;
        expect(data[base + o]).toBeCloseTo(b / 127.5 - 1, 4); // B plane first
        expect(data[base + plane + o]).toBeCloseTo(g / 127.5 - 1, 4);
        expect(data[base + 2 * plane + o]).toBeCloseTo(r / 127.5 - 1, 4);
      }
    }
  };

  it('warps an axis-aligned and a rotated region upright, batched and padded with 0', () => {
    const flat: Quad = { tl: [20, 30], tr: [116, 30], bl: [20, 54] }; // 96 x 24: 192 wide at 48 high
    const a = (15 * Math.PI) / 180;
    const len = 80;
    const tall = 20;
    const rot: Quad = {
      tl: [60, 40],
      tr: [60 + len * Math.cos(a), 40 + len * Math.sin(a)],
      bl: [60 - tall * Math.sin(a), 40 + tall * Math.cos(a)],
    };
    const { data, width, widths } = recInput(crop, [flat, rot]);
    expect(widths).toEqual([192, 192]);
    expect(width).toBe(192);
    const plane = 48 * width;
    // Output pixel (x, y) samples the quad at its pixel centre; crop pixel centres sit at integer + 0.5 edges.
    expectRamp(data, 0, plane, width, 192, (x, y) => [20 + ((x + 0.5) * 96) / 192 - 0.5, 30 + ((y + 0.5) * 24) / 48 - 0.5]);
    const u = [(rot.tr[0] - rot.tl[0]) / 192, (rot.tr[1] - rot.tl[1]) / 192];
    const v = [(rot.bl[0] - rot.tl[0]) / 48, (rot.bl[1] - rot.tl[1]) / 48];
    expectRamp(data, 3 * plane, plane, width, 192, (x, y) => [
      rot.tl[0] + (x + 0.5) * u[0]! + (y + 0.5) * v[0]! - 0.5,
      rot.tl[1] + (x + 0.5) * u[1]! + (y + 0.5) * v[1]! - 0.5,
    ]);
  });

  it('pads a narrower region with 0 and clamps samples outside the crop to its edge', () => {
    const wide: Quad = { tl: [0, 0], tr: [160, 0], bl: [0, 20] };
    const edge: Quad = { tl: [190, 100], tr: [230, 100], bl: [190, 140] }; // reaches past the right and bottom
    const { data, width, widths } = recInput(crop, [wide, edge]);
    expect(widths).toEqual([384, 48]);
    const plane = 48 * width;
    const base = 3 * plane;
    expect(data[base + 10 * width + 100]).toBe(0);
    expect(data[base + 2 * plane + 47 * width + 47]).toBeCloseTo(199 / 127.5 - 1, 4); // R = x, clamped at 199
    expect(data[base + plane + 47 * width + 47]).toBeCloseTo((2 * 119) / 127.5 - 1, 4); // G = 2y, clamped at 119
  });
});
