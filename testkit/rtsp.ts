// A looping RTSP camera per test: testkit/rtsp-server.py (GStreamer RTSP server, run with
// /usr/bin/python3 for python3-gi) owning an ffmpeg feeder. TCP and UDP transports, shared media.
import { execFile, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import readline from 'node:readline';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { testClip } from './clips.js';
import { makeTempDir } from './tmp.js';
import { freePort, freeUdpPort, waitForPortFree } from './ports.js';
import { hasExited, isAlive, spawnGuarded, terminate, waitFor } from './processes.js';

const execFileP = promisify(execFile);

export const RTSP_SERVER_SCRIPT = path.join(path.dirname(fileURLToPath(import.meta.url)), 'rtsp-server.py');
/** Debian's python: the pyenv python3 first on PATH has no `gi`. */
export const SYSTEM_PYTHON = '/usr/bin/python3';

export interface RtspAuth {
  /** Default 'digest'. */
  method?: 'digest' | 'basic';
  username: string;
  password: string;
}

export interface RtspServerOptions {
  /** H.264 clip to loop (default: testClip()). */
  clip?: string;
  /** Mount path, default '/cam1'. */
  mount?: string;
  auth?: RtspAuth;
  /**
   * Socket buffer of the server's udpsrc (default 16 MiB, forced as root). After unfreeze() the feeder
   * (`ffmpeg -re`) sends the paused seconds in a burst; a buffer too small loses packets, tsdemux then
   * ends the media and every client gets an RTCP BYE.
   */
  udpBuffer_bytes?: number;
  /** After READY, ffprobe the stream (TCP) before resolving, so a broken clip fails here (default true, ≈1 s). */
  waitForStream?: boolean;
  startTimeout_ms?: number;
}

export interface ProbeResult {
  ok: boolean;
  stdout: string;
  stderr: string;
}

let counter = 0;

export class RtspServer {
  readonly port: number;
  readonly udpPort: number;
  readonly mount: string;
  readonly clip: string;
  readonly auth: RtspAuth | undefined;
  /** Unique marker in the python server's and the feeder's command lines (find them in /proc). */
  readonly tag: string;
  readonly dir: string;
  readonly logFile: string;
  /** pid of the ffmpeg feeder of the current run. */
  feederPid: number | undefined;
  /** Last start: spawn → stream probed (→ READY when waitForStream is false), in ms. */
  startup_ms = 0;
  /** Last start: spawn → READY (server listening), in ms. */
  ready_ms = 0;

  private child: ChildProcess | undefined;
  private frozen = false;

  private constructor(
    private readonly opts: RtspServerOptions,
    init: { port: number; udpPort: number; clip: string; dir: string },
  ) {
    this.port = init.port;
    this.udpPort = init.udpPort;
    this.clip = init.clip;
    this.dir = init.dir;
    const mount = opts.mount ?? '/cam1';
    this.mount = mount.startsWith('/') ? mount : `/${mount}`;
    this.auth = opts.auth;
    this.tag = `rtsp-test-${process.pid}-${++counter}`;
    this.logFile = path.join(init.dir, 'rtsp-server.log');
  }

  static async start(opts: RtspServerOptions = {}): Promise<RtspServer> {
    const clip = path.resolve(opts.clip ?? (await testClip()));
    if (!fs.existsSync(clip)) throw new Error(`RtspServer: clip not found: ${clip}`);
    const dir = makeTempDir('rtsp');
    let lastError: unknown;
    for (let attempt = 0; attempt < 5; attempt++) {
      const server = new RtspServer(opts, { port: await freePort(), udpPort: await freeUdpPort(), clip, dir });
      try {
        await server.launch();
        return server;
      } catch (err) {
        lastError = err;
        if (!(err instanceof RtspStartError && err.addressInUse)) throw err;
      }
    }
    throw lastError instanceof Error ? lastError : new Error(String(lastError));
  }

  /** rtsp://127.0.0.1:PORT/cam1 (no credentials). */
  get url(): string {
    return `rtsp://127.0.0.1:${this.port}${this.mount}`;
  }

  /** The URL with credentials (default: the configured ones; pass others to test refusal). */
  urlWithCredentials(username = this.auth?.username ?? '', password = this.auth?.password ?? ''): string {
    return `rtsp://${encodeURIComponent(username)}:${encodeURIComponent(password)}@127.0.0.1:${this.port}${this.mount}`;
  }

  /** The URL a client should use to get the stream: with credentials when auth is on. */
  get clientUrl(): string {
    return this.auth ? this.urlWithCredentials() : this.url;
  }

  /** pid of the python server process (undefined when stopped). */
  get pid(): number | undefined {
    return this.child && !hasExited(this.child) ? this.child.pid : undefined;
  }

  get running(): boolean {
    return this.child !== undefined && !hasExited(this.child);
  }

  get isFrozen(): boolean {
    return this.frozen;
  }

  /** Server + feeder stderr (all restarts appended). */
  logText(): string {
    try {
      return fs.readFileSync(this.logFile, 'utf8');
    } catch {
      return '';
    }
  }

  /** Stall the stream without closing the server: SIGSTOP the feeder. Clients stay connected and get no frames. */
  freeze(): void {
    if (this.feederPid === undefined || !this.running) throw new Error('RtspServer.freeze: not running');
    process.kill(this.feederPid, 'SIGSTOP');
    this.frozen = true;
  }

  /**
   * SIGCONT the feeder. Note: `ffmpeg -re` then catches up on the paused time: clients receive the
   * paused seconds of the clip in a burst (as fast as they read), then real time again.
   */
  unfreeze(): void {
    if (this.feederPid !== undefined && this.running) process.kill(this.feederPid, 'SIGCONT');
    this.frozen = false;
  }

  /** SIGTERM the server (it kills its feeder), wait for both to be gone. Idempotent. */
  async stop(): Promise<void> {
    await this.shutdown('SIGTERM');
  }

  /** SIGKILL the server: the feeder dies through PR_SET_PDEATHSIG. Waits for both to be gone. */
  async kill(): Promise<void> {
    await this.shutdown('SIGKILL');
  }

  /** Stop (if running) and start again on the same RTSP port, same clip/mount/auth. */
  async restart(): Promise<void> {
    await this.stop();
    await this.start();
  }

  /** Start again after stop()/kill(), on the same port. */
  async start(): Promise<void> {
    if (this.running) return;
    let lastError: unknown;
    for (let attempt = 0; attempt < 5; attempt++) {
      await waitForPortFree(this.port);
      try {
        await this.launch();
        return;
      } catch (err) {
        lastError = err;
        if (!(err instanceof RtspStartError && err.addressInUse)) throw err;
      }
    }
    throw lastError instanceof Error ? lastError : new Error(String(lastError));
  }

  /** ffprobe the stream over TCP with the configured credentials (or the given URL). Never throws. */
  async probe(opts: { url?: string; transport?: 'tcp' | 'udp'; timeout_ms?: number } = {}): Promise<ProbeResult> {
    const { url = this.clientUrl, transport = 'tcp', timeout_ms = 10_000 } = opts;
    return ffprobeRtsp(url, { transport, timeout_ms });
  }

  private async shutdown(signal: NodeJS.Signals): Promise<void> {
    const child = this.child;
    if (!child) return;
    const feeder = this.feederPid;
    await terminate(child, signal);
    this.frozen = false;
    if (feeder !== undefined) {
      await waitFor(() => !isAlive(feeder), { timeout_ms: 5_000, message: `feeder ${feeder} of ${this.tag} to exit` });
    }
  }

  private async launch(): Promise<void> {
    const t0 = performance.now();
    const args = [
      RTSP_SERVER_SCRIPT,
      '--clip', this.clip,
      '--port', String(this.port),
      '--udp-port', String(this.udpPort),
      '--mount', this.mount,
      '--tag', this.tag,
      '--udp-buffer', String(this.opts.udpBuffer_bytes ?? 16 * 1024 * 1024),
    ];
    const env: NodeJS.ProcessEnv = { ...process.env };
    if (this.auth) {
      args.push('--auth', this.auth.method ?? 'digest', '--user', this.auth.username);
      env.RTSP_TEST_PASSWORD = this.auth.password; // not on the command line
    }
    const logOffset = this.logText().length;
    const logFd = fs.openSync(this.logFile, 'a');
    let child: ChildProcess;
    try {
      child = spawnGuarded(SYSTEM_PYTHON, args, { stdio: ['ignore', 'pipe', logFd], env });
    } finally {
      fs.closeSync(logFd);
    }
    this.child = child;
    this.feederPid = undefined;
    this.frozen = false;

    const timeout_ms = this.opts.startTimeout_ms ?? 15_000;
    try {
      await new Promise<void>((resolve, reject) => {
        const rl = readline.createInterface({ input: child.stdout! });
        const timer = setTimeout(() => finish(new Error(`no READY within ${timeout_ms} ms`)), timeout_ms);
        const finish = (err?: Error): void => {
          clearTimeout(timer);
          child.off('exit', onExit);
          if (err) reject(err);
          else resolve();
        };
        const onExit = (code: number | null, sig: NodeJS.Signals | null): void =>
          finish(new Error(`rtsp-server.py exited (code ${code}, signal ${sig}) before READY`));
        child.once('exit', onExit);
        child.once('error', (err) => finish(err));
        rl.on('line', (line) => {
          const m = /^(FEEDER|READY) (\d+)$/.exec(line.trim());
          if (m?.[1] === 'FEEDER') this.feederPid = Number(m[2]);
          else if (m?.[1] === 'READY') finish();
        });
      });
      this.ready_ms = performance.now() - t0;
      if (this.opts.waitForStream ?? true) {
        const res = await this.probe({ timeout_ms });
        if (!res.ok) throw new Error(`stream not playable: ffprobe said: ${res.stderr.trim() || res.stdout.trim()}`);
      }
    } catch (err) {
      await terminate(child, 'SIGKILL');
      const log = this.logText();
      const addressInUse = /cannot listen|Address already in use/i.test(log.slice(logOffset));
      const msg = err instanceof Error ? err.message : String(err);
      throw new RtspStartError(`RtspServer ${this.tag} on 127.0.0.1:${this.port}: ${msg}\n--- log (${this.logFile}) ---\n${log}`, addressInUse);
    }
    this.startup_ms = performance.now() - t0;
  }
}

export class RtspStartError extends Error {
  constructor(
    message: string,
    readonly addressInUse: boolean,
  ) {
    super(message);
    this.name = 'RtspStartError';
  }
}

/**
 * ffprobe an RTSP URL (short analysis: -analyzeduration 0 -probesize 32); ok when an h264 video stream is
 * reported. stderr carries ffmpeg's errors, e.g. "401 Unauthorized". Never throws.
 */
export async function ffprobeRtsp(url: string, opts: { transport?: 'tcp' | 'udp'; timeout_ms?: number } = {}): Promise<ProbeResult> {
  const { transport = 'tcp', timeout_ms = 10_000 } = opts;
  try {
    const { stdout, stderr } = await execFileP(
      'ffprobe',
      ['-v', 'error', '-rtsp_transport', transport, '-timeout', String(timeout_ms * 1000),
        '-analyzeduration', '0', '-probesize', '32',
        '-select_streams', 'v:0', '-show_entries', 'stream=codec_name', '-of', 'csv=p=0', url],
      { timeout: timeout_ms, killSignal: 'SIGKILL' },
    );
    return { ok: stdout.trim() === 'h264', stdout, stderr };
  } catch (err) {
    const e = err as Error & { stdout?: string; stderr?: string };
    return { ok: false, stdout: e.stdout ?? '', stderr: e.stderr ?? e.message };
  }
}

export interface PullOptions {
  transport?: 'tcp' | 'udp';
  /** Stop after this many seconds of stream (-t); omit to pull until stop(). */
  seconds?: number;
  /** ffmpeg socket timeout (-timeout), default 5 000 ms. */
  socketTimeout_ms?: number;
  /** Extra marker put in ffmpeg's command line (as -metadata comment=…) to find it in /proc. */
  marker?: string;
}

export interface PullResult {
  /** Frames decoded (last `frame=` progress value). */
  frames: number;
  code: number | null;
  signal: NodeJS.Signals | null;
  stderr: string;
  elapsed_ms: number;
}

export interface PullHandle {
  readonly child: ChildProcess;
  /** Frames decoded so far (updated every 100 ms from ffmpeg -progress). */
  readonly frames: number;
  /** Resolves when ffmpeg exits. */
  readonly done: Promise<PullResult>;
  /** SIGTERM (then SIGKILL) ffmpeg and wait for the result. */
  stop(): Promise<PullResult>;
}

/**
 * Start an ffmpeg client that decodes the stream to /dev/null and reports the frame count — a stand-in
 * for the agent's camera reader (short probing: -analyzeduration 0 -probesize 32).
 */
export function startPull(url: string, opts: PullOptions = {}): PullHandle {
  const { transport = 'tcp', seconds, socketTimeout_ms = 5_000, marker } = opts;
  const args = [
    '-hide_banner', '-nostdin', '-loglevel', 'error', '-nostats',
    '-rtsp_transport', transport, '-timeout', String(socketTimeout_ms * 1000),
    '-analyzeduration', '0', '-probesize', '32',
    '-i', url,
    ...(seconds === undefined ? [] : ['-t', String(seconds)]),
    ...(marker === undefined ? [] : ['-metadata', `comment=${marker}`]),
    '-an', '-f', 'null', '-progress', 'pipe:1', '-stats_period', '0.1', '-',
  ];
  const t0 = performance.now();
  const child = spawnGuarded('ffmpeg', args, { stdio: ['ignore', 'pipe', 'pipe'] });
  let frames = 0;
  let stderr = '';
  child.stderr!.setEncoding('utf8').on('data', (d: string) => (stderr += d));
  readline.createInterface({ input: child.stdout! }).on('line', (line) => {
    const m = /^frame=(\d+)/.exec(line);
    if (m) frames = Number(m[1]);
  });
  const done = new Promise<PullResult>((resolve) => {
    child.once('close', (code, signal) => resolve({ frames, code, signal, stderr, elapsed_ms: performance.now() - t0 }));
    // spawn failure: 'close' may never come
    child.once('error', (err) => resolve({ frames, code: null, signal: null, stderr: `${stderr}${String(err)}`, elapsed_ms: performance.now() - t0 }));
  });
  return {
    child,
    get frames() {
      return frames;
    },
    done,
    async stop() {
      await terminate(child, 'SIGTERM', 3_000);
      return done;
    },
  };
}

/** Pull `seconds` of stream with ffmpeg (hard deadline seconds + timeout_ms) and report the frames decoded. */
export async function pullFrames(url: string, opts: PullOptions & { seconds: number; timeout_ms?: number }): Promise<PullResult> {
  const handle = startPull(url, opts);
  const deadline = setTimeout(() => void handle.stop(), opts.seconds * 1000 + (opts.timeout_ms ?? 10_000));
  try {
    return await handle.done;
  } finally {
    clearTimeout(deadline);
  }
}
