import { AgentError } from '../../core/errors.js';

export const UPLINK_ERROR_CODES = [
  /** The broker refused the credentials (MQTT 5 reason 134 / 3.1.1 return code 4). */
  'MQTT_BAD_CREDENTIALS',
  /** The broker refused the client (MQTT 5 reason 135 / 3.1.1 return code 5, or 138 banned). */
  'MQTT_NOT_AUTHORIZED',
  /** Any other CONNACK refusal (protocol version, client id, server busy or unavailable...). */
  'MQTT_CONNECT_REFUSED',
  /** The broker's certificate chain does not end at a trusted CA (SELF_SIGNED_CERT_IN_CHAIN...). */
  'TLS_UNTRUSTED_CERT',
  /** The broker's certificate does not name the host we connected to. */
  'TLS_HOSTNAME_MISMATCH',
  /** The broker's certificate is expired or not yet valid. */
  'TLS_CERT_EXPIRED',
  /** The broker wants a client certificate (mutual TLS) and got none or an unacceptable one. */
  'TLS_CLIENT_CERT_REJECTED',
  /** Another TLS failure. */
  'TLS_ERROR',
  /** The TLS files in the config cannot be read. */
  'TLS_FILES',
  /** TCP level: connection refused, reset, unreachable, DNS. */
  'NETWORK',
  /** No CONNACK within the connect timeout. */
  'CONNECT_TIMEOUT',
  /** The connection dropped (keep-alive timeout, broker closed it, socket error). */
  'CONNECTION_LOST',
  /** The broker refused a published message (negative PUBACK). */
  'PUBLISH_REFUSED',
  /** Anything else reported by mqtt.js. */
  'MQTT_ERROR',
] as const;
export type UplinkErrorCode = (typeof UPLINK_ERROR_CODES)[number];

export class UplinkError extends AgentError {
  declare readonly code: UplinkErrorCode;
  constructor(
    code: UplinkErrorCode,
    message: string,
    /** MQTT reason / return code when the broker sent one. */
    readonly reasonCode?: number,
    options?: { cause?: unknown },
  ) {
    super(code, message, options);
  }
}

const UNTRUSTED = new Set([
  'SELF_SIGNED_CERT_IN_CHAIN',
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'UNABLE_TO_GET_ISSUER_CERT',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'CERT_UNTRUSTED',
  'CERT_SIGNATURE_FAILURE',
  'CERT_REJECTED',
  'INVALID_CA',
]);
const EXPIRED = new Set(['CERT_HAS_EXPIRED', 'CERT_NOT_YET_VALID']);
const NETWORK = new Set(['ECONNREFUSED', 'ECONNRESET', 'EHOSTUNREACH', 'ENETUNREACH', 'ENOTFOUND', 'EAI_AGAIN', 'ETIMEDOUT', 'EPIPE', 'ECONNABORTED']);

/** Maps whatever mqtt.js or the TLS socket reported to a typed, explained UplinkError. */
export function classifyError(err: unknown, ctx: { url: string; protocol: 4 | 5 }): UplinkError {
  if (err instanceof UplinkError) return err;
  const e = err as { code?: unknown; message?: unknown } | null;
  const message = typeof e?.message === 'string' ? e.message : String(err);
  const code = e?.code;
  if (typeof code === 'number') {
    const bad = ctx.protocol === 5 ? code === 134 : code === 4;
    const notAuth = ctx.protocol === 5 ? code === 135 || code === 138 : code === 5;
    if (bad) return new UplinkError('MQTT_BAD_CREDENTIALS', `broker ${ctx.url} refused the user name or password (reason ${code}: ${message})`, code, { cause: err });
    if (notAuth) {
      return new UplinkError('MQTT_NOT_AUTHORIZED', `broker ${ctx.url} refused this client: not authorized (reason ${code}: ${message}); check mqtt.username / password and the broker ACL`, code, { cause: err });
    }
    return new UplinkError('MQTT_CONNECT_REFUSED', `broker ${ctx.url} refused the connection (reason ${code}: ${message})`, code, { cause: err });
  }
  if (typeof code === 'string') {
    if (UNTRUSTED.has(code)) {
      return new UplinkError('TLS_UNTRUSTED_CERT', `the certificate of ${ctx.url} is not trusted (${code}): check mqtt.tls.ca`, undefined, { cause: err });
    }
    if (code === 'ERR_TLS_CERT_ALTNAME_INVALID') {
      return new UplinkError('TLS_HOSTNAME_MISMATCH', `the certificate of ${ctx.url} does not match the host name (${message}); set mqtt.tls.servername if needed`, undefined, { cause: err });
    }
    if (EXPIRED.has(code)) return new UplinkError('TLS_CERT_EXPIRED', `the certificate of ${ctx.url} is expired or not yet valid (${code}); check the clock too`, undefined, { cause: err });
    if (/ALERT_(CERTIFICATE_REQUIRED|BAD_CERTIFICATE|UNSUPPORTED_CERTIFICATE|CERTIFICATE_UNKNOWN|CERTIFICATE_EXPIRED|CERTIFICATE_REVOKED|UNKNOWN_CA|HANDSHAKE_FAILURE)/i.test(code)) {
      return new UplinkError('TLS_CLIENT_CERT_REJECTED', `${ctx.url} rejected the TLS client certificate (${code}): check mqtt.tls.cert / key`, undefined, { cause: err });
    }
    if (code.startsWith('ERR_SSL') || code.startsWith('ERR_TLS') || code.startsWith('EPROTO')) {
      return new UplinkError('TLS_ERROR', `TLS with ${ctx.url} failed (${code}: ${message.trim()})`, undefined, { cause: err });
    }
    if (NETWORK.has(code)) return new UplinkError('NETWORK', `cannot reach ${ctx.url} (${code})`, undefined, { cause: err });
  }
  if (/connack timeout|connect timeout/i.test(message)) return new UplinkError('CONNECT_TIMEOUT', `no CONNACK from ${ctx.url} in time`, undefined, { cause: err });
  if (/certificate required|alert/i.test(message)) {
    return new UplinkError('TLS_CLIENT_CERT_REJECTED', `${ctx.url} rejected the TLS handshake (${message}): check mqtt.tls.cert / key`, undefined, { cause: err });
  }
  return new UplinkError('MQTT_ERROR', `${ctx.url}: ${message}`, undefined, { cause: err });
}
