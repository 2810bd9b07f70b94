// Own only what is ours: every path the agent writes must lead into device.data_dir (after symlinks) unless
// the config opts out for it, and must not land on a device, a pipe, a directory or a symlink.
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { ConfigError, parseConfig, type ConfigProblem } from '../../../config/loader.js';

const root = mkdtempSync(join(tmpdir(), 'cfg-paths-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));
const CLIP = join(process.cwd(), 'tests/fixtures/clips/vtest-20s.mp4');
let n = 0;

/** A fresh data dir and a config text for it; `extra` is appended YAML. */
function box(extra = '', dataDir?: string) {
  const data = dataDir ?? join(root, `box${++n}`, 'data');
  if (!dataDir) mkdirSync(data, { recursive: true });
  const text = `device: { id: box-1, site: site-1, data_dir: ${data} }
cameras:
  - { id: cam1, url: ${CLIP}, frame: { width: 768, height: 576 } }
mqtt: { url: "mqtt://127.0.0.1:1883" }
${extra}`;
  return { data, text, file: join(root, 'agent.yaml') };
}

function problems(b: { text: string; file: string }): ConfigProblem[] {
  try {
    parseConfig(b.text, b.file, {});
    return [];
  } catch (err) {
    if (err instanceof ConfigError) return err.problems;
    throw err;
  }
}

describe('paths the agent writes stay inside device.data_dir', () => {
  it('the defaults, relative paths and absolute paths inside the data dir pass', () => {
    expect(problems(box())).toEqual([]);
    expect(problems(box('outbox: { path: db/outbox.db }\nanalytics: { evidence: { dir: ev } }\n'))).toEqual([]);
    const b = box();
    expect(problems({ ...b, text: `${b.text}outbox: { path: ${join(b.data, 'x.db')} }\n` })).toEqual([]);
  });

  it('"../../../../etc/passwd" is refused at its line', () => {
    const p = problems(box('outbox:\n  path: ../../../../etc/passwd\n'));
    expect(p).toEqual([expect.objectContaining({ line: 6, path: 'outbox.path', message: expect.stringMatching(/^resolves to \/etc\/passwd, outside device.data_dir/) })]);
  });

  it('an absolute path elsewhere needs the explicit opt-in', () => {
    const elsewhere = join(root, 'elsewhere', 'outbox.db');
    expect(problems(box(`outbox: { path: ${elsewhere} }\n`))[0]!.message).toContain('or set outbox.allow_outside_data_dir: true');
    expect(problems(box(`outbox: { path: ${elsewhere}, allow_outside_data_dir: true }\n`))).toEqual([]);
    const ev = join(root, 'ev-elsewhere');
    expect(problems(box(`analytics: { evidence: { dir: ${ev} } }\n`))[0]).toMatchObject({ path: 'analytics.evidence.dir' });
    expect(problems(box(`analytics: { evidence: { dir: ${ev}, allow_outside_data_dir: true } }\n`))).toEqual([]);
  });

  it('a symlink out of the data dir is followed and refused; one inside is refused as a symlink', () => {
    const b = box();
    symlinkSync('/etc/hostname', join(b.data, 'outbox.db'));
    symlinkSync('/etc', join(b.data, 'evidence'));
    const p = problems(b);
    expect(p.find((q) => q.path === 'outbox.path')!.message).toMatch(/^resolves to \/etc\/hostname, outside/);
    expect(p.find((q) => q.path === 'analytics.evidence.dir')!.message).toMatch(/^resolves to \/etc, outside/);

    const c = box();
    writeFileSync(join(c.data, 'real.db'), '');
    symlinkSync(join(c.data, 'real.db'), join(c.data, 'outbox.db'));
    expect(problems(c)).toEqual([expect.objectContaining({ path: 'outbox.path', message: expect.stringContaining('exists and is a symbolic link') })]);
  });

  it('an outbox that is a pipe, a directory, or has a symlinked -wal is refused', () => {
    const fifo = box();
    execFileSync('mkfifo', [join(fifo.data, 'outbox.db')]);
    expect(problems(fifo)[0]!.message).toContain('exists and is a named pipe');
    const dir = box();
    mkdirSync(join(dir.data, 'outbox.db'));
    expect(problems(dir)[0]!.message).toContain('exists and is a directory');
    const wal = box();
    symlinkSync('/etc/hostname', join(wal.data, 'outbox.db-wal'));
    expect(problems(wal)[0]!.message).toMatch(/outbox\.db-wal exists and is a symbolic link/);
  });

  it('the evidence dir must be a directory; it may be a symlink to one inside the data dir', () => {
    const file = box();
    writeFileSync(join(file.data, 'evidence'), '');
    expect(problems(file)[0]!.message).toContain('exists and is a regular file, not a directory');
    const link = box();
    mkdirSync(join(link.data, 'jpegs'));
    symlinkSync(join(link.data, 'jpegs'), join(link.data, 'evidence'));
    expect(problems(link)).toEqual([]);
  });

  it('the restart state must not be a symlink, and a dangling link is refused', () => {
    const b = box();
    symlinkSync('/etc/shadow', join(b.data, 'restart-state.json'));
    expect(problems(b)).toEqual([expect.objectContaining({ path: 'device.data_dir', message: expect.stringContaining('restart-state.json in the data dir') })]);
    const d = box();
    symlinkSync(join(root, 'nowhere'), join(d.data, 'outbox.db'));
    expect(problems(d)[0]!.message).toContain('is a symbolic link to nothing');
  });

  it('the data dir itself: a symlink to a directory is fine; a file or /proc is not', () => {
    const real = join(root, 'real-data');
    mkdirSync(real);
    const link = join(root, 'data-link');
    symlinkSync(real, link);
    expect(problems(box('', link))).toEqual([]);
    const file = join(root, 'data-file');
    writeFileSync(file, '');
    expect(problems(box('', file))[0]).toMatchObject({ path: 'device.data_dir', message: expect.stringContaining('is a regular file, not a directory') });
    expect(problems(box('', '/proc/roadside'))[0]!.message).toContain('on /proc, a kernel pseudo-filesystem');
    expect(problems(box('outbox: { path: /dev/shm/o.db, allow_outside_data_dir: true }\n'))[0]!.message).toContain('on /dev');
  });
});
