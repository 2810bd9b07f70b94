import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { RestartLog } from '../../../agent/health/restarts.js';
import { SdNotifier, Watchdog } from '../../../agent/health/watchdog.js';
import { silentLogger } from '../../../core/log.js';
import { REPO_ROOT } from '../../../testkit/clips.js';
import { spawnGuarded, terminate, waitFor } from '../../../testkit/processes.js';

const tmp = mkdtempSync(join(tmpdir(), 'watchdog-test-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

// A real unix datagram socket server (what systemd listens on), in Python since Node's dgram has no AF_UNIX.
// Prints each datagram as one JSON line; closes any file descriptor passed along (systemd-notify's BARRIER=1).
const SERVER_PY = `
import array, json, os, socket, sys
addr = sys.argv[1]
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind('\\0' + addr[1:] if addr.startswith('@') else addr)
print(json.dumps('LISTENING'), flush=True)
while True:
    msg, anc, flags, _ = s.recvmsg(65536, socket.CMSG_SPACE(16 * 4))
    for level, typ, data in anc:
        if level == socket.SOL_SOCKET and typ == socket.SCM_RIGHTS:
            fds = array.array('i'); fds.frombytes(data[: len(data) - len(data) % 4])
            for fd in fds: os.close(fd)
    print(json.dumps(msg.decode()), flush=True)
`;

class NotifySocket {
  readonly messages: string[] = [];
  private constructor(
    readonly address: string,
    private readonly child: ChildProcess,
  ) {}

  static async start(address: string): Promise<NotifySocket> {
    const child = spawnGuarded('/usr/bin/python3', ['-c', SERVER_PY, address], { stdio: ['ignore', 'pipe', 'inherit'] });
    const srv = new NotifySocket(address, child);
    let listening = false;
    createInterface({ input: child.stdout! }).on('line', (line) => {
      const m = JSON.parse(line) as string;
      if (m === 'LISTENING') listening = true;
      else srv.messages.push(m);
    });
    await waitFor(() => listening, { message: 'notify socket listening' });
    return srv;
  }

  /** Every VAR=VALUE line received, BARRIER=1 left out. */
  lines(): string[] {
    return this.messages.flatMap((m) => m.split('\n')).filter((l) => l !== '' && l !== 'BARRIER=1');
  }

  count(line: string): number {
    return this.lines().filter((l) => l === line).length;
  }

  stop(): Promise<void> {
    return terminate(this.child);
  }
}

let servers: NotifySocket[] = [];
afterEach(async () => {
  await Promise.all(servers.map((s) => s.stop()));
  servers = [];
});

describe('systemd notifications (real unix datagram socket)', () => {
  it('sends READY=1, then WATCHDOG=1 every WATCHDOG_USEC/2 while healthy, and STOPPING=1 on stop', async () => {
    const srv = await NotifySocket.start(join(tmp, 'notify.sock'));
    servers.push(srv);
    const env = { ...process.env, NOTIFY_SOCKET: srv.address, WATCHDOG_USEC: '200000', WATCHDOG_PID: String(process.pid) };
    const notifier = new SdNotifier({ env });
    expect(notifier.watchdogIntervalMs()).toBe(100);
    const wd = new Watchdog({ isHealthy: () => true, log: silentLogger(), notifier });
    await wd.start(new AbortController().signal);
    expect(srv.lines()).toContain('READY=1');
    expect(srv.lines()).toContain(`MAINPID=${process.pid}`);
    await waitFor(() => srv.count('WATCHDOG=1') >= 4, { timeout_ms: 5000, message: 'four keep-alives' });
    await wd.stop();
    await waitFor(() => srv.lines().includes('STOPPING=1'), { message: 'STOPPING=1' });
    expect(srv.lines().indexOf('READY=1')).toBeLessThan(srv.lines().indexOf('WATCHDOG=1'));
    expect(wd.state()).toMatchObject({ enabled: true, interval_ms: 100, withheld_since: null });
    expect(wd.state().keepalives_sent).toBeGreaterThanOrEqual(4);
  });

  it('withholds WATCHDOG=1 while the main loop is unhealthy, notes why, and resumes when it recovers', async () => {
    const srv = await NotifySocket.start(`@roadside-test-${process.pid}`); // abstract socket, as systemd may use
    servers.push(srv);
    const env = { ...process.env, NOTIFY_SOCKET: srv.address, WATCHDOG_USEC: '200000' };
    let healthy = false;
    const notes: (string | undefined)[] = [];
    const wd = new Watchdog({
      isHealthy: () => ({ healthy, reasons: healthy ? [] : ['detector stuck'] }),
      log: silentLogger(),
      notifier: new SdNotifier({ env }),
      restarts: { notePending: (reason, detail) => notes.push(reason && `${reason}: ${detail}`) },
    });
    await wd.start(new AbortController().signal);
    await waitFor(() => srv.lines().includes('STATUS=unhealthy: detector stuck'), { message: 'unhealthy status' });
    await new Promise((r) => setTimeout(r, 600));
    expect(srv.count('WATCHDOG=1')).toBe(0);
    expect(wd.state().withheld_since).not.toBeNull();
    expect(notes).toEqual(['watchdog: detector stuck']);
    healthy = true;
    await waitFor(() => srv.count('WATCHDOG=1') >= 2, { message: 'keep-alives resumed' });
    expect(notes).toEqual(['watchdog: detector stuck', undefined]);
    await wd.stop();
  });

  it('does nothing outside systemd, and ignores a watchdog meant for another pid', async () => {
    const off = new SdNotifier({ env: {} });
    expect(off.enabled).toBe(false);
    expect(await off.notify(['READY=1'])).toBe(false);
    const wd = new Watchdog({ isHealthy: () => true, log: silentLogger(), notifier: off });
    await wd.start(new AbortController().signal);
    await wd.stop();
    expect(wd.state()).toMatchObject({ enabled: false, interval_ms: null, keepalives_sent: 0 });
    expect(new SdNotifier({ env: { NOTIFY_SOCKET: '/run/x', WATCHDOG_USEC: '30000000', WATCHDOG_PID: '1' } }).watchdogIntervalMs()).toBeNull();
    expect(await new SdNotifier({ env: { NOTIFY_SOCKET: join(tmp, 'nobody-listens.sock') } }).notify(['READY=1'])).toBe(false);
  });
});

describe('restart bookkeeping', () => {
  const dirFor = (name: string) => mkdtempSync(join(tmp, `${name}-`));
  const log = silentLogger();
  const signal = new AbortController().signal;

  it('first start, clean stop, recorded fatal reason, crash, power loss, watchdog, reboot', async () => {
    const dataDir = dirFor('cycle');
    let boot = 'boot-a';
    const make = () => new RestartLog({ dataDir, log, bootId: () => boot });

    let r = make();
    await r.start(signal);
    expect(r.lastRestart()).toMatchObject({ reason: 'first_start', count: 0, unclean: 0 });
    await r.stop();

    r = make();
    await r.start(signal);
    expect(r.lastRestart()).toMatchObject({ reason: 'stopped', count: 1, unclean: 0 });
    expect(r.lastRestart().previous_exit_at).toBeDefined();
    r.recordExit('fatal: detector_failed');
    r.recordExit('SIGTERM'); // the first reason wins
    await r.stop();

    r = make();
    await r.start(signal);
    expect(r.lastRestart()).toMatchObject({ reason: 'fatal: detector_failed', count: 2 });
    // no stop: the process "crashes"
    r = make();
    await r.start(signal);
    expect(r.lastRestart()).toMatchObject({ reason: 'crash', count: 3, unclean: 1 });
    // no stop, and the box boots again: power loss
    boot = 'boot-b';
    r = make();
    await r.start(signal);
    expect(r.lastRestart()).toMatchObject({ reason: 'power_loss', count: 4, unclean: 2 });
    // keep-alives withheld, then killed by systemd
    r.notePending('watchdog', 'detector stuck');
    r = make();
    await r.start(signal);
    expect(r.lastRestart()).toMatchObject({ reason: 'watchdog', detail: 'detector stuck', count: 5, unclean: 3 });
    r.notePending('watchdog', 'event loop lag');
    r.notePending(undefined); // recovered
    r.recordExit('SIGTERM');
    await r.stop();
    boot = 'boot-c';
    r = make();
    await r.start(signal);
    expect(r.lastRestart()).toMatchObject({ reason: 'reboot', detail: 'SIGTERM', count: 6, unclean: 3 });
    await r.stop();
    expect(readdirSync(dataDir)).toEqual(['restart-state.json']); // atomic writes leave no temp files
  });

  it('an unreadable state file starts the count again', async () => {
    const dataDir = dirFor('corrupt');
    writeFileSync(join(dataDir, 'restart-state.json'), '{"version":1, "starts": 4, trunc');
    const r = new RestartLog({ dataDir, log, bootId: () => 'b' });
    await r.start(signal);
    expect(r.lastRestart()).toMatchObject({ reason: 'unknown', count: 0 });
    await r.stop();
    expect(JSON.parse(readFileSync(join(dataDir, 'restart-state.json'), 'utf8'))).toMatchObject({ version: 1, starts: 1, run: { exit: { reason: 'stopped', clean: true } } });
  });

  it('infers a crash after a real process is killed with SIGKILL, and keeps a reason recorded before a kill', async () => {
    const dataDir = dirFor('kill');
    const script = `
      import { RestartLog } from './agent/health/restarts.ts';
      import { silentLogger } from './core/log.ts';
      const r = new RestartLog({ dataDir: ${JSON.stringify(dataDir)}, log: silentLogger() });
      await r.start(new AbortController().signal);
      if (process.argv.includes('fatal')) r.recordExit('fatal: outbox corrupt');
      console.log(JSON.stringify(r.lastRestart()));
      setInterval(() => {}, 1000);
    `;
    const runOnce = async (arg: string): Promise<Record<string, unknown>> => {
      const child = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script, arg], { cwd: REPO_ROOT, stdio: ['ignore', 'pipe', 'inherit'] });
      const line = await new Promise<string>((resolve, reject) => {
        createInterface({ input: child.stdout }).once('line', resolve);
        child.once('exit', (code) => reject(new Error(`child exited ${code}`)));
      });
      child.kill('SIGKILL');
      await new Promise((r) => child.once('exit', r));
      return JSON.parse(line) as Record<string, unknown>;
    };
    expect(await runOnce('crash')).toMatchObject({ reason: 'first_start', count: 0 });
    expect(await runOnce('fatal')).toMatchObject({ reason: 'crash', count: 1, unclean: 1 }); // same boot id
    expect(await runOnce('next')).toMatchObject({ reason: 'fatal: outbox corrupt', count: 2, unclean: 1 });
    expect(existsSync(join(dataDir, 'restart-state.json'))).toBe(true);
  });
});
