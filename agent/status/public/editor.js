// The line and zone editor of one camera, over its live preview. A line: click a, then b (the arrow shows the
// "in" side). A zone: click its corners, double-click or Enter to close. Escape starts over, Backspace takes
// the last corner back. The YAML snippet is in camera pixels; Validate asks the box to check the running
// config with it (api/config/validate, the same checks as `config check`), Save pushes it through the
// box's checked config change with probation and rollback (api/config/apply).

import { postJson, askToken, Unauthorized } from './api.js';
import { el } from './dom.js';
import { contentBox, freeId, inNormal, lineSnippet, toCamera, toCanvas, zoneSnippet } from './edit-geometry.js';
import { arrow, COLORS } from './overlay.js';

const EDIT_COLOR = '#ff4fd8';
const HINTS = {
  line: 'Click the line\'s start (a), then its end (b). The arrow points to the "in" side: crossing from the left of a→b to its right.',
  zone: 'Click the zone\'s corners; double-click, press Enter or "Close zone" to close it. Backspace removes the last corner, Escape starts over.',
};

export class Editor {
  /** `cam`: the page's Camera (id, view and preview elements, overlay `{frame, lines, zones}`). */
  constructor(cam) {
    this.cam = cam;
    this.active = false;
    this.editable = false;
    this.kind = 'line';
    this.points = [];
    this.closed = false;
    this.hover = null;
    this.autoId = '';
    this.baseHash = null;
    this.validated = '';

    this.canvas = el('canvas', 'edit');
    this.canvas.tabIndex = 0;
    this.canvas.setAttribute('aria-label', `draw a line or zone on camera ${cam.id}`);
    this.toggle = el('button', 'edit-toggle', 'Edit lines & zones');
    this.toggle.type = 'button';
    this.panel = el('section', 'editor');
    this.panel.hidden = true;
    this.buildPanel();

    this.toggle.addEventListener('click', () => this.setActive(!this.active));
    this.canvas.addEventListener('click', (ev) => this.onClick(ev));
    this.canvas.addEventListener('dblclick', (ev) => {
      ev.preventDefault();
      if (this.kind === 'zone') this.close();
    });
    this.canvas.addEventListener('keydown', (ev) => this.onKey(ev));
    this.canvas.addEventListener('mousemove', (ev) => {
      this.hover = this.at(ev);
      this.cursorEl.textContent = this.hover ? `x ${this.hover[0]} · y ${this.hover[1]} px` : '';
      this.draw();
    });
    this.canvas.addEventListener('mouseleave', () => {
      this.hover = null;
      this.cursorEl.textContent = '';
      this.draw();
    });
  }

  buildPanel() {
    const bar = el('div', 'edit-bar');
    this.kindInputs = ['line', 'zone'].map((k) => {
      const input = el('input');
      input.type = 'radio';
      input.name = `edit-kind-${this.cam.id}`;
      input.value = k;
      input.checked = k === this.kind;
      input.addEventListener('change', () => input.checked && this.setKind(k));
      const label = el('label', `edit-kind-${k}`);
      label.append(input, document.createTextNode(k === 'line' ? ' Line' : ' Zone'));
      return label;
    });
    const idLabel = el('label', 'edit-id-label', 'id ');
    this.idInput = el('input', 'edit-id');
    this.idInput.spellcheck = false;
    this.idInput.autocomplete = 'off';
    this.idInput.addEventListener('input', () => this.changed());
    idLabel.append(this.idInput);
    this.flipBtn = this.button('edit-flip', 'Swap a ↔ b', () => {
      if (this.points.length === 2) this.points.reverse();
      this.changed();
    });
    this.flipBtn.title = 'Reverse the line: "in" becomes "out"';
    this.closeBtn = this.button('edit-close', 'Close zone', () => this.close()); // for touch screens: no double-click, no Enter
    this.closeBtn.hidden = true;
    const clear = this.button('edit-clear', 'Clear', () => this.reset());
    this.cursorEl = el('span', 'edit-cursor');
    bar.append(...this.kindInputs, idLabel, this.flipBtn, this.closeBtn, clear, this.cursorEl);

    this.hintEl = el('p', 'edit-hint', HINTS.line);
    this.idNote = el('p', 'edit-note');
    this.yamlEl = el('textarea', 'edit-yaml');
    this.yamlEl.readOnly = true;
    this.yamlEl.rows = 6;
    this.yamlEl.spellcheck = false;
    this.yamlEl.setAttribute('aria-label', 'YAML of the line or zone');
    const actions = el('div', 'edit-actions');
    this.validateBtn = this.button('edit-validate', 'Validate', () => void this.send('validate'));
    this.saveBtn = this.button('edit-save', 'Save to the box', () => void this.send('apply'));
    this.resultEl = el('span', 'edit-result');
    actions.append(this.validateBtn, this.saveBtn, this.resultEl);
    this.problemsEl = el('ul', 'edit-problems');
    this.panel.append(bar, this.hintEl, this.idNote, this.yamlEl, actions, this.problemsEl);
  }

  button(cls, text, onClick) {
    const b = el('button', cls, text);
    b.type = 'button';
    b.addEventListener('click', onClick);
    return b;
  }

  /** Whether the box can validate and save (it has a config applier), from api/status. */
  setEditable(editable) {
    this.editable = editable;
    this.refreshButtons();
  }

  setActive(on) {
    this.active = on;
    this.panel.hidden = !on;
    this.cam.view.classList.toggle('editing', on);
    this.toggle.textContent = on ? 'Done editing' : 'Edit lines & zones';
    this.toggle.setAttribute('aria-pressed', String(on));
    if (on) {
      this.reset();
      this.canvas.focus();
    } else this.draw();
  }

  setKind(kind) {
    this.kind = kind;
    for (const l of this.kindInputs) l.firstChild.checked = l.firstChild.value === kind;
    this.hintEl.textContent = HINTS[kind];
    this.flipBtn.hidden = kind !== 'line';
    this.closeBtn.hidden = kind !== 'zone';
    this.idInput.value = ''; // a fresh id of the new kind
    this.reset();
  }

  /** Ids of the camera's lines and zones in the running config. */
  takenIds() {
    const o = this.cam.overlay;
    return o ? [...o.lines.map((l) => l.id), ...o.zones.map((z) => z.id)] : [];
  }

  reset() {
    this.points = [];
    this.closed = false;
    if (this.idInput.value === '' || this.idInput.value === this.autoId) {
      this.autoId = freeId(this.kind, this.takenIds());
      this.idInput.value = this.autoId;
    }
    this.changed();
  }

  /** The camera pixel under a mouse event, or null (no frame size yet, or in a band around the picture). */
  at(ev) {
    const frame = this.cam.overlay && this.cam.overlay.frame;
    if (!frame) return null;
    const p = this.cam.preview;
    return toCamera(ev.clientX, ev.clientY, contentBox(p.getBoundingClientRect(), p.width, p.height, getComputedStyle(p).objectFit), frame);
  }

  onClick(ev) {
    this.canvas.focus();
    const p = this.at(ev);
    if (!p) return;
    if (this.kind === 'line') {
      if (this.points.length >= 2) this.points = [];
      this.points.push(p);
    } else {
      if (ev.detail > 1) return; // the second click of a double-click closes, it adds no corner
      if (this.closed) {
        this.points = [];
        this.closed = false;
      }
      this.points.push(p);
    }
    this.changed();
  }

  onKey(ev) {
    if (ev.key === 'Enter' && this.kind === 'zone') this.close();
    else if (ev.key === 'Escape') this.reset();
    else if (ev.key === 'Backspace' && !this.closed && this.points.length > 0) {
      this.points.pop();
      this.changed();
    } else return;
    ev.preventDefault();
  }

  /** Closes the zone: repeated corners dropped, at least three needed. */
  close() {
    if (this.closed) return;
    const pts = this.points.filter((p, i, all) => i === 0 || p[0] !== all[i - 1][0] || p[1] !== all[i - 1][1]);
    if (pts.length > 1 && pts[0][0] === pts[pts.length - 1][0] && pts[0][1] === pts[pts.length - 1][1]) pts.pop();
    if (pts.length < 3) {
      this.hintEl.textContent = `A zone needs at least 3 corners (${pts.length} so far). ${HINTS.zone}`;
      return;
    }
    this.points = pts;
    this.closed = true;
    this.hintEl.textContent = HINTS.zone;
    this.changed();
  }

  /** The drawn line or zone as the config has it, or null while unfinished. */
  item() {
    const id = this.idInput.value.trim();
    if (this.kind === 'line') return this.points.length === 2 ? { id, a: this.points[0], b: this.points[1] } : null;
    return this.closed ? { id, polygon: this.points } : null;
  }

  /** After any change: the snippet, the note on the id, no verdict any more. */
  changed() {
    const item = this.item();
    const id = this.idInput.value.trim();
    this.yamlEl.value = !item ? '' : this.kind === 'line' ? lineSnippet(this.cam.id, id, item.a, item.b) : zoneSnippet(this.cam.id, id, item.polygon);
    const o = this.cam.overlay;
    const same = o && (this.kind === 'line' ? o.lines : o.zones).some((x) => x.id === id);
    const other = o && (this.kind === 'line' ? o.zones : o.lines).some((x) => x.id === id);
    this.idNote.textContent = same ? `Saving replaces the ${this.kind} "${id}" (its other settings are kept).` : other ? `"${id}" is taken by a ${this.kind === 'line' ? 'zone' : 'line'} of this camera.` : '';
    if (JSON.stringify(item) !== this.validated) this.verdict('', '', []);
    this.refreshButtons();
    this.draw();
  }

  refreshButtons() {
    const item = this.item();
    const why = this.editable ? '' : 'this box has no config applier: copy the YAML instead';
    this.validateBtn.disabled = !this.editable || !item;
    this.saveBtn.disabled = !this.editable || !item;
    this.validateBtn.title = why;
    this.saveBtn.title = why;
  }

  verdict(state, text, problems, itemPath) {
    this.resultEl.dataset.state = state;
    this.resultEl.textContent = text;
    this.problemsEl.replaceChildren(
      ...problems.map((p) => {
        const li = el('li', itemPath && p.startsWith(`${itemPath}.`) ? 'mine' : '', p);
        return li;
      }),
    );
  }

  /** Validate (`validate`) or save (`apply`) the drawn item on the box; the verdict and problems shown. */
  async send(route) {
    const item = this.item();
    if (!item) return;
    const body = { camera: this.cam.id, kind: this.kind, item };
    // Saving what was validated: against the config it was validated with (a change in between is a conflict).
    if (route === 'apply' && this.baseHash && this.validated === JSON.stringify(item)) body.base_hash = this.baseHash;
    this.verdict('busy', route === 'apply' ? 'saving…' : 'checking…', []);
    let r;
    try {
      r = await postJson(`api/config/${route}`, body);
    } catch (err) {
      if (err instanceof Unauthorized) askToken();
      return this.verdict('error', `no answer from the box (${err.message || err})`, []);
    }
    const b = r.body || {};
    const problems = Array.isArray(b.problems) ? b.problems : b.error ? [b.error] : [];
    if (b.problems_total > problems.length) problems.push(`… and ${b.problems_total - problems.length} more`);
    if (route === 'validate') {
      if (r.ok && b.ok) {
        this.validated = JSON.stringify(item);
        this.baseHash = b.base_hash || null;
        return this.verdict('ok', `valid${b.changes && b.changes.length ? ` — ${b.changes.join('; ')}` : ''}`, []);
      }
      this.validated = '';
      return this.verdict('invalid', r.ok ? 'not valid:' : `refused (${b.code || `HTTP ${r.status}`})`, problems, b.item_path);
    }
    if (r.ok && b.ok) {
      const until = b.probation_until ? `; on probation until ${new Date(b.probation_until).toLocaleTimeString()}` : '';
      this.validated = '';
      this.verdict('applied', `${b.outcome === 'unchanged' ? 'unchanged' : 'applied'} (config ${b.hash || ''})${b.restart ? `, the agent restarts: ${b.restart}` : ''}${until}`, []);
      this.points = [];
      this.closed = false;
      this.refreshButtons();
      this.draw();
      return;
    }
    this.verdict('refused', `refused${b.code ? ` (${b.code})` : ''}:`, problems, b.item_path);
  }

  /** Draws what is being edited, in camera pixels scaled to the preview as shown. */
  draw() {
    const c = this.canvas;
    const p = this.cam.preview;
    const dpr = window.devicePixelRatio || 1;
    const w = Math.max(1, Math.round(p.clientWidth * dpr));
    const h = Math.max(1, Math.round(p.clientHeight * dpr));
    if (c.width !== w || c.height !== h) {
      c.width = w;
      c.height = h;
    }
    const ctx = c.getContext('2d');
    ctx.clearRect(0, 0, w, h);
    const frame = this.cam.overlay && this.cam.overlay.frame;
    if (!this.active || !frame) return;
    const rect = p.getBoundingClientRect();
    const box = contentBox(rect, p.width, p.height, getComputedStyle(p).objectFit);
    const P = (q) => toCanvas(q, frame, box, rect, w, h);
    const px = (n) => n * dpr;
    const pts = this.points.map(P);
    const open = this.kind === 'line' ? this.points.length === 1 : !this.closed;
    const path = open && this.hover ? [...pts, P(this.hover)] : pts;
    ctx.lineJoin = 'round';
    ctx.lineCap = 'round';
    ctx.font = `600 ${px(12)}px system-ui, sans-serif`;
    ctx.textBaseline = 'top';
    if (path.length >= 2) {
      ctx.beginPath();
      path.forEach((q, i) => (i === 0 ? ctx.moveTo(q[0], q[1]) : ctx.lineTo(q[0], q[1])));
      if (this.kind === 'zone' && (this.closed || path.length >= 3)) {
        ctx.closePath();
        ctx.fillStyle = 'rgba(255, 79, 216, 0.15)';
        ctx.fill();
      }
      for (const [width, color] of [[px(6), COLORS.shadow], [px(2.5), EDIT_COLOR]]) {
        ctx.lineWidth = width;
        ctx.strokeStyle = color;
        ctx.stroke();
      }
    }
    if (this.kind === 'line' && path.length === 2) {
      const [a, b] = path;
      const [nx, ny] = inNormal(a, b);
      if (nx !== 0 || ny !== 0) {
        const mx = (a[0] + b[0]) / 2;
        const my = (a[1] + b[1]) / 2;
        arrow(ctx, mx, my, mx + nx * px(28), my + ny * px(28), EDIT_COLOR, px);
        this.label(ctx, 'in', mx + nx * px(36), my + ny * px(36), px);
      }
    }
    const names = this.kind === 'line' ? ['a', 'b'] : this.points.map((_, i) => String(i + 1));
    pts.forEach((q, i) => {
      ctx.beginPath();
      ctx.arc(q[0], q[1], px(4), 0, 2 * Math.PI);
      ctx.fillStyle = EDIT_COLOR;
      ctx.fill();
      ctx.lineWidth = px(1.5);
      ctx.strokeStyle = '#000';
      ctx.stroke();
      this.label(ctx, `${names[i]} (${this.points[i][0]}, ${this.points[i][1]})`, q[0] + px(7), q[1] + px(5), px);
    });
  }

  label(ctx, text, x, y, px) {
    const w = ctx.measureText(text).width + px(8);
    const lx = Math.min(Math.max(0, x), ctx.canvas.width - w);
    const ly = Math.min(Math.max(0, y), ctx.canvas.height - px(17));
    ctx.fillStyle = 'rgba(0, 0, 0, 0.7)';
    ctx.fillRect(lx, ly, w, px(17));
    ctx.fillStyle = EDIT_COLOR;
    ctx.fillText(text, lx + px(4), ly + px(2));
  }
}
