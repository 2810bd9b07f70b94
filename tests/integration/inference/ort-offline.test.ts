// ONNX Runtime 1.29+ ships telemetry on Linux (core/runtime-env.ts ORT_OFFLINE_ENV): a device id and an event cache
// under $XDG_CACHE_HOME/Microsoft/DeveloperTools, and uploads. The agent turns it off itself, whatever environment
// it was started with. ONNX Runtime decides once per process, so each case is a fresh node with the switch unset
// and a private cache and home directory.
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { REPO_ROOT } from '../../../testkit/clips.js';

let dir: string;
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'ort-offline-'));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/**
 * ONNX Runtime keeps its telemetry off by itself under CI (CI=true, as `.ci/run` runs, and the variables of the
 * common CI services, names from the library's strings) and its own unit tests: a box has none of them, so neither
 * do the children here, or both cases would pass for the wrong reason.
 */
const CI_MARKERS = ['CI', 'TF_BUILD', 'GITHUB_ACTIONS', 'GITLAB_CI', 'CIRCLECI', 'TRAVIS', 'JENKINS_URL', 'CODEBUILD_BUILD_ID', 'BUILDKITE', 'TEAMCITY_VERSION', 'APPVEYOR', 'BITBUCKET_BUILD_NUMBER', 'ORT_RUNNING_UNIT_TESTS'];

/** Runs `script` (ESM, tsx) in a fresh node without ORT_DISABLE_TELEMETRY or CI markers; returns where ORT would write. */
async function runFresh(name: string, script: string): Promise<{ cache: string; home: string; out: string }> {
  const cache = join(dir, name, 'cache');
  const home = join(dir, name, 'home');
  mkdirSync(cache, { recursive: true });
  mkdirSync(home, { recursive: true });
  const env: NodeJS.ProcessEnv = { ...process.env, XDG_CACHE_HOME: cache, HOME: home };
  for (const name of ['ORT_DISABLE_TELEMETRY', ...CI_MARKERS]) delete env[name];
  const child = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], { cwd: REPO_ROOT, env, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr.on('data', (d: Buffer) => (out += d.toString()));
  const code = await new Promise<number | null>((resolve) => child.on('close', resolve));
  expect(code, out).toBe(0);
  return { cache, home, out };
}

const TELEMETRY_DIR = ['Microsoft', 'DeveloperTools', '.onnxruntime'];
const written = (r: { cache: string; home: string }) =>
  [join(r.cache, ...TELEMETRY_DIR), join(r.home, '.cache', ...TELEMETRY_DIR)].filter((p) => existsSync(p));

describe('ONNX Runtime telemetry', () => {
  it('is on in a plain worker thread that loads onnxruntime-node (the control: the check below can fail)', async () => {
    const r = await runFresh(
      'plain',
      `import { Worker } from 'node:worker_threads';
       const w = new Worker("import('onnxruntime-node').then((ort) => ort.InferenceSession.create('models/nanodet-int8.onnx')).then(() => console.log('loaded'))", { eval: true });
       await new Promise((resolve, reject) => { w.on('exit', resolve); w.on('error', reject); });`,
    );
    expect(r.out).toContain('loaded');
    expect(written(r)).toHaveLength(1);
    expect(existsSync(join(written(r)[0]!, 'deviceid'))).toBe(true);
  });

  it('is off for the agent’s detector: no device id, no event cache', async () => {
    const r = await runFresh(
      'detector',
      `import { silentLogger } from './core/log.js';
       import { DetectorSchema } from './config/schema/detector.js';
       import { Detector } from './inference/detector/index.js';
       const d = new Detector(DetectorSchema.parse({ model_path: 'models/nanodet-int8.onnx', threads: 1 }), silentLogger());
       await d.start();
       const { width, height } = d.inputSize;
       const res = await d.detect('cam', { data: new Uint8Array(width * height * 3), width, height, source_width: width, source_height: height });
       console.log('ran', res.status);
       await d.stop();`,
    );
    expect(r.out).toContain('ran done');
    expect(written(r)).toEqual([]);
  });
});
