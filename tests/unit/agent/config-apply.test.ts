// agent/config-apply in process: what a change restarts, secrets in and out of the YAML, merge patches, the
// probation verdict and the start-time recovery of a probation cut short.
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseDocument } from 'yaml';
import { describe, expect, it } from 'vitest';
import { planChanges } from '../../../agent/config-apply/plan.js';
import { Probation, type ProbationSample } from '../../../agent/config-apply/probation.js';
import { configHash, recoverPendingConfig } from '../../../agent/config-apply/recovery.js';
import { readConfigState, writeConfigState } from '../../../agent/config-apply/state.js';
import { mergePatch, pushedSecrets, redactConfigText, restoreRedacted } from '../../../agent/config-apply/yaml-text.js';
import { ConfigSchema, type ConfigInput } from '../../../config/schema/index.js';
import { DEMO_CLIP } from '../../../testkit/clips.js';
import { makeTempDir } from '../../../testkit/tmp.js';

const BASE: ConfigInput = {
  device: { id: 'box-1', site: 'site-1' },
  cameras: [
    { id: 'cam1', url: 'rtsp://127.0.0.1:8554/a', frame: { width: 768, height: 576 }, lines: [{ id: 'l1', a: [0, 300], b: [768, 300] }] },
    { id: 'cam2', url: 'rtsp://127.0.0.1:8554/b', frame: { width: 768, height: 576 } },
  ],
  mqtt: { url: 'mqtt://127.0.0.1:1883' },
};
const cfg = (edit: (c: ConfigInput) => void = () => undefined) => {
  const c = structuredClone(BASE);
  edit(c);
  return ConfigSchema.parse(c);
};

describe('planChanges', () => {
  it('a line change restarts only that camera\'s analytics; the ffmpeg and everything else keep running', () => {
    const p = planChanges(cfg(), cfg((c) => (c.cameras[0]!.lines = [{ id: 'l2', a: [0, 200], b: [768, 200] }])));
    expect(p).toMatchObject({ restart: [], cameras: { analytics: ['cam1'], source: [], roi: [], added: [], removed: [] } });
    expect(p.changes).toEqual(['cameras.cam1: lines (analytics restarted)']);
  });

  it('a URL or fps change restarts the camera; an ROI only reaches the detector; cameras come and go', () => {
    expect(planChanges(cfg(), cfg((c) => (c.cameras[1]!.detection_fps = 2))).cameras).toMatchObject({ source: ['cam2'], analytics: [] });
    expect(planChanges(cfg(), cfg((c) => (c.cameras[0]!.roi = [[0, 0], [700, 0], [700, 500]]))).cameras).toMatchObject({ roi: ['cam1'], source: [], analytics: [] });
    const p = planChanges(cfg(), cfg((c) => (c.cameras = [c.cameras[0]!, { id: 'cam3', url: 'rtsp://127.0.0.1:8554/c', frame: { width: 640, height: 480 } }])));
    expect(p.cameras).toMatchObject({ added: ['cam3'], removed: ['cam2'] });
    expect(p.restart).toEqual([]);
  });

  it('the analytics section restarts every camera\'s analytics; the log level and location apply in place', () => {
    const p = planChanges(cfg(), cfg((c) => {
      c.analytics = { flow_bin_s: 30 };
      c.logging = { level: 'debug' };
      c.device.location = { lat: 1, lon: 2 };
    }));
    expect(p.restart).toEqual([]);
    expect(p.cameras.analytics).toEqual(['cam1', 'cam2']);
    expect(p.logLevel).toBe('debug');
    expect(p.changes).toEqual(expect.arrayContaining(['device.location', 'logging.level: info → debug']));
  });

  it('broker, detector, outbox and device identity need a restart, named by path', () => {
    const p = planChanges(cfg(), cfg((c) => {
      c.mqtt.url = 'mqtts://broker.example:8883';
      c.detector = { input_size: { width: 320, height: 320 } };
      c.device.site = 'site-2';
      c.outbox = { path: 'other.db' };
    }));
    expect(p.restart).toEqual(expect.arrayContaining(['detector.input_size', 'device.site', 'mqtt.url', 'outbox.path']));
    expect(p.restart.filter((r) => !/^(detector|device|mqtt|outbox)\./.test(r))).toEqual([]);
    expect(p.changes).toEqual([]);
  });
});

const RUNNING = `# box config
device: { id: box-1, site: site-1 }
cameras:
  - id: cam1
    url: rtsp://127.0.0.1/a
    password: cam1-secret # provisioned long ago
    frame: { width: 768, height: 576 }
  - id: cam2
    url: rtsp://127.0.0.1/b
    password: cam2-secret
    frame: { width: 768, height: 576 }
mqtt:
  url: mqtts://user:mqtt-secret@broker.example:8883
  password: mqtt-pw
  tls: { key: /etc/roadside/client.key }
status: { token: status-token-123456 }
`;

describe('secrets in the config text', () => {
  it('config-get hides passwords, tokens and URL credentials and keeps comments and paths', () => {
    const out = redactConfigText(RUNNING);
    for (const s of ['cam1-secret', 'cam2-secret', 'mqtt-secret', 'mqtt-pw', 'status-token-123456']) expect(out).not.toContain(s);
    expect(out).toContain('# box config');
    expect(out).toContain('/etc/roadside/client.key');
    expect(parseDocument(out).toJS()).toMatchObject({ mqtt: { password: '<redacted>', url: 'mqtts://[redacted]@broker.example:8883' }, status: { token: '<redacted>' } });
  });

  it('a pushed secret is refused; placeholders and key paths are not secrets', () => {
    expect(pushedSecrets({ mqtt: { password: 'x' }, cameras: [{ id: 'c', password: '<redacted>' }] })).toEqual(['mqtt.password: a secret value is not accepted in a pushed config']);
    expect(pushedSecrets({ cameras: [{ url: 'rtsp://u:p@cam/x' }] })).toEqual(['cameras.0.url: credentials in a URL are not accepted in a pushed config']);
    expect(pushedSecrets(parseDocument(redactConfigText(RUNNING)).toJS())).toEqual([]);
  });

  it('placeholders get the box\'s values back (cameras by id, reordered by a patch), and one with nothing behind it is dropped', () => {
    const pushed = parseDocument(redactConfigText(RUNNING));
    // The center swaps the cameras and adds one with a placeholder.
    const cams = pushed.toJS().cameras as object[];
    mergePatch(pushed, { cameras: [cams[1], cams[0], { id: 'cam3', url: 'rtsp://127.0.0.1/c', password: '<redacted>', frame: { width: 1, height: 1 } }] });
    expect(restoreRedacted(pushed, RUNNING)).toBe(true);
    const js = pushed.toJS() as { cameras: { id: string; password?: string }[]; mqtt: { url: string; password: string }; status: { token: string } };
    expect(js.cameras.map((c) => [c.id, c.password])).toEqual([['cam2', 'cam2-secret'], ['cam1', 'cam1-secret'], ['cam3', undefined]]);
    expect(js.mqtt).toMatchObject({ url: 'mqtts://user:mqtt-secret@broker.example:8883', password: 'mqtt-pw' });
    expect(js.status.token).toBe('status-token-123456');
  });
});

describe('mergePatch (RFC 7396) on the YAML document', () => {
  it('merges objects, deletes with null, replaces arrays and scalars, keeps comments', () => {
    const doc = parseDocument(RUNNING);
    mergePatch(doc, { device: { location: { lat: 1, lon: 2 } }, status: null, cameras: [{ id: 'only' }], mqtt: { tls: { key: null, ca: '/ca.pem' } } });
    const js = doc.toJS() as Record<string, unknown>;
    expect(js).toMatchObject({ device: { id: 'box-1', site: 'site-1', location: { lat: 1, lon: 2 } }, cameras: [{ id: 'only' }], mqtt: { tls: { ca: '/ca.pem' } } });
    expect(js).not.toHaveProperty('status');
    expect(js.mqtt).not.toHaveProperty('tls.key');
    expect(doc.toString()).toContain('# box config');
  });
});

describe('Probation verdict', () => {
  const sample = (over: Partial<ProbationSample> = {}): ProbationSample => ({
    cameras: [{ id: 'cam1', frames_total: 10, last_frame_age_ms: 100, state: 'online', reason: null, detail: null }],
    detector: { state: 'running', runs: 10 },
    uplink: { online: true, last_error: null },
    ...over,
  });
  const probe = (s: ProbationSample) => ({ sample: () => s });

  it('passes when cameras deliver, the detector runs and the uplink is connected', () => {
    const p = new Probation(probe(sample({ cameras: [{ id: 'cam1', frames_total: 5, last_frame_age_ms: 100, state: 'online', reason: null, detail: null }], detector: { state: 'running', runs: 5 } })), 60_000, () => undefined);
    p.start();
    p.cancel();
    expect(p.verdict(sample())).toEqual({ ok: true });
  });

  it('says which camera delivered nothing and why, and the uplink that never connected', () => {
    const dead = { id: 'cam1', frames_total: 0, last_frame_age_ms: null, state: 'offline', reason: 'connection_refused', detail: 'Connection refused' };
    const s = sample({ cameras: [dead], detector: { state: 'running', runs: 3 }, uplink: { online: false, last_error: 'CONNECTION_LOST: gone' } });
    const p = new Probation(probe(s), 60_000, () => undefined);
    p.start();
    p.cancel();
    const v = p.verdict(s);
    expect(v.ok).toBe(false);
    expect(!v.ok && v.reason).toBe('camera cam1 delivered no frame (offline: connection_refused, Connection refused); the detector did not run (running); the uplink is not connected (CONNECTION_LOST: gone)');
    // A camera that was down before and is untouched by the change is not held against it.
    const excused = new Probation(probe(s), 60_000, () => undefined, { cameras: new Set(['cam1']), uplink: true });
    excused.start();
    excused.cancel();
    expect(excused.verdict(s)).toEqual({ ok: true });
  });
});

describe('recoverPendingConfig (start of the agent)', () => {
  const setup = () => {
    const dir = makeTempDir('config-recovery');
    const file = join(dir, 'agent.yaml');
    const text = (line: number) => `device: { id: box-1, site: site-1, data_dir: ./data }\ncameras:\n  - id: cam1\n    url: ${DEMO_CLIP}\n    frame: { width: 768, height: 576 }\n    lines: [{ id: l, a: [0, ${line}], b: [768, ${line}] }]\nmqtt: { url: "mqtt://127.0.0.1:1883" }\n`;
    writeFileSync(`${file}.prev`, text(300));
    writeFileSync(file, text(200));
    const pending = (phase: 'probing' | 'restarting', to = configHash(text(200))) =>
      writeConfigState(join(dir, 'data'), { version: 1, pending: { from_hash: configHash(text(300)), to_hash: to, started_at: new Date().toISOString(), probation_s: 60, phase }, applied: null, last_rollback: null });
    const io = { stderr: (t: string) => void lines.push(t), env: {} };
    const lines: string[] = [];
    return { dir, file, text, pending, io, lines };
  };

  it('a probation cut short restores <config>.prev and keeps the rollback for the birth', () => {
    const t = setup();
    t.pending('probing');
    expect(recoverPendingConfig(t.file, t.io).action).toBe('rolled_back');
    expect(readFileSync(t.file, 'utf8')).toBe(t.text(300));
    const { state } = readConfigState(join(t.dir, 'data'));
    expect(state.pending).toBeNull();
    expect(state.last_rollback).toMatchObject({ from_hash: configHash(t.text(200)) });
    expect(t.lines.join('')).toContain('restored');
    expect(recoverPendingConfig(t.file, t.io).action).toBe('none');
  });

  it('the agent\'s own restart continues the probation; a change never written is cleared', () => {
    const t = setup();
    t.pending('restarting');
    expect(recoverPendingConfig(t.file, t.io).action).toBe('continue');
    expect(readConfigState(join(t.dir, 'data')).state.pending?.phase).toBe('probing');
    expect(readFileSync(t.file, 'utf8')).toBe(t.text(200));
    t.pending('probing', '0123456789abcdef');
    expect(recoverPendingConfig(t.file, t.io).action).toBe('cleared');
    expect(readFileSync(t.file, 'utf8')).toBe(t.text(200));
  });
});
