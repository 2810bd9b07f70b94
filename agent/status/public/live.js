// The live preview of one camera, while the tab is visible. First choice: MPEG-1 (api/cameras/:id/live?format=
// mpeg1, TS bytes on the page's websocket) played by jsmpeg on the preview canvas. It falls back to JPEG frames
// (the same websocket without `format`) when the box has no MPEG-1 for the camera (status "unavailable", close
// 4001), when jsmpeg does not load, or when no picture comes; and to snapshots (frame.jpg once a second) while
// the websocket cannot be opened.

import { api, askToken, getToken, Unauthorized } from './api.js';

/** No decoded MPEG-1 picture this long after the websocket opened: JPEG instead. */
const NO_PICTURE_MS = 10000;
const CLOSE_MPEG1_UNAVAILABLE = 4001;

let jsmpeg = null;
/** jsmpeg (@cycjimmy/jsmpeg-player, shipped with the page), loaded on first use. */
function loadJsmpeg() {
  jsmpeg ??= import('./jsmpeg-player.esm.js').then((m) => m.default);
  return jsmpeg;
}

/** A jsmpeg source fed with what our websocket receives (jsmpeg's own socket source would get the JSON too). */
class PushSource {
  constructor() {
    this.destination = null;
    this.streaming = true;
    this.established = false;
    this.completed = false;
    this.progress = 0;
  }
  connect(destination) {
    this.destination = destination;
  }
  start() {}
  resume() {}
  destroy() {
    this.destination = null;
  }
  write(data) {
    if (!this.destination) return;
    this.established = true;
    this.progress = 1;
    this.destination.write(data);
  }
}

export class LivePreview {
  /** `cam`: the page's Camera (its preview canvas, message and live-state elements, drawFrame, drawOverlay). */
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
    /** 'mpeg1' until it fails, then 'jpeg' until restart(). */
    this.mode = 'mpeg1';
    this.player = null;
    this.pending = [];
    this.pictureTimer = null;
  }

  restart() {
    this.stop();
    this.failures = 0;
    this.mode = 'mpeg1';
    this.start();
  }

  start() {
    if (document.hidden || this.ws) return;
    const mpeg1 = this.mode === 'mpeg1';
    const url = new URL(`api/cameras/${encodeURIComponent(this.cam.id)}/live`, location.href);
    url.protocol = location.protocol === 'https:' ? 'wss:' : 'ws:';
    if (getToken()) url.searchParams.set('token', getToken());
    if (mpeg1) url.searchParams.set('format', 'mpeg1');
    const ws = new WebSocket(url);
    ws.binaryType = mpeg1 ? 'arraybuffer' : 'blob';
    this.ws = ws;
    if (mpeg1) this.startPlayer(ws);
    ws.onopen = () => {
      this.open = true;
      this.stopPolling();
      this.cam.liveEl.textContent = mpeg1 ? 'live · MPEG-1' : 'live · JPEG';
      if (mpeg1) this.pictureTimer = setTimeout(() => this.fallback(), NO_PICTURE_MS);
      else this.failures = 0;
    };
    ws.onmessage = (ev) => {
      if (this.ws !== ws) return;
      if (typeof ev.data === 'string') return this.onText(ev.data);
      if (mpeg1) this.feed(ev.data);
      else this.show(ev.data);
    };
    ws.onclose = (ev) => {
      if (this.ws !== ws) return;
      this.open = false;
      this.ws = null;
      this.stopPlayer();
      if (mpeg1 && ev.code === CLOSE_MPEG1_UNAVAILABLE) return this.fallback();
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
    this.stopPlayer();
    const ws = this.ws;
    this.ws = null;
    this.open = false;
    if (ws) ws.close();
  }

  /** No MPEG-1 to be had: JPEG frames from now on (until restart()). */
  fallback() {
    if (this.mode !== 'mpeg1') return;
    this.mode = 'jpeg';
    const ws = this.ws;
    this.ws = null;
    this.open = false;
    this.stopPlayer();
    if (ws) ws.close();
    this.start();
  }

  startPlayer(ws) {
    this.pending = [];
    loadJsmpeg().then(
      (JSMpeg) => {
        if (this.ws !== ws) return;
        this.player = new JSMpeg.Player('', {
          source: PushSource,
          canvas: this.cam.preview,
          audio: false,
          disableGl: true, // a 2D canvas, shared with the JPEG path
          disableWebAssembly: true, // the page's policy runs no WebAssembly; the JS decoder keeps up with a preview
          pauseWhenHidden: false, // the preview stops when the tab hides (see app.js)
          videoBufferSize: 2 * 1024 * 1024, // a joining viewer gets the group of pictures so far at once
          onVideoDecode: () => this.onPicture(),
        });
        for (const data of this.pending) this.player.source.write(data);
        this.pending = [];
      },
      () => {
        if (this.ws === ws) this.fallback();
      },
    );
  }

  stopPlayer() {
    clearTimeout(this.pictureTimer);
    this.pictureTimer = null;
    this.pending = [];
    if (this.player) {
      this.player.destroy();
      this.player = null;
    }
  }

  feed(data) {
    if (this.player) this.player.source.write(data);
    else this.pending.push(data);
  }

  onPicture() {
    clearTimeout(this.pictureTimer);
    this.pictureTimer = null;
    this.failures = 0;
    this.gotFrame = true;
    this.frames += 1;
    this.cam.msg.textContent = '';
    this.cam.drawOverlay();
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
      if (m.state === 'unavailable') return this.fallback();
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
