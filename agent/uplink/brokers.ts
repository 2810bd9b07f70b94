// The broker nodes of the uplink (mqtt.urls of a cluster, or the one mqtt.url) and the one in use. The session
// starts with the first; every failed attempt or lost connection moves the next attempt to the next node, round
// robin, so a box reaches a healthy node within one turn of the list (each attempt after the reconnect backoff).
// There is no return to the first node: a box stays where it is connected until that connection ends.
import type { BrokerNode } from '../../contract/health.js';

/** The URL as it may be shown (health, birth, logs): user name and password removed. */
export function withoutCredentials(url: string): string {
  try {
    const u = new URL(url);
    if (!u.username && !u.password) return url;
    u.username = '';
    u.password = '';
    return u.toString();
  } catch {
    return url.replace(/\/\/[^@/]*@/, '//');
  }
}

export class BrokerRotation {
  private at = 0;
  /** Index of the node of the last successful connection, null before the first. */
  private lastConnected: number | null = null;
  /** Connections made to another node than the previous connection's. */
  failovers = 0;

  constructor(private readonly urls: readonly string[]) {}

  /** The URL to connect to (with whatever the config gave). */
  get url(): string {
    return this.urls[this.at] ?? '';
  }

  /** The node in use or being tried, shown without credentials. */
  get node(): BrokerNode {
    return { url: withoutCredentials(this.url), index: this.at, nodes: this.urls.length };
  }

  /** The attempt failed or the connection was lost: the next attempt goes to the next node. */
  advance(): void {
    this.at = (this.at + 1) % Math.max(1, this.urls.length);
  }

  /** Connected to the current node. Returns true when it is not the node of the previous connection (a failover). */
  connected(): boolean {
    const moved = this.lastConnected !== null && this.lastConnected !== this.at;
    if (moved) this.failovers++;
    this.lastConnected = this.at;
    return moved;
  }
}
