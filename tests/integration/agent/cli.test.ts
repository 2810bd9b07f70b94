// The command line as a whole: one command tree (commander), so every command has --help (exit 0), the same
// error style and exit codes (64 usage, 78 config, 1 fatal), a bash completion script made from the tree, and a
// README section made from the same help. Then `run` loading secrets the way doctor does (issue 13, item 4).
import { execFileSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { renderCommandsMarkdown, withCommandsSection } from '../../../cli/docs.js';
import { allCommands, commandLabel } from '../../../cli/framework.js';
import type { CliIo } from '../../../cli/io.js';
import { buildProgram, cli } from '../../../cli/main.js';
import { envLine } from '../../../agent/field/provision.js';
import { packageVersion } from '../../../core/paths.js';
import { Mosquitto } from '../../../testkit/mosquitto.js';
import { connectMqtt, endMqtt } from '../../../testkit/mqtt.js';
import { spawnGuarded, terminate } from '../../../testkit/processes.js';

const BIN = 'dist/cli/main.js';
const CLIP = join(process.cwd(), 'tests/fixtures/clips/vtest-20s.mp4');
const INVALID = 'tests/fixtures/configs/invalid';

function capture(env: NodeJS.ProcessEnv = {}): CliIo & { out: () => string; err: () => string } {
  const out: string[] = [];
  const err: string[] = [];
  return { env, interactive: false, stdout: (t) => out.push(t), stderr: (t) => err.push(t), out: () => out.join(''), err: () => err.join('') };
}

/** Every command path of the tree, e.g. ['config', 'check'], from the tree itself. */
const PATHS: string[][] = allCommands(buildProgram({ io: capture(), deps: {}, code: 0 })).map((c) => commandLabel(c).split(' ').slice(1));

describe('one command tree', () => {
  it('has the commands the README and the service use', () => {
    expect(PATHS.map((p) => p.join(' '))).toEqual(
      expect.arrayContaining(['run', 'config', 'config check', 'config schema', 'provision', 'doctor', 'analyze', 'detect', 'center', 'version', 'completion']),
    );
  });

  it.each(PATHS.map((p) => [p.join(' '), p]))('%s --help: usage on stdout, exit 0', async (_name, path) => {
    const io = capture();
    expect(await cli([...path, '--help'], io)).toBe(0);
    expect(io.out()).toContain(`Usage: roadside-agent ${path.join(' ')}`);
    expect(io.out()).toContain('-h, --help');
    expect(io.err()).toBe('');
  });

  it.each(PATHS.map((p) => [p.join(' '), p]))('%s --no-such-flag: "roadside-agent <cmd>: message" + usage hint, exit 64', async (_name, path) => {
    const io = capture();
    expect(await cli([...path, '--no-such-flag'], io)).toBe(64);
    const label = ['roadside-agent', ...path].join(' ');
    expect(io.err()).toBe(`${label}: unknown option "--no-such-flag"\nRun "${label} --help" for usage.\n`);
    expect(io.out()).toBe('');
  });

  it('the top level: --help and help COMMAND exit 0, no command is a usage error, --version and version agree', async () => {
    const help = capture();
    expect(await cli(['--help'], help)).toBe(0);
    for (const p of PATHS.filter((x) => x.length === 1)) expect(help.out()).toContain(`  ${p[0]}`);
    const helpDoctor = capture();
    expect(await cli(['help', 'doctor'], helpDoctor)).toBe(0);
    expect(helpDoctor.out()).toContain('Usage: roadside-agent doctor');
    const none = capture();
    expect(await cli([], none)).toBe(64);
    expect(none.err()).toContain('Usage: roadside-agent');
    const v1 = capture();
    const v2 = capture();
    expect(await cli(['--version'], v1)).toBe(0);
    expect(await cli(['version'], v2)).toBe(0);
    expect(v1.out()).toBe(`${packageVersion()}\n`);
    expect(v2.out()).toBe(v1.out());
  });

  it('usage errors of every kind: exit 64 in the same style, with a suggestion when one is close', async () => {
    const cases: [string[], string][] = [
      [['doctr'], 'roadside-agent: unknown command "doctr" (did you mean doctor?)'],
      [['run', '--conf', 'x'], 'roadside-agent run: unknown option "--conf" (did you mean --config?)'],
      [['config', 'check'], 'roadside-agent config check: missing required argument "FILE"'],
      [['config', 'check', 'a', 'b'], 'roadside-agent config check: too many arguments for "check". Expected 1 argument but got 2.'],
      [['doctor', '--seconds', 'x'], 'roadside-agent doctor: --seconds x: expected a number of seconds from 1 to 60'],
      [['doctor', '--config'], 'roadside-agent doctor: option "-c, --config FILE" argument missing'],
      [['analyze', 'clip.mp4', '--camera', 'cam1'], 'roadside-agent analyze: --config FILE is required'],
      [['analyze', 'clip.mp4', '--confg', 'a.yaml'], 'roadside-agent analyze: unknown option "--confg" (did you mean --config?)'],
      [['analyze', 'clip.mp4', '-c', 'a.yaml', '--camera', 'c', '--fps', '0'], 'roadside-agent analyze: --fps 0: expected a number of frames per second in (0, 60]'],
      [['detect', 'tests/fixtures/photos/dog.jpg', '--decoder', 'yolo'], 'roadside-agent detect: --decoder yolo: Allowed choices are nanodet, yolov8, decoded.'],
      [['completion', 'fish'], 'roadside-agent completion: command-argument value "fish" is invalid for argument "SHELL". Allowed choices are bash.'],
      [['run', '--env-file', '/nonexistent/secrets.env'], 'roadside-agent run: --env-file /nonexistent/secrets.env: cannot read it (ENOENT)'],
    ];
    for (const [argv, message] of cases) {
      const io = capture();
      expect(await cli(argv, io), argv.join(' ')).toBe(64);
      const label = io.err().split(':')[0]!;
      expect(io.err()).toBe(`${message}\nRun "${label} --help" for usage.\n`);
    }
  });

  it('a config problem exits 78 in every command that reads a config', async () => {
    const file = join(INVALID, '08-duplicate-camera-id.yaml');
    for (const argv of [['config', 'check', file], ['run', '--config', file], ['analyze', '--config', file, '--camera', 'cam1', CLIP], ['doctor', '--config', file, '--json']]) {
      const io = capture();
      expect(await cli(argv, io), argv.join(' ')).toBe(78);
      expect(io.err() + io.out()).toContain('duplicate camera id');
    }
  });

  it.skipIf(existsSync('/etc/roadside-agent/agent.yaml'))('run without --config reads /etc/roadside-agent/agent.yaml', async () => {
    const io = capture();
    expect(await cli(['run'], io)).toBe(78);
    expect(io.err()).toContain('/etc/roadside-agent/agent.yaml');
    expect(io.err()).toContain('not starting: the config has problems');
  });

  it('a failure that is not the user\'s: "roadside-agent <cmd>: message", exit 1', async () => {
    const io = capture();
    expect(await cli(['analyze', '--config', 'config/examples/demo.yaml', '--camera', 'nope', CLIP], io)).toBe(1);
    expect(io.err()).toBe('roadside-agent analyze: no camera "nope" in the config (cameras: cam1)\n');
  });
});

describe('completion bash', () => {
  let script: string;
  beforeAll(async () => {
    const io = capture();
    expect(await cli(['completion', 'bash'], io)).toBe(0);
    script = io.out();
  });

  /** What bash offers for the words typed so far (the last one being completed), after sourcing the script. */
  function complete(...words: string[]): string[] {
    const dir = mkdtempSync(join(tmpdir(), 'completion-'));
    const file = join(dir, 'roadside-agent.bash');
    writeFileSync(file, script);
    const line = ['roadside-agent', ...words].map((w) => `'${w}'`).join(' ');
    const out = execFileSync('bash', ['--norc', '--noprofile', '-c', `source "$1"; COMP_WORDS=(${line}); COMP_CWORD=${words.length}; _roadside_agent; printf '%s\\n' "\${COMPREPLY[@]}"; complete -p roadside-agent`, '_', file], {
      env: {},
    }).toString();
    rmSync(dir, { recursive: true, force: true });
    return out.split('\n').filter(Boolean);
  }

  it('registers for roadside-agent and completes subcommands, nested ones and flags from the tree', () => {
    expect(complete('')).toContain('complete -o default -F _roadside_agent roadside-agent');
    expect(complete('do')).toEqual(['doctor', 'complete -o default -F _roadside_agent roadside-agent']);
    expect(complete('config', 'ch')[0]).toBe('check');
    expect(complete('doctor', '--js')[0]).toBe('--json');
    expect(complete('doctor', '--config', 'agent.yaml', '--se')[0]).toBe('--seconds');
    expect(complete('provision', '--no-p')[0]).toBe('--no-probe');
    // After a flag that takes a value: its choices, else nothing (bash completes file names).
    expect(complete('detect', 'a.jpg', '--decoder', 'y')[0]).toBe('yolov8');
    expect(complete('doctor', '--config', '')).toEqual(['complete -o default -F _roadside_agent roadside-agent']);
    // Every flag of every command is offered there.
    for (const path of PATHS) {
      const cmd = allCommands(buildProgram({ io: capture(), deps: {}, code: 0 })).find((c) => commandLabel(c) === ['roadside-agent', ...path].join(' '))!;
      const offered = complete(...path, '--');
      for (const o of cmd.options) expect(offered, `${path.join(' ')} ${o.long}`).toContain(o.long);
    }
  });
});

describe('README commands section', () => {
  it('is generated from the command tree and not stale (npx tsx cli/docs.ts --write)', () => {
    const readme = readFileSync('README.md', 'utf8');
    const section = renderCommandsMarkdown();
    expect(withCommandsSection(readme, section)).toBe(readme);
    for (const path of PATHS) expect(section).toContain(`#### \`roadside-agent ${path.join(' ')}\``);
    expect(section).toContain('--env-file FILE');
  });
});

describe('run: secrets loaded as doctor loads them; a refused login is one line per retry', () => {
  const USER = 'box-1';
  const PASSWORD = 'Run-S3cret "pw';
  let broker: Mosquitto;
  let base: string;
  const children: ChildProcess[] = [];

  beforeAll(async () => {
    if (!existsSync(BIN)) throw new Error(`${BIN} is missing: build first (npx tsc -p tsconfig.build.json)`);
    base = mkdtempSync(join(tmpdir(), 'cli-run-'));
    broker = await Mosquitto.start({ password: { username: USER, password: PASSWORD } });
  });
  afterAll(async () => {
    await Promise.all(children.map((c) => terminate(c, 'SIGKILL')));
    await broker?.stop();
    rmSync(base, { recursive: true, force: true });
  });

  /** A box directory: agent.yaml (the clip as camera) and secrets.env holding `password`. */
  function box(name: string, password: string): string {
    const dir = join(base, name);
    mkdirSync(dir);
    const config = join(dir, 'agent.yaml');
    writeFileSync(
      config,
      stringify({
        device: { id: name, site: 'site-1', data_dir: join(dir, 'data') },
        cameras: [{ id: 'cam1', url: CLIP, frame: { width: 768, height: 576 }, detection_fps: 1 }],
        mqtt: { url: broker.url, username: USER, backoff: { initial_ms: 200, max_ms: 1000, jitter: 0 } },
        status: { enabled: false },
        logging: { pretty: 'never' },
      }),
    );
    writeFileSync(join(dir, 'secrets.env'), `${envLine('ROADSIDE_MQTT_PASSWORD', password)}\n`, { mode: 0o600 });
    return config;
  }

  /** Starts the compiled agent; `lines` fills with its stdout lines (JSON logs). */
  function start(args: string[], env: NodeJS.ProcessEnv = {}): { child: ChildProcess; lines: string[] } {
    const clean = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('ROADSIDE_')));
    const child = spawnGuarded(process.execPath, [BIN, 'run', ...args], { env: { ...clean, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    children.push(child);
    const lines: string[] = [];
    let rest = '';
    child.stdout!.setEncoding('utf8').on('data', (s: string) => {
      const parts = (rest + s).split('\n');
      rest = parts.pop() ?? '';
      lines.push(...parts);
    });
    child.stderr!.resume();
    return { child, lines };
  }

  /** Resolves when box `name` publishes its online status (each box has its own topics). */
  async function online(name: string): Promise<void> {
    const sub = await connectMqtt(broker.url, { username: USER, password: PASSWORD });
    try {
      await new Promise<void>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error('the agent did not come online within 30 s')), 30_000);
        sub.on('message', (_t, payload) => {
          if ((JSON.parse(payload.toString()) as { state?: string }).state === 'online') {
            clearTimeout(timer);
            resolve();
          }
        });
        void sub.subscribeAsync(`roadside/site-1/${name}/status`, { qos: 1 });
      });
    } finally {
      await endMqtt(sub);
    }
  }

  it('reads secrets.env beside the config: the agent logs in and comes online', async () => {
    const config = box('right', PASSWORD);
    const { child, lines } = start(['--config', config]);
    await online('right');
    expect(lines.join('\n')).toContain(`"env_file":"${join(base, 'right', 'secrets.env')}"`);
    await terminate(child, 'SIGTERM', 20_000);
    expect(child.exitCode).toBe(0);
  }, 60_000);

  it('--env-file names the file; a variable in the environment wins over it', async () => {
    const config = box('explicit', 'wrong-in-secrets-env');
    const env = join(base, 'explicit', 'other.env');
    writeFileSync(env, `${envLine('ROADSIDE_MQTT_PASSWORD', 'wrong-in-other-env')}\n`, { mode: 0o600 });
    const { child } = start(['--config', config, '--env-file', env], { ROADSIDE_MQTT_PASSWORD: PASSWORD });
    await online('explicit');
    await terminate(child, 'SIGTERM', 20_000);
    expect(child.exitCode).toBe(0);
  }, 60_000);

  it('a refused login: one warning line per retry saying why, no stack trace', async () => {
    const config = box('refused', 'not-the-password');
    const { child, lines } = start(['--config', config]);
    const refusals = (): string[] => lines.filter((l) => /connection attempt failed: broker mqtt:\/\/127\.0\.0\.1:\d+ refused/.test(l));
    const deadline = Date.now() + 30_000;
    while (refusals().length < 3 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 200));
    await terminate(child, 'SIGTERM', 20_000);
    expect(refusals().length).toBeGreaterThanOrEqual(3);
    for (const l of refusals()) {
      const entry = JSON.parse(l) as { level: number; msg: string; last_error: string; reason_code?: number };
      expect(entry.level).toBe(40);
      expect(['MQTT_BAD_CREDENTIALS', 'MQTT_NOT_AUTHORIZED']).toContain(entry.last_error);
      expect(entry.msg).toMatch(/; retrying in \d+\.\d s$/);
    }
    // Nothing else about the refusal: no error line with a stack, on any retry.
    expect(lines.filter((l) => l.includes('"stack"'))).toEqual([]);
    expect(lines.filter((l) => /refused (this client|the user name)/.test(l) && !refusals().includes(l))).toEqual([]);
    expect(lines.join('\n')).not.toContain('not-the-password');
  }, 60_000);
});
