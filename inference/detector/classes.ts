import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { packageRoot } from '../../core/paths.js';
import type { DetectorConfig } from '../../config/schema/detector.js';
import { DetectorError } from './errors.js';

export const DEFAULT_CLASS_NAMES_FILE = (): string => join(packageRoot(), 'models', 'coco-classes.json');

/** `detector.class_names`, else the bundled COCO list (a JSON array of names, or `{names: [...]}`, or `{"0": name}`). */
export function resolveClassNames(cfg: Pick<DetectorConfig, 'class_names'>, file = DEFAULT_CLASS_NAMES_FILE()): string[] {
  if (cfg.class_names) return cfg.class_names;
  let parsed: unknown;
  try {
    parsed = JSON.parse(readFileSync(file, 'utf8'));
  } catch (err) {
    throw new DetectorError('DETECTOR_CONFIG', `cannot read class names from ${file}: ${(err as Error).message}; set detector.class_names`, { cause: err });
  }
  const list = Array.isArray(parsed)
    ? parsed
    : parsed && typeof parsed === 'object' && Array.isArray((parsed as { names?: unknown }).names)
      ? (parsed as { names: unknown[] }).names
      : parsed && typeof parsed === 'object'
        ? Object.entries(parsed as Record<string, unknown>)
            .sort((a, b) => Number(a[0]) - Number(b[0]))
            .map(([, v]) => v)
        : [];
  if (list.length === 0 || !list.every((n): n is string => typeof n === 'string')) {
    throw new DetectorError('DETECTOR_CONFIG', `${file}: expected a JSON array of class names`);
  }
  return list;
}

/** Per-class minimum scores as plain numbers (they cross to the worker): `Infinity` drops the class. */
export interface GateSpec {
  byClass: number[];
  other: number;
}

/**
 * score_threshold, class_thresholds and the classes filter folded into one minimum score per class id.
 * An empty `classes` keeps every class. Unknown class names are a configuration error (a typo would
 * otherwise silently drop every detection of that class).
 */
export function buildGate(cfg: Pick<DetectorConfig, 'classes' | 'class_thresholds' | 'score_threshold'>, names: readonly string[]): GateSpec {
  const known = (n: string) => names.includes(n) || /^class_\d+$/.test(n);
  const unknown = [...cfg.classes, ...Object.keys(cfg.class_thresholds)].filter((n) => !known(n));
  if (unknown.length > 0) {
    throw new DetectorError(
      'DETECTOR_CONFIG',
      `detector: unknown class name(s) ${[...new Set(unknown)].map((n) => JSON.stringify(n)).join(', ')} in detector.classes / class_thresholds (the model's classes: ${names.join(', ')}); list the classes to keep in detector.classes`,
    );
  }
  const keepAll = cfg.classes.length === 0;
  const keep = new Set(cfg.classes);
  const min = (name: string) => (keepAll || keep.has(name) ? (cfg.class_thresholds[name] ?? cfg.score_threshold) : Infinity);
  return { byClass: names.map(min), other: keepAll ? cfg.score_threshold : Infinity };
}

/**
 * Classes that are one kind of object to the tracker: a detector often calls one vehicle a car in one frame
 * and a truck in the next, or gives both boxes at once (its NMS is per class). Within a group, tracks match
 * detections of any member class and overlapping boxes of different classes merge into one detection; the
 * track's class is then a vote. A class in no group is a group of its own (person, bicycle).
 */
export const DEFAULT_CLASS_GROUPS: Readonly<Record<string, readonly string[]>> = {
  vehicle: ['car', 'truck', 'bus', 'motorcycle'],
};

/** The class → group lookup of `groups`: a class listed in no group is its own group. */
export function classGrouper(groups: Readonly<Record<string, readonly string[]>> = DEFAULT_CLASS_GROUPS): (class_name: string) => string {
  const byClass = new Map<string, string>();
  for (const [group, names] of Object.entries(groups)) for (const n of names) byClass.set(n, `group:${group}`);
  return (name) => byClass.get(name) ?? name;
}
