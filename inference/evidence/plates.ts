// The plate of a violating vehicle: the PlateReader on full-resolution vehicle crops of the frames around the
// violation, the reads voted into one, and where the winning read is (for plate.jpg).
import type { PlatesConfig } from '../../config/schema/recognizers.js';
import { errorMessage } from '../../core/errors.js';
import type { Logger } from '../../core/log.js';
import type { RgbFrame } from '../../ingest/frame.js';
import { cropRgb } from '../recognizers/crop.js';
import { PlateVote, wantsPlateRead, type PlateResult, type PlateVerdict } from '../recognizers/plate/index.js';
import type { Recognizer } from '../recognizers/types.js';
import type { Box } from '../tracking/types.js';
import { regionAround } from './geometry.js';

/** Margin of the crop the reader gets around the vehicle box (as the recognizers expect). */
const READ_MARGIN = 0.1;

export interface PlateReading {
  verdict: PlateVerdict;
  /** Where the winning read's plate is, full-resolution frame pixels. */
  box: Box;
  /** The frame it was read on. */
  frame: RgbFrame;
}

export interface PlateReaderRef {
  reader: Recognizer<PlateResult>;
  config: PlatesConfig;
}

/**
 * Reads the plate on each frame's crop under `box` (full-resolution pixels) and votes over the reads. Null when
 * the policy says not to read (class, crop too small, reading off), or nothing was read. Reader failures (busy,
 * crashed) lose that read only.
 */
export async function readPlate(plates: PlateReaderRef, className: string, frames: readonly RgbFrame[], box: Box, log?: Logger): Promise<PlateReading | null> {
  const first = frames[0];
  if (!first) return null;
  const region = regionAround(box, first, 0);
  if (!wantsPlateRead(plates.config, { class_name: className, trigger: 'violation', crop_width: region.width, crop_height: region.height })) return null;
  const vote = new PlateVote();
  const reads: Array<{ text: string; confidence: number; box: Box; frame: RgbFrame }> = [];
  for (const frame of frames) {
    const crop = cropRgb(frame, box, READ_MARGIN);
    if (!crop) continue;
    let result: PlateResult;
    try {
      result = await plates.reader.recognize(crop);
    } catch (err) {
      log?.debug({ err: errorMessage(err) }, 'evidence: plate read failed on one frame');
      continue;
    }
    const p = result.plate;
    if (!p) continue;
    vote.add(p);
    // The crop's origin in the frame, as cropRgb computed it.
    const ox = Math.max(0, Math.floor(box[0] - (box[2] - box[0]) * READ_MARGIN));
    const oy = Math.max(0, Math.floor(box[1] - (box[3] - box[1]) * READ_MARGIN));
    reads.push({ text: p.text, confidence: p.confidence, box: [ox + p.box.x, oy + p.box.y, ox + p.box.x + p.box.width, oy + p.box.y + p.box.height], frame });
  }
  const verdict = vote.best();
  if (!verdict) return null;
  const best = reads.filter((r) => r.text === verdict.text).sort((a, b) => b.confidence - a.confidence)[0] ?? reads[0]!;
  return { verdict, box: best.box, frame: best.frame };
}
