// A small lint of Dockerfile.arm64 (hadolint is neither in Debian bookworm nor on npm): parses the file into
// instructions per stage and checks the rules this project relies on. The negative cases prove each rule can fail.
import { existsSync, readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { ignoredBy, parseDockerfile, parseDockerignore, stages, type Instruction } from '../../../testkit/dockerfile.js';
import { AGENT_NODE_FLAGS } from '../../../core/runtime-env.js';

const ORT_SKIP = 'ONNXRUNTIME_NODE_INSTALL=skip';
const REQUIRED_LABELS = ['title', 'description', 'version', 'revision', 'created', 'licenses'].map((k) => `org.opencontainers.image.${k}`);

const jsonArray = (args: string): unknown => {
  try {
    return JSON.parse(args);
  } catch {
    return undefined;
  }
};

/** Every rule violation, as "LINE: message". Empty means the Dockerfile follows the rules. */
export function lintDockerfile(text: string): string[] {
  const problems: string[] = [];
  const report = (i: Instruction | undefined, msg: string) => problems.push(`${i?.line ?? 0}: ${msg}`);
  const ins = parseDockerfile(text);
  const all = stages(ins);
  if (all.length < 2) report(ins[0], 'expected a multi-stage build (build + runtime)');
  const stageNames = new Set(all.map((s) => s.name).filter(Boolean));

  for (const s of all) {
    // FROM --platform=linux/arm64 image:tag, pinned (no latest, no untagged image), or an earlier stage.
    const m = /^(?:--platform=(\S+)\s+)?(\S+)/.exec(s.from.args);
    const [platform, image] = [m?.[1], m?.[2] ?? ''];
    if (!stageNames.has(image)) {
      if (platform !== 'linux/arm64') report(s.from, `FROM ${image}: expected --platform=linux/arm64`);
      const tag = /^[^@]+:([^/@]+)$/.exec(image)?.[1];
      if (!image.includes('@sha256:') && (!tag || tag === 'latest')) report(s.from, `FROM ${image}: pin a tag other than latest (or a digest)`);
    }
    // onnxruntime-node's postinstall must be skipped for every npm ci / npm install: ENV earlier in the stage or inline.
    let ortEnv = false;
    for (const i of s.body) {
      if ((i.cmd === 'ENV' || i.cmd === 'ARG') && /\bONNXRUNTIME_NODE_INSTALL[= ]\s*"?skip"?/.test(i.args)) ortEnv = true;
      if (i.cmd !== 'RUN') continue;
      for (const part of i.args.split(/&&|;|\|\|/)) {
        if (/\bnpm\s+(ci|install|i)\b/.test(part) && !ortEnv && !part.includes(ORT_SKIP)) report(i, `npm without ${ORT_SKIP} set before it`);
        if (/\bapt-get\s+install\b/.test(part)) {
          if (!part.includes('--no-install-recommends')) report(i, 'apt-get install without --no-install-recommends');
          if (!/\s-y\b|--yes\b|--assume-yes\b/.test(part)) report(i, 'apt-get install without -y');
        }
      }
      if (/\bapt-get\s+install\b/.test(i.args)) {
        if (!/\bapt-get\s+update\b/.test(i.args)) report(i, 'apt-get install without apt-get update in the same RUN (stale cache layer)');
        if (!/rm -rf \/var\/lib\/apt\/lists\/\*/.test(i.args)) report(i, 'apt lists not cleaned (rm -rf /var/lib/apt/lists/*) in the same RUN');
      }
      if (/\b(curl|wget)\b[^|]*\|\s*(ba)?sh\b/.test(i.args)) report(i, 'piping a download into a shell');
      if (/\bsudo\b/.test(i.args)) report(i, 'sudo in a RUN');
    }
    for (const i of s.body) if (i.cmd === 'ADD' && /https?:\/\//.test(i.args)) report(i, 'ADD of a URL: use COPY of a checked file');
  }

  // The runtime stage.
  const last = all.at(-1);
  if (!last) return problems;
  const body = last.body;
  const find = (cmd: string) => body.filter((i) => i.cmd === cmd);
  const runText = find('RUN').map((i) => i.args).join(' && ');
  if (!/\bnpm ci\b[^&]*--omit=dev/.test(ins.filter((i) => i.cmd === 'RUN').map((i) => i.args).join(' && '))) report(last.from, 'no npm ci --omit=dev for the runtime dependencies');
  if (!/\bnpm run build\b/.test(ins.filter((i) => i.cmd === 'RUN').map((i) => i.args).join(' && '))) report(last.from, 'no npm run build stage');
  if (!/apt-get install[^&]*\bffmpeg\b/.test(runText)) report(last.from, 'ffmpeg is not installed in the runtime stage');
  if (/(^|\s)(g\+\+|gcc|build-essential|make)(\s|$)/.test(runText)) report(last.from, 'a compiler toolchain in the runtime stage');

  const users = find('USER');
  const user = users.at(-1);
  if (!user) report(last.from, 'no USER in the runtime stage: the agent would run as root');
  else if (/^(root|0)(:|$)/.test(user.args)) report(user, `USER ${user.args} is root`);
  const entry = find('ENTRYPOINT').at(-1);
  if (user && entry && user.line > entry.line) report(user, 'USER comes after ENTRYPOINT');

  const health = find('HEALTHCHECK').at(-1);
  if (!health) report(last.from, 'no HEALTHCHECK');
  else if (/^NONE\b/i.test(health.args) || !health.args.includes('/healthz')) report(health, 'HEALTHCHECK must query /healthz');
  else if (/\b(curl|wget)\b/.test(health.args)) report(health, 'HEALTHCHECK uses curl/wget, which the slim image lacks: use node');

  if (!find('VOLUME').some((i) => i.args.includes('/var/lib/roadside-agent'))) report(last.from, 'no VOLUME /var/lib/roadside-agent');
  const labels = find('LABEL').map((i) => i.args).join(' ');
  for (const l of REQUIRED_LABELS) if (!labels.includes(`${l}=`)) report(last.from, `missing LABEL ${l}`);

  const wantEntry = ['node', ...AGENT_NODE_FLAGS, 'dist/cli/main.js'];
  if (JSON.stringify(jsonArray(entry?.args ?? '')) !== JSON.stringify(wantEntry)) report(entry ?? last.from, `ENTRYPOINT must be ${JSON.stringify(wantEntry)} (exec form)`);
  const cmd = find('CMD').at(-1);
  if (JSON.stringify(jsonArray(cmd?.args ?? '')) !== JSON.stringify(['run', '--config', '/etc/roadside-agent/agent.yaml'])) report(cmd ?? last.from, 'CMD must be ["run","--config","/etc/roadside-agent/agent.yaml"] (exec form)');
  return problems;
}

/** .dockerignore patterns that exclude `path` (simple gitignore subset: prefixes, leading /, ** / and * globs). */
const DOCKERFILE = readFileSync('Dockerfile.arm64', 'utf8');
const IGNORE = parseDockerignore(readFileSync('.dockerignore', 'utf8'));

describe('Dockerfile.arm64', () => {
  it('follows the rules', () => {
    expect(lintDockerfile(DOCKERFILE)).toEqual([]);
  });

  it('has three stages and parses continuation lines', () => {
    const ins = parseDockerfile(DOCKERFILE);
    expect(stages(ins).map((s) => s.name)).toEqual(['build', 'prod-deps', 'runtime']);
    const health = ins.find((i) => i.cmd === 'HEALTHCHECK')!;
    expect(health.args).toContain('CMD ["node", "-e"');
  });

  it('copies only files that exist and that .dockerignore lets into the build context', () => {
    const copies = parseDockerfile(DOCKERFILE).filter((i) => i.cmd === 'COPY' && !i.args.startsWith('--from='));
    expect(copies.length).toBeGreaterThan(5);
    for (const c of copies) {
      const parts = c.args.split(' ').filter((p) => !p.startsWith('--'));
      for (const src of parts.slice(0, -1)) {
        expect(existsSync(src), `${c.line}: COPY ${src} does not exist`).toBe(true);
        expect(ignoredBy(IGNORE, src.replace(/\/$/, '')), `${c.line}: COPY ${src} is excluded by .dockerignore`).toBeUndefined();
      }
    }
    // tsconfig.build.json compiles these directories: they must all be copied into the build stage.
    const build = JSON.parse(readFileSync('tsconfig.build.json', 'utf8')) as { include: string[] };
    const copied = copies.flatMap((c) => c.args.split(' ').slice(0, -1));
    for (const dir of build.include) expect(copied, `tsconfig.build.json includes ${dir}`).toContain(dir);
  });

  it('.dockerignore keeps node_modules, dist, .git, tests and the model build out of the context', () => {
    for (const p of ['node_modules', 'agent/node_modules', 'dist', '.git', 'tests', 'models/build', 'models/build/package.json']) {
      expect(ignoredBy(IGNORE, p), p).toBeDefined();
    }
    for (const p of ['models/nanodet.onnx', 'cli/main.ts', 'package-lock.json']) expect(ignoredBy(IGNORE, p), p).toBeUndefined();
  });

  // Each mutation breaks one rule; the lint must say so.
  const mutations: [string, (t: string) => string, RegExp][] = [
    ['a latest tag', (t) => t.replace('node:20-bookworm-slim AS runtime', 'node:latest AS runtime'), /pin a tag other than latest/],
    ['an untagged image', (t) => t.replace('node:20-bookworm-slim AS build', 'node AS build'), /pin a tag/],
    ['no arm64 platform', (t) => t.replace('FROM --platform=linux/arm64 node:20-bookworm-slim AS prod-deps', 'FROM node:20-bookworm-slim AS prod-deps'), /--platform=linux\/arm64/],
    ['no USER', (t) => t.replace(/^USER roadside$/m, ''), /no USER/],
    ['USER root', (t) => t.replace(/^USER roadside$/m, 'USER root'), /is root/],
    ['no HEALTHCHECK', (t) => t.replace(/^HEALTHCHECK[^\n]*\\\n[^\n]*\n/m, ''), /no HEALTHCHECK/],
    ['HEALTHCHECK NONE', (t) => t.replace(/^HEALTHCHECK[^\n]*\\\n[^\n]*\n/m, 'HEALTHCHECK NONE\n'), /must query \/healthz/],
    ['npm ci before the ORT variable', (t) => t.replace(/(AS prod-deps\n)ENV ONNXRUNTIME_NODE_INSTALL=skip\n/, '$1'), /npm without ONNXRUNTIME_NODE_INSTALL=skip/],
    ['recommends', (t) => t.replace('install -y --no-install-recommends ffmpeg', 'install -y ffmpeg'), /--no-install-recommends/],
    ['apt lists kept', (t) => t.replace(/(ffmpeg \\\n)\s*&& rm -rf \/var\/lib\/apt\/lists\/\* \\\n/, '$1'), /apt lists not cleaned/],
    ['a missing label', (t) => t.replace(/\s*org\.opencontainers\.image\.revision="\$\{REVISION\}" \\/, ''), /missing LABEL org\.opencontainers\.image\.revision/],
    ['shell-form ENTRYPOINT', (t) => t.replace(/^ENTRYPOINT \[.*\]$/m, 'ENTRYPOINT node dist/cli/main.js'), /ENTRYPOINT must be/],
    ['ENTRYPOINT without the V8 flags', (t) => t.replace(/^ENTRYPOINT \[.*\]$/m, 'ENTRYPOINT ["node", "dist/cli/main.js"]'), /ENTRYPOINT must be/],
    ['another CMD', (t) => t.replace('CMD ["run", "--config", "/etc/roadside-agent/agent.yaml"]', 'CMD ["run"]'), /CMD must be/],
    ['no VOLUME', (t) => t.replace(/^VOLUME .*$/m, ''), /no VOLUME/],
    ['a compiler in the runtime', (t) => t.replace('--no-install-recommends ffmpeg', '--no-install-recommends ffmpeg g++'), /compiler toolchain in the runtime/],
    ['a single stage', (t) => t.slice(t.indexOf('FROM --platform=linux/arm64 node:20-bookworm-slim AS runtime')), /multi-stage/],
  ];
  it.each(mutations)('fails on %s', (_name, mutate, expected) => {
    const mutated = mutate(DOCKERFILE);
    expect(mutated, 'the mutation did not change the Dockerfile').not.toBe(DOCKERFILE);
    const problems = lintDockerfile(mutated);
    expect(problems.join('\n')).toMatch(expected);
  });
});
