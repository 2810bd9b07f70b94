// Broker: reachable, TLS verified, authenticated, and a publish/subscribe round trip on {base}/doctor/{random},
// with the config's URL, protocol, TLS files and credentials (mqtt.js, like the uplink).
import { randomBytes, X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import type { TLSSocket } from 'node:tls';
import mqtt, { type IClientOptions, type MqttClient } from 'mqtt';
import type { Config } from '../../../../config/schema/index.js';
import { baseTopic } from '../../../../contract/topics.js';
import { errorMessage } from '../../../../core/errors.js';
import { classifyError, UplinkError } from '../../../uplink/errors.js';
import { fail, pass, warn, type CheckOutcome } from '../types.js';

export interface BrokerCheckOptions {
  /** Wait for CONNACK, ms. */
  connectMs: number;
  /** Wait for our own message to come back, ms. */
  roundTripMs: number;
}

/** A certificate that expires within this many days is a warning. */
export const CERT_WARN_DAYS = 30;
const DAY_MS = 86_400_000;

const NETWORK_FIX: Record<string, string> = {
  ECONNREFUSED: 'nothing accepts connections there: check mqtt.url host and port, and that the broker is up',
  ENOTFOUND: "the broker's host name does not resolve: check mqtt.url and the box's DNS",
  EAI_AGAIN: "the broker's host name does not resolve: check mqtt.url and the box's DNS",
  EHOSTUNREACH: 'no route to the broker: check the uplink (modem, VPN) and mqtt.url',
  ENETUNREACH: 'no route to the broker: check the uplink (modem, VPN) and mqtt.url',
  ETIMEDOUT: 'the broker does not answer: check the uplink, firewalls and mqtt.url',
  ECONNRESET: 'the broker hung up at once: mqtt:// on a TLS port (use mqtts://)? or the broker refuses this address',
  EPIPE: 'the broker hung up at once: mqtt:// on a TLS port (use mqtts://)? or the broker refuses this address',
};

/** The one-line fix for a broker failure, by the uplink's error classification. */
export function brokerFix(err: UplinkError, config: Config): string {
  const tls = config.mqtt.tls;
  const host = new URL(config.mqtt.url).hostname;
  const cause = (err.cause as { code?: unknown } | undefined)?.code;
  switch (err.code) {
    case 'NETWORK':
      return (typeof cause === 'string' ? NETWORK_FIX[cause] : undefined) ?? 'cannot reach the broker: check the uplink and mqtt.url';
    case 'TLS_UNTRUSTED_CERT':
      return tls?.ca
        ? `the broker certificate is not signed by mqtt.tls.ca (${tls.ca}): install the CA of the control center there`
        : 'the broker certificate is not signed by a system CA: set mqtt.tls.ca to the CA file of the control center';
    case 'TLS_HOSTNAME_MISMATCH':
      return `the broker certificate does not name "${tls?.servername ?? host}": use the name in the certificate in mqtt.url, or set mqtt.tls.servername`;
    case 'TLS_CERT_EXPIRED':
      return 'check the box clock (see the clock check); else the broker certificate must be renewed by the control center';
    case 'TLS_CLIENT_CERT_REJECTED':
      return tls?.cert
        ? 'the broker rejects the client certificate: install the certificate the control center signed for this box as mqtt.tls.cert (with its key)'
        : 'the broker wants a client certificate: run provision to make a key + CSR, send the CSR to the control center, set mqtt.tls.cert / key';
    case 'TLS_ERROR':
      return 'TLS handshake failed: check that the port in mqtt.url is the TLS port (mqtts://) and the TLS files';
    case 'TLS_FILES':
      return 'the TLS files in mqtt.tls cannot be read: check their paths and permissions';
    case 'MQTT_BAD_CREDENTIALS':
    case 'MQTT_NOT_AUTHORIZED':
      return 'not authorized: check mqtt.username and the password (ROADSIDE_MQTT_PASSWORD in secrets.env); the broker may also not know this user';
    case 'MQTT_CONNECT_REFUSED':
      return `the broker refused the connection: check mqtt.protocol (${config.mqtt.protocol}) and mqtt.client_id with the control center`;
    case 'CONNECT_TIMEOUT':
    case 'CONNECTION_LOST':
      return 'the broker accepted TCP but no MQTT answer came: mqtt:// on a TLS port or mqtts:// on a plain one? a proxy or firewall in between?';
    case 'PUBLISH_REFUSED':
    case 'MQTT_ERROR':
      return 'see the detail; check mqtt.url and the broker';
  }
}

function readTls(config: Config): Pick<IClientOptions, 'ca' | 'cert' | 'key'> {
  const t = config.mqtt.tls;
  if (!t) return {};
  const read = (f: string | undefined) => (f ? readFileSync(f) : undefined);
  return { ca: read(t.ca), cert: read(t.cert), key: read(t.key) };
}

/** Days until a certificate expires (negative: expired). */
const daysLeft = (validTo: string): number => Math.floor((Date.parse(validTo) - Date.now()) / DAY_MS);

/** Connects; resolves the client once CONNACK accepted it, rejects with what mqtt.js reported. */
function connect(url: string, opts: IClientOptions, signal: AbortSignal): Promise<MqttClient> {
  const client = mqtt.connect(url, opts);
  return new Promise((resolve, reject) => {
    const done = (err?: unknown): void => {
      client.off('connect', onConnect);
      client.off('error', done);
      client.off('close', onClose);
      signal.removeEventListener('abort', onAbort);
      if (err === undefined) return resolve(client);
      client.on('error', () => undefined); // late errors after we gave up
      client.end(true);
      reject(err instanceof Error ? err : new Error(errorMessage(err)));
    };
    const onConnect = (): void => done();
    const onClose = (): void => done(Object.assign(new Error('connection closed before CONNACK'), { code: 'CONNECTION_CLOSED' }));
    const onAbort = (): void => done(new Error('aborted'));
    client.once('connect', onConnect);
    client.on('error', done);
    client.on('close', onClose);
    signal.addEventListener('abort', onAbort, { once: true });
  });
}

async function end(client: MqttClient): Promise<void> {
  await Promise.race([client.endAsync().catch(() => undefined), new Promise((r) => setTimeout(r, 2_000).unref())]);
  if (!client.disconnected) client.end(true);
}

export async function checkBroker(config: Config, opts: BrokerCheckOptions, signal: AbortSignal): Promise<CheckOutcome> {
  const m = config.mqtt;
  const url = new URL(m.url);
  const secure = url.protocol === 'mqtts:' || url.protocol === 'wss:';
  const nonce = randomBytes(4).toString('hex');
  const topic = `${baseTopic(m.topic_prefix, config.device.site, config.device.id)}/doctor/${nonce}`;
  const figures: Record<string, unknown> = { url: m.url, protocol: m.protocol, tls: secure, username: m.username ?? null, topic };

  let tls: Pick<IClientOptions, 'ca' | 'cert' | 'key'>;
  try {
    tls = readTls(config);
  } catch (err) {
    return fail(`cannot read the TLS files: ${errorMessage(err)}`, 'check the paths in mqtt.tls and that the files are readable', figures);
  }

  // Client certificate: expired or about to (checked locally; the broker would only say "bad certificate").
  let clientCertWarning: string | undefined;
  if (tls.cert) {
    try {
      const cert = new X509Certificate(tls.cert as Buffer);
      const days = daysLeft(cert.validTo);
      figures.client_cert_days_left = days;
      if (days < 0) return fail(`the client certificate ${m.tls?.cert ?? ''} expired on ${cert.validTo}`, 'ask the control center for a new certificate for this box (provision --new-key makes a CSR)', figures);
      if (days < CERT_WARN_DAYS) clientCertWarning = `the client certificate expires in ${days} days`;
    } catch (err) {
      return fail(`mqtt.tls.cert is not a PEM certificate: ${errorMessage(err)}`, 'install the certificate the control center signed for this box as mqtt.tls.cert', figures);
    }
  }

  const t0 = performance.now();
  let client: MqttClient;
  try {
    client = await connect(
      m.url,
      {
        protocolVersion: m.protocol,
        // Never the agent's own client id: the broker would disconnect the running agent.
        clientId: `roadside-doctor-${config.device.id}-${nonce}`,
        username: m.username,
        password: m.password,
        clean: true,
        keepalive: 30,
        reconnectPeriod: 0,
        connectTimeout: opts.connectMs,
        resubscribe: false,
        ...tls,
        servername: m.tls?.servername,
        rejectUnauthorized: true,
        ...(m.protocol === 5 ? { properties: { sessionExpiryInterval: 0 } } : {}),
      },
      signal,
    );
  } catch (err) {
    const code = (err as { code?: unknown }).code;
    const e =
      code === 'CONNECTION_CLOSED'
        ? new UplinkError('CONNECTION_LOST', `${m.url} closed the connection before answering (no CONNACK)`)
        : classifyError(err, { url: m.url, protocol: m.protocol });
    return fail(e.message, brokerFix(e, config), { ...figures, error: e.code, cause: typeof code === 'string' || typeof code === 'number' ? code : null });
  }
  figures.connect_ms = Math.round(performance.now() - t0);

  try {
    let tlsNote = '';
    if (secure) {
      const sock = client.stream as unknown as TLSSocket;
      const peer = typeof sock.getPeerCertificate === 'function' ? sock.getPeerCertificate() : undefined;
      const days = peer?.valid_to ? daysLeft(peer.valid_to) : null;
      Object.assign(figures, {
        tls_verified: sock.authorized === true,
        tls_version: typeof sock.getProtocol === 'function' ? sock.getProtocol() : null,
        broker_cert_subject: peer?.subject?.CN ?? null,
        broker_cert_days_left: days,
      });
      tlsNote = `, TLS verified (${String(figures.tls_version)})`;
      if (days !== null && days < CERT_WARN_DAYS) clientCertWarning ??= `the broker certificate expires in ${days} days`;
    }

    // Round trip: subscribe, publish QoS 1, wait for our own message.
    const received = new Promise<number>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`the message did not come back within ${opts.roundTripMs / 1000} s`)), opts.roundTripMs);
      timer.unref(); // a refused subscribe or publish returns first: nothing waits for it then
      client.on('message', (t, payload) => {
        if (t === topic && payload.toString() === nonce) {
          clearTimeout(timer);
          resolve(performance.now());
        }
      });
    });
    received.catch(() => undefined);
    const t1 = performance.now();
    try {
      await client.subscribeAsync(topic, { qos: 1 });
    } catch (err) {
      return fail(`connected${tlsNote}, but subscribing to ${topic} was refused: ${errorMessage(err)}`, `the broker ACL must let this user subscribe to its own topics (${topic.replace(/\/doctor\/.*/, '/#')}): the agent receives commands there`, figures);
    }
    try {
      await client.publishAsync(topic, nonce, { qos: 1, retain: false });
    } catch (err) {
      return fail(`connected${tlsNote}, but publishing to ${topic} was refused: ${errorMessage(err)}`, `the broker ACL must let this user publish to ${topic.replace(/\/doctor\/.*/, '/#')}`, figures);
    }
    let back: number;
    try {
      back = await received;
    } catch (err) {
      return fail(`connected${tlsNote}, published, but ${errorMessage(err)}`, `the broker ACL may deny reading ${topic.replace(/\/doctor\/.*/, '/#')}, or the broker drops messages: ask the control center`, figures);
    }
    figures.round_trip_ms = Math.round((back - t1) * 10) / 10;
    const head = `${m.url} MQTT ${m.protocol === 5 ? '5' : '3.1.1'}${tlsNote}, logged in${m.username ? ` as ${m.username}` : ''}; round trip ${Math.round(back - t1)} ms`;
    if (clientCertWarning) return warn(`${head}; ${clientCertWarning}`, 'ask the control center for a renewed certificate before it expires', figures);
    return pass(head, figures);
  } finally {
    await end(client);
  }
}
