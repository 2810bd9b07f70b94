// Access checks of the status server: bearer token (constant time), DNS-rebinding and cross-site websocket guards.
import { createHash, timingSafeEqual } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import { isIP } from 'node:net';

const digest = (s: string): Buffer => createHash('sha256').update(s, 'utf8').digest();

/** Constant-time comparison (both sides hashed first, so their lengths do not leak either). */
export function tokenMatches(expected: string, given: string | undefined | null): boolean {
  if (given === undefined || given === null) return false;
  return timingSafeEqual(digest(expected), digest(given));
}

/** The token a request carries: `Authorization: Bearer …`, else `?token=` when allowed (websocket). */
export function requestToken(req: IncomingMessage, url: URL, allowQuery: boolean): string | undefined {
  const auth = req.headers.authorization;
  if (typeof auth === 'string') {
    const m = /^Bearer\s+(\S+)\s*$/i.exec(auth);
    if (m) return m[1];
  }
  if (allowQuery) return url.searchParams.get('token') ?? undefined;
  return undefined;
}

function hostname(hostHeader: string): string {
  const h = hostHeader.trim().toLowerCase();
  if (h.startsWith('[')) return h.slice(1, h.indexOf(']'));
  const colon = h.lastIndexOf(':');
  return colon >= 0 && h.indexOf(':') === colon ? h.slice(0, colon) : h;
}

/** True for localhost, 127.0.0.0/8 and ::1. */
export function isLoopbackName(host: string): boolean {
  return host === 'localhost' || host === '::1' || (isIP(host) === 4 && host.startsWith('127.'));
}

/**
 * Without a token the server is reachable from loopback only, but a web page open in the technician's browser
 * could still reach it through DNS rebinding (evil.example resolving to 127.0.0.1). Such a request carries the
 * attacker's name in Host: accept only loopback names or IP literals.
 */
export function hostAllowed(req: IncomingMessage): boolean {
  const host = req.headers.host;
  if (typeof host !== 'string' || host === '') return false;
  const name = hostname(host);
  return isLoopbackName(name) || isIP(name) !== 0;
}

/** A browser's websocket handshake carries Origin: it must be this server's own origin (no cross-site hijacking). */
export function originAllowed(req: IncomingMessage): boolean {
  const origin = req.headers.origin;
  if (origin === undefined) return true; // not a browser
  try {
    return new URL(origin).host === (req.headers.host ?? '').toLowerCase();
  } catch {
    return false;
  }
}
