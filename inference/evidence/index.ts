// Evidence packages of violations: the box-wide parts (the package store with its retention, the signing key,
// the models in force) and one packager per camera, reading that camera's recording ring.
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';
import type { AnalyticsConfig, CameraConfig, Config } from '../../config/schema/index.js';
import type { Logger } from '../../core/log.js';
import { DEFAULT_MODEL, packageVersion } from '../../core/paths.js';
import type { DeviceRef } from '../analytics/outlet.js';
import type { ResizeMode } from '../../ingest/ffmpeg-args.js';
import { type ModelRef } from './manifest.js';
import { EvidencePackager } from './packager.js';
import type { PlateReaderRef } from './plates.js';
import { defaultPlateModels } from '../recognizers/index.js';
import { EvidenceSigner, type SignerOptions } from './signer.js';
import { ClipSource, RingSource } from './sources.js';
import { PackageStore } from './store.js';

export { MANIFEST_SCHEMA, PACKAGE_FILES, type Manifest, type ManifestFile, type ModelRef } from './manifest.js';
export { cutClip, decodeFrames, probeFrames, type FrameIndex, type MediaInput } from './media.js';
export { EvidencePackager, EvidencePackagerError, type PackagerOptions, type PackagerStats } from './packager.js';
export { readPlate, type PlateReaderRef } from './plates.js';
export { EvidenceSigner, GENERATED_KEY_FILE, type KeySource, type SignerInfo, type SignerOptions } from './signer.js';
export { ClipSource, RingSource, type EventTime, type MediaSource, type MediaSpan, type SpanRequest } from './sources.js';
export { PACKAGES_INDEX_FILE, PackageStore, type PackageStoreStats, type RetentionOptions } from './store.js';

export interface EvidencePackagesOptions {
  /** analytics.evidence (dir absolute). */
  evidence: AnalyticsConfig['evidence'];
  signals?: AnalyticsConfig['signals'];
  device: DeviceRef;
  /** Key choice: evidence.sign_key, else the mTLS key, else one generated in data_dir. */
  signer: SignerOptions;
  /** Where the cameras' recording rings are (`<dir>/<camera id>/`); none: packages from a clip or the analysed frame. */
  recordings_dir?: string;
  plates?: PlateReaderRef;
  /** The config file's hash (the one in force when a package is built). */
  config_hash: () => string | null;
  agent_version: string;
  /** Model files in force, hashed on first use: `{role, path}`. */
  models: Array<{ role: string; path: string; sha256?: string }>;
  resize: ResizeMode;
  log?: Logger;
}

/**
 * The evidence of a box: `forCamera` gives each camera's analytics its packager (a new one for each new
 * analytics, after a config change too); acknowledgements and figures are the store's.
 */
export class EvidencePackages {
  readonly store: PackageStore;
  readonly signer: EvidenceSigner;
  private modelRefs: ModelRef[] | undefined;

  constructor(private readonly o: EvidencePackagesOptions) {
    this.store = PackageStore.forDir(o.evidence.dir, { max_mb: o.evidence.max_mb, max_days: o.evidence.max_days, ...(o.log ? { log: o.log } : {}) });
    this.signer = new EvidenceSigner(o.signer);
  }

  /**
   * The agent's evidence from its config: packages in analytics.evidence.dir, rings in `<data_dir>/recordings`,
   * signed with evidence.sign_key (relative to the config file), else mqtt.tls.key, else a key generated in
   * the data dir.
   */
  static fromConfig(config: Config, o: { file: string; config_hash: () => string | null; plates?: PlateReaderRef; log?: Logger }): EvidencePackages {
    const e = config.analytics.evidence;
    const tls = config.mqtt.tls;
    return new EvidencePackages({
      evidence: e,
      signals: config.analytics.signals,
      device: config.device,
      signer: {
        ...(e.sign_key ? { sign_key: resolve(dirname(o.file), e.sign_key) } : {}),
        ...(tls ? { tls: { ...(tls.key ? { key: tls.key } : {}), ...(tls.cert ? { cert: tls.cert } : {}) } } : {}),
        data_dir: config.device.data_dir,
        ...(o.log ? { log: o.log } : {}),
      },
      recordings_dir: recordingsDir(config),
      ...(o.plates ? { plates: o.plates } : {}),
      config_hash: o.config_hash,
      agent_version: packageVersion(),
      models: [{ role: 'detector', path: config.detector.model_path ?? DEFAULT_MODEL() }, ...(o.plates ? plateModelRefs() : [])],
      resize: config.detector.resize,
      ...(o.log ? { log: o.log } : {}),
    });
  }

  /** The packager of one camera: its ring when it records (and `clip` replaces it: `analyze --evidence`). */
  forCamera(camera: CameraConfig, opts: { clip?: string; evidence?: AnalyticsConfig['evidence'] } = {}): EvidencePackager {
    const source = opts.clip ? new ClipSource(opts.clip) : this.o.recordings_dir && camera.recording.enabled ? new RingSource(join(this.o.recordings_dir, camera.id)) : undefined;
    return new EvidencePackager({
      camera,
      evidence: opts.evidence ?? this.o.evidence,
      ...(this.o.signals ? { signals: this.o.signals } : {}),
      device: this.o.device,
      source,
      store: this.store,
      signer: this.signer,
      ...(this.o.plates ? { plates: this.o.plates } : {}),
      context: { config_hash: this.o.config_hash, agent_version: this.o.agent_version, models: () => this.models() },
      resize: this.o.resize,
      ...(this.o.log ? { log: this.o.log.child({ mod: 'evidence', camera: camera.id }) } : {}),
    });
  }

  /** The center has the package: it may be evicted before unacknowledged ones. False for an unknown id. */
  markAcknowledged(eventId: string): Promise<boolean> {
    return this.store.markAcknowledged(eventId);
  }

  stats(): ReturnType<PackageStore['stats']> {
    return this.store.stats();
  }

  /** Name and sha256 of each model file (read once). */
  private models(): ModelRef[] {
    this.modelRefs ??= this.o.models.map(({ role, path, sha256 }) => {
      let sum = sha256;
      if (sum === undefined) {
        try {
          sum = createHash('sha256').update(readFileSync(path)).digest('hex');
        } catch {
          sum = undefined;
        }
      }
      return { role, name: basename(path), ...(sum ? { sha256: sum } : {}) };
    });
    return this.modelRefs;
  }
}

/** Where the cameras' recording rings are: `<data_dir>/recordings/<camera id>/`. */
export function recordingsDir(config: Config): string {
  return join(config.device.data_dir, 'recordings');
}

/** The plate reader's model files, for the manifests. */
export function plateModelRefs(): Array<{ role: string; path: string }> {
  const m = defaultPlateModels();
  return [
    { role: 'plate_detector', path: m.det_model },
    { role: 'plate_recognizer', path: m.rec_model },
    { role: 'plate_dictionary', path: m.dictionary },
  ];
}
