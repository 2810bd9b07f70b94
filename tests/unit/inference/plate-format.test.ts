// Plate reading without the models: Vietnamese format normalisation and validation (valid, invalid, OCR
// confusions by position), the per-track voter, and the pure parts around the models (CTC decoding, DB boxes,
// line grouping into one- and two-line candidates, the read policy and its config section).
import { describe, expect, it } from 'vitest';
import { PlatesSchema, RecognizersSchema } from '../../../config/schema/recognizers.js';
import { cropRgb } from '../../../inference/recognizers/crop.js';
import { CtcDictionary } from '../../../inference/recognizers/plate/ctc.js';
import { dbBoxes, minAreaRect, rectToQuad } from '../../../inference/recognizers/plate/db.js';
import { bestRead } from '../../../inference/recognizers/plate/engine.js';
import { isCanonicalPlate, normalizePlate } from '../../../inference/recognizers/plate/format.js';
import { plateCandidates, type RegionRead } from '../../../inference/recognizers/plate/layout.js';
import { wantsPlateRead } from '../../../inference/recognizers/plate/policy.js';
import { recWidth, type Quad } from '../../../inference/recognizers/plate/tensor.js';
import { PlateVote } from '../../../inference/recognizers/plate/vote.js';

describe('normalizePlate: valid plates', () => {
  it.each([
    ['51F-123.45', '51F-123.45', 'F', '12345'],
    ['51F12345', '51F-123.45', 'F', '12345'], // no separators: 5 digits preferred
    ['51f-123.45', '51F-123.45', 'F', '12345'], // lower case
    ['51F 123.45', '51F-123.45', 'F', '12345'],
    ['29A-1234', '29A-1234', 'A', '1234'], // old 4-digit plate
    ['59-X1 234.56', '59X1-234.56', 'X1', '23456'],
    ['59X123456', '59X1-234.56', 'X1', '23456'], // X1 + 5 digits is the only split that fits
    ['51LD-123.45', '51LD-123.45', 'LD', '12345'], // special series from the table
    ['80NG-123.45', '80NG-123.45', 'NG', '12345'],
    ['29MĐ1-123.45', '29MD1-123.45', 'MD1', '12345'], // electric motorbike, Đ written D
    ['99Z-000.01', '99Z-000.01', 'Z', '00001'],
    ['11R-123.45', '11R-123.45', 'R', '12345'], // trailer
  ])('%j -> %s', (raw, text, series, number) => {
    const f = normalizePlate(raw);
    expect(f).toMatchObject({ text, valid_format: true, series, number, substitutions: 0 });
    expect(isCanonicalPlate(text)).toBe(true);
  });

  it('joins a two-line read top then bottom, the line break marking where the number starts', () => {
    expect(normalizePlate(['59-X1', '234.56'])).toMatchObject({ text: '59X1-234.56', valid_format: true, series: 'X1' });
    expect(normalizePlate('59-X1\n234.56').text).toBe('59X1-234.56');
    // Two-line car plate (square plate): series letter on top, number below.
    expect(normalizePlate(['51F', '123.45']).text).toBe('51F-123.45');
    // The break decides an otherwise ambiguous split: F1 over 2345 is a motorbike's 4-digit plate.
    expect(normalizePlate(['51-F1', '2345']).text).toBe('51F1-2345');
    expect(normalizePlate('51F-12345').text).toBe('51F-123.45');
  });

  it('drops one stray character at either end (a plate border read as 1 or I)', () => {
    expect(normalizePlate('151F-123.45')).toMatchObject({ text: '51F-123.45', valid_format: true });
    expect(normalizePlate('51F-123.45I')).toMatchObject({ text: '51F-123.45', valid_format: true });
    // Not any character, and not where the number would then disagree with the read's own '-'.
    expect(normalizePlate('51F-123456').valid_format).toBe(false);
    expect(normalizePlate('51R1-123.41').valid_format).toBe(false);
    expect(normalizePlate('51F-123.456').valid_format).toBe(false); // not 51F1-234.56: the '-' says where the number starts
  });
});

describe('normalizePlate: OCR confusions by position', () => {
  it.each([
    ['5IF-I23.45', '51F-123.45', 2], // I -> 1 in digit positions
    ['SIF-12345', '51F-123.45', 2], // S -> 5, I -> 1
    ['51F-I23.4S', '51F-123.45', 2],
    ['5lF-l23.45', '51F-123.45', 2], // lower-case l
    ['3O8-O12.BZ', '30B-012.82', 5], // O -> 0, B -> 8, Z -> 2 in digit positions; 8 -> B in the letter position
    ['62G-6GG.66', '62G-666.66', 2], // G -> 6 in digits only
    ['51D-D00.00', '51D-000.00', 1], // D -> 0 in digits, kept as a letter in the series
    ['515-123.45', '51S-123.45', 1], // 5 -> S in the letter position
    ['510-123.45', '51D-123.45', 1], // 0 -> D (O is no series letter)
    ['51O-123.45', '51D-123.45', 1], // and O -> D
    ['518-123.45', '51B-123.45', 1], // 8 -> B
    ['512-123.45', '51Z-123.45', 1], // 2 -> Z
    ['516-123.45', '51G-123.45', 1], // 6 -> G
    ['81-76\n540.66', '81Z6-540.66', 1], // 7 -> Z (seen with DejaVu Z)
    ['59-XI\n234.56', '59X1-234.56', 1], // I -> 1 in the motorbike series' digit
  ])('%j -> %s (%i changed)', (raw, text, subs) => {
    expect(normalizePlate(raw)).toMatchObject({ text, valid_format: true, substitutions: subs });
  });

  it('prefers the reading that needs fewer changes', () => {
    // LD is a special series: read as letters (0 changes) rather than L + digit 0 (1 change).
    expect(normalizePlate('51LD-123.45').series).toBe('LD');
    expect(normalizePlate('51L0-123.45')).toMatchObject({ series: 'LD', substitutions: 1 });
  });
});

describe('normalizePlate: invalid reads', () => {
  it.each([
    ['13A-123.45', 'province 13 is not assigned'],
    ['42A-123.45', 'province 42 is not assigned'],
    ['05A-123.45', 'province below 11'],
    ['51W-123.45', 'W is no series letter'],
    ['51Q-123.45', 'Q is no series letter'],
    ['51-123.45', 'no series'],
    ['51F-123', 'three digits'],
    ['51F-123456', 'six digits'],
    ['51FFF-123.45', 'three letters'],
    ['51XY1-123.45', 'letter-letter-digit other than MD'],
    ['51R1-123.45', 'R (trailers) takes no digit'],
    ['HELLO WORLD', 'garbage'],
    ['', 'nothing read'],
    ['-.-', 'punctuation only'],
  ])('%j is invalid (%s)', (raw) => {
    const f = normalizePlate(raw);
    expect(f.valid_format).toBe(false);
    expect(f.province).toBeUndefined();
  });

  it('keeps the cleaned text of an invalid read', () => {
    expect(normalizePlate('hello world!').text).toBe('HELLOWORLD');
    expect(normalizePlate(['12AB', 'x.9']).text).toBe('12AB-X.9');
    expect(isCanonicalPlate('51F12345')).toBe(false); // valid, but not canonical
    expect(isCanonicalPlate('13A-123.45')).toBe(false);
  });
});

describe('PlateVote', () => {
  const read = (text: string, confidence = 0.9) => ({ text, confidence, valid_format: normalizePlate(text).valid_format });

  it('gives null without reads and the read itself for one read', () => {
    const v = new PlateVote();
    expect(v.best()).toBeNull();
    v.add(read('51F-123.45', 0.8));
    expect(v.best()).toMatchObject({ text: '51F-123.45', votes: 1, reads: 1, method: 'string', valid_format: true });
    expect(v.best()!.confidence).toBeCloseTo(0.8, 5);
  });

  it('weights whole strings by the sum of their confidences', () => {
    const v = new PlateVote();
    v.add(read('51F-128.45', 0.95));
    v.add(read('51F-123.45', 0.6));
    v.add(read('51F-123.45', 0.6));
    const b = v.best()!;
    expect(b).toMatchObject({ text: '51F-123.45', votes: 2, reads: 3, method: 'string' });
    expect(b.confidence).toBeCloseTo((1.2 / 2.15) * 0.6, 5);
    // One more confident read of the other text tips it.
    v.add(read('51F-128.45', 0.95));
    expect(v.best()!.text).toBe('51F-128.45');
  });

  it('lets valid reads outvote invalid ones, and uses invalid ones only when nothing valid was read', () => {
    const v = new PlateVote();
    v.add(read('51F-I23', 0.99));
    v.add(read('51F-I23', 0.99));
    expect(v.best()).toMatchObject({ text: '51F-I23', valid_format: false, votes: 2 });
    v.add(read('51F-123.45', 0.3));
    expect(v.best()).toMatchObject({ text: '51F-123.45', valid_format: true, votes: 1, reads: 1 });
  });

  it('mends single-character misreads position by position when no text was read twice', () => {
    const v = new PlateVote();
    v.add(read('51F-128.45', 0.8));
    v.add(read('51E-123.45', 0.85));
    v.add(read('61F-123.45', 0.7));
    v.add(read('51F-123.46', 0.75));
    const b = v.best()!;
    expect(b).toMatchObject({ text: '51F-123.45', method: 'position', valid_format: true, votes: 0, reads: 4 });
    expect(b.confidence).toBeGreaterThan(0.5);
    expect(b.confidence).toBeLessThan(0.85);
  });

  it('ignores reads below min_confidence and empty texts', () => {
    const v = new PlateVote(0.5);
    v.add(read('51F-123.45', 0.4));
    v.add(read('', 0.9));
    expect(v.size).toBe(0);
    v.add(read('59X1-234.56', 0.7));
    expect(v.best()!.text).toBe('59X1-234.56');
  });
});

describe('CTC greedy decoding', () => {
  // A toy dictionary: classes blank, 5, 1, F, -, 中, space.
  const dict = new CtcDictionary('5\n1\nF\n-\n中\n');
  const C = dict.classes;
  /** Frames as [class, probability]; the rest of each frame's mass goes to the blank. */
  function probs(frames: Array<[number, number]>): Float32Array {
    const out = new Float32Array(frames.length * C);
    frames.forEach(([k, p], t) => {
      out[t * C] = 1 - p;
      out[t * C + k] = p;
    });
    return out;
  }

  it('has blank, the lines and a trailing space as classes', () => {
    expect(C).toBe(7);
    expect(dict.labels[0]).toBe('');
    expect(dict.labels[C - 1]).toBe(' ');
    expect([...dict.allowed]).toEqual([0, 1, 2, 3, 4, 6]); // 中 (5) is never emitted
  });

  it('merges repeats, drops blanks, keeps each character best frame probability', () => {
    const p = probs([[1, 0.9], [1, 0.95], [0, 0.9], [1, 0.8], [2, 0.7], [4, 0.99], [3, 0.6], [3, 0.9]]);
    const r = dict.decode(p, 0, 8, C);
    expect(r.text).toBe('551-F');
    expect(r.char_conf.map((c) => Math.round(c * 100))).toEqual([95, 80, 70, 99, 90]);
    expect(dict.decode(p, 0, 8, C, 3).text).toBe('5'); // only the region's own frames
  });

  it('never emits a class outside the plate alphabet', () => {
    const out = new Float32Array(2 * C);
    out.set([0.05, 0.1, 0, 0, 0, 0.85, 0], 0); // 中 wins overall, 5 wins among the allowed
    out.set([0.9, 0, 0, 0, 0, 0.1, 0], C);
    const r = dict.decode(out, 0, 2, C);
    expect(r.text).toBe('5');
    expect(r.char_conf[0]).toBeCloseTo(0.1, 5);
  });
});

describe('DB boxes', () => {
  it('fits a minimum-area rectangle to a rotated point set, text axis pointing right', () => {
    const a = (10 * Math.PI) / 180;
    const pts: Array<[number, number]> = [];
    for (let u = -40; u <= 40; u += 2) for (let v = -8; v <= 8; v += 2) pts.push([50 + u * Math.cos(a) - v * Math.sin(a), 30 + u * Math.sin(a) + v * Math.cos(a)]);
    const r = minAreaRect(pts);
    expect(r.cx).toBeCloseTo(50, 5);
    expect(r.cy).toBeCloseTo(30, 5);
    expect(r.hw).toBeCloseTo(40, 5);
    expect(r.hh).toBeCloseTo(8, 5);
    expect(Math.atan2(r.uy, r.ux)).toBeCloseTo(a, 5);
  });

  it('finds two text components on a probability map, grows them, and maps them to crop pixels', () => {
    const w = 64;
    const h = 48;
    const prob = new Float32Array(w * h);
    const fill = (x0: number, y0: number, x1: number, y1: number, p: number) => {
      for (let y = y0; y <= y1; y++) for (let x = x0; x <= x1; x++) prob[y * w + x] = p;
    };
    fill(10, 10, 49, 15, 0.9); // a line of text
    fill(10, 30, 29, 34, 0.9); // a second, shorter line
    fill(55, 40, 60, 44, 0.4); // above thresh, but its mean probability is under box_thresh
    const boxes = dbBoxes(prob, w, h);
    expect(boxes).toHaveLength(2);
    const [big, small] = boxes;
    expect(big!.cx).toBeCloseTo(29.5, 5);
    expect(big!.cy).toBeCloseTo(12.5, 5);
    // 39 x 5 between pixel centres, unclipped by 39 * 5 * 1.5 / (2 * 44) on every side.
    const d = (39 * 5 * 1.5) / (2 * 44);
    expect(big!.hw).toBeCloseTo(19.5 + d, 5);
    expect(big!.hh).toBeCloseTo(2.5 + d, 5);
    expect(small!.cy).toBeCloseTo(32, 5);
    // The map was the crop at half size: crop coordinates double.
    const q = rectToQuad(big!, 0.5, 0.5);
    expect(q.tl[0]).toBeCloseTo((29.5 + 0.5 - 19.5 - d) * 2, 5);
    expect(q.tr[1]).toBeCloseTo(q.tl[1], 5);
    expect(recWidth(q)).toBe(Math.ceil((48 * (39 + 2 * d)) / (5 + 2 * d) / 8) * 8);
  });
  it('keeps components in the same rows apart, and skips specks and NaN', () => {
    const w = 64;
    const h = 32;
    const prob = new Float32Array(w * h);
    for (let y = 10; y <= 15; y++) {
      for (let x = 5; x <= 15; x++) prob[y * w + x] = 0.9;
      for (let x = 30; x <= 50; x++) prob[y * w + x] = 0.9;
    }
    prob[2 * w + 60] = 0.95; // one pixel: too small to be text
    prob[3 * w + 2] = Number.NaN;
    const boxes = dbBoxes(prob, w, h);
    expect(boxes).toHaveLength(2);
    // Largest first; each rectangle from its own pixels only (a row's extremes are not carried over).
    expect(boxes[0]!.cx).toBeCloseTo(40, 5);
    expect(boxes[0]!.cy).toBeCloseTo(12.5, 5);
    expect(boxes[1]!.cx).toBeCloseTo(10, 5);
    const d = (10 * 5 * 1.5) / (2 * 15);
    expect(boxes[1]!.hw).toBeCloseTo(5 + d, 5);
  });
});

describe('plate candidates from read regions', () => {
  const quad = (x: number, y: number, w: number, h: number): Quad => ({ tl: [x, y], tr: [x + w, y], bl: [x, y + h] });
  const region = (text: string, x: number, y: number, w: number, h: number, conf = 0.9): RegionRead => ({ quad: quad(x, y, w, h), text, char_conf: [...text].map(() => conf) });

  it('stacks two lines into a two-line plate and picks it over the lines alone', () => {
    const c = plateCandidates([region('234.56', 10, 40, 60, 18), region('59-X1', 14, 18, 52, 18)]);
    expect(c.map((x) => x.lines.join('/'))).toEqual(['234.56', '59-X1', '59-X1/234.56']);
    expect(c[2]).toMatchObject({ layout: 'two_line', box: { x: 10, y: 18, width: 60, height: 40 } });
    expect(bestRead(c)).toMatchObject({ text: '59X1-234.56', valid_format: true, layout: 'two_line', raw: '59-X1 / 234.56' });
  });

  it('joins regions on one baseline into one line, and does not stack far-apart lines', () => {
    const c = plateCandidates([region('123.45', 80, 50, 60, 20), region('51F', 30, 51, 35, 20), region('SALE', 30, 0, 60, 20)]);
    expect(c.map((x) => x.lines.join('/'))).toEqual(['51F 123.45', 'SALE']);
    expect(bestRead(c)).toMatchObject({ text: '51F-123.45', valid_format: true, layout: 'one_line' });
  });

  it('prefers a valid read over a more confident invalid one, and discounts substitutions', () => {
    const c = plateCandidates([region('51F-123.45', 0, 0, 100, 20, 0.6), region('TAXI', 0, 100, 40, 20, 0.99)]);
    expect(bestRead(c)!.text).toBe('51F-123.45');
    const mended = bestRead(plateCandidates([region('5IF-123.45', 0, 0, 100, 20, 0.9)]))!;
    expect(mended.text).toBe('51F-123.45');
    expect(mended.confidence).toBeCloseTo(0.81, 5);
    expect(bestRead([])).toBeNull();
  });
});

describe('plate read policy and config', () => {
  it('fills defaults', () => {
    expect(RecognizersSchema.parse({}).plates).toEqual({ enabled: false, classes: ['car', 'truck', 'bus', 'motorcycle'], on_violation: true, on_crossing_classes: [], min_crop_px: 100, threads: 1 });
    expect(() => PlatesSchema.parse({ threads: 0 })).toThrow();
    expect(() => PlatesSchema.parse({ speed: 1 })).toThrow(); // strict: unknown keys are errors
  });

  it('reads violations of configured classes and crossings of on_crossing_classes, on large enough crops', () => {
    const cfg = PlatesSchema.parse({ enabled: true, on_crossing_classes: ['truck'] });
    const c = { class_name: 'car', trigger: 'violation' as const, crop_width: 300, crop_height: 240 };
    expect(wantsPlateRead(cfg, c)).toBe(true);
    expect(wantsPlateRead(cfg, { ...c, crop_height: 99 })).toBe(false);
    expect(wantsPlateRead(cfg, { ...c, class_name: 'person' })).toBe(false);
    expect(wantsPlateRead(cfg, { ...c, trigger: 'crossing' })).toBe(false);
    expect(wantsPlateRead(cfg, { ...c, trigger: 'crossing', class_name: 'truck' })).toBe(true);
    expect(wantsPlateRead({ ...cfg, on_violation: false }, c)).toBe(false);
    expect(wantsPlateRead({ ...cfg, enabled: false }, c)).toBe(false);
  });

  it('crops a box with a margin, clipped to the frame', () => {
    const frame = { data: new Uint8Array(10 * 8 * 3).map((_, i) => i % 251), width: 10, height: 8 };
    const c = cropRgb(frame, [2, 2, 6, 6], 0.25)!;
    expect([c.width, c.height]).toEqual([6, 6]);
    expect(c.data[0]).toBe(frame.data[(1 * 10 + 1) * 3]);
    const edge = cropRgb(frame, [8, 6, 12, 12], 0)!;
    expect([edge.width, edge.height]).toEqual([2, 2]);
    expect(cropRgb(frame, [20, 20, 30, 30])).toBeNull();
  });
});
