// The arm64 image, assembled without a Docker daemon (none runs here, and no base image can be pulled): the
// build context is made exactly as Dockerfile.arm64 and .dockerignore define it (both parsed, nothing listed by
// hand), the build stage's COPY and `npm run build` run in it, the runtime stage's files are laid out from the
// stages' outputs, and the agent starts from that tree and serves its status page.
// What cannot run here is stood in for and said so: `npm ci` of the build and prod-deps stages links this
// checkout's node_modules (same lock file; arm64 native modules are the arm64 smoke test's job), and
// apt-get/useradd steps are skipped (system packages: ffmpeg is on this machine).
import { execFile, execFileSync } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { dirname, join, posix } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';
import { DEMO_CLIP, REPO_ROOT } from '../../../testkit/clips.js';
import { copyArgs, ignoredBy, parseDockerfile, parseDockerignore, stages, type Stage } from '../../../testkit/dockerfile.js';
import { freePort } from '../../../testkit/ports.js';
import { spawnGuarded, terminate, waitFor } from '../../../testkit/processes.js';
import { makeTempDir } from '../../../testkit/tmp.js';

const execFileP = promisify(execFile);
const DOCKERFILE = readFileSync(join(REPO_ROOT, 'Dockerfile.arm64'), 'utf8');
const IGNORE = parseDockerignore(readFileSync(join(REPO_ROOT, '.dockerignore'), 'utf8'));

/** The build context: every file of the checkout that .dockerignore lets through. */
function assembleContext(dir: string): string[] {
  const files = execFileSync('git', ['ls-files', '-co', '--exclude-standard'], { cwd: REPO_ROOT, encoding: 'utf8' })
    .split('\n')
    .filter((f) => f && existsSync(join(REPO_ROOT, f)) && !ignoredBy(IGNORE, f));
  for (const f of files) {
    mkdirSync(dirname(join(dir, f)), { recursive: true });
    cpSync(join(REPO_ROOT, f), join(dir, f));
  }
  return files;
}

/** Runs a stage's COPY (from the context or an earlier stage's root) and the RUN steps that can run here. */
async function runStage(stage: Stage, root: string, context: string, stageRoots: Map<string, string>, log: string[]): Promise<void> {
  let workdir = root;
  for (const i of stage.body) {
    if (i.cmd === 'WORKDIR') {
      workdir = join(root, i.args);
      mkdirSync(workdir, { recursive: true });
    } else if (i.cmd === 'COPY') {
      const { from, sources, dest } = copyArgs(i);
      const srcRoot = from ? stageRoots.get(from) : context;
      if (!srcRoot) throw new Error(`${i.line}: COPY --from=${from}: no such stage`);
      for (const src of sources) {
        const s = from ? join(srcRoot, src) : join(context, src);
        const target = dest.endsWith('/') || sources.length > 1 ? join(workdir, dest, posix.basename(src)) : posix.isAbsolute(dest) ? join(root, dest) : join(workdir, dest);
        if (!existsSync(s)) throw new Error(`${i.line}: COPY ${src}: not in the ${from ? `stage ${from}` : 'build context'}`);
        mkdirSync(dirname(target), { recursive: true });
        cpSync(s, target, { recursive: true, verbatimSymlinks: true });
      }
    } else if (i.cmd === 'RUN') {
      if (/\bnpm ci\b/.test(i.args)) {
        // Stand-in for the registry install: the same lock file's tree from this checkout.
        symlinkSync(join(REPO_ROOT, 'node_modules'), join(workdir, 'node_modules'));
        log.push(`${i.line}: npm ci → linked node_modules`);
      } else if (/\bnpm run build\b/.test(i.args)) {
        const r = await execFileP('npm', ['run', 'build'], { cwd: workdir, maxBuffer: 16 * 1024 * 1024 }).catch((e: { stdout: string; stderr: string; code: number }) => e);
        if ('code' in r && r.code) throw new Error(`${i.line}: npm run build failed:\n${r.stdout}\n${r.stderr}`);
        log.push(`${i.line}: npm run build`);
      } else {
        log.push(`${i.line}: skipped (system step): ${i.args.slice(0, 60)}`);
      }
    }
  }
}

describe('arm64 image, assembled from Dockerfile.arm64 and .dockerignore', () => {
  const tmp = makeTempDir('image');
  let agent: ReturnType<typeof spawnGuarded> | undefined;
  afterAll(async () => {
    if (agent) await terminate(agent, 'SIGTERM', 10_000);
  });

  it('builds, lays out the runtime stage, starts the agent from it and serves GET / and /healthz', async () => {
    const context = join(tmp, 'context');
    const contextFiles = assembleContext(context);
    expect(contextFiles).not.toContain('tests/fixtures/clips/vtest-20s.mp4');
    expect(contextFiles.some((f) => f.startsWith('bench/') || f.startsWith('testkit/'))).toBe(false);

    const all = stages(parseDockerfile(DOCKERFILE));
    const roots = new Map<string, string>();
    const log: string[] = [];
    for (const s of all) {
      const root = join(tmp, `stage-${s.name ?? 'anon'}`);
      mkdirSync(root, { recursive: true });
      await runStage(s, root, context, roots, log);
      // Stage paths are absolute in the image: map "/src" of stage X to its folder here.
      if (s.name) roots.set(s.name, root);
    }
    const runtime = all.at(-1)!;
    const workdir = join(roots.get(runtime.name!)!, runtime.body.filter((i) => i.cmd === 'WORKDIR').at(-1)!.args);

    // Only what runs on a box: no benchmark, test helper or generator code in dist/.
    for (const d of ['bench', 'testkit', 'tests', 'tools']) expect(existsSync(join(workdir, 'dist', d)), `dist/${d}`).toBe(false);
    expect(existsSync(join(workdir, 'dist', 'agent', 'status', 'public', 'index.html'))).toBe(true);

    const entry = JSON.parse(runtime.body.find((i) => i.cmd === 'ENTRYPOINT')!.args) as string[];
    const port = await freePort();
    const mqttPort = await freePort();
    const configFile = join(tmp, 'agent.yaml');
    writeFileSync(
      configFile,
      [
        'device: { id: image-box, site: test, data_dir: ' + JSON.stringify(join(tmp, 'data')) + ' }',
        'cameras:',
        `  - { id: cam1, url: ${JSON.stringify(DEMO_CLIP)}, frame: { width: 768, height: 576 }, detection_fps: 5 }`,
        `mqtt: { url: "mqtt://127.0.0.1:${mqttPort}", protocol: 4, embedded_broker: true }`,
        `status: { bind: 127.0.0.1, port: ${port} }`,
        'logging: { level: warn, pretty: never }',
        '',
      ].join('\n'),
    );
    agent = spawnGuarded(entry[0]!, [...entry.slice(1), 'run', '--config', configFile], { cwd: workdir, stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    agent.stdout?.on('data', (b: Buffer) => (output += b.toString()));
    agent.stderr?.on('data', (b: Buffer) => (output += b.toString()));

    const get = (path: string) => fetch(`http://127.0.0.1:${port}${path}`).then(async (r) => ({ status: r.status, body: await r.text() }));
    await waitFor(async () => (await get('/healthz').catch(() => ({ status: 0, body: '' }))).status === 200, { timeout_ms: 45_000, interval_ms: 500, message: 'GET /healthz 200' }).catch((err: Error) => {
      throw new Error(`${err.message}\nagent output:\n${output}\nbuild steps:\n${log.join('\n')}`);
    });
    const page = await get('/');
    expect(page.status).toBe(200);
    expect(page.body).toMatch(/<html/i);
    // Every script the page loads is served from the image's tree, the MPEG-1 player included.
    for (const src of ['static/app.js', ...[...page.body.matchAll(/src="([^"]+)"/g)].map((m) => m[1]!)]) expect((await get(`/${src}`)).status, src).toBe(200);
    expect((await get('/static/jsmpeg-player.esm.js')).status).toBe(200);
  }, 240_000);
});
