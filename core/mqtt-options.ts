// One way to build mqtt.js client options (TLS files, protocol, credentials) for every MQTT client of ours:
// the agent's uplink, the center's receiver and doctor's broker probe.
import { readFileSync } from 'node:fs';
import type { IClientOptions } from 'mqtt';
import { AgentError, errorMessage } from './errors.js';

export interface MqttTlsFiles {
  /** CA bundle (PEM) that signs the broker certificate; the system CAs when absent. */
  ca?: string | undefined;
  /** Client certificate and key (PEM) for mutual TLS. */
  cert?: string | undefined;
  key?: string | undefined;
  /** Server name to verify when it is not the URL's host. */
  servername?: string | undefined;
}

export interface MqttEndpoint {
  /** 5, or 4 (MQTT 3.1.1). */
  protocol: 4 | 5;
  client_id: string;
  username?: string | undefined;
  password?: string | undefined;
  tls?: MqttTlsFiles | undefined;
  keepalive_s?: number | undefined;
}

/** The TLS files' contents; a file that cannot be read is a TLS_FILES error naming it. */
export function readTlsFiles(tls: MqttTlsFiles | undefined, where = 'mqtt.tls'): Pick<IClientOptions, 'ca' | 'cert' | 'key'> {
  if (!tls) return {};
  const read = (what: 'ca' | 'cert' | 'key'): Buffer | undefined => {
    const f = tls[what];
    if (!f) return undefined;
    try {
      return readFileSync(f);
    } catch (err) {
      throw new AgentError('TLS_FILES', `cannot read ${where}.${what} (${f}): ${errorMessage(err)}`, { cause: err });
    }
  };
  return { ca: read('ca'), cert: read('cert'), key: read('key') };
}

/**
 * Client options with the parts every client shares: protocol, identity, credentials, TLS with the broker
 * certificate always verified, no automatic resubscribe, no reconnect of mqtt.js's own (callers that want
 * one set `reconnectPeriod`) and, on MQTT 5, a session that ends with the connection unless `extra` says
 * otherwise. `extra` wins for everything else (will, timeouts, properties).
 */
export function mqttClientOptions(e: MqttEndpoint, extra: IClientOptions = {}, tlsFiles = readTlsFiles(e.tls)): IClientOptions {
  return {
    protocolVersion: e.protocol,
    clientId: e.client_id,
    username: e.username,
    password: e.password,
    keepalive: e.keepalive_s ?? 30,
    reconnectPeriod: 0,
    resubscribe: false,
    ...(e.protocol === 5 ? { properties: { sessionExpiryInterval: 0 } } : {}),
    ...tlsFiles,
    ...(e.tls?.servername ? { servername: e.tls.servername } : {}),
    ...extra,
    rejectUnauthorized: true, // never switched off: a box that talks to any broker is a box anyone can command
  };
}
