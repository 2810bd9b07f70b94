// What a config change touches: the parts applied in place (cameras, analytics, log level, birth-only fields)
// and the ones only a restart can apply. Anything not known to be hot restarts the agent: a section added to
// the schema later is safe by default.
import { isDeepStrictEqual } from 'node:util';
import type { CameraConfig, Config } from '../../config/schema/index.js';
import type { LogLevel } from '../../core/log.js';

/** Camera fields only the analytics and the frame loop (tracker, lines, zones, speed, tamper watch) use: the ffmpeg keeps running. */
const ANALYTICS_FIELDS = new Set(['lines', 'zones', 'calibration', 'tamper']);
/** Device fields that name the box or move its data: topics, outbox and state change with them. */
const DEVICE_RESTART_FIELDS = new Set(['id', 'site', 'data_dir']);
/** Top-level sections applied in place (their restart-only fields are listed above). */
const HOT_SECTIONS = new Set(['device', 'cameras', 'analytics', 'logging']);

/** Per camera id: what to do with its modules. */
export interface CameraDiff {
  added: string[];
  removed: string[];
  /** ffmpeg input or its frame shaping changed: source, analytics and pipeline replaced. */
  source: string[];
  /** Lines, zones or calibration changed (or the analytics section): analytics and pipeline replaced. */
  analytics: string[];
  /** Only the region of interest changed: the detector's ROI is updated, nothing restarts. */
  roi: string[];
}

export interface ChangePlan {
  /** Dotted paths only a restart can apply (empty: everything is applied in place). */
  restart: string[];
  /** One line per change, for the answer and the log. */
  changes: string[];
  cameras: CameraDiff;
  /** The new log level when it changed. */
  logLevel: LogLevel | undefined;
}

/** Keys of two objects whose values differ (deep, key order ignored). */
function changedKeys(a: object | undefined, b: object | undefined): string[] {
  const ra = (a ?? {}) as Record<string, unknown>;
  const rb = (b ?? {}) as Record<string, unknown>;
  const keys = [...new Set([...Object.keys(ra), ...Object.keys(rb)])];
  return keys.filter((k) => !isDeepStrictEqual(ra[k], rb[k])).sort();
}

/** The camera-by-camera difference; `analyticsChanged` (the analytics section) restarts every camera's analytics. */
export function diffCameras(before: readonly CameraConfig[], after: readonly CameraConfig[], analyticsChanged: boolean): CameraDiff & { fields: Map<string, string[]> } {
  const old = new Map(before.map((c) => [c.id, c]));
  const diff: CameraDiff & { fields: Map<string, string[]> } = { added: [], removed: [], source: [], analytics: [], roi: [], fields: new Map() };
  for (const cam of after) {
    const prev = old.get(cam.id);
    if (!prev) {
      diff.added.push(cam.id);
      continue;
    }
    const fields = changedKeys(prev, cam);
    diff.fields.set(cam.id, fields);
    if (fields.some((f) => f !== 'roi' && !ANALYTICS_FIELDS.has(f))) diff.source.push(cam.id);
    else if (analyticsChanged || fields.some((f) => ANALYTICS_FIELDS.has(f))) diff.analytics.push(cam.id);
    else if (fields.includes('roi')) diff.roi.push(cam.id);
  }
  const ids = new Set(after.map((c) => c.id));
  diff.removed = before.filter((c) => !ids.has(c.id)).map((c) => c.id);
  return diff;
}

/** Compares the running config with a candidate (both validated and resolved). */
export function planChanges(before: Config, after: Config): ChangePlan {
  const restart: string[] = [];
  const changes: string[] = [];
  for (const section of changedKeys(before, after)) {
    const a = (before as Record<string, unknown>)[section];
    const b = (after as Record<string, unknown>)[section];
    const inner = typeof a === 'object' && a !== null && !Array.isArray(a) && typeof b === 'object' && b !== null && !Array.isArray(b) ? changedKeys(a, b) : [];
    if (!HOT_SECTIONS.has(section)) {
      restart.push(...(inner.length > 0 ? inner.map((k) => `${section}.${k}`) : [section]));
      continue;
    }
    if (section === 'device') {
      for (const k of inner) {
        if (DEVICE_RESTART_FIELDS.has(k)) restart.push(`device.${k}`);
        else changes.push(`device.${k}`);
      }
    } else if (section === 'logging') {
      for (const k of inner) {
        if (k === 'level') changes.push(`logging.level: ${before.logging.level} → ${after.logging.level}`);
        else restart.push(`logging.${k}`);
      }
    } else if (section === 'analytics') {
      changes.push(`analytics: ${inner.join(', ')} (the analytics of every camera restarted)`);
    }
  }
  const analyticsChanged = !isDeepStrictEqual(before.analytics, after.analytics);
  const { fields, ...cameras } = diffCameras(before.cameras, after.cameras, analyticsChanged);
  for (const id of cameras.added) changes.push(`cameras.${id}: added`);
  for (const id of cameras.removed) changes.push(`cameras.${id}: removed`);
  const list = (id: string): string => (fields.get(id) ?? []).join(', ');
  for (const id of cameras.source) changes.push(`cameras.${id}: ${list(id)} (camera restarted)`);
  for (const id of cameras.analytics) if (list(id)) changes.push(`cameras.${id}: ${list(id)} (analytics restarted)`);
  for (const id of cameras.roi) changes.push(`cameras.${id}: roi (detector region updated)`);
  const order = (c: readonly CameraConfig[]) => c.map((x) => x.id).join();
  if (cameras.added.length === 0 && cameras.removed.length === 0 && order(before.cameras) !== order(after.cameras)) changes.push('cameras: order');
  return { restart, changes, cameras, logLevel: before.logging.level !== after.logging.level ? after.logging.level : undefined };
}
