// A websocket as a preview viewer: what the page receives from /api/cameras/:id/live (see StatusServer.upgrade).
import type { WebSocket } from 'ws';
import type { Mpeg1Viewer } from './mpeg1.js';
import type { PreviewViewer } from './preview.js';

/** A viewer whose socket has this much unsent data skips frames until it drains. */
export const WS_BACKLOG_BYTES = 1024 * 1024;
/** Close code after `{type: "status", state: "unavailable"}`: no MPEG-1 for now, the page falls back to JPEG. */
export const CLOSE_MPEG1_UNAVAILABLE = 4001;

/** `detections()` is the page's text message with the detections of the camera's latest processed frame. */
type DetectionsMessage = () => string;

function sendStatus(ws: WebSocket, state: string, message?: string): void {
  if (ws.readyState === ws.OPEN) ws.send(JSON.stringify({ type: 'status', state, ...(message ? { message } : {}) }));
}

/** Binary messages are JPEG frames, each followed by the detections. */
export function jpegViewer(ws: WebSocket, detections: DetectionsMessage): PreviewViewer {
  return {
    frame: (jpeg) => {
      if (ws.readyState !== ws.OPEN || ws.bufferedAmount > WS_BACKLOG_BYTES) return;
      ws.send(jpeg, { binary: true });
      ws.send(detections());
    },
    status: (state, message) => sendStatus(ws, state, message),
  };
}

/** Says MPEG-1 is unavailable and closes. */
export function refuseMpeg1(ws: WebSocket, message: string): void {
  sendStatus(ws, 'unavailable', message);
  ws.close(CLOSE_MPEG1_UNAVAILABLE, 'mpeg1 unavailable');
}

/**
 * Binary messages are MPEG-TS bytes for jsmpeg. A decoder can only start at a sequence header: nothing is sent
 * before one, nor after a backlog (bytes skipped) until the next.
 */
export function mpeg1Viewer(ws: WebSocket, detections: DetectionsMessage): Mpeg1Viewer {
  let needGop = true;
  return {
    data: (chunk) => {
      if (ws.readyState !== ws.OPEN) return;
      if (ws.bufferedAmount > WS_BACKLOG_BYTES) {
        needGop = true;
        return;
      }
      if (needGop && !chunk.gopStart) return;
      needGop = false;
      ws.send(chunk.data, { binary: true });
    },
    frame: () => {
      if (ws.readyState === ws.OPEN && !needGop) ws.send(detections());
    },
    status: (state, message) => (state === 'unavailable' ? refuseMpeg1(ws, message ?? 'unavailable') : sendStatus(ws, state, message)),
  };
}
