// DOM and formatting helpers of the status page.

export const $ = (sel, root = document) => root.querySelector(sel);

export const el = (tag, cls, text) => {
  const e = document.createElement(tag);
  if (cls) e.className = cls;
  if (text !== undefined) e.textContent = text;
  return e;
};

export const fmt = {
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
