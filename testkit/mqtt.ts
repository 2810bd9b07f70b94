// mqtt.js helpers for tests against the real mosquitto.
import fs from 'node:fs';
import mqtt, { type IClientOptions, type MqttClient } from 'mqtt';
import type { TestCerts } from './certs.js';

export class MqttConnectError extends Error {
  constructor(
    message: string,
    /** MQTT reason code from CONNACK (e.g. 135 Not authorized), when the broker answered. */
    readonly reasonCode: number | undefined,
    /** Node error code, e.g. 'SELF_SIGNED_CERT_IN_CHAIN', 'ECONNREFUSED', 'ERR_SSL_TLSV13_ALERT_CERTIFICATE_REQUIRED'. */
    readonly errorCode: string | undefined,
    cause?: unknown,
  ) {
    super(message, { cause });
    this.name = 'MqttConnectError';
  }
}

/**
 * Connect (MQTT 5, no automatic reconnect unless the caller sets reconnectPeriod) and resolve once
 * CONNACK accepted. Rejects with MqttConnectError on refusal, TLS failure, close or timeout; the client is
 * then ended.
 */
export function connectMqtt(url: string, opts: IClientOptions = {}): Promise<MqttClient> {
  const client = mqtt.connect(url, { protocolVersion: 5, reconnectPeriod: 0, connectTimeout: 5_000, ...opts });
  return new Promise<MqttClient>((resolve, reject) => {
    const cleanup = (): void => {
      client.off('connect', onConnect);
      client.off('error', onError);
      client.off('close', onClose);
    };
    const fail = (err: MqttConnectError): void => {
      cleanup();
      client.on('error', () => undefined); // late errors after we gave up
      client.end(true);
      reject(err);
    };
    const onConnect = (): void => {
      cleanup();
      resolve(client);
    };
    const onError = (err: Error & { code?: number | string }): void => {
      const reasonCode = typeof err.code === 'number' ? err.code : undefined;
      const errorCode = typeof err.code === 'string' ? err.code : undefined;
      fail(new MqttConnectError(`MQTT connect to ${url} failed: ${err.message}`, reasonCode, errorCode, err));
    };
    const onClose = (): void => fail(new MqttConnectError(`MQTT connection to ${url} closed before CONNACK`, undefined, undefined));
    client.on('connect', onConnect);
    client.on('error', onError);
    client.on('close', onClose);
  });
}

/** Close a client (forcefully if it does not finish within 2 s). */
export async function endMqtt(client: MqttClient | undefined): Promise<void> {
  if (!client) return;
  await Promise.race([client.endAsync(), new Promise((r) => setTimeout(r, 2_000).unref())]);
  if (!client.disconnected) client.end(true);
}

/**
 * TLS options for mqtt.js: trust `ca` ('ca' = the test CA, 'other' = the unrelated CA, 'none' = system store),
 * optionally present the test client certificate (mutual TLS).
 */
export function mqttTlsOptions(certs: TestCerts, opts: { ca?: 'ca' | 'other' | 'none'; clientCert?: boolean } = {}): IClientOptions {
  const { ca = 'ca', clientCert = false } = opts;
  const out: IClientOptions = { rejectUnauthorized: true };
  if (ca !== 'none') out.ca = fs.readFileSync(ca === 'ca' ? certs.caFile : certs.otherCaFile);
  if (clientCert) {
    out.cert = fs.readFileSync(certs.clientCert);
    out.key = fs.readFileSync(certs.clientKey);
  }
  return out;
}
