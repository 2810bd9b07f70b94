// A real clustered MQTT broker for tests and benchmarks: NATS servers (Debian's nats-server 2.9) on loopback,
// routed into one cluster with JetStream (which keeps MQTT sessions, QoS 1 messages and retained messages,
// replicated on up to 3 nodes) and the MQTT 3.1.1 gateway on every node. Each node can be stopped, killed
// (SIGKILL: a crash) and started again on the same ports and store. Logs go to `<dir>/<node>/nats.log`.
//
// What NATS's MQTT gateway does and does not do (checked with 2.9.10): MQTT 3.1.1 only (protocol 4), QoS 0 and 1
// (a QoS 2 publish closes the connection), retained messages visible on every node, persistent sessions
// (clean: false) kept in JetStream and resumed on any node. No shared subscriptions: `$share/g/t` is granted but
// is a literal topic that nothing matches. When the JetStream leader of an MQTT stream dies, CONNECTs and QoS 1
// publishes on the other nodes are held ~4 s and refused or disconnected until a new leader is elected. A
// persistent session with several QoS 1 subscriptions resuming on a backlog may get up to 1,024 messages only
// after `ack_wait` (pass e.g. mqttConfig ['ack_wait: "5s"']). docs/scaling.md has the measurements.
import fs from 'node:fs';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import mqtt from 'mqtt';
import { getJson, type JsonReply } from './http.js';
import { freePort, waitForPort, waitForPortFree } from './ports.js';
import { hasExited, terminate } from './processes.js';
import { makeTempDir } from './tmp.js';
import { ServerProcess } from './server-process.js';

export const NATS_BIN = process.env.ROADSIDE_NATS_BIN ?? '/usr/sbin/nats-server';

export interface NatsClusterOptions {
  /** Nodes in the cluster. Default 3. */
  nodes?: number;
  /** Cluster name. Default "roadside". */
  name?: string;
  /** Extra lines inside every node's `mqtt { }` block (e.g. 'max_ack_pending: 2048'). */
  mqttConfig?: string[];
  /** Time allowed for the cluster to form and answer MQTT on every node. Default 30 000 ms. */
  startTimeout_ms?: number;
}

interface Ports {
  client: number;
  cluster: number;
  mqtt: number;
  monitor: number;
}

class AddressInUse extends Error {}

/** One nats-server of the cluster. */
export class NatsNode extends ServerProcess {
  readonly dir: string;
  constructor(
    readonly name: string,
    readonly ports: Ports,
    baseDir: string,
    private readonly config: () => string,
  ) {
    super(path.join(baseDir, name, 'nats.log'));
    this.dir = path.join(baseDir, name);
  }

  /** mqtt://127.0.0.1:PORT of this node's MQTT gateway. */
  get mqttUrl(): string {
    return `mqtt://127.0.0.1:${this.ports.mqtt}`;
  }

  /** Starts (again) on the same ports and JetStream store; resolves once the MQTT and client ports accept connections. */
  async start(timeout_ms = 10_000): Promise<void> {
    if (this.running) return;
    const ports = [this.ports.client, this.ports.cluster, this.ports.mqtt, this.ports.monitor];
    try {
      await Promise.all(ports.map((p) => waitForPortFree(p)));
    } catch (err) {
      throw new AddressInUse(`nats ${this.name}: ${err instanceof Error ? err.message : String(err)}`);
    }
    fs.mkdirSync(path.join(this.dir, 'jetstream'), { recursive: true });
    const conf = path.join(this.dir, 'nats.conf');
    fs.writeFileSync(conf, this.config());
    const offset = this.logText().length;
    const child = this.spawnLogged(NATS_BIN, ['-c', conf]);
    const spawnError = new Promise<never>((_, reject) => child.once('error', reject));
    spawnError.catch(() => undefined);
    try {
      const alive = (): boolean => !hasExited(child);
      await Promise.race([Promise.all([this.ports.mqtt, this.ports.client].map((port) => waitForPort(port, { timeout_ms, alive, what: `nats ${this.name}` }))), spawnError]);
    } catch (err) {
      await terminate(child, 'SIGKILL');
      const log = this.logText().slice(offset);
      const msg = `${err instanceof Error ? err.message : String(err)}\n--- ${this.logFile} ---\n${log}`;
      throw /address already in use/i.test(log) ? new AddressInUse(msg) : new Error(msg);
    }
  }

  /** SIGTERM (a clean shutdown) and wait for exit. Idempotent. */
  async stop(): Promise<void> {
    if (this.child) await terminate(this.child, 'SIGTERM', 10_000);
  }

  /** SIGKILL and wait for exit: a crash. Idempotent. */
  async kill(): Promise<void> {
    if (this.child) await terminate(this.child, 'SIGKILL');
  }

  /** GET on the monitoring port (e.g. '/routez', '/jsz', '/healthz'): status and parsed JSON (null if not JSON). */
  monitor(pathname: string, timeout_ms = 2000): Promise<JsonReply> {
    return getJson(`http://127.0.0.1:${this.ports.monitor}${pathname}`, timeout_ms);
  }

}

/** A cluster of NATS servers with the MQTT gateway, all on loopback. */
export class NatsCluster {
  private constructor(
    readonly dir: string,
    readonly nodes: NatsNode[],
    private readonly opts: NatsClusterOptions,
  ) {}

  /** Starts every node and resolves once the cluster is formed and every node answers MQTT. */
  static async start(opts: NatsClusterOptions = {}): Promise<NatsCluster> {
    let lastError: unknown;
    // freePort() is racy: on "address already in use" everything starts again on new ports.
    for (let attempt = 0; attempt < 4; attempt++) {
      const cluster = await NatsCluster.create(opts);
      try {
        await Promise.all(cluster.nodes.map((n) => n.start()));
        await cluster.waitFormed(opts.startTimeout_ms ?? 30_000);
        return cluster;
      } catch (err) {
        lastError = err;
        await cluster.stop();
        if (!(err instanceof AddressInUse)) throw err;
      }
    }
    throw lastError instanceof Error ? lastError : new Error(String(lastError));
  }

  private static async create(opts: NatsClusterOptions): Promise<NatsCluster> {
    const n = opts.nodes ?? 3;
    const dir = makeTempDir('nats');
    const ports: Ports[] = [];
    for (let i = 0; i < n; i++) ports.push({ client: await freePort(), cluster: await freePort(), mqtt: await freePort(), monitor: await freePort() });
    const routes = ports.map((p) => `nats-route://127.0.0.1:${p.cluster}`);
    const name = opts.name ?? 'roadside';
    const nodes = ports.map((p, i) => {
      const server = `n${i + 1}`;
      const store = path.join(dir, server, 'jetstream');
      const config = (): string =>
        [
          '# generated by testkit/nats.ts',
          `server_name: ${server}`,
          `listen: 127.0.0.1:${p.client}`,
          `http: 127.0.0.1:${p.monitor}`,
          `jetstream { store_dir: "${store}", max_memory_store: 64MB, max_file_store: 2GB }`,
          `cluster { name: ${name}, listen: 127.0.0.1:${p.cluster}, routes: [${routes.filter((_, j) => j !== i).join(', ')}] }`,
          // The MQTT streams are created at the first MQTT connection with as many replicas as the JetStream
          // peers known then, unless told: 2 replicas lose quorum when one node dies, and everything stalls.
          `mqtt { listen: 127.0.0.1:${p.mqtt}, stream_replicas: ${Math.min(3, n)}${opts.mqttConfig?.length ? `, ${opts.mqttConfig.join(', ')}` : ''} }`,
          '',
        ].join('\n');
      return new NatsNode(server, p, dir, config);
    });
    return new NatsCluster(dir, nodes, opts);
  }

  /** The MQTT URLs of every node, in node order. */
  get mqttUrls(): string[] {
    return this.nodes.map((n) => n.mqttUrl);
  }

  node(i: number): NatsNode {
    const n = this.nodes[i];
    if (!n) throw new Error(`no node ${i} (the cluster has ${this.nodes.length})`);
    return n;
  }

  /**
   * Until every running node has its routes to the other running nodes, knows the JetStream meta leader, reports
   * healthy, and accepts an MQTT 3.1.1 connection (the first one creates the MQTT streams).
   */
  async waitFormed(timeout_ms = 30_000): Promise<void> {
    const deadline = Date.now() + timeout_ms;
    const running = this.nodes.filter((n) => n.running);
    for (;;) {
      const states = await Promise.all(running.map((n) => this.nodeState(n, running.length - 1)));
      const waiting = states.filter((s) => s !== 'ok');
      if (waiting.length === 0) return;
      if (Date.now() > deadline) throw new Error(`NATS cluster not formed after ${timeout_ms} ms: ${waiting.join('; ')}\n${running.map((n) => `--- ${n.logFile} ---\n${n.logText().slice(-3000)}`).join('\n')}`);
      await sleep(200);
    }
  }

  private async nodeState(n: NatsNode, peers: number): Promise<string> {
    try {
      const routez = await n.monitor('/routez');
      const routes = (routez.body as { num_routes?: number } | null)?.num_routes ?? 0;
      if (routes < peers) return `${n.name}: ${routes}/${peers} routes`;
      const jsz = await n.monitor('/jsz');
      const meta = (jsz.body as { meta_cluster?: { leader?: string; cluster_size?: number } } | null)?.meta_cluster;
      if (!meta?.leader) return `${n.name}: no JetStream meta leader`;
      if ((meta.cluster_size ?? 0) < this.nodes.length) return `${n.name}: JetStream knows ${meta.cluster_size ?? 0}/${this.nodes.length} peers`;
      const health = await n.monitor('/healthz');
      if (health.status !== 200) return `${n.name}: healthz ${health.status}`;
      await mqttProbe(n.mqttUrl);
      return 'ok';
    } catch (err) {
      return `${n.name}: ${err instanceof Error ? err.message : String(err)}`;
    }
  }

  /** Stops every node (SIGTERM). */
  async stop(): Promise<void> {
    await Promise.all(this.nodes.map((n) => n.stop()));
  }

  /** Every node's log tail, for failure messages. */
  logs(chars = 4000): string {
    return this.nodes.map((n) => `--- ${n.logFile} ---\n${n.logText().slice(-chars)}`).join('\n');
  }
}

/** One MQTT 3.1.1 connect and disconnect (clean session); rejects when no CONNACK comes within `timeout_ms`. */
export function mqttProbe(url: string, timeout_ms = 3000): Promise<void> {
  return new Promise((resolve, reject) => {
    const client = mqtt.connect(url, { protocolVersion: 4, clean: true, reconnectPeriod: 0, connectTimeout: timeout_ms, clientId: `probe-${process.pid}-${Math.random().toString(16).slice(2, 10)}` });
    const done = (err?: Error): void => {
      client.removeAllListeners();
      client.on('error', () => undefined);
      client.end(true);
      if (err) reject(err);
      else resolve();
    };
    client.once('connect', () => done());
    client.once('error', (err) => done(err));
    client.once('close', () => done(new Error(`${url}: closed before CONNACK`)));
  });
}
