// The MPEG-1 live preview: node-rtsp-stream's Mpeg1Muxer fed on stdin with the pipeline's frames (a real file
// camera on the demo clip), relayed through the status server's authenticated websocket, reaped when unwatched.
import { spawn } from 'node:child_process';
import { copyFileSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { CameraSchema, StatusSchema } from '../../../config/schema/index.js';
import type { AgentFigures } from '../../../agent/health/figures.js';
import { silentLogger } from '../../../core/log.js';
import { TsPackets, muxerLauncher, muxerOptions } from '../../../agent/status/mpeg1.js';
import { StatusServer } from '../../../agent/status/server.js';
import { CameraFrames, benchPreview } from '../../../bench/preview.js';
import { REPO_ROOT, testClip } from '../../../testkit/clips.js';
import { freePort } from '../../../testkit/ports.js';
import { ffmpegProcesses, isAlive, listProcesses, processesMatching, waitFor } from '../../../testkit/processes.js';
import { StaticFigures } from '../../../testkit/static-figures.js';
import { makeTempDir } from '../../../testkit/tmp.js';

const TOKEN = 'preview-test-token-0123456789';
const CAMERA_HOST = '192.0.2.50'; // TEST-NET: the preview must never try it
const PASSWORD = 'pw-s3cret-4711';
const TS = 188;

/** What one websocket viewer received. */
interface Received {
  binary: Buffer[];
  text: { type: string; state?: string; detections?: unknown[] }[];
  closeCode?: number;
}

function viewer(url: string, headers: Record<string, string> = {}): Promise<{ ws: WebSocket; got: Received } | { status: number }> {
  return new Promise((resolve) => {
    const ws = new WebSocket(url, { headers });
    const got: Received = { binary: [], text: [] };
    ws.on('message', (data: Buffer, isBinary: boolean) => {
      if (isBinary) got.binary.push(Buffer.from(data));
      else got.text.push(JSON.parse(data.toString('utf8')) as Received['text'][number]);
    });
    ws.once('close', (code) => (got.closeCode = code));
    ws.once('open', () => resolve({ ws, got }));
    ws.once('unexpected-response', (_req, res) => {
      resolve({ status: res.statusCode ?? 0 });
      ws.terminate();
    });
    ws.once('error', () => resolve({ status: 0 }));
  });
}

function opened(v: Awaited<ReturnType<typeof viewer>>): { ws: WebSocket; got: Received } {
  if (!('ws' in v)) throw new Error(`websocket refused with HTTP ${v.status}`);
  return v;
}

/** The MPEG-1 elementary stream carried in the TS (PES stream id 0xE0, as jsmpeg demuxes it), and the TS facts. */
function demux(ts: Buffer): { video: Buffer; videoPid: number | undefined; streamIds: Set<number> } {
  const parts: Buffer[] = [];
  const streamIds = new Set<number>();
  let videoPid: number | undefined;
  for (let at = 0; at + TS <= ts.length; at += TS) {
    const pusi = (ts[at + 1]! & 0x40) !== 0;
    const pid = ((ts[at + 1]! & 0x1f) << 8) | ts[at + 2]!;
    const afc = (ts[at + 3]! >> 4) & 3;
    let p = at + 4;
    if (afc & 2) p += 1 + ts[p]!;
    if (!(afc & 1) || p >= at + TS) continue;
    if (pusi && ts[p] === 0 && ts[p + 1] === 0 && ts[p + 2] === 1) {
      streamIds.add(ts[p + 3]!);
      if (ts[p + 3] === 0xe0) videoPid = pid;
      p += 9 + ts[p + 8]!;
    }
    if (pid === videoPid) parts.push(ts.subarray(p, at + TS));
  }
  return { video: Buffer.concat(parts), videoPid, streamIds };
}

/** Width and height of each MPEG-1 sequence header (00 00 01 B3). */
function sequenceSizes(video: Buffer): { width: number; height: number }[] {
  const out: { width: number; height: number }[] = [];
  for (let i = video.indexOf(Buffer.from([0, 0, 1, 0xb3])); i >= 0 && i + 7 <= video.length; i = video.indexOf(Buffer.from([0, 0, 1, 0xb3]), i + 4)) {
    out.push({ width: (video[i + 4]! << 4) | (video[i + 5]! >> 4), height: ((video[i + 5]! & 0x0f) << 8) | video[i + 6]! });
  }
  return out;
}

const pictures = (video: Buffer): number => {
  let n = 0;
  for (let i = video.indexOf(Buffer.from([0, 0, 1, 0])); i >= 0; i = video.indexOf(Buffer.from([0, 0, 1, 0]), i + 4)) n++;
  return n;
};

describe('MPEG-1 live preview', () => {
  let clip: string;
  let frames: CameraFrames;
  let figures: StaticFigures;
  let server: StatusServer;
  let base: string;

  beforeAll(async () => {
    // A private copy: its path marks this test's camera ffmpeg among those of other test files.
    clip = join(makeTempDir('preview'), 'preview-test-clip.mp4');
    copyFileSync(await testClip(), clip);
    figures = new StaticFigures({ detections: { cam1: [{ box: [100, 120, 180, 300], class_name: 'person', score: 0.8, track_id: 3 }] } });
    frames = new CameraFrames(CameraSchema.parse({ id: 'cam1', url: clip, frame: { width: 768, height: 576 }, detection_fps: 10 }), { width: 416, height: 416, resize: 'stretch' }, (f) => (figures.frames.cam1 = f));
    await frames.start();
    // The status server knows the camera only by its RTSP address and credentials, which it must never use here.
    const cam = CameraSchema.parse({ id: 'cam1', url: `rtsp://${CAMERA_HOST}:554/stream1`, username: 'admin', password: PASSWORD, frame: { width: 768, height: 576 } });
    const port = await freePort();
    server = new StatusServer({
      config: StatusSchema.parse({ port, token: TOKEN, preview_fps: 5 }),
      cameras: [cam],
      health: { current: () => ({}) as never },
      figures,
      log: silentLogger(),
      previewLingerMs: 200,
    });
    await server.start(new AbortController().signal);
    base = `ws://127.0.0.1:${port}/api/cameras/cam1/live`;
    await waitFor(() => figures.frames.cam1, { timeout_ms: 20_000, message: 'first frame from the file camera' });
  });

  afterAll(async () => {
    await server?.stop();
    await frames?.stop();
  });

  it('plays to an authenticated viewer only, as MPEG-TS jsmpeg takes; no camera URL on any argv; ffmpeg reaped when the viewer leaves', async () => {
    // without the token (or with a wrong one) there is no stream
    expect(await viewer(`${base}?format=mpeg1`)).toEqual({ status: 401 });
    expect(await viewer(`${base}?format=mpeg1&token=wrong-token-wrong-token`)).toEqual({ status: 401 });
    expect(await viewer(`${base}?format=mpeg1`, { Authorization: 'Bearer wrong-token-wrong-token' })).toEqual({ status: 401 });
    expect(server.mpeg1States()[0]).toMatchObject({ running: false, viewers: 0 });

    const a = opened(await viewer(`${base}?format=mpeg1&token=${TOKEN}`));
    await waitFor(() => a.got.binary.length > 0, { timeout_ms: 15_000, message: 'first MPEG-TS bytes' });
    const state = server.mpeg1States()[0]!;
    expect(state).toMatchObject({ running: true, viewers: 1 });
    const pid = state.pid!;
    await new Promise((r) => setTimeout(r, 3000));

    // whole 188-byte packets, a sync byte at each; the first message begins with a sequence header
    const ts = Buffer.concat(a.got.binary);
    expect(a.got.binary.every((m) => m.length % TS === 0)).toBe(true);
    for (let at = 0; at < ts.length; at += TS) expect(ts[at], `sync byte at ${at}`).toBe(0x47);
    const first = demux(a.got.binary[0]!);
    expect(sequenceSizes(first.video).length, 'a decoder can start at the first message').toBeGreaterThan(0);
    // jsmpeg finds video by PES stream id 0xE0; its header is the MPEG-1 sequence header (never 0x0: sized by the first frame)
    const all = demux(ts);
    expect(all.videoPid).toBeDefined();
    expect([...all.streamIds]).toEqual([0xe0]);
    expect(sequenceSizes(all.video)[0]).toEqual({ width: 640, height: 480 });
    expect(pictures(all.video), 'pictures in 3 s at 5 fps (and the primed copies)').toBeGreaterThanOrEqual(10);
    expect(a.got.text.some((m) => m.type === 'status' && m.state === 'running')).toBe(true);
    expect(a.got.text.find((m) => m.type === 'detections')?.detections).toEqual([{ box: [100, 120, 180, 300], class_name: 'person', score: 0.8, track_id: 3 }]);

    // the muxer's ffmpeg reads stdin: no camera address or credential on its argv; our direct child (the
    // launcher and setpriv exec'd into it); the camera was never contacted (no JPEG preview either)
    const proc = listProcesses().find((p) => p.pid === pid)!;
    expect(proc.argv[0]).toBe('ffmpeg');
    expect(proc.ppid).toBe(process.pid);
    expect(proc.argv.slice(0, 3)).toEqual(['ffmpeg', '-i', 'pipe:0']);
    expect(proc.argv).toEqual(expect.arrayContaining(['-f', 'mpegts', '-codec:v', 'mpeg1video', '-bf', '0']));
    for (const p of ffmpegProcesses()) {
      expect(p.cmdline, `ffmpeg ${p.pid}`).not.toContain(CAMERA_HOST);
      expect(p.cmdline, `ffmpeg ${p.pid}`).not.toContain(PASSWORD);
    }
    expect(processesMatching(CAMERA_HOST)).toEqual([]);
    expect(server.previewStates()[0]).toMatchObject({ running: false, frames: 0 });
    expect(ffmpegProcesses(clip).map((p) => p.pid)).toEqual([frames.pid()]); // the camera's own ffmpeg only

    // a viewer joining later starts at once, at the group of pictures so far
    const b = opened(await viewer(`${base}?format=mpeg1`, { Authorization: `Bearer ${TOKEN}` }));
    await waitFor(() => b.got.binary.length > 0, { timeout_ms: 3000, message: 'late viewer bytes' });
    expect(sequenceSizes(demux(b.got.binary[0]!).video)).toEqual([{ width: 640, height: 480 }]);
    expect(server.mpeg1States()[0]).toMatchObject({ viewers: 2, pid });

    // node-rtsp-stream's websocket server and its ws@7 are never loaded; ours is ws@8
    const req = createRequire(import.meta.url);
    expect(Object.keys(req.cache).filter((k) => k.includes('node-rtsp-stream'))).toEqual([expect.stringMatching(/node-rtsp-stream\/mpeg1muxer\.js$/)]);
    const ws = JSON.parse(readFileSync(createRequire(join(REPO_ROOT, 'agent/status/server.ts')).resolve('ws/package.json'), 'utf8')) as { version: string };
    expect(ws.version).toMatch(/^8\./);

    // the last viewer leaves: ffmpeg exits and is reaped (no zombie)
    a.ws.close();
    await new Promise((r) => setTimeout(r, 500));
    expect(isAlive(pid), 'one viewer left: still running').toBe(true);
    b.ws.close();
    await waitFor(() => server.mpeg1States()[0]?.running === false, { timeout_ms: 5000, message: 'mpeg1 preview stopped' });
    await waitFor(() => !listProcesses({ includeZombies: true }).some((p) => p.pid === pid), { timeout_ms: 5000, message: 'muxer ffmpeg gone' });
    expect(server.mpeg1States()[0]).toMatchObject({ running: false, viewers: 0, pid: null });
  });

  it('says "unavailable" (close 4001) without pipeline frames, refuses an unknown format, and JPEG still plays', async () => {
    const plain = new StaticFigures();
    // A provider that has no latestFrame at all.
    const figs: AgentFigures = {
      cameras: () => plain.cameras(),
      detector: () => plain.detector(),
      outbox: () => plain.outbox(),
      uplink: () => plain.uplink(),
      recentEvents: (n) => plain.recentEvents(n),
      latestDetections: (id) => plain.latestDetections(id),
      cameraOverlay: (id) => plain.cameraOverlay(id),
    };
    const port = await freePort();
    const s = new StatusServer({
      config: StatusSchema.parse({ port, preview_fps: 5 }),
      cameras: [CameraSchema.parse({ id: 'cam2', url: clip, frame: { width: 768, height: 576 } })],
      health: { current: () => ({}) as never },
      figures: figs,
      log: silentLogger(),
      previewLingerMs: 200,
    });
    await s.start(new AbortController().signal);
    try {
      const url = `ws://127.0.0.1:${port}/api/cameras/cam2/live`;
      expect(s.mpeg1States()).toEqual([]);
      const m = opened(await viewer(`${url}?format=mpeg1`));
      await waitFor(() => m.got.closeCode !== undefined, { timeout_ms: 3000, message: 'closed' });
      expect(m.got.closeCode).toBe(4001);
      expect(m.got.text).toEqual([{ type: 'status', state: 'unavailable', message: 'no pipeline frames to encode' }]);
      expect(m.got.binary).toEqual([]);
      expect(await viewer(`${url}?format=h264`)).toEqual({ status: 400 });

      const j = opened(await viewer(url));
      await waitFor(() => j.got.binary.length > 0, { timeout_ms: 15_000, message: 'a JPEG frame' });
      expect([...j.got.binary[0]!.subarray(0, 2)]).toEqual([0xff, 0xd8]);
      j.ws.close();
    } finally {
      await s.stop();
    }
  });

  it('leaves no ffmpeg behind when the agent process is killed', async () => {
    const port = await freePort();
    const script = `
      import WebSocket from 'ws';
      import { CameraSchema, StatusSchema } from './config/schema/index.ts';
      import { silentLogger } from './core/log.ts';
      import { StatusServer } from './agent/status/server.ts';
      import { StaticFigures } from './testkit/static-figures.ts';
      const figures = new StaticFigures({ frames: { cam1: { data: new Uint8Array(320 * 240 * 3).fill(90), width: 320, height: 240 } } });
      const server = new StatusServer({
        config: StatusSchema.parse({ port: ${port} }),
        cameras: [CameraSchema.parse({ id: 'cam1', url: 'rtsp://${CAMERA_HOST}/x', frame: { width: 320, height: 240 } })],
        health: { current: () => ({}) }, figures, log: silentLogger(),
      });
      await server.start(new AbortController().signal);
      const ws = new WebSocket('ws://127.0.0.1:${port}/api/cameras/cam1/live?format=mpeg1');
      ws.once('message', () => console.log(server.mpeg1States()[0].pid));
      setInterval(() => {}, 1000);
    `;
    const child = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], { cwd: REPO_ROOT, stdio: ['ignore', 'pipe', 'inherit'] });
    try {
      const line = await new Promise<string>((resolve, reject) => {
        createInterface({ input: child.stdout }).once('line', resolve);
        child.once('exit', (code) => reject(new Error(`child exited ${code}`)));
      });
      const pid = Number(line);
      expect(listProcesses().find((p) => p.pid === pid)).toMatchObject({ ppid: child.pid, argv: expect.arrayContaining(['pipe:0', 'mpeg1video']) });
      child.kill('SIGKILL');
      await waitFor(() => !isAlive(pid), { timeout_ms: 3000, message: 'ffmpeg killed with its parent' });
    } finally {
      child.kill('SIGKILL');
    }
  });
});

describe('MPEG-1 plumbing', () => {
  it("the launcher ties ffmpeg to its parent's life (setpriv --pdeathsig KILL), with ffmpeg's own pid", async () => {
    const launcher = muxerLauncher();
    expect(launcher).toBe(join(REPO_ROOT, 'agent/status/mpeg1-ffmpeg.sh'));
    // An ffmpeg that never ends on its own (endless lavfi input, no stdin), started in the background by a shell
    // that then exits: only the parent-death signal ends it.
    const sh = spawn('/bin/sh', ['-c', `"${launcher}" -hide_banner -loglevel error -re -f lavfi -i nullsrc=s=16x16:r=5 -f null - </dev/null >/dev/null 2>&1 & echo $!; sleep 1`], { stdio: ['ignore', 'pipe', 'inherit'] });
    const pid = Number(await new Promise<string>((resolve) => createInterface({ input: sh.stdout }).once('line', resolve)));
    try {
      await waitFor(() => listProcesses().find((p) => p.pid === pid)?.argv[0] === 'ffmpeg', { timeout_ms: 3000, message: 'launcher exec to ffmpeg' });
      expect(listProcesses().find((p) => p.pid === pid)).toMatchObject({ ppid: sh.pid, argv: expect.arrayContaining(['nullsrc=s=16x16:r=5']) });
      await new Promise((r) => sh.once('exit', r));
      await waitFor(() => !isAlive(pid), { timeout_ms: 2000, message: 'ffmpeg killed when its parent exited' });
    } finally {
      if (isAlive(pid)) process.kill(pid, 'SIGKILL');
    }
  });

  it('cuts the output into whole packets and splits where a group of pictures starts', () => {
    const packet = (pusi: boolean, payload: number[]) => {
      const p = Buffer.alloc(TS, 0xff);
      p[0] = 0x47;
      p[1] = pusi ? 0x40 : 0;
      p[3] = 0x10;
      Buffer.from(payload).copy(p, 4);
      return p;
    };
    const seq = packet(true, [0, 0, 1, 0xe0, 0, 0, 0x80, 0x80, 5, 0, 0, 0, 0, 0, 0, 0, 1, 0xb3]);
    const p = packet(true, [0, 0, 1, 0xe0, 0, 0, 0x80, 0x80, 5, 0, 0, 0, 0, 0, 0, 0, 1, 0x00]);
    const cont = packet(false, [1, 2, 3]);
    const stream = Buffer.concat([p, seq, cont, p, cont, seq]);
    for (const size of [1, 100, TS, 500, stream.length]) {
      const t = new TsPackets();
      const out = [];
      for (let i = 0; i < stream.length; i += size) out.push(...t.push(stream.subarray(i, i + size)));
      const joined = Buffer.concat(out.map((c) => c.data));
      expect(joined.equals(stream), `chunk size ${size}`).toBe(true);
      expect(out.every((c) => c.data.length % TS === 0)).toBe(true);
      expect(out.filter((c) => c.gopStart).map((c) => c.data.subarray(0, TS).equals(seq))).toEqual([true, true]);
    }
  });

  it('scales to the camera aspect and crops letterbox bands off the detector frames', () => {
    const o = muxerOptions({ fps: 5, maxWidth: 640, cameraFrame: { width: 768, height: 576 } }, { width: 416, height: 416 });
    expect(o).toMatchObject({ '-vf': 'scale=640:480', '-bf': '0', '-r': '25', '-g': '20' });
    const lb = muxerOptions({ fps: 5, maxWidth: 1920, cameraFrame: { width: 1920, height: 1080 }, resize: 'letterbox' }, { width: 640, height: 640 });
    expect(lb['-vf']).toBe('crop=640:360:0:140,scale=1920:1080');
  });
});

describe('bandwidth', () => {
  it('MPEG-1 costs a viewer at most a quarter of the JPEG bytes on the demo clip', async () => {
    const r = await benchPreview({ seconds: 8, warmupMs: 2000 });
    console.log(`preview bandwidth: ${JSON.stringify(r)}`);
    expect(r.jpeg_bytes_per_s).toBeGreaterThan(0);
    expect(r.mpeg1_frames_per_s).toBeGreaterThan(2);
    expect(r.ratio).toBeLessThanOrEqual(0.25);
  });
});
