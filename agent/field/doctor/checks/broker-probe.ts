// Broker reachability without logging in: a TCP connect and, for mqtts:// and wss://, a TLS handshake that
// verifies the broker certificate (mqtt.tls.ca, servername) with no client certificate. For a box whose client
// certificate the center has not signed yet: the network path and the CA are checked now, the login later.
import { readFileSync } from 'node:fs';
import { isIP, connect as netConnect, type Socket } from 'node:net';
import { connect as tlsConnect, type PeerCertificate, type TLSSocket } from 'node:tls';
import type { Config } from '../../../../config/schema/index.js';
import { errorMessage } from '../../../../core/errors.js';
import { classifyError } from '../../../uplink/errors.js';
import type { PendingCert } from '../../pending-cert.js';
import { fail, warn, type CheckOutcome } from '../types.js';
import { brokerFix, CERT_WARN_DAYS } from './broker.js';

const DEFAULT_PORTS: Record<string, number> = { 'mqtt:': 1883, 'mqtts:': 8883, 'ws:': 80, 'wss:': 443 };

/** Rejects with the socket's error, or an ETIMEDOUT one after `ms`, or on abort. */
function opened<T extends Socket>(sock: T, event: 'connect' | 'secureConnect', ms: number, signal: AbortSignal): Promise<T> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => finish(Object.assign(new Error(`no answer within ${ms / 1000} s`), { code: 'ETIMEDOUT' })), ms);
    const onAbort = (): void => finish(new Error('aborted'));
    const finish = (err?: Error): void => {
      clearTimeout(timer);
      signal.removeEventListener('abort', onAbort);
      sock.off('error', finish);
      if (err) {
        sock.destroy();
        reject(err);
      } else resolve(sock);
    };
    sock.once(event, () => finish());
    sock.once('error', finish);
    signal.addEventListener('abort', onAbort, { once: true });
  });
}

const daysLeft = (validTo: string): number => Math.floor((Date.parse(validTo) - Date.now()) / 86_400_000);

export async function probeBroker(config: Config, pending: PendingCert, opts: { connectMs: number }, signal: AbortSignal): Promise<CheckOutcome> {
  const m = config.mqtt;
  const url = new URL(m.url);
  const secure = url.protocol === 'mqtts:' || url.protocol === 'wss:';
  const host = url.hostname.replace(/^\[|\]$/g, '');
  const port = Number(url.port) || DEFAULT_PORTS[url.protocol] || 1883;
  const figures: Record<string, unknown> = { url: m.url, tls: secure, login: 'not tested: client certificate pending', csr: pending.csr };
  const waiting = `login not tested: waiting for the center to sign the CSR ${pending.csr}`;
  const fixWaiting = `send ${pending.csr} to the control center and install the signed certificate as ${pending.cert}; then run doctor again`;
  const failure = (err: unknown): CheckOutcome => {
    const e = classifyError(err, { url: m.url, protocol: m.protocol });
    const cause = (err as { code?: unknown }).code;
    return fail(e.message, brokerFix(e, config), { ...figures, error: e.code, cause: typeof cause === 'string' ? cause : null });
  };

  let ca: Buffer | undefined;
  try {
    ca = m.tls?.ca ? readFileSync(m.tls.ca) : undefined;
  } catch (err) {
    return fail(`cannot read mqtt.tls.ca: ${errorMessage(err)}`, 'check the path in mqtt.tls.ca and that the file is readable', figures);
  }

  const t0 = performance.now();
  let tcp: Socket;
  try {
    tcp = await opened(netConnect({ host, port }), 'connect', opts.connectMs, signal);
  } catch (err) {
    return failure(err);
  }
  figures.tcp_ms = Math.round(performance.now() - t0);
  if (!secure) {
    tcp.destroy();
    return warn(`${m.url} reachable (TCP in ${String(figures.tcp_ms)} ms); ${waiting}`, fixWaiting, figures);
  }

  const t1 = performance.now();
  // SNI only for a name (never an IP address); the certificate is checked against servername, else host.
  const servername = m.tls?.servername ?? (isIP(host) ? undefined : host);
  let sock: TLSSocket;
  try {
    sock = await opened(tlsConnect({ socket: tcp, host, ca, servername, rejectUnauthorized: true }), 'secureConnect', opts.connectMs, signal);
  } catch (err) {
    const e = classifyError(err, { url: m.url, protocol: m.protocol });
    // TLS 1.2: a broker that requires client certificates ends the handshake before it completes.
    if (e.code === 'TLS_CLIENT_CERT_REJECTED') {
      figures.tls_verified = null;
      return warn(`${m.url} reachable (TCP in ${String(figures.tcp_ms)} ms); the broker asks for the client certificate in the TLS handshake, so its own certificate was not verified; ${waiting}`, fixWaiting, figures);
    }
    tcp.destroy();
    return failure(err);
  }
  const peer: PeerCertificate = sock.getPeerCertificate();
  const days = peer.valid_to ? daysLeft(peer.valid_to) : null;
  Object.assign(figures, {
    tls_ms: Math.round(performance.now() - t1),
    tls_verified: sock.authorized,
    tls_version: sock.getProtocol(),
    broker_cert_subject: peer.subject?.CN ?? null,
    broker_cert_days_left: days,
  });
  sock.on('error', () => undefined); // the broker's alert for the missing client certificate may follow
  sock.destroy();
  const expiry = days !== null && days < CERT_WARN_DAYS ? `; the broker certificate expires in ${days} days` : '';
  return warn(`${m.url} reachable, TLS verified (${String(figures.tls_version)}, broker certificate ${String(figures.broker_cert_subject)})${expiry}; ${waiting}`, fixWaiting, figures);
}
