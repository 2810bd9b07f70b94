// roadside-agent status page. Plain ES modules, no build step; jsmpeg (MPEG-1 player) is the one third-party
// file, copied from its npm package by the build. Polls api/status every 1.5 s; each camera's live preview is
// drawn on a canvas (live.js), with lines, zones and detections drawn over it in camera pixels (overlay.js),
// and an editor to draw new lines and zones on it and push them to the box (editor.js).

import { api, askToken, setToken, Unauthorized } from './api.js';
import { $, el, fmt } from './dom.js';
import { Editor } from './editor.js';
import { renderEvents } from './events.js';
import { LivePreview } from './live.js';
import { drawOverlay, legendItems } from './overlay.js';

const POLL_MS = 1500;

$('#auth-form').addEventListener('submit', (ev) => {
  ev.preventDefault();
  setToken($('#token').value.trim());
  $('#auth').hidden = true;
  for (const cam of cameras.values()) cam.live.restart();
  void poll();
});

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
    this.view = view;
    this.preview = el('canvas', 'preview');
    this.preview.width = 640;
    this.preview.height = 360;
    this.over = el('canvas', 'overlay');
    this.msg = el('div', 'msg', 'connecting…');
    this.editor = new Editor(this);
    view.append(this.preview, this.over, this.editor.canvas, this.msg);
    head.append(this.editor.toggle);
    this.legend = el('div', 'legend');
    this.legendKey = '';
    this.figs = el('dl', 'figures');
    this.root.append(head, view, this.editor.panel, this.legend, this.figs);
    this.live = new LivePreview(this);
    new ResizeObserver(() => this.drawOverlay()).observe(this.preview);
  }

  update(cam, editable) {
    this.editor.setEditable(editable);
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
    this.renderLegend();
    this.drawOverlay();
  }

  /** The legend lists only what the camera has (a line, a zone), rebuilt when that changes (config reload). */
  renderLegend() {
    const items = legendItems(this.overlay);
    const key = items.map((i) => i[1]).join('|');
    if (key === this.legendKey) return;
    this.legendKey = key;
    this.legend.replaceChildren(
      ...items.map(([cls, text]) => {
        const span = el('span');
        span.dataset.legend = cls.slice(2);
        span.append(el('i', cls), document.createTextNode(text));
        return span;
      }),
    );
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
    drawOverlay(this.over, this.preview, this.overlay, this.detections);
    if (this.editor.active) this.editor.draw();
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
    c.update(cam, Boolean(doc.config && doc.config.editable));
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
