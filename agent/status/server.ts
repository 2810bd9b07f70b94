// The local status server: /healthz, /metrics, /api/status, camera frames and live previews, and the status page.
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { WebSocketServer, type WebSocket } from 'ws';
import type { CameraConfig, StatusConfig } from '../../config/schema/index.js';
import type { HealthPayload, HealthReason } from '../../contract/health.js';
import { errorMessage } from '../../core/errors.js';
import type { AgentFigures } from '../health/figures.js';
import type { RestartInfo } from '../health/restarts.js';
import type { Logger } from '../../core/log.js';
import type { Module } from '../../core/module.js';
import { loadSharp } from '../../core/sharp.js';
import type { BackoffOptions } from '../../core/time.js';
import { hostAllowed, originAllowed, requestToken, tokenMatches } from './auth.js';
import { Binder, type BindState } from './binder.js';
import { ConfigEditor, type ConfigEditTarget } from './config-edit.js';
import { crossSite, HttpError, readJsonBody } from './http.js';
import { renderMetrics } from './metrics.js';
import { Mpeg1Preview, type Mpeg1State } from './mpeg1.js';
import { CameraPreview, type PreviewState } from './preview.js';
import { StaticFiles, defaultPublicDir } from './static.js';
import { jpegViewer, mpeg1Viewer, refuseMpeg1 } from './viewers.js';

export interface StatusServerOptions {
  config: StatusConfig;
  /** The configured cameras: ids, and the inputs of the live previews. */
  cameras: CameraConfig[];
  /** Shown on the page. */
  device?: { id: string; site: string };
  /**
   * The health sampler: current() is composed now from the last samples and live figures; setCondition()
   * carries a failed bind into the health payload (the page itself is unreachable then).
   */
  health: { current(): HealthPayload; setCondition?(key: string, reason: HealthReason | undefined): void };
  figures: AgentFigures;
  restarts?: { lastRestart(): RestartInfo };
  log: Logger;
  /** index.html, app.js, style.css. Default: `public/` next to this module, else agent/status/public in the package. */
  publicDir?: string;
  /** The JPEG preview's ffmpeg. Default "ffmpeg" (the MPEG-1 preview runs ffmpeg through its launcher, mpeg1-ffmpeg.sh). */
  ffmpegPath?: string;
  /** Keep a preview's ffmpeg this long after its last viewer left, ms. Default 2000. */
  previewLingerMs?: number;
  /**
   * How the pipeline's frames (`figures.latestFrame`, the MPEG-1 preview's input) were fitted to the detector's
   * input: letterbox bands are cropped off. Default stretch.
   */
  frameResize?: 'stretch' | 'letterbox';
  /** Events listed on the page. Default 50. */
  recentEventsLimit?: number;
  /** Delays between bind attempts while the port is taken. Default 1 s doubling to 30 s, jittered. */
  bindBackoff?: BackoffOptions;
  /** Longest wait for a request's headers (slowloris guard), ms; answered with 408. Default 10000. */
  headersTimeoutMs?: number;
  /**
   * The config applier: with it the page's line and zone editor can validate (POST /api/config/validate) and
   * save (POST /api/config/apply) through the checked config push with rollback. Without it both answer 503.
   */
  applier?: ConfigEditTarget;
}

/** The editor's routes (POST only). */
const EDIT_ROUTES: Record<string, 'validate' | 'apply'> = { '/api/config/validate': 'validate', '/api/config/apply': 'apply' };
const CAMERA_PATH = /^\/api\/cameras\/([a-z0-9][a-z0-9_-]{0,62})\/(frame\.jpg|snapshot|live)$/;
const MAX_VIEWERS_PER_CAMERA = 8;
/** A live preview frame at most this old is served as frame.jpg. */
const FRESH_FRAME_MS = 5000;
/**
 * Load bounds. Connections beyond MAX_CONNECTIONS (a browser keeps ~6, each live preview one more) and
 * requests beyond MAX_IN_FLIGHT still get an answer: a fast 503 with Retry-After, and the connection closes.
 * Node's own maxConnections would reset them instead, so it is only the last-resort cap on file descriptors.
 */
const MAX_CONNECTIONS = 64;
const MAX_IN_FLIGHT = 16;
const HARD_MAX_SOCKETS = 512;
const RETRY_AFTER_S = 2;
const HEADERS_TIMEOUT_MS = 10_000;

/**
 * The status server (module). Binds `status.bind:status.port` (loopback by default; the config check refuses
 * another address without a token). With a token configured every data endpoint needs
 * `Authorization: Bearer <token>` (the page's websocket may pass `?token=`). The page's static files (HTML, JS,
 * CSS, no data in them) are served without it: a browser cannot attach a header to a navigation, so the page
 * asks for the token and sends it with each request. A port that cannot be bound is retried in the background
 * (reported in health as `status_server_unbound`); excess load gets 503 with Retry-After, never a reset.
 */
export class StatusServer implements Module {
  readonly name = 'status';
  private server: Server | undefined;
  private wss: WebSocketServer | undefined;
  private readonly previews = new Map<string, CameraPreview>();
  /** Only when the figures provider has the pipeline's frames (`latestFrame`). */
  private readonly mpeg1 = new Map<string, Mpeg1Preview>();
  private readonly log: Logger;
  private readonly files: StaticFiles;
  /** Connections within MAX_CONNECTIONS; any other connection gets 503 to its first request. */
  private readonly admitted = new Set<Socket>();
  private inFlight = 0;
  private binder: Binder | undefined;
  private readonly editor: ConfigEditor | undefined;

  constructor(private readonly opts: StatusServerOptions) {
    this.log = opts.log.child({ mod: 'status' });
    this.files = new StaticFiles(opts.publicDir ?? defaultPublicDir());
    this.editor = opts.applier && new ConfigEditor(opts.applier, this.log);
  }

  /**
   * Resolves after the first bind attempt, bound or not: a taken port (another program, the previous agent still
   * closing) is reported in health and retried with backoff, never fatal for the agent.
   */
  async start(_signal: AbortSignal): Promise<void> {
    const cfg = this.opts.config;
    if (!cfg.enabled) return;
    const figures = this.opts.figures;
    for (const cam of this.opts.cameras) {
      this.previews.set(
        cam.id,
        new CameraPreview(cam, { fps: cfg.preview_fps, maxWidth: cfg.preview_width, ffmpegPath: this.opts.ffmpegPath, lingerMs: this.opts.previewLingerMs }, this.log),
      );
      if (typeof figures.latestFrame !== 'function') continue;
      const mpeg1 = new Mpeg1Preview(
        cam.id,
        () => figures.latestFrame?.(cam.id),
        { fps: cfg.preview_fps, maxWidth: cfg.preview_width, cameraFrame: cam.frame, resize: this.opts.frameResize, lingerMs: this.opts.previewLingerMs },
        this.log,
      );
      this.mpeg1.set(cam.id, mpeg1);
    }
    await this.files.start();
    this.wss = new WebSocketServer({ noServer: true, maxPayload: 4096 });
    const headersTimeout = this.opts.headersTimeoutMs ?? HEADERS_TIMEOUT_MS;
    // Node checks the timeouts every connectionsCheckingInterval (default 30 s): check often enough that they hold.
    const server = createServer({ connectionsCheckingInterval: Math.min(1000, headersTimeout) }, (req, res) => void this.handle(req, res));
    server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => this.upgrade(req, socket, head));
    // Without a listener Node drops CONNECT requests without an answer: say what is allowed instead.
    server.on('connect', (_req: IncomingMessage, socket: Duplex) => {
      socket.on('error', () => undefined);
      socket.end('HTTP/1.1 405 Method Not Allowed\r\nAllow: GET, HEAD\r\nConnection: close\r\nContent-Length: 0\r\n\r\n');
    });
    server.on('connection', (socket: Socket) => {
      if (this.admitted.size >= MAX_CONNECTIONS) return; // served, but only with 503 (see handle)
      this.admitted.add(socket);
      socket.once('close', () => this.admitted.delete(socket));
    });
    server.maxConnections = HARD_MAX_SOCKETS;
    server.headersTimeout = headersTimeout;
    server.requestTimeout = 30_000;
    this.server = server;
    this.binder = new Binder(server, {
      host: cfg.bind,
      port: cfg.port,
      log: this.log,
      report: (reason) => this.opts.health.setCondition?.('status_server', reason),
      backoff: this.opts.bindBackoff,
      logFields: { token: Boolean(cfg.token) },
    });
    await this.binder.start();
  }

  /** Whether the page is being served, and why not; undefined when disabled. */
  bindState(): BindState | undefined {
    return this.binder?.state();
  }

  async stop(): Promise<void> {
    const server = this.server;
    this.server = undefined;
    await this.binder?.stop(); // a listen in progress settles first, so close() below releases its port
    await Promise.all([...this.previews.values(), ...this.mpeg1.values()].map((p) => p.close()));
    this.previews.clear();
    this.mpeg1.clear();
    for (const ws of this.wss?.clients ?? []) ws.terminate();
    this.wss?.close();
    this.wss = undefined;
    if (!server) return;
    await new Promise<void>((resolve) => {
      server.close(() => resolve());
      server.closeAllConnections();
    });
  }

  /** The bound address (port 0 resolved), while listening. */
  address(): { host: string; port: number } | undefined {
    const a = this.server?.address();
    return a && typeof a === 'object' ? { host: a.address, port: a.port } : undefined;
  }

  /** JPEG live previews, per camera (running ffmpeg, viewers, frames relayed). */
  previewStates(): PreviewState[] {
    return [...this.previews.values()].map((p) => p.state());
  }

  /** MPEG-1 live previews, per camera with pipeline frames (running ffmpeg, viewers, bytes relayed). */
  mpeg1States(): Mpeg1State[] {
    return [...this.mpeg1.values()].map((p) => p.state());
  }

  // ------------------------------------------------------------------------------------------
  // HTTP

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    if (!this.admitted.has(req.socket) || this.inFlight >= MAX_IN_FLIGHT) return this.busy(res);
    this.inFlight++;
    try {
      await this.route(req, res);
    } finally {
      this.inFlight--;
    }
  }

  /** 503 with Retry-After, then the connection closes (its slot frees for a well-behaved client). */
  private busy(res: ServerResponse): void {
    res.setHeader('Retry-After', String(RETRY_AFTER_S));
    res.setHeader('Connection', 'close');
    this.json(res, 503, { status: 'error', error: `busy, retry in ${RETRY_AFTER_S} s` });
  }

  private async route(req: IncomingMessage, res: ServerResponse): Promise<void> {
    try {
      const url = new URL(req.url ?? '/', 'http://status.invalid');
      const edit = EDIT_ROUTES[url.pathname];
      if (edit) return await this.configEdit(req, res, url, edit);
      if (req.method !== 'GET' && req.method !== 'HEAD') {
        res.setHeader('Allow', 'GET, HEAD');
        throw new HttpError(405, 'method not allowed');
      }
      const path = url.pathname;
      if (path === '/' || path === '/index.html') return await this.serveStatic(res, 'index.html', req.method === 'HEAD');
      if (path.startsWith('/static/')) return await this.serveStatic(res, path.slice('/static/'.length), req.method === 'HEAD');
      if (path === '/favicon.ico') return await this.serveStatic(res, 'favicon.svg', req.method === 'HEAD');
      this.authorize(req, url, false);
      if (path === '/healthz') return this.healthz(res);
      if (path === '/metrics') return await this.metrics(res);
      if (path === '/api/status') return this.json(res, 200, this.statusDocument());
      const m = CAMERA_PATH.exec(path);
      if (m && (m[2] === 'frame.jpg' || m[2] === 'snapshot')) return await this.frame(res, m[1]!);
      throw new HttpError(404, 'not found');
    } catch (err) {
      if (err instanceof HttpError) {
        if (err.status === 413) res.setHeader('Connection', 'close'); // a body refused by its declared size is left unread
        if (err.status === 401) res.setHeader('WWW-Authenticate', 'Bearer realm="roadside-agent"');
        this.json(res, err.status, { status: 'error', error: err.message });
      } else {
        this.log.error({ err, path: req.url?.split('?')[0] }, 'status request failed');
        if (!res.headersSent) this.json(res, 500, { status: 'error', error: 'internal error' });
        else res.destroy();
      }
    }
  }

  /** Throws 401 / 403 unless the request may read data. */
  private authorize(req: IncomingMessage, url: URL, allowQueryToken: boolean): void {
    const token = this.opts.config.token;
    if (token !== undefined) {
      if (!tokenMatches(token, requestToken(req, url, allowQueryToken))) throw new HttpError(401, 'a valid bearer token is required');
    } else if (!hostAllowed(req)) {
      throw new HttpError(403, 'unexpected Host header');
    }
  }

  /**
   * POST /api/config/validate and /api/config/apply: the token (or, without one, a loopback Host), the page's
   * own Origin, no cross-site fetch, a JSON body of at most 64 KiB; then the editor (config-edit.ts).
   */
  private async configEdit(req: IncomingMessage, res: ServerResponse, url: URL, route: 'validate' | 'apply'): Promise<void> {
    if (req.method !== 'POST') {
      res.setHeader('Allow', 'POST');
      throw new HttpError(405, 'method not allowed');
    }
    this.authorize(req, url, false);
    if (!originAllowed(req) || crossSite(req)) throw new HttpError(403, 'cross-origin request refused');
    if (!this.editor) throw new HttpError(503, 'config changes are not available here (the status server has no config applier)');
    const body = await readJsonBody(req);
    const answer = route === 'validate' ? await this.editor.validate(body) : await this.editor.apply(body);
    this.json(res, answer.status, answer.body);
  }

  private json(res: ServerResponse, status: number, body: unknown): void {
    const text = JSON.stringify(body);
    res.writeHead(status, {
      'Content-Type': 'application/json; charset=utf-8',
      'Content-Length': Buffer.byteLength(text),
      'Cache-Control': 'no-store',
      'X-Content-Type-Options': 'nosniff',
    });
    res.end(text);
  }

  private async serveStatic(res: ServerResponse, name: string, head: boolean): Promise<void> {
    const file = await this.files.read(name);
    if (!file) throw new HttpError(404, 'not found');
    res.writeHead(200, {
      'Content-Type': file.type,
      'Content-Length': file.body.length,
      'Cache-Control': 'no-cache',
      'X-Content-Type-Options': 'nosniff',
      'Content-Security-Policy': this.files.csp,
      'Referrer-Policy': 'no-referrer',
      'X-Frame-Options': 'DENY',
    });
    res.end(head ? undefined : file.body);
  }

  /** 200 `{status:"ok"}`, or 503 with the error reasons (camera stalled / offline, detector stuck, disk low…). */
  private healthz(res: ServerResponse): void {
    const h = this.opts.health.current();
    const errors = h.reasons.filter((r) => r.severity === 'error');
    if (errors.length === 0) this.json(res, 200, { status: 'ok' });
    else this.json(res, 503, { status: 'error', reasons: errors.map((r) => ({ code: r.code, message: r.message, ...(r.camera ? { camera: r.camera } : {}) })) });
  }

  private async metrics(res: ServerResponse): Promise<void> {
    const { contentType, text } = await renderMetrics(this.opts.health.current(), this.lastRestart());
    res.writeHead(200, { 'Content-Type': contentType, 'Cache-Control': 'no-store', 'Content-Length': Buffer.byteLength(text) });
    res.end(text);
  }

  private lastRestart(): RestartInfo | undefined {
    try {
      return this.opts.restarts?.lastRestart();
    } catch (err) {
      this.log.warn({ err: errorMessage(err) }, 'restart info unavailable');
      return undefined;
    }
  }

  /** /api/status: everything the page shows. */
  statusDocument(): unknown {
    const health = this.opts.health.current();
    const figures = this.opts.figures;
    const safe = <T>(fn: () => T, fallback: T): T => {
      try {
        return fn();
      } catch (err) {
        this.log.warn({ err: errorMessage(err) }, 'figures unavailable');
        return fallback;
      }
    };
    const previews = new Map(this.previewStates().map((p) => [p.camera, p]));
    const mpeg1 = new Map(this.mpeg1States().map((p) => [p.camera, p]));
    return {
      device: this.opts.device ?? null,
      ts: health.ts,
      // Whether the page's editor can validate and save, and the config in force.
      config: this.opts.applier ? { editable: true, hash: safe(() => this.opts.applier?.config().hash ?? null, null) } : { editable: false, hash: null },
      health,
      restart: this.lastRestart() ?? null,
      cameras: this.opts.cameras.map((cam) => {
        const p = previews.get(cam.id);
        const m = mpeg1.get(cam.id);
        return {
          id: cam.id,
          figures: health.cameras.find((c) => c.id === cam.id) ?? null,
          overlay: safe(() => figures.cameraOverlay(cam.id), undefined) ?? null,
          detections: safe(() => figures.latestDetections(cam.id), []),
          preview: { live: `api/cameras/${cam.id}/live`, frame: `api/cameras/${cam.id}/frame.jpg`, running: p?.running ?? false, viewers: p?.viewers ?? 0, last_error: p?.last_error ?? null },
          mpeg1: m ? { running: m.running, viewers: m.viewers, last_error: m.last_error } : null,
        };
      }),
      events: safe(() => figures.recentEvents(this.opts.recentEventsLimit ?? 50), []),
    };
  }

  /** The newest frame: from a running live preview, else the provider's latest decoded frame (encoded here). */
  private async frame(res: ServerResponse, cameraId: string): Promise<void> {
    const preview = this.previews.get(cameraId);
    if (!preview) throw new HttpError(404, 'unknown camera');
    let jpeg = preview.latestJpeg(FRESH_FRAME_MS);
    if (!jpeg) {
      const raw = this.opts.figures.latestFrame?.(cameraId);
      if (!raw) throw new HttpError(503, 'no frame available (open the live preview, or wait for the camera)');
      const sharp = await loadSharp();
      jpeg = await sharp(raw.data, { raw: { width: raw.width, height: raw.height, channels: 3 } }).jpeg({ quality: 75 }).toBuffer();
    }
    res.writeHead(200, { 'Content-Type': 'image/jpeg', 'Content-Length': jpeg.length, 'Cache-Control': 'no-store', 'X-Content-Type-Options': 'nosniff' });
    res.end(jpeg);
  }

  // ------------------------------------------------------------------------------------------
  // Websocket: /api/cameras/:id/live[?format=mpeg1]. Text messages are JSON: {type: "status", state, message?}
  // and {type: "detections", detections} (after each frame). Binary messages are JPEG frames, or with
  // format=mpeg1 MPEG-TS bytes for jsmpeg (whole 188-byte packets, from a sequence header on). MPEG-1 that
  // cannot be had (no pipeline frames, ffmpeg failed) is said with state "unavailable", then close code 4001:
  // the page falls back to JPEG.

  private upgrade(req: IncomingMessage, socket: Duplex, head: Buffer): void {
    const refuse = (status: number, text: string): void => {
      const retry = status === 503 ? `Retry-After: ${RETRY_AFTER_S}\r\n` : '';
      socket.end(`HTTP/1.1 ${status} ${text}\r\nConnection: close\r\n${retry}Content-Length: 0\r\n\r\n`);
    };
    socket.on('error', () => undefined);
    if (!this.admitted.has(socket as Socket)) return refuse(503, 'Service Unavailable');
    try {
      const url = new URL(req.url ?? '/', 'http://status.invalid');
      const m = CAMERA_PATH.exec(url.pathname);
      const cameraId = m && m[2] === 'live' ? m[1]! : undefined;
      const preview = cameraId === undefined ? undefined : this.previews.get(cameraId);
      if (!this.wss || cameraId === undefined || !preview) return refuse(404, 'Not Found');
      try {
        this.authorize(req, url, true);
      } catch (err) {
        const status = err instanceof HttpError ? err.status : 403;
        return refuse(status, status === 401 ? 'Unauthorized' : 'Forbidden');
      }
      if (!originAllowed(req)) return refuse(403, 'Forbidden');
      const format = url.searchParams.get('format') ?? 'jpeg';
      if (format !== 'jpeg' && format !== 'mpeg1') return refuse(400, 'Bad Request');
      const mpeg1 = this.mpeg1.get(cameraId);
      if (preview.state().viewers + (mpeg1?.state().viewers ?? 0) >= MAX_VIEWERS_PER_CAMERA) return refuse(503, 'Service Unavailable');
      const wss = this.wss;
      wss.handleUpgrade(req, socket, head, (ws) => {
        ws.on('error', () => undefined);
        if (format === 'jpeg') this.attachJpegViewer(ws, cameraId, preview);
        else this.attachMpeg1Viewer(ws, cameraId, mpeg1);
      });
    } catch (err) {
      this.log.error({ err }, 'websocket upgrade failed');
      refuse(500, 'Internal Server Error');
    }
  }

  /** The detections of the camera's latest processed frame, as the page's text message. */
  private detectionsMessage(cameraId: string): string {
    let detections: unknown[] = [];
    try {
      detections = this.opts.figures.latestDetections(cameraId);
    } catch {
      // figures unavailable: the page keeps its last boxes
    }
    return JSON.stringify({ type: 'detections', detections });
  }

  private attachJpegViewer(ws: WebSocket, cameraId: string, preview: CameraPreview): void {
    const viewer = jpegViewer(ws, () => this.detectionsMessage(cameraId));
    ws.once('close', () => preview.removeViewer(viewer));
    preview.addViewer(viewer);
  }

  private attachMpeg1Viewer(ws: WebSocket, cameraId: string, preview: Mpeg1Preview | undefined): void {
    if (!preview) return refuseMpeg1(ws, 'no pipeline frames to encode');
    const viewer = mpeg1Viewer(ws, () => this.detectionsMessage(cameraId));
    ws.once('close', () => preview.removeViewer(viewer));
    preview.addViewer(viewer);
  }
}
