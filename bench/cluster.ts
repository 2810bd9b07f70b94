// Broker cluster scenario: boxes (real Outbox + Uplink each, in one process like bench/fleet.ts) publish steadily
// to a 3-node NATS cluster (MQTT gateway, JetStream) with mqtt.urls listing every node; the node most boxes are
// on is killed (SIGKILL) and brought back later; a group of fleet receivers stores what arrives in PostgreSQL
// (SQLite when PostgreSQL is not installed). Afterwards every (device, seq) must be stored exactly once.
//
// NATS has no MQTT shared subscriptions ($share is a literal topic there), so the receiver group is sharded by
// site (FleetReceiver `sites`): each receiver owns some sites, with a persistent MQTT session (fixed client id,
// clean: false) on its own node. The cluster keeps a receiver's messages in JetStream while it is away, including
// while its node is down: the receiver on the killed node gets its sites' backlog when the node is back.
//
// Figures: failover time per box that lost its connection (kill → online again), the backlog each had then and
// how long it took to send it, the time until everything is acknowledged and stored after the load stops,
// messages per second, per receiver and peak, and the NATS nodes' CPU and memory (/varz).
import { closeSync, existsSync, mkdtempSync, openSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { FleetReceiver, type FleetTotals } from '../center/receiver.js';
import { silentLogger, type Logger } from '../core/log.js';
import { NatsCluster, type NatsNode } from '../testkit/nats.js';
import { PG_BIN_DIR } from '../testkit/postgres.js';
import { hasExited, spawnGuarded, terminate } from '../testkit/processes.js';
import { procCpuSeconds } from '../testkit/proc-stats.js';
import { ClusterBox, postgresStore, sqliteStore, type Store } from './cluster-parts.js';

export interface ClusterOptions {
  /** Simulated boxes. Default 20. */
  devices?: number;
  /** Sites the boxes are spread over (the receivers share them out). Default 6. */
  sites?: number;
  /** Receivers in the group, one per node in turn. Default 3. */
  receivers?: number;
  /** Traffic events per second per box. Default 10. */
  events_per_s?: number;
  /** Health report period per box, ms. Default 2000. */
  health_interval_ms?: number;
  /** Load before the kill, s. Default 5. */
  warmup_s?: number;
  /** The killed node stays down this long (boxes keep appending), s. Default 10. */
  outage_s?: number;
  /** Load after the node is back, s. Default 5. */
  after_s?: number;
  /** Longest wait, after the load stops, for everything to be acknowledged and stored, s. Default 40. */
  settle_timeout_s?: number;
  /** Uplink settings of every box. */
  inflight_window?: number;
  backoff?: { initial_ms: number; max_ms: number; jitter: number };
  /**
   * Receiver capacity phase after the scenario (0: none): the receivers stop, every box appends this many events
   * and delivers them (the cluster keeps them for the receivers' sessions), then the receivers run again as
   * separate `roadside-agent center` processes and drain that backlog as fast as they can. Default 0.
   */
  capacity_rows_per_device?: number;
  /**
   * NATS MQTT redelivery time of unacknowledged QoS 1 messages, s. Default 5 (NATS: 30). NATS 2.9.10 leaves up to a
   * subscription's max_ack_pending (1024) messages undelivered when a persistent session with several QoS 1
   * subscriptions resumes on a backlog faster than the client takes it; they come after this time (none lost).
   */
  nats_ack_wait_s?: number;
  /** 'postgres' (default when installed) or 'sqlite' (one file per receiver). */
  store?: 'postgres' | 'sqlite';
  log?: Logger;
  progress?: (line: string) => void;
}

export interface ClusterDeviceResult {
  key: string;
  appended: number;
  /** Seqs 1..appended not stored (events and health together): must be 0. */
  missing: number;
  /** (device, seq) stored more than once: must be 0. */
  duplicates_stored: number;
}

export interface ClusterResult {
  figures: Record<string, number>;
  /** Failover time of every box that lost its connection, ms, ascending. */
  failover_ms: number[];
  devices: ClusterDeviceResult[];
  receivers: (FleetTotals & { sites: string[]; node: number; stored: number })[];
  store: 'postgres' | 'sqlite';
  lost: number;
  duplicates_stored: number;
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
const round = (x: number, d = 1): number => Math.round(x * 10 ** d) / 10 ** d;
const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  if (s.length === 0) return 0;
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
};

/** Half the boxes start on node 0, the rest spread over the other nodes: node 0 is where most boxes are. */
function firstNode(i: number, nodes: number): number {
  return i % 2 === 0 || nodes === 1 ? 0 : 1 + (((i - 1) >> 1) % (nodes - 1));
}

export async function runCluster(options: ClusterOptions = {}): Promise<ClusterResult> {
  const o = {
    devices: options.devices ?? 20,
    sites: options.sites ?? 6,
    receivers: options.receivers ?? 3,
    events_per_s: options.events_per_s ?? 10,
    health_interval_ms: options.health_interval_ms ?? 2000,
    warmup_s: options.warmup_s ?? 5,
    outage_s: options.outage_s ?? 10,
    after_s: options.after_s ?? 5,
    settle_timeout_s: options.settle_timeout_s ?? 40,
    inflight_window: options.inflight_window ?? 64,
    backoff: options.backoff ?? { initial_ms: 500, max_ms: 5000, jitter: 0.5 },
    store: options.store ?? (existsSync(join(PG_BIN_DIR, 'initdb')) ? 'postgres' : 'sqlite'),
    capacity_rows_per_device: options.capacity_rows_per_device ?? 0,
    nats_ack_wait_s: options.nats_ack_wait_s ?? 5,
  };
  const log = options.log ?? silentLogger();
  const progress = options.progress ?? (() => undefined);
  const t0 = performance.now();
  const elapsed = (): string => `${((performance.now() - t0) / 1000).toFixed(1)}s`;
  const dir = mkdtempSync(join(tmpdir(), 'roadside-cluster-'));
  const cleanups: (() => Promise<unknown>)[] = [];
  const nats = await NatsCluster.start({ mqttConfig: [`ack_wait: "${o.nats_ack_wait_s}s"`] });
  cleanups.push(() => nats.stop());
  const nodes = nats.nodes.length;
  progress(`${elapsed()} NATS cluster of ${nodes} formed`);

  try {
    const store = o.store === 'postgres' ? await postgresStore(log) : sqliteStore(dir);
    cleanups.push(() => store.close());
    const sites = Array.from({ length: o.sites }, (_, i) => `s${i}`);
    const receiverSites = Array.from({ length: o.receivers }, (_, r) => sites.filter((_, i) => i % o.receivers === r));
    const receivers = receiverSites.map(
      (mine, r) =>
        new FleetReceiver(
          { url: nats.node(r % nodes).mqttUrl, protocol: 4, sites: mine, clientId: `center-${r}`, gaps: 'track', grace_ms: 3000, sinks: store.sinks(r) },
          log.child({ receiver: r }),
        ),
    );
    await Promise.all(receivers.map((r) => r.start()));
    cleanups.push(() => Promise.all(receivers.map((r) => r.stop())));
    progress(`${elapsed()} ${o.receivers} receivers (${o.store}) subscribed`);

    const urls = nats.mqttUrls;
    const boxes = Array.from({ length: o.devices }, (_, i) => {
      const f = firstNode(i, nodes);
      const rotated = [...urls.slice(f), ...urls.slice(0, f)];
      return new ClusterBox(sites[i % o.sites]!, `d${String(i).padStart(4, '0')}`, dir, rotated, o, log);
    });
    for (const b of boxes) await b.outbox.start(new AbortController().signal);
    cleanups.push(async () => {
      for (const b of boxes) {
        await b.uplink.stop();
        await b.outbox.stop();
      }
    });
    await Promise.all(boxes.map((b) => b.uplink.start()));
    for (let waited = 0; boxes.some((b) => !b.uplink.online); waited += 100) {
      if (waited > 30_000) throw new Error(`boxes not online after 30 s: ${boxes.filter((b) => !b.uplink.online).length}`);
      await sleep(100);
    }
    progress(`${elapsed()} ${o.devices} boxes online`);

    // Load: every box appends at events_per_s, plus its health reports.
    let rate = o.events_per_s;
    let last = Date.now();
    const load = setInterval(() => {
      const now = Date.now();
      const dt = now - last;
      last = now;
      if (rate > 0) for (const b of boxes) b.produce(dt, rate, o.health_interval_ms, now);
    }, 50);
    const varzPeak = { cpu: 0, mem_mb: 0 };
    const sampleVarz = async (): Promise<void> => {
      for (const n of nats.nodes) {
        if (!n.running) continue;
        const v = (await n.monitor('/varz').catch(() => ({ body: null }))).body as { cpu?: number; mem?: number } | null;
        varzPeak.cpu = Math.max(varzPeak.cpu, v?.cpu ?? 0);
        varzPeak.mem_mb = Math.max(varzPeak.mem_mb, (v?.mem ?? 0) / 1e6);
      }
    };
    const varzTimer = setInterval(() => void sampleVarz(), 1000);
    const loadStart = Date.now();
    try {
      await sleep(o.warmup_s * 1000);

      // Kill the node most boxes are on.
      const onNode = urls.map((u) => boxes.filter((b) => b.uplink.online && b.uplink.broker.url === u).length);
      const victim = onNode.indexOf(Math.max(...onNode));
      let killedAt = 0;
      for (const b of boxes) {
        b.uplink.on('offline', () => {
          if (killedAt && b.lostAt === null) {
            b.lostAt = Date.now();
            b.attemptsAtLoss = b.uplink.stats().connect_attempts;
          }
        });
        b.uplink.on('online', () => {
          if (b.lostAt !== null && b.backAt === null) {
            b.backAt = Date.now();
            b.backlogAtBack = b.outbox.stats().depth_total;
            b.attemptsToBack = b.uplink.stats().connect_attempts - b.attemptsAtLoss;
          }
        });
      }
      const onVictim = onNode[victim]!;
      const victimNode = nats.node(victim);
      const ledStreams = await mqttStreamsLedBy(victimNode);
      killedAt = Date.now();
      await victimNode.kill();
      progress(`${elapsed()} node ${victim} killed (${onVictim} boxes on it; per node: ${onNode.join('/')})`);
      const checkDrained = () => {
        const now = Date.now();
        for (const b of boxes) {
          if (b.backAt === null || b.drainedAt !== null) continue;
          const age = b.outbox.stats().oldest_unsent_age_s;
          if (age === null || now - age * 1000 >= b.backAt) b.drainedAt = now;
        }
      };
      const watchDrain = setInterval(checkDrained, 100);
      await sleep(o.outage_s * 1000);
      const restartAt = Date.now();
      await victimNode.start();
      progress(`${elapsed()} node ${victim} started again (${Date.now() - restartAt} ms to accept connections)`);
      await sleep(o.after_s * 1000);
      rate = 0;
      const stoppedAt = Date.now();
      const loadS = (stoppedAt - loadStart) / 1000;
      progress(`${elapsed()} load stopped; waiting for delivery and storage`);

      const appended = boxes.reduce((a, b) => a + b.appended, 0);
      const deadline = stoppedAt + o.settle_timeout_s * 1000;
      let ackedAt: number | null = null;
      let storedAt: number | null = null;
      while (Date.now() < deadline && storedAt === null) {
        if (ackedAt === null && boxes.every((b) => b.delivered)) ackedAt = Date.now();
        if (ackedAt !== null && (await store.count()) >= appended) storedAt = Date.now();
        else await sleep(250);
      }
      clearInterval(watchDrain);
      // A box that drained since the last tick (the store can complete within one) is drained now.
      checkDrained();
      // Late copies (redelivery after the store was complete) would land now: give them a moment.
      await sleep(1000);
      const totals = receivers.map((r, i) => {
        const t = r.totals();
        const stats = r.sinkStats()[0];
        return { ...t, sites: receiverSites[i]!, node: i % nodes, stored: stats?.written ?? t.events + t.health_messages };
      });
      const capacity =
        o.capacity_rows_per_device > 0 ? await receiverCapacity({ receivers, receiverSites, urls, store, boxes, rows: o.capacity_rows_per_device, dir, progress: (l) => progress(`${elapsed()} ${l}`) }) : {};
      const stored = await store.seqs();
      const devices: ClusterDeviceResult[] = boxes.map((b) => {
        const m = stored.get(b.key) ?? new Map<number, number>();
        let missing = 0;
        let dups = 0;
        for (let s = 1; s <= b.appended; s++) {
          const n = m.get(s) ?? 0;
          if (n === 0) missing++;
          else if (n > 1) dups += n - 1;
        }
        return { key: b.key, appended: b.appended, missing, duplicates_stored: dups };
      });
      const lost = devices.reduce((a, d) => a + d.missing, 0);
      const duplicatesStored = devices.reduce((a, d) => a + d.duplicates_stored, 0);
      const affected = boxes.filter((b) => b.lostAt !== null);
      const failover = affected.filter((b) => b.backAt !== null).map((b) => b.backAt! - killedAt).sort((a, b) => a - b);
      const drained = affected.filter((b) => b.drainedAt !== null).map((b) => b.drainedAt! - killedAt);
      const rows = [...stored.values()].reduce((a, m) => a + m.size, 0);
      const figures: Record<string, number> = {
        devices: o.devices,
        nodes,
        receivers: o.receivers,
        killed_node: victim,
        boxes_on_killed_node: onVictim,
        boxes_disconnected: affected.length,
        boxes_failed_over: failover.length,
        failover_ms_min: failover[0] ?? -1,
        failover_ms_median: Math.round(median(failover)),
        failover_ms_p90: failover[Math.floor(failover.length * 0.9)] ?? -1,
        failover_ms_max: failover.at(-1) ?? -1,
        failover_attempts_median: median(affected.map((b) => b.attemptsToBack)),
        failover_attempts_max: Math.max(0, ...affected.map((b) => b.attemptsToBack)),
        backlog_at_failover_max: Math.max(0, ...affected.map((b) => b.backlogAtBack)),
        outbox_drain_ms_max: drained.length ? Math.max(...drained) : -1,
        boxes_not_drained: affected.length - drained.length,
        appended_total: boxes.reduce((a, b) => a + b.appended, 0),
        stored_rows: rows,
        lost,
        duplicates_stored: duplicatesStored,
        duplicates_received: totals.reduce((a, t) => a + t.duplicates, 0),
        invalid: totals.reduce((a, t) => a + t.invalid, 0),
        load_s: round(loadS),
        offered_msgs_per_s: round(appended / loadS),
        acked_after_stop_s: ackedAt === null ? -1 : round((ackedAt - stoppedAt) / 1000, 2),
        stored_after_stop_s: storedAt === null ? -1 : round((storedAt - stoppedAt) / 1000, 2),
        receiver_peak_msgs_per_s_max: Math.max(...totals.map((t) => t.peak_msgs_per_s)),
        receiver_msgs_per_s_mean: round(totals.reduce((a, t) => a + t.messages, 0) / o.receivers / ((Date.now() - loadStart) / 1000)),
        nats_cpu_pct_peak: round(varzPeak.cpu),
        nats_mem_mb_peak: round(varzPeak.mem_mb),
        killed_node_led_mqtt_streams: ledStreams,
        ...capacity,
      };
      totals.forEach((t, i) => {
        figures[`receiver${i}_stored`] = t.stored;
        figures[`receiver${i}_peak_msgs_per_s`] = t.peak_msgs_per_s;
      });
      progress(`${elapsed()} done: ${JSON.stringify(figures)}`);
      return { figures, failover_ms: failover, devices, receivers: totals, store: o.store, lost, duplicates_stored: duplicatesStored };
    } finally {
      clearInterval(load);
      clearInterval(varzTimer);
    }
  } finally {
    for (const c of cleanups.reverse()) await c().catch(() => undefined);
    rmSync(dir, { recursive: true, force: true });
  }
}

/** How many of the MQTT gateway's JetStream streams ($MQTT_sess, $MQTT_msgs, $MQTT_rmsgs) `node` leads. */
async function mqttStreamsLedBy(node: NatsNode): Promise<number> {
  const jsz = await node.monitor('/jsz?accounts=true&streams=true').catch(() => ({ body: null }));
  const accounts = (jsz.body as { account_details?: { stream_detail?: { name: string; cluster?: { leader?: string } }[] }[] } | null)?.account_details ?? [];
  return accounts.flatMap((a) => a.stream_detail ?? []).filter((st) => st.name.startsWith('$MQTT_') && st.cluster?.leader === node.name).length;
}

const ROOT = fileURLToPath(new URL('..', import.meta.url));

const cpuSeconds = (pid: number | undefined): number => procCpuSeconds(pid) ?? 0;

interface CapacityContext {
  receivers: FleetReceiver[];
  receiverSites: string[][];
  urls: string[];
  store: Store;
  boxes: ClusterBox[];
  rows: number;
  dir: string;
  progress: (line: string) => void;
}

/**
 * The receivers' capacity: they stop (their sessions stay in the cluster), the boxes deliver a backlog, then the
 * receivers run again as `roadside-agent center` processes (same client ids, so the same sessions) and drain it.
 * The rate counts from the first row stored to the last (process start-up left out).
 */
async function receiverCapacity(c: CapacityContext): Promise<Record<string, number>> {
  await Promise.all(c.receivers.map((r) => r.stop()));
  const before = await c.store.count();
  const total = c.boxes.length * c.rows;
  const t0 = Date.now();
  for (const b of c.boxes) b.burst(c.rows);
  for (let waited = 0; !c.boxes.every((b) => b.delivered); waited += 100) {
    if (waited > 180_000) throw new Error('capacity phase: the boxes did not deliver their backlog in 180 s');
    await sleep(100);
  }
  const ingestS = (Date.now() - t0) / 1000;
  c.progress(`capacity: ${total} events delivered to the cluster in ${ingestS.toFixed(1)} s; starting ${c.receivers.length} receiver processes`);
  const children = c.receiverSites.map((sites, r) => {
    const logFd = openSync(join(c.dir, `center-${r}.log`), 'a');
    try {
      const args = ['--import', 'tsx', join(ROOT, 'cli/main.ts'), 'center', '--url', c.urls[r % c.urls.length]!, '--protocol', '4', '--sites', sites.join(','), '--client-id', `center-${r}`];
      return spawnGuarded(process.execPath, [...args, '--gaps', 'track', '--json', '--interval-s', '5', '--log-level', 'warn', ...c.store.cliArgs(r)], { cwd: ROOT, stdio: ['ignore', 'ignore', logFd] });
    } finally {
      closeSync(logFd);
    }
  });
  try {
    let firstAt = 0;
    let count = before;
    const samples: { at: number; count: number }[] = [];
    let cpuAtFirst: number[] = [];
    for (const deadline = Date.now() + 180_000; count < before + total; ) {
      if (Date.now() > deadline) throw new Error(`capacity phase: ${before + total - count} rows not stored after 180 s`);
      const dead = children.findIndex((ch) => hasExited(ch));
      if (dead >= 0) throw new Error(`receiver process ${dead} exited: ${readFileSync(join(c.dir, `center-${dead}.log`), 'utf8').slice(-2000)}`);
      await sleep(100);
      count = await c.store.count();
      if (!firstAt && count > before) {
        firstAt = Date.now();
        cpuAtFirst = children.map((ch) => cpuSeconds(ch.pid));
      }
      samples.push({ at: Date.now(), count });
    }
    const drainS = (Date.now() - firstAt) / 1000;
    // Best rate over any second: what the receivers take when the broker keeps them fed (see nats_ack_wait_s).
    let peak = 0;
    for (let i = 0, j = 0; j < samples.length; j++) {
      while (i < j && samples[j]!.at - samples[i + 1]!.at >= 1000) i++;
      const dt = samples[j]!.at - samples[i]!.at;
      if (dt >= 1000) peak = Math.max(peak, ((samples[j]!.count - samples[i]!.count) * 1000) / dt);
    }
    // CPU from the first row stored on (start-up left out; a few rows stored before that sample are in it).
    const cpu = children.map((ch, i) => cpuSeconds(ch.pid) - (cpuAtFirst[i] ?? 0));
    return {
      capacity_rows: total,
      capacity_ingest_msgs_per_s: round(total / ingestS),
      capacity_receiver_processes: children.length,
      capacity_drain_s: round(drainS, 2),
      capacity_rows_per_s: round(total / drainS),
      capacity_rows_per_s_per_process: round(total / drainS / children.length),
      capacity_peak_rows_per_s: round(peak),
      capacity_peak_rows_per_s_per_process: round(peak / children.length),
      capacity_receiver_cpu_ms_per_1000_rows: round((cpu.reduce((a, b) => a + b, 0) * 1000 * 1000) / total),
    };
  } finally {
    await Promise.all(children.map((ch) => terminate(ch, 'SIGTERM', 10_000)));
  }
}

/** `npm run bench` section: 100 boxes at 10 events/s for about a minute around the node kill. */
export async function benchCluster(): Promise<Record<string, number>> {
  const r = await runCluster({
    devices: 100,
    events_per_s: 10,
    warmup_s: 15,
    outage_s: 20,
    after_s: 15,
    settle_timeout_s: 90,
    capacity_rows_per_device: 400,
    progress: (l) => process.stderr.write(`  cluster: ${l}\n`),
  });
  if (r.lost > 0 || r.duplicates_stored > 0) throw new Error(`cluster bench: ${r.lost} lost, ${r.duplicates_stored} stored twice`);
  return r.figures;
}
