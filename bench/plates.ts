/**
 * Plate reader benchmark: rendered Vietnamese plates on vehicle crops (testkit/plates.ts, both layouts) read
 * through the PlateReader's worker, one at a time. Budget: det + rec <= 60 ms per vehicle.
 * Times inside the worker (det_ms: detector pre + model + post; rec_ms: warp + recogniser + decode) and the
 * round trip seen from the main thread; minimum and median beside mean and p95, and the process CPU time per
 * read, because the machine is shared (wall times stretch with the load, CPU time much less).
 *
 *   npx tsx bench/plates.ts [--plates 24] [--rounds 3] [--threads 1] [--det-side 320]
 *
 * Prints one JSON object; `benchPlates()` returns the same figures for bench/run.ts.
 */
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { silentLogger } from '../core/log.js';
import { PlateReader } from '../inference/recognizers/index.js';
import { renderPlates } from '../testkit/plates.js';

export interface BenchPlatesOptions {
  /** Rendered plates (alternating layouts). Default 24. */
  plates?: number;
  /** Passes over them after a warm-up pass. Default 3. */
  rounds?: number;
  /** ONNX Runtime threads per model. Default 1 (as configured by default). */
  threads?: number;
  /** Detector input side, pixels. Default the reader's. */
  det_side_px?: number;
}

const r2 = (v: number) => Math.round(v * 100) / 100;
const mean = (xs: readonly number[]) => (xs.length ? xs.reduce((s, x) => s + x, 0) / xs.length : 0);
function percentile(xs: readonly number[], p: number): number {
  const s = xs.slice().sort((a, b) => a - b);
  return s.length ? s[Math.min(s.length - 1, Math.ceil(p * s.length) - 1)]! : 0;
}

export async function benchPlates(opts: BenchPlatesOptions = {}): Promise<Record<string, number>> {
  const plates = await renderPlates(opts.plates ?? 24, 7);
  const reader = new PlateReader({ threads: opts.threads ?? 1 }, silentLogger(), { det_side_px: opts.det_side_px });
  const t0 = performance.now();
  await reader.start();
  const startMs = performance.now() - t0;
  try {
    for (const p of plates) await reader.recognize(p.crop); // warm-up: first runs of each input shape
    const det: number[] = [];
    const rec: number[] = [];
    const total: number[] = [];
    const roundTrip: number[] = [];
    let exact = 0;
    const t1 = performance.now();
    const cpu0 = process.cpuUsage();
    for (let round = 0; round < (opts.rounds ?? 3); round++) {
      for (const p of plates) {
        const t = performance.now();
        const r = await reader.recognize(p.crop);
        roundTrip.push(performance.now() - t);
        det.push(r.timing.det_ms);
        rec.push(r.timing.rec_ms);
        total.push(r.timing.total_ms);
        if (r.plate?.text === p.spec.text) exact++;
      }
    }
    const seconds = (performance.now() - t1) / 1000;
    const cpu = process.cpuUsage(cpu0);
    return {
      plates: plates.length,
      reads: total.length,
      plate_accuracy_pct: r2((100 * exact) / total.length),
      plate_det_ms_mean: r2(mean(det)),
      plate_det_ms_min: r2(Math.min(...det)),
      plate_rec_ms_mean: r2(mean(rec)),
      plate_rec_ms_min: r2(Math.min(...rec)),
      plate_total_ms_mean: r2(mean(total)),
      plate_total_ms_median: r2(percentile(total, 0.5)),
      plate_total_ms_p95: r2(percentile(total, 0.95)),
      plate_roundtrip_ms_p95: r2(percentile(roundTrip, 0.95)),
      reads_per_s: r2(total.length / seconds),
      // Process CPU time per read (worker and main thread): what a read costs whatever else runs on the box.
      plate_cpu_ms_per_read: r2((cpu.user + cpu.system) / 1000 / total.length),
      plate_start_ms: Math.round(startMs),
      budget_ms: 60,
    };
  } finally {
    await reader.stop();
  }
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const { values } = parseArgs({ options: { plates: { type: 'string' }, rounds: { type: 'string' }, threads: { type: 'string' }, 'det-side': { type: 'string' } } });
  const num = (v: string | undefined) => (v === undefined ? undefined : Number(v));
  const out = await benchPlates({ plates: num(values.plates), rounds: num(values.rounds), threads: num(values.threads), det_side_px: num(values['det-side']) });
  console.log(JSON.stringify(out, null, 2));
}
