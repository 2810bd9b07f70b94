// The broker URLs of the center's commands: one broker, or the nodes of a cluster. No MQTT client here, so the
// command line can parse --url without loading mqtt.js.
import type { IClientOptions } from 'mqtt';
import { isLoopbackHost } from '../config/semantics.js';
import { AgentError } from '../core/errors.js';

/**
 * mqtt.js options for a list of broker nodes: its own `servers` rotation (the next node at each reconnect). One
 * set of TLS and credential options serves every node, so the nodes differ only in scheme, host and port.
 */
export function brokerNodes(urls: string | readonly string[]): { url: string; servers?: IClientOptions['servers']; label: string } {
  const list = typeof urls === 'string' ? [urls] : [...urls];
  if (list.length === 0) throw new AgentError('CENTER_BAD_OPTION', 'no broker URL given');
  const parsed = list.map((u) => {
    try {
      return new URL(u);
    } catch {
      throw new AgentError('CENTER_BAD_OPTION', `not a broker URL: "${u}" (expected mqtt://, mqtts://, ws:// or wss://host:port)`);
    }
  });
  for (const u of parsed) {
    if (!/^(mqtts?|wss?):$/.test(u.protocol)) throw new AgentError('CENTER_BAD_OPTION', `${u.protocol}// is not a broker scheme (expected mqtt://, mqtts://, ws:// or wss://)`);
    // ws(s) URLs are "special": their empty path reads "/", an mqtt(s) one's "".
    if ((u.pathname || '/') !== (parsed[0]!.pathname || '/')) {
      throw new AgentError('CENTER_BAD_OPTION', `broker nodes differ in path (${parsed[0]!.pathname} and ${u.pathname}): list nodes of one cluster`);
    }
  }
  const label = list.join(',');
  if (list.length === 1) return { url: list[0]!, label };
  const DEFAULT_PORT: Record<string, number> = { 'mqtt:': 1883, 'mqtts:': 8883, 'ws:': 80, 'wss:': 443 };
  const servers = parsed.map((u) => ({
    host: u.hostname.replace(/^\[|\]$/g, ''),
    port: u.port ? Number(u.port) : DEFAULT_PORT[u.protocol]!,
    protocol: u.protocol.slice(0, -1) as 'mqtt' | 'mqtts' | 'ws' | 'wss',
  }));
  return { url: list[0]!, servers, label };
}

/** Commander collector of --url: repeated, or comma-separated, into the list of broker nodes. */
export function collectUrls(value: string, previous: string[] | undefined): string[] {
  return [...(previous ?? []), ...value.split(',').map((u) => u.trim()).filter(Boolean)];
}

/** What --url says about the nodes: one broker, or a cluster's nodes tried in turn. */
export const URL_HELP = 'broker URL (mqtt://, mqtts://, ws://, wss://); several (repeated or comma-separated) for the nodes of a cluster, the next one tried at each reconnect; required';

/** The URLs that would carry the fleet's traffic unencrypted beyond this machine (mqtt:// or ws:// to a host not on loopback). */
export function plaintextRemote(urls: readonly string[]): string[] {
  return urls.filter((u) => {
    try {
      const p = new URL(u);
      return (p.protocol === 'mqtt:' || p.protocol === 'ws:') && !isLoopbackHost(p.hostname);
    } catch {
      return false; // not a URL: refused with its reason when the receiver starts
    }
  });
}
