// The status page's line and zone editor on the box side: POST /api/config/validate and /api/config/apply.
// A request names one line or zone of a camera (or carries a whole cameras patch); the candidate is the running
// config with it put in (added, or merged into the one with its id), checked exactly as `config check` checks
// a file by the config applier's dry run, and saved through the applier (base hash, probation, rollback).
import { isMap, isSeq, parseDocument, YAMLSeq, type YAMLMap } from 'yaml';
import { isRecord } from '../../config/loader.js';
import type { CommandArgs, CommandResult } from '../../contract/commands.js';
import { AgentError } from '../../core/errors.js';
import type { Logger } from '../../core/log.js';
import { HttpError } from './http.js';

type ApplyRequest = CommandArgs<'config-apply'>;
type ApplyResult = CommandResult<'config-apply'>;

/** What the editor needs of the config applier (agent/config-apply's ConfigApplier). */
export interface ConfigEditTarget {
  /** The config in force. */
  config(): { hash: string };
  /** config-get: the running config's text, secrets redacted (put back by apply), and its hash. */
  get(): { hash: string; yaml: string };
  apply(req: ApplyRequest): Promise<ApplyResult>;
}

export type EditKind = 'line' | 'zone';
const LIST: Record<EditKind, 'lines' | 'zones'> = { line: 'lines', zone: 'zones' };

/** One line or zone of a camera, or a merge patch of the cameras; `base_hash` defaults to the running config's. */
export type EditRequest =
  | { camera: string; kind: EditKind; item: Record<string, unknown>; base_hash?: string }
  | { patch: { cameras: unknown[] }; base_hash?: string };

/** An answer: its HTTP status and JSON body. */
export interface EditAnswer {
  status: number;
  body: Record<string, unknown>;
}

const HASH = /^[0-9a-f]{16}$/;

/** The request's shape (400 otherwise); the item's content is left to the config check. */
export function parseEditRequest(body: unknown): EditRequest {
  if (!isRecord(body)) throw new HttpError(400, 'expected a JSON object: {camera, kind: "line" | "zone", item} or {patch: {cameras: [...]}}');
  const base = body.base_hash;
  if (base !== undefined && (typeof base !== 'string' || !HASH.test(base))) throw new HttpError(400, 'base_hash: expected the 16 hex digits of a config hash');
  const extra = (allowed: string[]) => Object.keys(body).filter((k) => !allowed.includes(k));
  if ('patch' in body) {
    const patch = body.patch;
    if (!isRecord(patch) || !Array.isArray(patch.cameras) || Object.keys(patch).length !== 1) {
      throw new HttpError(400, 'patch: expected {cameras: [...]} (the editor changes cameras only)');
    }
    const unknown = extra(['patch', 'base_hash']);
    if (unknown.length > 0) throw new HttpError(400, `unexpected key(s) ${unknown.join(', ')}`);
    return { patch: { cameras: patch.cameras }, ...(typeof base === 'string' ? { base_hash: base } : {}) };
  }
  const { camera, kind, item } = body;
  if (typeof camera !== 'string' || camera === '') throw new HttpError(400, 'camera: expected the id of a camera');
  if (kind !== 'line' && kind !== 'zone') throw new HttpError(400, 'kind: expected "line" or "zone"');
  if (!isRecord(item)) throw new HttpError(400, `item: expected the ${kind} as an object, e.g. ${kind === 'line' ? '{id, a: [x, y], b: [x, y]}' : '{id, polygon: [[x, y], ...]}'}`);
  const unknown = extra(['camera', 'kind', 'item', 'base_hash']);
  if (unknown.length > 0) throw new HttpError(400, `unexpected key(s) ${unknown.join(', ')}`);
  return { camera, kind, item, ...(typeof base === 'string' ? { base_hash: base } : {}) };
}

/** Points and polygons as flow sequences (`[x, y]`), as people write them. */
function flowPoints(node: YAMLMap): void {
  for (const key of ['a', 'b', 'polygon', 'allowed_direction']) {
    const v = node.get(key, true);
    if (isSeq(v)) v.flow = true;
  }
}

/**
 * The running config's text with the item put into the camera's lines or zones: merged into the entry with
 * the same id (its other keys, e.g. classes or lanes, kept), else added at the end. Comments and layout of the
 * rest survive. Returns the text and the item's dotted path (as config check names it).
 */
export function candidateYaml(running: string, req: { camera: string; kind: EditKind; item: Record<string, unknown> }): { yaml: string; itemPath: string } {
  const doc = parseDocument(running, { uniqueKeys: false });
  const cams = doc.get('cameras', true);
  const i = isSeq(cams) ? cams.items.findIndex((c) => isMap(c) && c.get('id') === req.camera) : -1;
  const cam = isSeq(cams) ? cams.items[i] : undefined;
  if (!isMap(cam)) throw new HttpError(400, `camera: "${req.camera}" is not in the running config`);
  const key = LIST[req.kind];
  const found: unknown = cam.get(key, true);
  const list = isSeq(found) ? found : new YAMLSeq();
  if (list !== found) cam.set(key, list);
  const id = req.item.id;
  let j = id === undefined ? -1 : list.items.findIndex((x) => isMap(x) && x.get('id') === id);
  const entry = list.items[j];
  if (isMap(entry)) {
    for (const [k, v] of Object.entries(req.item)) entry.set(k, doc.createNode(v));
    flowPoints(entry);
  } else {
    const node = doc.createNode(req.item) as YAMLMap;
    flowPoints(node);
    j = list.items.length;
    list.items.push(node);
  }
  return { yaml: doc.toString(), itemPath: `cameras.${i}.${key}.${j}` };
}

/** A problem as `config check` prints it, without the file and line: `path: message (got …)`. */
export function problemLine(p: { path: string; message: string; got?: string }): string {
  return `${p.path || '(root)'}: ${p.message}${p.got === undefined ? '' : ` (got ${p.got})`}`;
}

/** HTTP status of an applier refusal, by its code. */
const REFUSAL_STATUS: Record<string, number> = {
  CONFIG_CONFLICT: 409,
  CONFIG_FILE_CHANGED: 409,
  AGENT_STOPPING: 503,
  CONFIG_INVALID: 422,
  SECRET_IN_CONFIG: 422,
};

/** Validates and applies the status page's edits through the config applier. */
export class ConfigEditor {
  constructor(
    private readonly target: ConfigEditTarget,
    private readonly log: Logger,
  ) {}

  /** `{ok, problems: ["path: message", …], item_path?, base_hash, hash?, changes, restart}`; nothing changes. */
  async validate(body: unknown): Promise<EditAnswer> {
    const edit = parseEditRequest(body);
    return this.refusals(async () => {
      const { req, itemPath } = this.dryRun(edit);
      const r = await this.target.apply(req);
      const ok = r.outcome !== 'invalid';
      return { status: 200, body: { ok, outcome: r.outcome, ...this.details(r, itemPath) } };
    });
  }

  /** Checks first (problems answered as for validate, 422), then applies: the applier's answer, `ok: true`. */
  async apply(body: unknown): Promise<EditAnswer> {
    const edit = parseEditRequest(body);
    return this.refusals(async () => {
      const { req, itemPath } = this.dryRun(edit);
      const checked = await this.target.apply(req);
      if (checked.outcome === 'invalid') return { status: 422, body: { ok: false, outcome: 'refused', ...this.details(checked, itemPath) } };
      const r = await this.target.apply({ ...req, dry_run: false });
      const what = 'camera' in edit ? { camera: edit.camera, kind: edit.kind, id: edit.item.id } : { cameras_patch: true };
      this.log.info({ ...what, outcome: r.outcome, hash: r.hash, changes: r.changes }, 'config changed from the status page');
      return { status: 200, body: { ok: true, ...r, ...this.details(r, itemPath) } };
    });
  }

  /** The applier's dry run of an edit, against the running config (or the base the page saw). */
  private dryRun(edit: EditRequest): { req: ApplyRequest; itemPath: string | undefined } {
    if ('patch' in edit) {
      const base_hash = edit.base_hash ?? this.target.config().hash;
      return { req: { patch: edit.patch, base_hash, dry_run: true }, itemPath: undefined };
    }
    const running = this.target.get();
    const { yaml, itemPath } = candidateYaml(running.yaml, edit);
    return { req: { yaml, base_hash: edit.base_hash ?? running.hash, dry_run: true }, itemPath };
  }

  private details(r: ApplyResult, itemPath: string | undefined): Record<string, unknown> {
    return {
      problems: r.problems.map(problemLine),
      ...(r.problems_total === undefined ? {} : { problems_total: r.problems_total }),
      ...(itemPath === undefined ? {} : { item_path: itemPath }),
      base_hash: r.base_hash,
      ...(r.hash === undefined ? {} : { hash: r.hash }),
      changes: r.changes,
      restart: r.restart,
    };
  }

  /** The applier's typed refusals (stale base, secrets, stopping…) as answers with a status; anything else throws. */
  private async refusals(fn: () => Promise<EditAnswer>): Promise<EditAnswer> {
    try {
      return await fn();
    } catch (err) {
      if (!(err instanceof AgentError)) throw err;
      return { status: REFUSAL_STATUS[err.code] ?? 500, body: { ok: false, outcome: 'refused', code: err.code, error: err.message, problems: [err.message] } };
    }
  }
}
