// The folder tree is the architecture: these checks keep it that way (issue: "one house a newcomer can read").
import { execFile } from 'node:child_process';
import { mkdirSync, readFileSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { makeTempDir } from '../../../testkit/tmp.js';

const run = promisify(execFile);
const ROOT = process.cwd();
const DEPCRUISE = join(ROOT, 'node_modules', '.bin', 'depcruise');
const CONFIG = join(ROOT, '.dependency-cruiser.cjs');
/** Folders of code that runs (or builds what runs); tests and benchmarks are measured apart. */
const SOURCE = ['core', 'contract', 'config', 'buffer', 'ingest', 'inference', 'agent', 'center', 'cli', 'tools'];
const MAX_LINES = 450;
/** A file may be longer only when its first lines say why. */
const LONG_REASON = /Longer than 450 lines because/;

interface Violation {
  rule: { name: string };
  from: string;
  to: string;
}

async function cruise(cwd: string, folders: string[]): Promise<Violation[]> {
  const r = await run(DEPCRUISE, ['--config', CONFIG, '--output-type', 'json', ...folders], { cwd, maxBuffer: 64 * 1024 * 1024 }).catch((e: { stdout: string }) => e);
  return (JSON.parse(r.stdout) as { summary: { violations: Violation[] } }).summary.violations;
}

function tsFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const p = join(dir, e.name);
    if (e.isDirectory()) return e.name === 'node_modules' || e.name === 'public' ? [] : tsFiles(p);
    return /\.(ts|mts)$/.test(e.name) ? [p] : [];
  });
}

const lineCount = (f: string) => readFileSync(f, 'utf8').split('\n').length;

describe('layout', () => {
  it('the real tree has no import that climbs a floor, no cycle, and nothing imports tests/', async () => {
    const v = await cruise(ROOT, [...SOURCE, 'testkit', 'bench', 'tests']);
    expect(v.map((x) => `${x.rule.name}: ${x.from} → ${x.to}`)).toEqual([]);
  }, 60_000);

  it('the rules fail on a deliberately wrong import and on a cycle', async () => {
    const dir = makeTempDir('layers');
    for (const d of ['core', 'agent', 'center', 'inference', 'tests']) mkdirSync(join(dir, d), { recursive: true });
    writeFileSync(join(dir, 'tsconfig.json'), JSON.stringify({ compilerOptions: { module: 'NodeNext', moduleResolution: 'NodeNext', allowJs: true } }));
    writeFileSync(join(dir, 'agent', 'app.ts'), 'export const app = 1;\n');
    writeFileSync(join(dir, 'core', 'log.ts'), "import { app } from '../agent/app.js';\nexport const log = app;\n");
    writeFileSync(join(dir, 'inference', 'a.ts'), "import { b } from './b.js';\nexport const a = () => b;\n");
    writeFileSync(join(dir, 'inference', 'b.ts'), "import { a } from './a.js';\nexport const b = () => a;\n");
    writeFileSync(join(dir, 'tests', 'helper.ts'), 'export const h = 1;\n');
    writeFileSync(join(dir, 'center', 'view.ts'), "import { h } from '../tests/helper.js';\nimport { app } from '../agent/app.js';\nexport const v = h + app;\n");
    const v = await cruise(dir, ['core', 'agent', 'center', 'inference', 'tests']);
    const names = v.map((x) => `${x.rule.name}: ${x.from} → ${x.to}`).sort();
    expect(names).toEqual(
      expect.arrayContaining([
        'core-is-the-ground-floor: core/log.ts → agent/app.ts',
        'center-not-edge: center/view.ts → agent/app.ts',
        'nothing-imports-tests: center/view.ts → tests/helper.ts',
        expect.stringMatching(/^no-cycles: inference\/[ab]\.ts → inference\/[ab]\.ts$/),
      ]),
    );
  }, 60_000);

  it('the largest source folder holds well under a third of the code', () => {
    const lines = Object.fromEntries(SOURCE.map((d) => [d, tsFiles(join(ROOT, d)).reduce((n, f) => n + lineCount(f), 0)]));
    const total = Object.values(lines).reduce((a, b) => a + b, 0);
    const [largest, n] = Object.entries(lines).sort((a, b) => b[1] - a[1])[0]!;
    expect(n / total, `${largest}: ${n} of ${total} lines (${JSON.stringify(lines)})`).toBeLessThan(0.3);
  });

  it(`no source file is over ${MAX_LINES} lines without a stated reason`, () => {
    const long = [...SOURCE, 'testkit', 'bench']
      .flatMap((d) => tsFiles(join(ROOT, d)))
      .filter((f) => statSync(f).isFile() && lineCount(f) > MAX_LINES)
      .filter((f) => !LONG_REASON.test(readFileSync(f, 'utf8').split('\n').slice(0, 12).join('\n')))
      .map((f) => `${relative(ROOT, f)}: ${lineCount(f)} lines`);
    expect(long).toEqual([]);
  });
});
