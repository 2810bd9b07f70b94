// roadside-agent status page. Plain ES module, no build step, no third-party code.
// Polls api/status every 1.5 s; each camera's live preview is a websocket of JPEG frames (api/cameras/:id/live)
// drawn on a canvas, with lines, zones and detections drawn over it in camera-pixel coordinates.

const POLL_MS = 1500;
const TOKEN_KEY = 'roadside-status-token';
const COLORS = { line: '#ffd400', zone: '#00c8ff', box: '#39ff14', shadow: 'rgba(0,0,0,0.65)' };

// ---------------------------------------------------------------------------------------------
// Token: from #token=… (never sent to the server in the URL), kept in sessionStorage for this tab.

let token = sessionStorage.getItem(TOKEN_KEY) || '';
{
  const m = /(?:^#|&)token=([^&]+)/.exec(location.hash);
  if (m) {
    token = decodeURIComponent(m[1]);
    sessionStorage.setItem(TOKEN_KEY, token);
    history.replaceState(null, '', location.pathname + location.search);
  }
}

const $ = (sel, root = document) => root.querySelector(sel);
const el = (tag, cls, text) => {
  const e = document.createElement(tag);
  if (cls) e.className = cls;
  if (text !== undefined) e.textContent = text;
  return e;
};

class Unauthorized extends Error {}

async function api(path, opts = {}) {
  const headers = token ? { Authorization: `Bearer ${token}` } : {};
  const res = await fetch(path, { ...opts, headers, cache: 'no-store' });
  if (res.status === 401) throw new Unauthorized();
  return res;
}

function askToken() {
  $('#auth').hidden = false;
  $('#token').focus();
}

$('#auth-form').addEventListener('submit', (ev) => {
  ev.preventDefault();
  token = $('#token').value.trim();
  sessionStorage.setItem(TOKEN_KEY, token);
  $('#auth').hidden = true;
  for (const cam of cameras.values()) cam.live.restart();
  void poll();
});

// ---------------------------------------------------------------------------------------------
// Formatting

const fmt = {
  num: (v, d = 0) => (v === null || v === undefined || Number.isNaN(v) ? '–' : Number(v).toFixed(d)),
  mb: (v) => (v === null || v === undefined ? '–' : v >= 1024 ? `${(v / 1024).toFixed(1)} GB` : `${Math.round(v)} MB`),
  dur: (s) => {
    if (s === null || s === undefined) return '–';
    s = Math.round(s);
    const d = Math.floor(s / 86400), h = Math.floor((s % 86400) / 3600), m = Math.floor((s % 3600) / 60);
    if (d > 0) return `${d}d ${h}h`;
    if (h > 0) return `${h}h ${m}m`;
    if (m > 0) return `${m}m ${s % 60}s`;
    return `${s}s`;
  },
  time: (iso) => {
    const t = new Date(iso);
    return Number.isNaN(t.getTime()) ? String(iso ?? '–') : t.toLocaleTimeString();
  },
};

// ---------------------------------------------------------------------------------------------
// Health summary

function tile(key, value, sub, level) {
  const t = el('div', `tile${level ? ` ${level}` : ''}`);
  t.append(el('div', 'k', key), el('div', 'v', value));
  if (sub) t.append(el('div', 's', sub));
  return t;
}

function renderSummary(doc) {
  const h = doc.health;
  const s = h.system;
  const a = h.agent;
  const codes = new Map(h.reasons.map((r) => [r.code, r.severity]));
  const lvl = (...cs) => cs.map((c) => codes.get(c)).find(Boolean);
  const tiles = [
    tile('CPU', `${fmt.num(s.cpu_load_pct)} %`, `${s.cpu_cores} cores · load ${fmt.num(s.load_avg_1m, 2)}`),
    tile('Temperature', s.soc_temp_c === null ? 'n/a' : `${fmt.num(s.soc_temp_c, 1)} °C`, s.throttled ? `throttled ${s.throttled.raw}` : s.soc_temp_source || 'no sensor', lvl('temperature_high', 'throttled', 'under_voltage')),
    tile('Memory', `${fmt.mb(s.memory_used_mb)} / ${fmt.mb(s.memory_total_mb)}`, `agent ${fmt.mb(a.rss_mb)} rss`, lvl('memory_high')),
    tile('Disk free', fmt.mb(s.disk_free_mb), `of ${fmt.mb(s.disk_total_mb)} · ${s.disk_path}`, lvl('disk_low')),
    tile('Uptime', fmt.dur(s.uptime_s), `agent ${fmt.dur(a.uptime_s)}`),
    tile('Network', s.network ? `${s.network.interface} ${s.network.link_up ? 'up' : 'down'}` : '–', s.network ? [s.network.ip4, s.network.type].filter(Boolean).join(' · ') : '', lvl('network_down')),
    tile('Clock', s.clock.synced === null ? 'unknown' : s.clock.synced ? 'synchronised' : 'NOT synchronised', s.clock.offset_ms === null ? s.clock.source : `offset ${fmt.num(s.clock.offset_ms, 1)} ms`, lvl('clock_unsynced', 'clock_offset')),
  ];
  if (h.detector) {
    const d = h.detector;
    tiles.push(tile('Detector', d.state, `${fmt.num(d.inference_ms_mean)} ms mean · ${fmt.num(d.inference_ms_p95)} p95 · ${fmt.num(d.detection_fps, 1)} fps · ${d.restarts} restarts`, lvl('detector_stuck', 'detector_failed', 'detector_restarting')));
  }
  if (h.uplink) {
    const u = h.uplink;
    tiles.push(tile('Uplink', u.connected ? 'connected' : u.state, `session ${u.session} · ${fmt.num(u.publish_rate_per_s, 1)} msg/s${u.last_error ? ` · ${u.last_error}` : ''}`, lvl('uplink_disconnected')));
  }
  if (h.outbox) {
    const o = h.outbox;
    tiles.push(tile('Outbox', `${o.depth} waiting`, `oldest ${fmt.dur(o.oldest_unsent_age_s)} · ${o.evicted} evicted`, lvl('outbox_quarantined')));
  }
  tiles.push(tile('Event loop', `${fmt.num(a.event_loop_lag_ms)} ms`, `max ${fmt.num(a.event_loop_lag_max_ms)} ms`, lvl('event_loop_lag')));
  if (doc.restart) tiles.push(tile('Last restart', doc.restart.reason, `${doc.restart.count} restarts · ${fmt.time(doc.restart.at)}`));
  $('#summary').replaceChildren(...tiles);

  const reasons = h.reasons.map((r) => el('li', r.severity, r.message));
  $('#reasons').replaceChildren(...reasons);
  const badge = $('#badge');
  badge.textContent = h.status;
  badge.className = `badge ${h.status}`;
}

// ---------------------------------------------------------------------------------------------
// Cameras

/** @type {Map<string, Camera>} */
const cameras = new Map();

class Camera {
  constructor(id) {
    this.id = id;
    this.overlay = null;
    this.detections = [];
    this.root = el('article', 'camera');
    this.root.dataset.camera = id;
    const head = el('header');
    this.stateEl = el('span', 'state', '…');
    this.reasonEl = el('span', 'reason');
    this.liveEl = el('span', 'live');
    head.append(el('h2', '', id), this.stateEl, this.reasonEl, this.liveEl);
    const view = el('div', 'view');
    this.preview = el('canvas', 'preview');
    this.preview.width = 640;
    this.preview.height = 360;
    this.over = el('canvas', 'overlay');
    this.msg = el('div', 'msg', 'connecting…');
    view.append(this.preview, this.over, this.msg);
    const legend = el('div', 'legend');
    for (const [cls, text] of [['l-line', 'counting line (arrow: "in")'], ['l-zone', 'zone'], ['l-box', 'detection']]) {
      const span = el('span');
      span.append(el('i', cls), document.createTextNode(text));
      legend.append(span);
    }
    this.figs = el('dl', 'figures');
    this.root.append(head, view, legend, this.figs);
    this.live = new LivePreview(this);
    new ResizeObserver(() => this.drawOverlay()).observe(this.preview);
  }

  update(cam) {
    const f = cam.figures;
    const state = f ? f.status : 'unknown';
    this.stateEl.textContent = state;
    this.stateEl.className = `state ${state}`;
    this.reasonEl.textContent = f && f.reason ? f.reason : '';
    const rows = f
      ? [
          ['camera fps', fmt.num(f.camera_fps, 1)],
          ['processed fps', fmt.num(f.process_fps, 1)],
          ['skipped fps', fmt.num(f.skipped_fps, 1)],
          ['motion-skipped', fmt.num(f.motion_skipped_fps, 1)],
          ['reconnects/h', String(f.reconnects_last_hour)],
          ['stalls/h', String(f.stalls_last_hour)],
          ['last frame', f.last_frame_age_s === null ? '–' : `${fmt.num(f.last_frame_age_s, 1)} s`],
          ['detections', String(cam.detections.length)],
        ]
      : [];
    this.figs.replaceChildren(
      ...rows.map(([k, v]) => {
        const d = el('div');
        d.append(el('dt', '', k), el('dd', '', v));
        return d;
      }),
    );
    const first = this.overlay === null;
    this.overlay = cam.overlay;
    if (first && this.overlay && !this.live.gotFrame) {
      // Before the first frame, give the canvas the camera's aspect ratio so lines and zones show at once.
      this.preview.width = 640;
      this.preview.height = Math.round((640 * this.overlay.frame.height) / this.overlay.frame.width);
    }
    if (!this.live.open) this.detections = cam.detections;
    this.drawOverlay();
  }

  drawFrame(bitmap) {
    if (this.preview.width !== bitmap.width || this.preview.height !== bitmap.height) {
      this.preview.width = bitmap.width;
      this.preview.height = bitmap.height;
    }
    this.preview.getContext('2d').drawImage(bitmap, 0, 0);
    bitmap.close();
    this.drawOverlay();
  }

  drawOverlay() {
    const c = this.over;
    const dpr = window.devicePixelRatio || 1;
    const w = Math.max(1, Math.round(this.preview.clientWidth * dpr));
    const h = Math.max(1, Math.round(this.preview.clientHeight * dpr));
    if (c.width !== w || c.height !== h) {
      c.width = w;
      c.height = h;
    }
    const ctx = c.getContext('2d');
    ctx.clearRect(0, 0, w, h);
    const o = this.overlay;
    if (!o) return;
    const sx = w / o.frame.width;
    const sy = h / o.frame.height;
    const P = (p) => [p[0] * sx, p[1] * sy];
    const px = (n) => n * dpr;
    ctx.lineJoin = 'round';
    ctx.lineCap = 'round';
    ctx.font = `600 ${px(12)}px system-ui, sans-serif`;
    ctx.textBaseline = 'top';

    for (const z of o.zones) {
      ctx.beginPath();
      z.polygon.forEach((p, i) => (i === 0 ? ctx.moveTo(...P(p)) : ctx.lineTo(...P(p))));
      ctx.closePath();
      ctx.fillStyle = 'rgba(0, 200, 255, 0.12)';
      ctx.fill();
      ctx.setLineDash([px(6), px(4)]);
      ctx.lineWidth = px(2);
      ctx.strokeStyle = COLORS.zone;
      ctx.stroke();
      ctx.setLineDash([]);
      const [x, y] = P(z.polygon[0]);
      label(ctx, `zone ${z.id}`, x + px(4), y + px(4), COLORS.zone, px);
    }

    for (const l of o.lines) {
      const [ax, ay] = P(l.a);
      const [bx, by] = P(l.b);
      for (const [width, color] of [[px(7), COLORS.shadow], [px(3), COLORS.line]]) {
        ctx.beginPath();
        ctx.moveTo(ax, ay);
        ctx.lineTo(bx, by);
        ctx.lineWidth = width;
        ctx.strokeStyle = color;
        ctx.stroke();
      }
      // "in" = from the left of a→b to its right; in image coordinates (y down) the right-hand normal is (-dy, dx).
      const len = Math.hypot(bx - ax, by - ay) || 1;
      const nx = -(by - ay) / len;
      const ny = (bx - ax) / len;
      const mx = (ax + bx) / 2 + ((bx - ax) / len) * px(30);
      const my = (ay + by) / 2 + ((by - ay) / len) * px(30);
      arrow(ctx, mx, my, mx + nx * px(22), my + ny * px(22), COLORS.line, px);
      label(ctx, `line ${l.id}`, ax + px(6), ay + px(8), COLORS.line, px);
    }

    for (const d of this.detections) {
      const [x1, y1] = P([d.box[0], d.box[1]]);
      const [x2, y2] = P([d.box[2], d.box[3]]);
      ctx.lineWidth = px(2);
      ctx.strokeStyle = COLORS.box;
      ctx.strokeRect(x1, y1, x2 - x1, y2 - y1);
      const id = d.track_id === undefined || d.track_id === null ? '' : ` #${d.track_id}`;
      label(ctx, `${d.class_name}${id} ${Math.round(d.score * 100)}%`, x1, Math.max(0, y1 - px(17)), COLORS.box, px);
    }
  }
}

function label(ctx, text, x, y, color, px) {
  const w = ctx.measureText(text).width + px(8);
  ctx.fillStyle = 'rgba(0, 0, 0, 0.7)';
  ctx.fillRect(x, y, w, px(17));
  ctx.fillStyle = color;
  ctx.fillText(text, x + px(4), y + px(2));
}

function arrow(ctx, x1, y1, x2, y2, color, px) {
  const a = Math.atan2(y2 - y1, x2 - x1);
  ctx.strokeStyle = color;
  ctx.fillStyle = color;
  ctx.lineWidth = px(2);
  ctx.beginPath();
  ctx.moveTo(x1, y1);
  ctx.lineTo(x2, y2);
  ctx.stroke();
  ctx.beginPath();
  ctx.moveTo(x2, y2);
  ctx.lineTo(x2 - px(8) * Math.cos(a - 0.45), y2 - px(8) * Math.sin(a - 0.45));
  ctx.lineTo(x2 - px(8) * Math.cos(a + 0.45), y2 - px(8) * Math.sin(a + 0.45));
  ctx.closePath();
  ctx.fill();
}

/**
 * The live preview of one camera: a websocket of JPEG frames while the tab is visible. When the websocket
 * cannot be opened, frames are fetched from frame.jpg once a second instead.
 */
class LivePreview {
  constructor(cam) {
    this.cam = cam;
    this.ws = null;
    this.open = false;
    this.gotFrame = false;
    this.decoding = false;
    this.failures = 0;
    this.retryTimer = null;
    this.pollTimer = null;
    this.frames = 0;
  }

  restart() {
    this.stop();
    this.failures = 0;
    this.start();
  }

  start() {
    if (document.hidden || this.ws) return;
    const url = new URL(`api/cameras/${encodeURIComponent(this.cam.id)}/live`, location.href);
    url.protocol = location.protocol === 'https:' ? 'wss:' : 'ws:';
    if (token) url.searchParams.set('token', token);
    const ws = new WebSocket(url);
    ws.binaryType = 'blob';
    this.ws = ws;
    ws.onopen = () => {
      this.open = true;
      this.failures = 0;
      this.stopPolling();
      this.cam.liveEl.textContent = 'live';
    };
    ws.onmessage = (ev) => {
      if (typeof ev.data === 'string') return this.onText(ev.data);
      this.show(ev.data);
    };
    ws.onclose = () => {
      this.open = false;
      if (this.ws !== ws) return;
      this.ws = null;
      this.failures += 1;
      this.cam.liveEl.textContent = 'reconnecting';
      if (this.failures >= 2) this.startPolling();
      const delay = Math.min(10000, 1000 * 2 ** Math.min(this.failures, 4));
      this.retryTimer = setTimeout(() => {
        this.retryTimer = null;
        this.start();
      }, delay);
    };
  }

  stop() {
    clearTimeout(this.retryTimer);
    this.retryTimer = null;
    this.stopPolling();
    const ws = this.ws;
    this.ws = null;
    this.open = false;
    if (ws) ws.close();
  }

  onText(text) {
    let m;
    try {
      m = JSON.parse(text);
    } catch {
      return;
    }
    if (m.type === 'detections') {
      this.cam.detections = Array.isArray(m.detections) ? m.detections : [];
      this.cam.drawOverlay();
    } else if (m.type === 'status') {
      if (m.state === 'running') this.cam.msg.textContent = this.gotFrame ? '' : 'waiting for the first frame…';
      else this.cam.msg.textContent = m.state === 'starting' ? 'starting preview…' : `preview: ${m.message || m.state}`;
    }
  }

  /** Draws a JPEG blob; frames arriving while one is decoding are dropped (never queue). */
  show(blob) {
    if (this.decoding) return;
    this.decoding = true;
    createImageBitmap(blob)
      .then((bitmap) => {
        this.gotFrame = true;
        this.frames += 1;
        this.cam.msg.textContent = '';
        this.cam.drawFrame(bitmap);
      })
      .catch(() => undefined)
      .finally(() => {
        this.decoding = false;
      });
  }

  startPolling() {
    if (this.pollTimer) return;
    this.cam.liveEl.textContent = 'snapshots';
    const tick = async () => {
      try {
        const res = await api(`api/cameras/${encodeURIComponent(this.cam.id)}/frame.jpg`);
        if (res.ok) this.show(await res.blob());
        else this.cam.msg.textContent = 'no frame available';
      } catch (err) {
        if (err instanceof Unauthorized) askToken();
      }
      if (this.pollTimer) this.pollTimer = setTimeout(tick, 1000);
    };
    this.pollTimer = setTimeout(tick, 0);
  }

  stopPolling() {
    clearTimeout(this.pollTimer);
    this.pollTimer = null;
  }
}

// Stop the previews while the tab is hidden: the box runs one ffmpeg per watched camera.
document.addEventListener('visibilitychange', () => {
  for (const cam of cameras.values()) {
    if (document.hidden) cam.live.stop();
    else cam.live.restart();
  }
});

function renderCameras(doc) {
  const box = $('#cameras');
  for (const cam of doc.cameras) {
    let c = cameras.get(cam.id);
    if (!c) {
      c = new Camera(cam.id);
      cameras.set(cam.id, c);
      box.append(c.root);
      c.live.start();
    }
    c.update(cam);
  }
  for (const [id, c] of cameras) {
    if (!doc.cameras.some((x) => x.id === id)) {
      c.live.stop();
      c.root.remove();
      cameras.delete(id);
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Events

function renderEvents(events) {
  const rows = events.map((ev) => {
    const e = ev && typeof ev === 'object' ? ev : { value: ev };
    const time = e.captured_at ?? e.ts ?? e.time ?? e.sent_at;
    const camera = e.camera ?? e.camera_id ?? (e.sensor && e.sensor.id) ?? '';
    const type = e.type ?? e.kind ?? '';
    const rest = { ...e };
    for (const k of ['captured_at', 'ts', 'time', 'sent_at', 'camera', 'camera_id', 'type', 'kind', 'id', 'seq', 'replayed']) delete rest[k];
    let details = JSON.stringify(rest);
    if (details.length > 220) details = `${details.slice(0, 217)}…`;
    const tr = el('tr');
    tr.append(el('td', 'time', time ? fmt.time(time) : '–'), el('td', '', String(camera)), el('td', '', String(type)), el('td', 'details', details));
    return tr;
  });
  $('#events tbody').replaceChildren(...rows);
  $('#no-events').hidden = rows.length > 0;
}

// ---------------------------------------------------------------------------------------------
// Polling

let pollTimer = null;

async function poll() {
  clearTimeout(pollTimer);
  let delay = POLL_MS;
  try {
    const res = await api('api/status');
    // 503 + Retry-After: the box is at its connection limit; come back when it says.
    if (res.status === 503) delay = Math.max(POLL_MS, 1000 * (Number(res.headers.get('Retry-After')) || 0));
    if (!res.ok) throw new Error(res.status === 503 ? 'busy' : `HTTP ${res.status}`);
    const doc = await res.json();
    $('#auth').hidden = true;
    if (doc.device) $('#device').textContent = `${doc.device.site} / ${doc.device.id}`;
    renderSummary(doc);
    renderCameras(doc);
    renderEvents(doc.events || []);
    $('#updated').textContent = `updated ${new Date().toLocaleTimeString()}`;
  } catch (err) {
    if (err instanceof Unauthorized) {
      askToken();
      return; // resumes when a token is entered
    }
    $('#updated').textContent = `no answer from the box (${err.message || err}) — retrying`;
    $('#badge').className = 'badge unknown';
    $('#badge').textContent = 'offline';
  }
  pollTimer = setTimeout(poll, delay);
}

void poll();
