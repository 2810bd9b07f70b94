// Checks that span fields or touch the file system: zod validates shapes, this validates meaning.
import { statSync } from 'node:fs';
import { isIP } from 'node:net';
import { dataPathProblems } from './data-paths.js';
import { fileKind } from './fs-checks.js';
import { degenerate, polygonProblem } from './geometry.js';
import { onnxProblem } from './onnx.js';
import type { Config, Point } from './schema/index.js';
import type { Path } from './yaml.js';

export interface Semantic {
  path: Path;
  message: string;
  key?: string;
}

export function isLoopbackHost(host: string): boolean {
  const h = host.replace(/^\[|\]$/g, '');
  return h === 'localhost' || h === '::1' || (isIP(h) === 4 && h.startsWith('127.'));
}

const isUrl = (s: string) => /^[a-z][a-z0-9+.-]*:\/\//i.test(s);

/**
 * `config` has defaults filled and paths resolved; `raw` is what the file (and environment) said. Sections that
 * did not parse are absent: each check runs when the sections it reads are there, so a file with a type error
 * in one section still gets the cross-field problems of the others.
 */
export function checkSemantics(config: Partial<Config>, raw: unknown, getIn: (obj: unknown, path: Path) => unknown): Semantic[] {
  const out: Semantic[] = [];
  const { cameras, analytics, detector, mqtt, status, device, outbox } = config;
  if (cameras) out.push(...checkCameras(cameras, analytics, raw, getIn));
  if (detector) out.push(...checkModel(detector));
  const t = analytics?.tracker;
  if (t && t.low_score > t.high_score) out.push({ path: ['analytics', 'tracker', 'low_score'], message: `must not exceed high_score (${t.high_score})` });
  if (mqtt) out.push(...checkMqtt(mqtt, Array.isArray(getIn(raw, ['mqtt', 'urls']))));
  if (status?.enabled && !isLoopbackHost(status.bind) && !status.token) {
    out.push({ path: ['status', 'bind'], message: `binding to "${status.bind}" exposes the box beyond loopback: set status.token (or ROADSIDE_STATUS_TOKEN)` });
  }
  if (device && outbox && analytics) out.push(...dataPathProblems({ ...config, device, outbox, analytics } as Config));
  return out;
}

function checkCameras(cameras: Config['cameras'], analytics: Config['analytics'] | undefined, raw: unknown, getIn: (obj: unknown, path: Path) => unknown): Semantic[] {
  const out: Semantic[] = [];
  const seenCams = new Map<string, number>();
  // Without a parsed analytics section the signal ids are unknown: stop lines are not checked against them.
  const signals = analytics && new Set(analytics.signals.map((s) => s.id));
  cameras.forEach((cam, i) => {
    const at: Path = ['cameras', i];
    const first = seenCams.get(cam.id);
    if (first !== undefined) out.push({ path: [...at, 'id'], message: `duplicate camera id "${cam.id}" (also cameras.${first})` });
    else seenCams.set(cam.id, i);

    const rawUrl = getIn(raw, [...at, 'url']);
    if (/^rtsps?:\/\//i.test(cam.url)) {
      let u: URL | undefined;
      try {
        u = new URL(cam.url);
      } catch {
        out.push({ path: [...at, 'url'], message: 'not a valid RTSP URL' });
      }
      if (u && (u.username || u.password)) {
        out.push({ path: [...at, 'url'], message: 'credentials in the URL: move them to username/password (they would leak into logs and process lists)' });
      }
    } else if (isUrl(cam.url)) {
      out.push({ path: [...at, 'url'], message: 'expected rtsp://, rtsps:// or a local video file' });
    } else {
      const shown = typeof rawUrl === 'string' ? rawUrl : cam.url;
      const st = statOrUndefined(cam.url);
      if (!st) out.push({ path: [...at, 'url'], message: `video file not found: ${shown}` });
      else if (!st.isFile()) out.push({ path: [...at, 'url'], message: `the video file is ${fileKind(st)}, not a regular file: ${shown}` });
    }

    const { width, height } = cam.frame;
    const inside = (p: Point) => p[0] >= 0 && p[1] >= 0 && p[0] <= width && p[1] <= height;
    const outside = (p: Point) => `point [${p.join(', ')}] is outside the ${width}x${height} frame`;
    const checkPoints = (points: Point[], path: Path) =>
      points.forEach((p, k) => {
        if (!inside(p)) out.push({ path: [...path, k], message: outside(p) });
      });
    const checkPolygon = (points: Point[], path: Path, what: string) => {
      const problem = polygonProblem(points);
      if (problem) out.push({ path, message: `${what}: ${problem}` });
    };
    const ids = new Set<string>();
    const unique = (id: string, path: Path) => {
      if (ids.has(id)) out.push({ path: [...path, 'id'], message: `duplicate line/zone id "${id}" on camera "${cam.id}"` });
      ids.add(id);
    };
    cam.lines.forEach((line, j) => {
      const lp: Path = [...at, 'lines', j];
      unique(line.id, lp);
      if (!inside(line.a)) out.push({ path: [...lp, 'a'], message: outside(line.a) });
      if (!inside(line.b)) out.push({ path: [...lp, 'b'], message: outside(line.b) });
      if (line.a[0] === line.b[0] && line.a[1] === line.b[1]) out.push({ path: [...lp, 'b'], message: 'a line needs two distinct points' });
      if (line.stop_line && !line.signal) out.push({ path: [...lp, 'signal'], message: 'a stop line needs the id of its signal' });
      if (line.signal && signals && !signals.has(line.signal)) out.push({ path: [...lp, 'signal'], message: `unknown signal "${line.signal}" (not in analytics.signals)` });
    });
    cam.zones.forEach((zone, j) => {
      const zp: Path = [...at, 'zones', j];
      unique(zone.id, zp);
      checkPoints(zone.polygon, [...zp, 'polygon']);
      checkPolygon(zone.polygon, [...zp, 'polygon'], `zone "${zone.id}"`);
      const d = zone.allowed_direction;
      if (d && d[0] === 0 && d[1] === 0) out.push({ path: [...zp, 'allowed_direction'], message: 'direction vector must not be [0, 0]' });
    });
    if (cam.roi) {
      checkPoints(cam.roi, [...at, 'roi']);
      checkPolygon(cam.roi, [...at, 'roi'], 'ROI');
    }
    if (cam.calibration) {
      checkPoints(cam.calibration.image, [...at, 'calibration', 'image']);
      if (degenerate(cam.calibration.image) || degenerate(cam.calibration.world)) {
        out.push({ path: [...at, 'calibration'], message: 'three of the four calibration points are on one line: the ground plane cannot be solved' });
      }
    }
  });
  return out;
}

function checkModel(detector: Config['detector']): Semantic[] {
  const out: Semantic[] = [];
  const model = detector.model_path;
  if (model) {
    const problem = onnxProblem(model);
    if (problem) out.push({ path: ['detector', 'model_path'], message: problem });
  }
  const names = detector.class_names;
  if (names) {
    detector.classes.forEach((c, i) => {
      if (!names.includes(c)) out.push({ path: ['detector', 'classes', i], message: `class "${c}" is not in detector.class_names` });
    });
  }
  return out;
}

/**
 * Every broker URL gets the same checks (credentials, plaintext beyond loopback, TLS files with a plaintext URL),
 * located at `mqtt.url` or at its place in `mqtt.urls`.
 */
function checkMqtt(mqtt: Config['mqtt'], listed: boolean): Semantic[] {
  const out: Semantic[] = [];
  const tls = mqtt.tls;
  const seen = new Map<string, number>();
  mqtt.urls.forEach((text, i) => {
    const at: Path = listed ? ['mqtt', 'urls', i] : ['mqtt', 'url'];
    const url = new URL(text);
    const plaintext = url.protocol === 'mqtt:' || url.protocol === 'ws:';
    if (url.username || url.password) out.push({ path: at, message: 'credentials in the URL: move them to mqtt.username / mqtt.password' });
    if (plaintext && !isLoopbackHost(url.hostname) && !mqtt.allow_insecure) {
      out.push({ path: at, message: `plaintext ${url.protocol}// to the non-loopback host "${url.hostname}": use mqtts:// or set mqtt.allow_insecure: true` });
    }
    if (tls && plaintext) {
      out.push({ path: listed ? at : ['mqtt', 'tls'], message: `TLS files are set but the URL is plaintext ${url.protocol}//: use mqtts:// or wss://` });
    }
    const key = `${url.protocol}//${url.host}${url.pathname}`;
    const first = seen.get(key);
    if (first !== undefined) out.push({ path: at, message: `the same broker as mqtt.urls.${first}: list each node once` });
    else seen.set(key, i);
  });
  if (mqtt.embedded_broker) {
    const url = new URL(mqtt.url);
    const plaintext = url.protocol === 'mqtt:' || url.protocol === 'ws:';
    if (mqtt.urls.length > 1) out.push({ path: ['mqtt', 'embedded_broker'], message: 'the embedded broker is one local broker: give it as mqtt.url, not a list of mqtt.urls' });
    else if (!isLoopbackHost(url.hostname) || !plaintext) out.push({ path: ['mqtt', 'embedded_broker'], message: 'the embedded broker serves plain mqtt:// on loopback only' });
  }
  if (tls) {
    for (const k of ['ca', 'cert', 'key'] as const) {
      const f = tls[k];
      if (f && !statOrUndefined(f)?.isFile()) out.push({ path: ['mqtt', 'tls', k], message: `file not found or not readable: ${f}` });
    }
    if (Boolean(tls.cert) !== Boolean(tls.key)) out.push({ path: ['mqtt', 'tls', tls.cert ? 'key' : 'cert'], message: 'mutual TLS needs both cert and key' });
  }
  return out;
}

function statOrUndefined(p: string) {
  try {
    return statSync(p);
  } catch {
    return undefined;
  }
}
