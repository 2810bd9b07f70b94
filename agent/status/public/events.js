// The "Recent events" table: one row per event (roadside.event/1, newest first), the fields a technician
// checks: when, which camera, what, which object, which line or zone, which way and how fast.

import { $, el, fmt } from './dom.js';

const num = (v) => typeof v === 'number' && Number.isFinite(v);

function objectCell(e) {
  const o = e.object;
  if (!o || typeof o !== 'object') return '–';
  const cls = o.class ?? o.class_name ?? 'object';
  return o.track_id === undefined || o.track_id === null ? String(cls) : `${cls} #${o.track_id}`;
}

function ruleCell(e) {
  const r = e.rule;
  const a = e.attributes || {};
  if (r && typeof r === 'object' && r.kind && r.id) return r.kind === 'signal' && a.line_id ? `signal ${r.id} · line ${a.line_id}` : `${r.kind} ${r.id}`;
  if (e.line) return `line ${e.line}`; // events without the rule object (older payloads)
  if (e.zone) return `zone ${e.zone}`;
  return '–';
}

function motionCell(e) {
  const a = e.attributes || {};
  const o = e.object || {};
  const parts = [];
  const direction = a.direction ?? e.direction;
  if (direction === 'in' || direction === 'out') parts.push(direction);
  if (num(o.speed_kmh)) parts.push(num(o.speed_uncertainty_kmh) ? `${fmt.num(o.speed_kmh)} ± ${fmt.num(o.speed_uncertainty_kmh)} km/h` : `${fmt.num(o.speed_kmh)} km/h`);
  if (e.type === 'flow' && a.in && a.out) {
    parts.push(`in ${a.in.volume} · out ${a.out.volume}`);
    const speeds = [a.in.speed_mean_kmh, a.out.speed_mean_kmh].filter(num);
    if (speeds.length > 0) parts.push(`mean ${speeds.map((s) => fmt.num(s)).join(' / ')} km/h`);
  }
  if (e.type === 'object_end' && num(a.max_speed_kmh)) parts.push(`max ${fmt.num(a.max_speed_kmh)} km/h`);
  const dwell = a.dwell_s ?? e.dwell_s;
  if (num(dwell)) parts.push(`dwell ${fmt.num(dwell, 1)} s`);
  if (e.type === 'zone_enter' && num(a.occupancy)) parts.push(`occupancy ${a.occupancy}`);
  return parts.length > 0 ? parts.join(' · ') : '–';
}

/** The cells of one event's row: time, camera, type, object, rule, direction / speed. */
export function eventCells(ev) {
  const e = ev && typeof ev === 'object' ? ev : {};
  const time = e.captured_at ?? e.ts ?? e.time ?? e.sent_at;
  return {
    time: time ? fmt.time(time) : '–',
    camera: String(e.camera ?? e.camera_id ?? '–'),
    type: String(e.type ?? e.kind ?? '–'),
    object: objectCell(e),
    rule: ruleCell(e),
    motion: motionCell(e),
    violation: e.priority === 'violation',
    iso: time ? String(time) : '',
  };
}

export function renderEvents(events) {
  const rows = events.map((ev) => {
    const c = eventCells(ev);
    const tr = el('tr', c.violation ? 'violation' : '');
    // Cell classes are prefixed: `.camera` is the camera card's class.
    const time = el('td', 'ev-time', c.time);
    if (c.iso) time.title = c.iso;
    tr.append(time, el('td', 'ev-camera', c.camera), el('td', 'ev-type', c.type), el('td', 'ev-object', c.object), el('td', 'ev-rule', c.rule), el('td', 'ev-motion', c.motion));
    return tr;
  });
  $('#events tbody').replaceChildren(...rows);
  $('#no-events').hidden = rows.length > 0;
}
