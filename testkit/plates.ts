/**
 * Synthetic Vietnamese number plates on vehicle-like crops, for the plate reader's tests and benchmark.
 * Rendered with sharp (librsvg + the system's DejaVu fonts): one-line car plates (white, black text, 520x110 mm)
 * and two-line motorbike plates (190x140 mm), with font, size, blur, slight rotation, pixel noise and JPEG
 * compression varied. Plate texts come from a table kept here, apart from the reader's own format rules,
 * so a test compares the reader against an independent truth. Deterministic for a given seed.
 */
import type { RgbFrame } from '../ingest/frame.js';
import { gaussian, prng } from './synthetic-scenes.js';

export type PlateLayout = 'one_line' | 'two_line';

export interface PlateFont {
  family: string;
  weight: 'normal' | 'bold';
  /** Advance of a digit, in em: sizes the text to the plate. */
  advance_em: number;
}

/** DejaVu faces in /usr/share/fonts/truetype/dejavu (fonts-dejavu-core and -extra). */
export const PLATE_FONTS: readonly PlateFont[] = [
  { family: 'DejaVu Sans Condensed', weight: 'bold', advance_em: 0.63 },
  { family: 'DejaVu Sans', weight: 'bold', advance_em: 0.7 },
  { family: 'DejaVu Sans Mono', weight: 'bold', advance_em: 0.6 },
  { family: 'DejaVu Serif', weight: 'bold', advance_em: 0.7 },
  { family: 'DejaVu Sans', weight: 'normal', advance_em: 0.64 },
];

export interface PlateSpec {
  /** The plate as the reader should report it: `51F-123.45`, `59X1-234.56`, `29A-1234`. */
  text: string;
  layout: PlateLayout;
  font: PlateFont;
  /** Plate width in the crop, pixels. */
  plate_w_px: number;
  /** Gaussian blur of the whole crop, pixels (0: none). */
  blur_sigma: number;
  /** Plate rotation, degrees (clockwise). */
  rotate_deg: number;
  /** Standard deviation of the per-pixel noise, grey levels. */
  noise: number;
  /** JPEG quality of a compression round trip (0: none). */
  jpeg_quality: number;
  seed: number;
}

export interface RenderedPlate {
  spec: PlateSpec;
  /** The vehicle crop (packed RGB) with the plate on it. */
  crop: RgbFrame;
  /** Where the plate's centre is in the crop, pixels. */
  plate_center: [number, number];
}

/** Province codes the set draws from (a sample of codes in use; the reader keeps the full table). */
const PROVINCES = ['11', '12', '14', '15', '18', '20', '29', '30', '34', '36', '37', '43', '47', '49', '51', '59', '60', '61', '65', '72', '77', '79', '81', '88', '92', '99'];
const CAR_SERIES = ['A', 'B', 'C', 'D', 'E', 'F', 'G', 'H', 'K', 'L', 'M', 'N', 'P', 'S', 'T', 'U', 'V', 'X', 'Y', 'Z', 'LD'];
const BIKE_SERIES_LETTERS = ['B', 'C', 'D', 'E', 'F', 'G', 'H', 'K', 'L', 'M', 'N', 'P', 'S', 'T', 'U', 'V', 'X', 'Y', 'Z'];

const pick = <T>(rand: () => number, xs: readonly T[]): T => xs[Math.floor(rand() * xs.length)]!;
const digits = (rand: () => number, n: number): string => Array.from({ length: n }, () => String(Math.floor(rand() * 10))).join('');
const between = (rand: () => number, lo: number, hi: number): number => lo + rand() * (hi - lo);

/** A plausible plate text of a layout: 5 digits shown as `123.45` (new plates), sometimes 4 (old ones). */
export function plateText(rand: () => number, layout: PlateLayout): string {
  const province = pick(rand, PROVINCES);
  const series = layout === 'one_line' ? pick(rand, CAR_SERIES) : `${pick(rand, BIKE_SERIES_LETTERS)}${1 + Math.floor(rand() * 9)}`;
  const d = digits(rand, rand() < 0.8 ? 5 : 4);
  return `${province}${series}-${d.length === 5 ? `${d.slice(0, 3)}.${d.slice(3)}` : d}`;
}

/**
 * `n` plates alternating the layouts, with font, size (car plates 110-180 px wide, motorbike plates
 * 80-120 px: a vehicle near the stop line of a 1080p camera), blur up to 1.2 px, rotation up to ±4°.
 */
export function plateSpecs(n: number, seed = 1): PlateSpec[] {
  const rand = prng(seed);
  return Array.from({ length: n }, (_, i) => {
    const layout: PlateLayout = i % 2 === 0 ? 'one_line' : 'two_line';
    return {
      text: plateText(rand, layout),
      layout,
      font: PLATE_FONTS[i % PLATE_FONTS.length]!,
      plate_w_px: Math.round(layout === 'one_line' ? between(rand, 110, 180) : between(rand, 80, 120)),
      blur_sigma: Math.round(between(rand, 0, 1.2) * 10) / 10,
      rotate_deg: Math.round(between(rand, -4, 4) * 10) / 10,
      noise: Math.round(between(rand, 0, 8)),
      jpeg_quality: rand() < 0.5 ? 0 : 70 + Math.floor(rand() * 25),
      seed: seed * 1000 + i,
    };
  });
}

/** The lines printed on the plate: `51F-123.45` on one line; `59-X1` over `234.56` on two. */
export function printedLines(text: string, layout: PlateLayout): string[] {
  if (layout === 'one_line') return [text];
  const [head = '', tail = ''] = text.split('-');
  return [`${head.slice(0, 2)}-${head.slice(2)}`, tail];
}

const esc = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;');

/** The plate as an SVG group, centred on (cx, cy). */
function plateSvg(spec: PlateSpec, cx: number, cy: number): { svg: string; h: number } {
  const w = spec.plate_w_px;
  const h = Math.round(spec.layout === 'one_line' ? (w * 110) / 520 : (w * 140) / 190);
  const lines = printedLines(spec.text, spec.layout);
  const border = Math.max(1, w * 0.012);
  const longest = Math.max(...lines.map((l) => l.length - (l.match(/[.-]/g)?.length ?? 0) * 0.45));
  const byWidth = (w * 0.86) / (longest * spec.font.advance_em);
  const byHeight = spec.layout === 'one_line' ? h * 0.72 : h * 0.4;
  const size = Math.min(byWidth, byHeight);
  const rows = lines.map((l, i) => {
    const y = spec.layout === 'one_line' ? h / 2 : h * (i === 0 ? 0.28 : 0.72);
    return `<text x="${w / 2}" y="${y}" font-family="${spec.font.family}" font-weight="${spec.font.weight}" font-size="${size.toFixed(1)}" text-anchor="middle" dominant-baseline="central" fill="#111">${esc(l)}</text>`;
  });
  const x0 = cx - w / 2;
  const y0 = cy - h / 2;
  const svg =
    `<g transform="rotate(${spec.rotate_deg} ${cx} ${cy}) translate(${x0} ${y0})">` +
    `<rect x="0" y="0" width="${w}" height="${h}" rx="${border * 2}" fill="#f4f4f0" stroke="#181818" stroke-width="${border}"/>` +
    `${rows.join('')}</g>`;
  return { svg, h };
}

/** A car's rear (one-line plate) or a motorbike's rear (two-line plate) around the plate, in SVG. */
function vehicleSvg(spec: PlateSpec, rand: () => number): { svg: string; width: number; height: number; center: [number, number] } {
  const body = `hsl(${Math.floor(rand() * 360)}, ${Math.floor(between(rand, 5, 60))}%, ${Math.floor(between(rand, 20, 70))}%)`;
  const pw = spec.plate_w_px;
  if (spec.layout === 'one_line') {
    const W = Math.round(pw / between(rand, 0.26, 0.34));
    const H = Math.round(W * between(rand, 0.72, 0.85));
    const cx = W / 2 + between(rand, -0.04, 0.04) * W;
    const cy = H * 0.8;
    const { svg: plate } = plateSvg(spec, cx, cy);
    const svg =
      `<rect width="${W}" height="${H}" fill="#6b6b68"/>` +
      `<rect x="${W * 0.04}" y="${H * 0.1}" width="${W * 0.92}" height="${H * 0.86}" rx="${W * 0.06}" fill="${body}"/>` +
      `<path d="M${W * 0.16} ${H * 0.42} L${W * 0.25} ${H * 0.14} L${W * 0.75} ${H * 0.14} L${W * 0.84} ${H * 0.42} Z" fill="#1c2430"/>` +
      `<ellipse cx="${W * 0.15}" cy="${H * 0.55}" rx="${W * 0.08}" ry="${H * 0.04}" fill="#b22"/>` +
      `<ellipse cx="${W * 0.85}" cy="${H * 0.55}" rx="${W * 0.08}" ry="${H * 0.04}" fill="#b22"/>` +
      `<rect x="${W * 0.04}" y="${H * 0.68}" width="${W * 0.92}" height="${H * 0.24}" fill="#222" opacity="0.55"/>` +
      plate;
    return { svg, width: W, height: H, center: [cx, cy] };
  }
  const W = Math.round(pw / between(rand, 0.4, 0.5));
  const H = Math.round(W * between(rand, 1.5, 1.8));
  const cx = W / 2 + between(rand, -0.04, 0.04) * W;
  const cy = H * 0.62;
  const { svg: plate } = plateSvg(spec, cx, cy);
  const svg =
    `<rect width="${W}" height="${H}" fill="#5f605c"/>` +
    `<ellipse cx="${W / 2}" cy="${H * 0.22}" rx="${W * 0.24}" ry="${H * 0.14}" fill="#2a2a2a"/>` +
    `<path d="M${W * 0.12} ${H * 0.4} L${W * 0.88} ${H * 0.4} L${W * 0.7} ${H * 0.5} L${W * 0.3} ${H * 0.5} Z" fill="${body}"/>` +
    `<rect x="${W * 0.4}" y="${H * 0.43}" width="${W * 0.2}" height="${H * 0.05}" fill="#c33"/>` +
    `<rect x="${W * 0.44}" y="${H * 0.75}" width="${W * 0.12}" height="${H * 0.24}" rx="${W * 0.05}" fill="#151515"/>` +
    plate;
  return { svg, width: W, height: H, center: [cx, cy] };
}

/** Renders one plate on its vehicle crop. */
export async function renderPlate(spec: PlateSpec): Promise<RenderedPlate> {
  const sharp = (await import('sharp')).default;
  const rand = prng(spec.seed);
  const v = vehicleSvg(spec, rand);
  const svg = `<svg xmlns="http://www.w3.org/2000/svg" width="${v.width}" height="${v.height}">${v.svg}</svg>`;
  let img = sharp(Buffer.from(svg)).removeAlpha();
  if (spec.blur_sigma >= 0.3) img = img.blur(spec.blur_sigma);
  let raw = await img.raw().toBuffer({ resolveWithObject: true });
  const data = new Uint8Array(raw.data);
  if (spec.noise > 0) for (let i = 0; i < data.length; i++) data[i] = Math.max(0, Math.min(255, Math.round(data[i]! + gaussian(rand) * spec.noise)));
  if (spec.jpeg_quality > 0) {
    const opts = { raw: { width: raw.info.width, height: raw.info.height, channels: 3 as const } };
    const jpeg = await sharp(data, opts).jpeg({ quality: spec.jpeg_quality }).toBuffer();
    raw = await sharp(jpeg).removeAlpha().raw().toBuffer({ resolveWithObject: true });
    return { spec, crop: { data: new Uint8Array(raw.data), width: raw.info.width, height: raw.info.height }, plate_center: v.center };
  }
  return { spec, crop: { data, width: raw.info.width, height: raw.info.height }, plate_center: v.center };
}

/** Renders `plateSpecs(n, seed)`. */
export async function renderPlates(n: number, seed = 1): Promise<RenderedPlate[]> {
  const out: RenderedPlate[] = [];
  for (const spec of plateSpecs(n, seed)) out.push(await renderPlate(spec));
  return out;
}
