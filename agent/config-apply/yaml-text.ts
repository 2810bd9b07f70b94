// The config as text: secrets redacted for config-get, secrets refused in what a center pushes (placeholders
// put back from the box's own file), and a JSON merge patch (RFC 7396) applied to the YAML document so the
// comments and layout of the parts it does not touch survive.
import { isMap, isScalar, parseDocument, visit, type Document } from 'yaml';
import { getIn, isRecord } from '../../config/loader.js';
import { REDACTED_SECRET } from '../../contract/commands.js';
import { redactUrl } from '../../core/log.js';

/** Keys whose values are secrets (mqtt.password, status.token, cameras[].password, and look-alikes). */
const SECRET_KEY = /pass(word|phrase)?$|token|secret|credentials?|authorization|cookie|private_?key/i;
type Path = (string | number)[];


/** A secret value as config-get shows it: the placeholder for secret keys, URL credentials hidden in any string. */
function redactValue(key: string | number | undefined, value: unknown): unknown {
  if (typeof key === 'string' && SECRET_KEY.test(key) && value !== null && value !== undefined && value !== '') return REDACTED_SECRET;
  return typeof value === 'string' ? redactUrl(value) : value;
}

/** Parses text already accepted by the loader (the running config): no limits needed, it passed them. */
export function parseTrusted(text: string): Document {
  return parseDocument(text, { uniqueKeys: false });
}

/** The config text with every secret-looking value replaced (comments and layout kept; URL credentials in comments hidden too). */
export function redactConfigText(text: string): string {
  const doc = parseTrusted(text);
  visit(doc, {
    Pair(_, pair) {
      const key = isScalar(pair.key) ? pair.key.value : undefined;
      if (isScalar(pair.value) && typeof key === 'string') {
        const v = redactValue(key, pair.value.value);
        if (v !== pair.value.value) pair.value.value = v;
      }
    },
    Scalar(_, node) {
      if (typeof node.value === 'string') {
        const v = redactUrl(node.value);
        if (v !== node.value) node.value = v;
      }
    },
  });
  return redactUrl(doc.toString());
}

/**
 * Secrets in what a center sent (a parsed YAML config or a merge patch): `path: message` for each. The
 * placeholder and values whose URL credentials are already hidden are not secrets (they are put back from
 * the box's file by restoreRedacted).
 */
export function pushedSecrets(value: unknown, path: Path = []): string[] {
  const where = (p: Path) => p.join('.') || '(root)';
  if (typeof value === 'string') {
    const key = path[path.length - 1];
    if (typeof key === 'string' && SECRET_KEY.test(key) && value !== '' && value !== REDACTED_SECRET) {
      return [`${where(path)}: a secret value is not accepted in a pushed config`];
    }
    if (redactUrl(value) !== value && !value.includes('[redacted]@')) return [`${where(path)}: credentials in a URL are not accepted in a pushed config`];
    return [];
  }
  if (Array.isArray(value)) return value.flatMap((v, i) => pushedSecrets(v, [...path, i]));
  if (isRecord(value)) return Object.entries(value).flatMap(([k, v]) => pushedSecrets(v, [...path, k]));
  return [];
}

/** Where the running config keeps the value at `path` of the candidate: cameras are matched by id, not index. */
function runningValue(running: unknown, candidate: unknown, path: Path): unknown {
  if (path[0] === 'cameras' && typeof path[1] === 'number') {
    const id = getIn(candidate, ['cameras', path[1], 'id']);
    const cams = getIn(running, ['cameras']);
    const cam: unknown = Array.isArray(cams) ? (cams as unknown[]).find((c) => isRecord(c) && c.id === id) : undefined;
    return cam === undefined ? undefined : getIn(cam, path.slice(2));
  }
  return getIn(running, path);
}

/**
 * Puts the box's own secrets back where the candidate carries what config-get showed instead of them (the
 * placeholder, a URL with hidden credentials). A placeholder with nothing behind it is removed (the env secret,
 * if any, applies). Returns true when the document changed.
 */
export function restoreRedacted(doc: Document, runningText: string): boolean {
  const running: unknown = parseTrusted(runningText).toJS();
  const candidate: unknown = doc.toJS();
  const edits: { path: Path; value: unknown }[] = [];
  const walk = (v: unknown, path: Path): void => {
    if (typeof v === 'string') {
      if (v !== REDACTED_SECRET && !v.includes('[redacted]@')) return;
      const mine = runningValue(running, candidate, path);
      if (mine !== undefined && redactValue(path[path.length - 1], mine) === v) edits.push({ path, value: mine });
      else if (v === REDACTED_SECRET) edits.push({ path, value: undefined });
    } else if (Array.isArray(v)) v.forEach((x, i) => walk(x, [...path, i]));
    else if (isRecord(v)) for (const [k, x] of Object.entries(v)) walk(x, [...path, k]);
  };
  walk(candidate, []);
  for (const e of edits) {
    if (e.value === undefined) doc.deleteIn(e.path);
    else doc.setIn(e.path, e.value);
  }
  return edits.length > 0;
}

/** Applies a JSON merge patch (RFC 7396) to a YAML document in place: objects merge, null deletes, the rest replaces. */
export function mergePatch(doc: Document, patch: Record<string, unknown>): void {
  const apply = (path: Path, p: Record<string, unknown>): void => {
    const target = path.length === 0 ? doc.contents : doc.getIn(path, true);
    if (!isMap(target)) {
      // RFC 7396: a non-object target becomes {} before the patch is merged into it.
      if (path.length === 0) doc.contents = doc.createNode({});
      else doc.setIn(path, doc.createNode({}));
    }
    for (const [k, v] of Object.entries(p)) {
      const at = [...path, k];
      if (v === null) doc.deleteIn(at);
      else if (isRecord(v)) apply(at, v);
      else doc.setIn(at, typeof v === 'object' ? doc.createNode(v) : v); // a node, so later edits can reach inside it
    }
  };
  apply([], patch);
}

