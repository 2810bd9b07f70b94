// The evidence package the box writes and its manifest: what every file is, the violation and its rule, times in
// both clocks, the configuration and models in force, the plate, and the signer. The format's common part
// (canonical JSON, file list, signer, signature) is contract/evidence.ts; this is the writer's full manifest.
import { EVIDENCE_FORMAT, MANIFEST_FILE, SIGNATURE_FILE, SIGNER_CERT_FILE } from '../../contract/evidence.js';
import type { SignerInfo } from './signer.js';

export const MANIFEST_SCHEMA = EVIDENCE_FORMAT;

/** File names inside `<evidence dir>/<event id>/`. */
export const PACKAGE_FILES = {
  clip: 'clip.mp4',
  before: 'still-before.jpg',
  at: 'still-at.jpg',
  after: 'still-after.jpg',
  vehicle: 'vehicle.jpg',
  plate: 'plate.jpg',
  cert: SIGNER_CERT_FILE,
  manifest: MANIFEST_FILE,
  signature: SIGNATURE_FILE,
} as const;

export interface ManifestFile {
  name: string;
  sha256: string;
  bytes: number;
}

export interface ModelRef {
  /** `detector`, `plate_detector`, `plate_recognizer`, `plate_dictionary`. */
  role: string;
  name: string;
  sha256?: string;
}

/** A time relative to the violation: offset (s) and the wall-clock time it stands for. */
export interface Offset {
  offset_s: number;
  at: string;
}

export interface Manifest {
  schema: typeof MANIFEST_SCHEMA;
  package_id: string;
  created_at: string;
  agent_version: string;
  device: { id: string; site: string };
  camera: { id: string; frame: { width: number; height: number } };
  /** The violation event as sent (without its `evidence`). */
  event: unknown;
  /** The rule that fired: its kind and id, and its configuration (line / zone / signal and stop line). */
  rule: { kind: string; id: string; parameters: unknown };
  time: {
    /** The violation's capture time (event captured_at) and both of its clocks. */
    violation_at: string;
    wall_ms: number;
    mono_ms: number;
    /** Process whose monotonic clock mono_ms is on. */
    mono_clock: string;
    clock_synced: boolean;
  };
  /** Where the video came from: the camera's recording ring, a recorded clip, or only the analysed frame. */
  recording: { source: 'ring' | 'clip' | 'analysed_frame'; width: number; height: number; note?: string };
  clip: {
    file: string;
    requested: { start_offset_s: number; end_offset_s: number };
    /** Stream copy starts at a keyframe: the clip's actual bounds. */
    start: Offset;
    end: Offset;
    duration_s: number;
  } | null;
  stills: Array<{ role: 'before' | 'at' | 'after'; file: string; requested_offset_s: number } & Offset>;
  vehicle: { file: string; box_camera_px: number[]; box_native_px: number[] } | null;
  plate: { text: string; confidence: number; valid_format: boolean; votes: number; reads: number; file?: string; box_native_px?: number[] } | null;
  calibration_sha256: string | null;
  config: { hash: string | null; camera_sha256: string };
  models: ModelRef[];
  signer: SignerInfo;
  /** Every file of the package but manifest.json and manifest.sig, by name. */
  files: ManifestFile[];
}
