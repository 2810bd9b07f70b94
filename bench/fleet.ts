// Fleet load test: many boxes' uplinks in one process against a real mosquitto, and the fleet receiver checking
// that nothing is lost across a broker restart.
//
// Each simulated box has what a real one has on the sending side: its own SQLite outbox file (real Outbox) and
// its own MQTT connection (real Uplink, with its backoff and in-flight window), fed with synthetic traffic events
// and health reports at a configured rate. They share one Node process and one disk: the outboxes run with
// synchronous=NORMAL (WAL) because 200 boxes fsyncing one shared disk would measure this machine's disk, not the
// fleet (on the road every box has its own). One process holds 200 outboxes comfortably: ~3 file descriptors
// each (db, -wal, -shm) plus one socket; the figures below include the fd count and RSS.
//
// Timeline: boxes connect → load for warmup_s → broker stopped (SIGTERM) while boxes keep appending for
// outage_s → broker started → load for after_s → load stops → wait until the receiver holds every
// (device, seq) 1..last (gaps repaired with `resend`). Broker load: $SYS topics (sys_interval 1) and its CPU
// time from /proc/<pid>/stat.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import mqtt, { type MqttClient } from 'mqtt';
import { FleetReceiver, type FleetTotals } from '../center/receiver.js';
import { silentLogger, type Logger } from '../core/log.js';
import { SIM_SITE, SimDevice, syntheticEvent, syntheticHealth } from '../testkit/fleet-sim.js';
import { openFds, procCpuSeconds, procRssMb } from '../testkit/proc-stats.js';
import { Mosquitto } from '../testkit/mosquitto.js';

export interface FleetOptions {
  /** Simulated boxes. Default 200. */
  devices?: number;
  /** Traffic events per second per box. Default 5. */
  events_per_s?: number;
  /** Health report period per box, ms. Default 5000. */
  health_interval_ms?: number;
  /** Load before the broker stops, s. Default 10. */
  warmup_s?: number;
  /** Broker down, s (boxes keep appending). Default 8. */
  outage_s?: number;
  /** Load after the broker is back, s. Default 10. */
  after_s?: number;
  /** Then a stress phase at `stress_events_per_s` per box, s (0: none). Default 0. */
  stress_s?: number;
  /** Events per second per box during the stress phase. Default 40. */
  stress_events_per_s?: number;
  /**
   * Boxes that lose 5 messages each during the outage: rows acknowledged in their outbox without being sent, as
   * when a broker crashes after its PUBACK. The receiver must get them back with `resend`. Default 0.
   */
  lossy_devices?: number;
  /** Longest wait for the receiver to hold every seq after the load stopped, s. Default 20. */
  settle_timeout_s?: number;
  /** Uplink settings of every box. Defaults: the config defaults (window 64, no drain cap, backoff 1-60 s, jitter 0.5). */
  inflight_window?: number;
  drain_rate_per_s?: number;
  backoff?: { initial_ms: number; max_ms: number; jitter: number };
  /** Receiver: age of a hole before it is a gap, ms. Default 2000. */
  grace_ms?: number;
  log?: Logger;
  /** Progress lines (phases), e.g. to stderr. */
  progress?: (line: string) => void;
}

export interface FleetDeviceResult {
  key: string;
  appended: number;
  received: number;
  first: number | null;
  last: number | null;
  missing: number;
  lost: number;
}

export interface FleetResult {
  figures: Record<string, number>;
  devices: FleetDeviceResult[];
  totals: FleetTotals;
  /** (device, seq) pairs neither at the receiver nor waiting in an outbox: must be 0. */
  lost_events: number;
  /** Messages still in the outboxes when the settle time ran out. */
  undelivered: number;
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
const round = (x: number, d = 1): number => Math.round(x * 10 ** d) / 10 ** d;

export async function runFleet(options: FleetOptions = {}): Promise<FleetResult> {
  const o = {
    devices: options.devices ?? 200,
    events_per_s: options.events_per_s ?? 5,
    health_interval_ms: options.health_interval_ms ?? 5000,
    warmup_s: options.warmup_s ?? 10,
    outage_s: options.outage_s ?? 8,
    after_s: options.after_s ?? 10,
    stress_s: options.stress_s ?? 0,
    stress_events_per_s: options.stress_events_per_s ?? 40,
    lossy_devices: options.lossy_devices ?? 0,
    settle_timeout_s: options.settle_timeout_s ?? 20,
    inflight_window: options.inflight_window ?? 64,
    drain_rate_per_s: options.drain_rate_per_s ?? 0,
    backoff: options.backoff ?? { initial_ms: 1000, max_ms: 60_000, jitter: 0.5 },
    grace_ms: options.grace_ms ?? 2000,
  };
  const log = options.log ?? silentLogger();
  const progress = options.progress ?? (() => undefined);
  const t0 = performance.now();
  const elapsed = (): string => `${((performance.now() - t0) / 1000).toFixed(1)}s`;

  // Per-message logging would make the broker the bottleneck. Receive Maximum 256 (> the uplink window) and a
  // deep queue towards the receiver, as a production broker would be configured.
  const broker = await Mosquitto.start({
    extraConfig: ['log_dest none', 'sys_interval 1', 'max_inflight_messages 256', 'max_queued_messages 200000'],
  });
  const dir = mkdtempSync(join(tmpdir(), 'roadside-fleet-'));
  const sims: SimDevice[] = [];
  let receiver: FleetReceiver | undefined;
  let sys: MqttClient | undefined;
  let loadTimer: NodeJS.Timeout | undefined;
  let sampleTimer: NodeJS.Timeout | undefined;
  try {
    receiver = new FleetReceiver(
      { url: broker.url, prefix: 'roadside', grace_ms: o.grace_ms, request_timeout_ms: 5000, confirm_ms: 5000, max_tries: 5 },
      log,
    );
    await receiver.start();

    // Broker figures from $SYS (published every second with sys_interval 1).
    const sysFig = { load_received_1min_peak: 0, clients_peak: 0 };
    sys = await mqtt.connectAsync(broker.url, { protocolVersion: 5, clientId: `fleet-sys-${process.pid}`, reconnectPeriod: 500 });
    sys.on('error', () => undefined);
    sys.on('message', (topic, payload) => {
      const v = Number(payload.toString());
      if (!Number.isFinite(v)) return;
      if (topic === '$SYS/broker/load/messages/received/1min') sysFig.load_received_1min_peak = Math.max(sysFig.load_received_1min_peak, v);
      else if (topic === '$SYS/broker/clients/connected') sysFig.clients_peak = Math.max(sysFig.clients_peak, v);
    });
    await sys.subscribeAsync(['$SYS/broker/load/messages/received/1min', '$SYS/broker/clients/connected'], { qos: 0 });

    const mqttOpts = { inflight_window: o.inflight_window, drain_rate_per_s: o.drain_rate_per_s, backoff: o.backoff, health_interval_ms: o.health_interval_ms };
    const tStartDevices = performance.now();
    for (let i = 0; i < o.devices; i++) sims.push(new SimDevice(`box-${String(i).padStart(4, '0')}`, dir, broker.url, mqttOpts, log));
    for (const s of sims) await s.outbox.start(new AbortController().signal);
    await Promise.all(sims.map((s) => s.uplink.start(new AbortController().signal)));
    while (sims.some((s) => !s.uplink.online)) {
      if (performance.now() - tStartDevices > 60_000) throw new Error('fleet: boxes did not all come online within 60 s');
      await sleep(50);
    }
    const startup_s = (performance.now() - tStartDevices) / 1000;
    progress(`${elapsed()} ${o.devices} boxes online in ${startup_s.toFixed(1)} s`);

    // Load.
    let producing = true;
    let rate = o.events_per_s;
    let last = performance.now();
    loadTimer = setInterval(() => {
      const nowP = performance.now();
      const dt = nowP - last;
      last = nowP;
      if (!producing) return;
      const now = Date.now();
      for (const s of sims) s.produce(dt, rate, o.health_interval_ms, now);
    }, 50);

    // Samples: broker and own CPU, RSS, fds, every 500 ms.
    const samples = { broker_cpu_peak: 0, broker_cpu_sum: 0, broker_cpu_n: 0, broker_rss_peak: 0, node_cpu_peak: 0, rss_peak: 0, fds_peak: 0 };
    let lastBrokerCpu = procCpuSeconds(broker.pid);
    let lastNodeCpu = process.cpuUsage();
    let lastSample = performance.now();
    sampleTimer = setInterval(() => {
      const nowP = performance.now();
      const dt = (nowP - lastSample) / 1000;
      lastSample = nowP;
      const bc = procCpuSeconds(broker.pid);
      if (bc !== null && lastBrokerCpu !== null && bc >= lastBrokerCpu) {
        const pct = ((bc - lastBrokerCpu) / dt) * 100;
        samples.broker_cpu_peak = Math.max(samples.broker_cpu_peak, pct);
        samples.broker_cpu_sum += pct;
        samples.broker_cpu_n++;
      }
      lastBrokerCpu = bc;
      samples.broker_rss_peak = Math.max(samples.broker_rss_peak, procRssMb(broker.pid) ?? 0);
      const nc = process.cpuUsage(lastNodeCpu);
      lastNodeCpu = process.cpuUsage();
      samples.node_cpu_peak = Math.max(samples.node_cpu_peak, ((nc.user + nc.system) / 1e6 / dt) * 100);
      samples.rss_peak = Math.max(samples.rss_peak, process.memoryUsage().rss / 1e6);
      samples.fds_peak = Math.max(samples.fds_peak, openFds());
    }, 500);

    const msgs0 = receiver.totals().messages;
    const brokerCpu0 = procCpuSeconds(broker.pid) ?? 0;
    const tWarm = performance.now();
    await sleep(o.warmup_s * 1000);
    const warm_s = (performance.now() - tWarm) / 1000;
    const steadyMsgs = receiver.totals().messages - msgs0;
    const steadyBrokerCpu = (procCpuSeconds(broker.pid) ?? 0) - brokerCpu0;
    progress(`${elapsed()} steady: ${Math.round(steadyMsgs / warm_s)} msgs/s at the receiver; stopping the broker for ${o.outage_s} s`);

    await broker.stop();
    await sleep((o.outage_s * 1000) / 2);
    let dropped = 0;
    for (const s of sims.slice(0, o.lossy_devices)) {
      s.outbox.flush();
      for (const row of s.outbox.lease(5, { liveFrom: 0 })) {
        s.outbox.ack(row.seq);
        dropped++;
      }
    }
    await sleep((o.outage_s * 1000) / 2);
    const backlog_at_restart = sims.reduce((a, s) => a + s.outbox.stats().depth_total, 0);
    await broker.start();
    const tBack = performance.now();
    lastBrokerCpu = procCpuSeconds(broker.pid);
    const brokerCpuAtRestart = lastBrokerCpu ?? 0;
    let drainBrokerCpu = 0;
    const msgsAtRestart = receiver.totals().messages;
    progress(`${elapsed()} broker back; backlog ${backlog_at_restart} messages`);

    // Reconnection and drain.
    let firstOnline_s: number | null = null;
    let allOnline_s: number | null = null;
    let drain_s: number | null = null;
    let drainMsgs = 0;
    const tAfterEnd = tBack + o.after_s * 1000;
    const drainDeadline = tBack + Math.max(o.after_s, 30) * 1000;
    while (performance.now() < tAfterEnd || (drain_s === null && performance.now() < drainDeadline)) {
      const since = (performance.now() - tBack) / 1000;
      const online = sims.filter((s) => s.uplink.online).length;
      if (firstOnline_s === null && online > 0) firstOnline_s = since;
      if (allOnline_s === null && online === sims.length) allOnline_s = since;
      if (allOnline_s !== null && drain_s === null) {
        // Drained: every box online and nothing older than 1 s waiting (what remains is live traffic).
        const oldest = Math.max(...sims.map((s) => s.outbox.stats().oldest_unsent_age_s ?? 0));
        if (oldest < 1) {
          drain_s = since;
          drainMsgs = receiver.totals().messages - msgsAtRestart;
          drainBrokerCpu = (procCpuSeconds(broker.pid) ?? 0) - brokerCpuAtRestart;
        }
      }
      if (performance.now() >= tAfterEnd && drain_s !== null) break;
      await sleep(100);
    }
    let stressMsgs = 0;
    let stressBrokerCpu = 0;
    let stressSeconds = 0;
    if (o.stress_s > 0) {
      progress(`${elapsed()} stress: ${o.stress_events_per_s} events/s per box for ${o.stress_s} s`);
      rate = o.stress_events_per_s;
      await sleep(1000); // ramp
      const m0 = receiver.totals().messages;
      const c0 = procCpuSeconds(broker.pid) ?? 0;
      const ts = performance.now();
      await sleep(o.stress_s * 1000);
      stressSeconds = (performance.now() - ts) / 1000;
      stressMsgs = receiver.totals().messages - m0;
      stressBrokerCpu = (procCpuSeconds(broker.pid) ?? 0) - c0;
    }
    producing = false;
    progress(`${elapsed()} load stopped; reconnect ${firstOnline_s?.toFixed(1)}-${allOnline_s?.toFixed(1)} s, drain ${drain_s?.toFixed(1)} s; waiting for every seq`);

    // Every (device, seq) 1..last at the receiver, every outbox empty.
    for (const s of sims) s.outbox.flush();
    const tSettle = performance.now();
    const undelivered = (): number => sims.reduce((a, s) => a + s.outbox.stats().depth_total, 0);
    const complete = (): boolean =>
      sims.every((s) => {
        const d = receiver?.device(s.key);
        return d !== undefined && d.seq.first === 1 && d.seq.last === s.appended && d.seq.missing === 0 && d.seq.lost === 0;
      });
    while (!(complete() && undelivered() === 0) && performance.now() - tSettle < o.settle_timeout_s * 1000) await sleep(100);
    const settle_s = (performance.now() - tSettle) / 1000;
    clearInterval(sampleTimer);
    sampleTimer = undefined;

    const totals = receiver.totals();
    const devices: FleetDeviceResult[] = sims.map((s) => {
      const d = receiver?.device(s.key);
      return {
        key: s.key,
        appended: s.appended,
        received: d?.seq.received ?? 0,
        first: d?.seq.first ?? null,
        last: d?.seq.last ?? null,
        missing: d?.seq.missing ?? s.appended,
        lost: d?.seq.lost ?? 0,
      };
    });
    // Seqs 1..appended not held by the receiver (below its first, above its last, missing or lost inside), less
    // those still waiting in an outbox (not lost: not delivered yet when the settle time ran out).
    const notHeld = devices.reduce((a, d) => a + (d.first === null ? d.appended : d.first - 1 + Math.max(0, d.appended - (d.last ?? 0)) + d.missing + d.lost), 0);
    const waiting = undelivered();
    const lost_events = Math.max(0, notHeld - waiting);
    const appended = devices.reduce((a, d) => a + d.appended, 0);
    progress(`${elapsed()} receiver holds ${appended - notHeld}/${appended} seqs (${waiting} still in outboxes); ${totals.resend_requests} resend request(s), ${totals.repaired} seqs repaired`);

    const figures: Record<string, number> = {
      devices: o.devices,
      events_per_s_per_device: o.events_per_s,
      health_interval_s: o.health_interval_ms / 1000,
      outage_s: o.outage_s,
      startup_s: round(startup_s, 2),
      offered_msgs_per_s: round(o.devices * (o.events_per_s + 1000 / o.health_interval_ms), 0),
      steady_msgs_per_s: round(steadyMsgs / warm_s, 0),
      peak_msgs_per_s: totals.peak_msgs_per_s,
      backlog_at_restart,
      reconnect_first_s: round(firstOnline_s ?? -1, 2),
      reconnect_all_s: round(allOnline_s ?? -1, 2),
      drain_s: round(drain_s ?? -1, 2),
      drain_msgs_per_s: drain_s ? round(drainMsgs / drain_s, 0) : -1,
      settle_after_load_s: round(settle_s, 2),
      appended_total: appended,
      lost_events,
      undelivered_at_end: waiting,
      duplicates: totals.duplicates,
      gaps_filled_late_seqs: totals.filled_late,
      dropped_after_puback: dropped,
      resend_requests: totals.resend_requests,
      repaired_seqs: totals.repaired,
      invalid: totals.invalid,
      stress_offered_msgs_per_s: o.stress_s > 0 ? round(o.devices * (o.stress_events_per_s + 1000 / o.health_interval_ms), 0) : 0,
      stress_msgs_per_s: stressSeconds ? round(stressMsgs / stressSeconds, 0) : 0,
      stress_broker_cpu_pct: stressSeconds ? round((stressBrokerCpu / stressSeconds) * 100) : 0,
      broker_cpu_peak_pct: round(samples.broker_cpu_peak),
      broker_cpu_mean_pct: samples.broker_cpu_n ? round(samples.broker_cpu_sum / samples.broker_cpu_n) : -1,
      broker_cpu_ms_per_1k_msgs_steady: steadyMsgs ? round((steadyBrokerCpu * 1e6) / steadyMsgs, 1) : -1,
      broker_cpu_ms_per_1k_msgs_drain: drainMsgs ? round((drainBrokerCpu * 1e6) / drainMsgs, 1) : -1,
      broker_rss_mb_peak: round(samples.broker_rss_peak),
      broker_sys_load_received_1min_peak: round(sysFig.load_received_1min_peak, 0),
      broker_sys_clients_peak: sysFig.clients_peak,
      node_cpu_peak_pct: round(samples.node_cpu_peak),
      node_rss_mb_peak: round(samples.rss_peak, 0),
      node_fds_peak: samples.fds_peak,
      total_s: round((performance.now() - t0) / 1000, 1),
    };
    return { figures, devices, totals, lost_events, undelivered: waiting };
  } finally {
    if (loadTimer) clearInterval(loadTimer);
    if (sampleTimer) clearInterval(sampleTimer);
    await Promise.all(sims.map((s) => s.uplink.stop().catch(() => undefined)));
    for (const s of sims) await s.outbox.stop().catch(() => undefined);
    if (sys) await sys.endAsync().catch(() => undefined);
    if (receiver) await receiver.stop();
    await broker.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

/**
 * Messages per second one receiver validates and books (JSON parse, zod schemas, seq tracking), without the MQTT
 * client: 200 devices × 150 messages (1 in 25 a health report), best of 3 passes on one core.
 */
export function benchReceiverIngest(devices = 200, perDevice = 150): number {
  const msgs: [string, Buffer][] = [];
  const now = Date.now();
  for (let d = 0; d < devices; d++) {
    const dev = `box-${d}`;
    for (let i = 1; i <= perDevice; i++) {
      const delivery = { seq: i, sent_at: new Date(now).toISOString(), replayed: false };
      if (i % 25 === 0) msgs.push([`roadside/${SIM_SITE}/${dev}/health`, Buffer.from(JSON.stringify({ ...syntheticHealth(now, 0, 1), ...delivery }))]);
      else msgs.push([`roadside/${SIM_SITE}/${dev}/events/cam1`, Buffer.from(JSON.stringify({ ...syntheticEvent(SIM_SITE, dev, i, now), ...delivery }))]);
    }
  }
  let best = 0;
  for (let pass = 0; pass < 3; pass++) {
    const r = new FleetReceiver({ url: 'mqtt://127.0.0.1:1' }, silentLogger());
    const t0 = performance.now();
    for (const [topic, payload] of msgs) r.ingest(topic, payload);
    const s = (performance.now() - t0) / 1000;
    if (r.totals().invalid !== 0) throw new Error('benchReceiverIngest: invalid messages');
    best = Math.max(best, msgs.length / s);
  }
  return Math.round(best);
}

/** `npm run bench` section: 200 boxes, 5 events/s each, an 8 s broker outage; bounded to about a minute. */
export async function benchFleet(opts: FleetOptions = {}): Promise<Record<string, number>> {
  const r = await runFleet({ progress: (l) => process.stderr.write(`  fleet ${l}\n`), ...opts });
  return { ...r.figures, receiver_ingest_msgs_per_s: benchReceiverIngest() };
}

// `tsx bench/fleet.ts` runs it alone.
if (import.meta.url === `file://${process.argv[1]}`) {
  benchFleet()
    .then((r) => console.log(JSON.stringify(r, null, 2)))
    .catch((err: unknown) => {
      console.error(err);
      process.exitCode = 1;
    });
}
