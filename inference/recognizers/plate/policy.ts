import type { PlatesConfig } from '../../../config/schema/recognizers.js';

/** Why a track's plate would be read. */
export type PlateTrigger = 'violation' | 'crossing';

export interface PlateReadCandidate {
  class_name: string;
  trigger: PlateTrigger;
  /** Size of the vehicle crop at full camera resolution, pixels. */
  crop_width: number;
  crop_height: number;
}

/**
 * Whether to read a track's plate: reading is enabled; a violation by a track of `classes` (when on_violation),
 * or a line crossing by a track of `on_crossing_classes`; and the crop's shorter side is at least min_crop_px.
 */
export function wantsPlateRead(cfg: PlatesConfig, c: PlateReadCandidate): boolean {
  if (!cfg.enabled || Math.min(c.crop_width, c.crop_height) < cfg.min_crop_px) return false;
  return c.trigger === 'violation' ? cfg.on_violation && cfg.classes.includes(c.class_name) : cfg.on_crossing_classes.includes(c.class_name);
}
