// The reference view of a camera: what the picture looked like at commissioning. A mean thumbnail over a
// stretch of stable picture (moving traffic averages out; its edge map is derived on load) with the detail and
// sharpness the checks compare against. Stored as a small JSON file per camera (about 4 KB).
import { mkdirSync, readFileSync, renameSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { z } from 'zod';
import { writeFileAtomic } from '../../core/fs.js';
import { THUMB_H, THUMB_W, type FrameMeasures } from './measures.js';
import { PhaseCorrelator, edgeMap, edgeMatch } from './registration.js';

export const REFERENCE_SCHEMA = 'roadside.tamper-reference/1';

const Size = z.strictObject({ width: z.int().positive(), height: z.int().positive() });
const ReferenceFile = z.strictObject({
  schema: z.literal(REFERENCE_SCHEMA),
  camera: z.string(),
  taken_at: z.iso.datetime({ offset: true }),
  /** The analysed frame's size (the detector input): sharpness is measured at this resolution. */
  frame: Size,
  /** The camera's frame size: thumbnail offsets map to camera pixels with it. */
  source: Size,
  thumb: z.strictObject({ width: z.literal(THUMB_W), height: z.literal(THUMB_H), luma_base64: z.string() }),
  detail: z.number().positive(),
  /** luma p95 - p5: the contrast the detail came with. */
  spread: z.number().min(0),
  sharpness: z.number().positive(),
});
export type ReferenceData = z.infer<typeof ReferenceFile>;

/** A loaded reference, ready to compare with. */
export interface TamperReference {
  data: ReferenceData;
  thumb: Float32Array;
  edges: Float32Array;
  correlator: PhaseCorrelator;
}

export function prepareReference(data: ReferenceData, thumb: Float32Array): TamperReference {
  const correlator = new PhaseCorrelator(THUMB_W, THUMB_H);
  correlator.setReference(thumb);
  return { data, thumb, edges: edgeMap(thumb, THUMB_W, THUMB_H, new Float32Array(THUMB_W * THUMB_H)), correlator };
}

/** Where the camera's reference is kept. */
export function referenceFile(dir: string, camera: string): string {
  return join(dir, `${camera}.json`);
}

/**
 * The stored reference of `camera`, or undefined when there is none. A file that is unreadable, of another
 * format or of another camera is a problem (`problem`); the caller learns a new reference then.
 */
export function loadReference(dir: string, camera: string): { ref?: TamperReference; problem?: string } {
  const file = referenceFile(dir, camera);
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return {};
    return { problem: `${file}: ${(err as Error).message}` };
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (err) {
    return { problem: `${file}: not JSON (${(err as Error).message})` };
  }
  const parsed = ReferenceFile.safeParse(json);
  if (!parsed.success) return { problem: `${file}: not a ${REFERENCE_SCHEMA} file (${parsed.error.issues[0]?.message ?? 'invalid'})` };
  if (parsed.data.camera !== camera) return { problem: `${file}: reference of camera "${parsed.data.camera}", expected "${camera}"` };
  const bytes = Buffer.from(parsed.data.thumb.luma_base64, 'base64');
  if (bytes.length !== THUMB_W * THUMB_H) return { problem: `${file}: thumbnail has ${bytes.length} bytes, expected ${THUMB_W * THUMB_H}` };
  return { ref: prepareReference(parsed.data, Float32Array.from(bytes)) };
}

/** Writes the reference atomically (a power cut leaves the old file or the new one). */
export function saveReference(dir: string, data: ReferenceData): void {
  mkdirSync(dir, { recursive: true });
  writeFileAtomic(referenceFile(dir, data.camera), `${JSON.stringify(data)}\n`);
}

/** Moves the stored reference aside (`<camera>.prev.json`), so a restart before the new one is taken learns again. */
export function retireReference(dir: string, camera: string): void {
  const file = referenceFile(dir, camera);
  try {
    renameSync(file, join(dir, `${camera}.prev.json`));
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') rmSync(file, { force: true });
  }
}

const median = (v: number[]): number => {
  const s = [...v].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
};

/** Offset (thumbnail pixels) and edge similarity within which consecutive views count as the same, steady view. */
const STEADY_OFFSET = 1;
const STEADY_MATCH = 0.3;

/**
 * Learns a reference from a stretch of stable picture: every eligible check is registered against the first
 * one of the stretch; a check that is not eligible or not steady (the camera still being aimed) starts it anew.
 */
export class ReferenceLearner {
  private startMono: number | undefined;
  private readonly sum = new Float64Array(THUMB_W * THUMB_H);
  private readonly details: number[] = [];
  private readonly spreads: number[] = [];
  private readonly sharpness: number[] = [];
  private readonly first = new PhaseCorrelator(THUMB_W, THUMB_H);
  private readonly firstEdges = new Float32Array(THUMB_W * THUMB_H);
  private readonly edges = new Float32Array(THUMB_W * THUMB_H);

  constructor(private readonly after_ms: number) {}

  /** Seconds of stable picture so far. */
  progress_s(now_mono: number): number {
    return this.startMono === undefined ? 0 : (now_mono - this.startMono) / 1000;
  }

  /** Takes one check; returns the averages once the picture was stable for `after_ms`. */
  offer(thumb: Float32Array, m: FrameMeasures, eligible: boolean, now_mono: number): { thumb: Float32Array; detail: number; spread: number; sharpness: number } | undefined {
    if (!eligible) {
      this.restart();
      return undefined;
    }
    if (this.startMono !== undefined && !this.steady(thumb)) this.restart();
    if (this.startMono === undefined) {
      this.startMono = now_mono;
      this.first.setReference(thumb);
      edgeMap(thumb, THUMB_W, THUMB_H, this.firstEdges);
    }
    for (let i = 0; i < thumb.length; i++) this.sum[i]! += thumb[i]!;
    this.details.push(m.detail);
    this.spreads.push(m.luma_p95 - m.luma_p5);
    this.sharpness.push(m.sharpness);
    if (now_mono - this.startMono < this.after_ms) return undefined;
    const n = this.details.length;
    const mean = Float32Array.from(this.sum, (v) => Math.round(v / n));
    const out = { thumb: mean, detail: median(this.details), spread: median(this.spreads), sharpness: median(this.sharpness) };
    this.restart();
    return out;
  }

  restart(): void {
    this.startMono = undefined;
    this.sum.fill(0);
    this.details.length = 0;
    this.spreads.length = 0;
    this.sharpness.length = 0;
  }

  private steady(thumb: Float32Array): boolean {
    const r = this.first.match(thumb);
    if (Math.abs(r.dx) > STEADY_OFFSET || Math.abs(r.dy) > STEADY_OFFSET) return false;
    edgeMap(thumb, THUMB_W, THUMB_H, this.edges);
    return edgeMatch(this.edges, this.firstEdges, THUMB_W, THUMB_H, Math.round(r.dx), Math.round(r.dy)) >= STEADY_MATCH;
  }
}
