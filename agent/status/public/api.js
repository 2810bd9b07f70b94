// The box's API as the page calls it, with the status token.

import { $ } from './dom.js';

const TOKEN_KEY = 'roadside-status-token';

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

export const getToken = () => token;

export function setToken(t) {
  token = t;
  sessionStorage.setItem(TOKEN_KEY, token);
}

export class Unauthorized extends Error {}

export async function api(path, opts = {}) {
  const headers = { ...opts.headers, ...(token ? { Authorization: `Bearer ${token}` } : {}) };
  const res = await fetch(path, { ...opts, headers, cache: 'no-store' });
  if (res.status === 401) throw new Unauthorized();
  return res;
}

/** POSTs `body` as JSON; the answer's status and its JSON body (`{error}` when it has none). */
export async function postJson(path, body) {
  const res = await api(path, { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify(body) });
  let answer;
  try {
    answer = await res.json();
  } catch {
    answer = { error: `HTTP ${res.status}` };
  }
  return { status: res.status, ok: res.ok, body: answer };
}

export function askToken() {
  $('#auth').hidden = false;
  $('#token').focus();
}
