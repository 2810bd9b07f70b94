// Example payloads of every topic and command: typed constants, validated against their schemas at generation
// time (generation fails on an invalid one), so the documents cannot show a payload the agent would not send.
import type { BirthPayload } from '../../contract/birth.js';
import { responseTopicRefused, type CommandRequest, type CommandResponse } from '../../contract/command.js';
import { COMMANDS, type CommandName } from '../../contract/commands.js';
import { EVENT_SCHEMA, type WireEvent } from '../../contract/event.js';
import { HEALTH_SCHEMA, type HealthMessage } from '../../contract/health.js';
import type { CameraStatusPayload, StatusPayload } from '../../contract/status.js';
import { CONTRACT_VERSION, DeliveryFields, TOPICS, baseTopic, topicsFor, type TopicName } from '../../contract/topics.js';
import { formatIssues } from '../../core/zod-issues.js';
import { FULL_MESSAGE, payloadSchema } from './schemas.js';

export interface Example<T> {
  name: string;
  summary: string;
  /** A concrete topic the example travels on. */
  topic: string;
  payload: T;
}
export type CommandExample<T> = Example<T> & { command: CommandName };

interface PayloadTypes {
  status: StatusPayload;
  birth: BirthPayload;
  events: WireEvent;
  health: HealthMessage;
  camera_status: CameraStatusPayload;
  command: CommandRequest;
  command_result: CommandResponse;
}
export type Examples = { [K in TopicName]: K extends 'command' | 'command_result' ? CommandExample<PayloadTypes[K]>[] : Example<PayloadTypes[K]>[] };

/** The example box's topics. */
const T = topicsFor(baseTopic('roadside', 'a7-north', 'box-0042'));
const T0 = '2026-11-26T12:00:00.000Z';

const FLOW_IN = {
  volume: 31,
  volume_by_class: { car: 27, truck: 3, motorcycle: 1 },
  speed_samples: 29,
  speed_mean_kmh: 71.4,
  speed_p85_kmh: 83.0,
};

export const EXAMPLES: Examples = {
  status: [
    { name: 'online', summary: 'Connected, birth published', topic: T.status, payload: { state: 'online', session: 42, ts: '2026-11-26T11:58:02.117Z' } },
    {
      name: 'offline_will',
      summary: 'The Will, published by the broker when the connection of session 42 died (ts: when that connection opened)',
      topic: T.status,
      payload: { state: 'offline', session: 42, ts: '2026-11-26T11:58:01.950Z' },
    },
    { name: 'stopped', summary: 'Clean shutdown', topic: T.status, payload: { state: 'stopped', session: 43, ts: '2026-11-26T13:10:44.500Z' } },
  ],
  birth: [
    {
      name: 'birth',
      summary: 'Birth certificate of a box with one camera',
      topic: T.birth,
      payload: {
        agent_version: '0.1.0',
        model: { name: 'nanodet-m-416', version: 'tfjs-3.0.4', sha256: '3f1c7d0e9a4b6c2d8e5f7a1b3c9d0e2f4a6b8c0d1e3f5a7b9c2d4e6f8a0b1c3d' },
        config_hash: '9c2f41d07e3a5b18',
        cameras: [{ id: 'cam1', lines: ['stop-nb'], zones: ['shoulder'] }],
        capabilities: ['speed', 'wrong_way', 'snapshot'],
        last_reboot_reason: 'power_loss',
        restarts: 17,
        health: {
          schema: HEALTH_SCHEMA,
          ts: '2026-11-26T11:57:30.000Z',
          status: 'ok',
          reasons: [],
          cpu_cores: 4,
          memory_total_mb: 3794,
          disk_total_mb: 29_000,
          disk_free_mb: 21_400,
          soc_temp_c: 61.2,
          clock_synced: true,
          network_interface: 'eth0',
          ip4: '10.20.4.42',
        },
        location: { lat: 45.5017, lon: -73.5673, description: 'A-7 km 42 northbound' },
        contract_version: CONTRACT_VERSION,
        session: 42,
        ts: '2026-11-26T11:58:02.101Z',
        commands: ['ping', 'rebirth', 'reload-config', 'resend', 'set-log-level', 'signal', 'snapshot'],
      },
    },
  ],
  events: [
    {
      name: 'line_crossing',
      summary: 'A car crossed the counting line (live)',
      topic: T.events('cam1'),
      payload: {
        schema: EVENT_SCHEMA,
        id: '01937f6e-2a40-7c3d-8e5f-0123456789ab',
        device: 'box-0042',
        site: 'a7-north',
        camera: 'cam1',
        captured_at: T0,
        mono_ms: 81_234_567.5,
        clock_synced: true,
        type: 'line_crossing',
        priority: 'event',
        object: { track_id: 1187, class: 'car', score: 0.81, box: [412, 233, 518, 301], speed_kmh: 74.2, speed_uncertainty_kmh: 3.1 },
        rule: { kind: 'line', id: 'stop-nb' },
        attributes: { direction: 'in', point_px: [465.2, 300.8], crossed_at: '2026-11-26T11:59:59.968Z' },
        seq: 1_048_211,
        sent_at: '2026-11-26T12:00:00.043Z',
        replayed: false,
      },
    },
    {
      name: 'wrong_way_replayed',
      summary: 'A violation with evidence, sent from the backlog after an outage',
      topic: T.events('cam1'),
      payload: {
        schema: EVENT_SCHEMA,
        id: '01937f6e-3b51-7d4e-9f60-1123456789ab',
        device: 'box-0042',
        site: 'a7-north',
        camera: 'cam1',
        captured_at: '2026-11-26T12:00:04.400Z',
        mono_ms: 81_238_967.1,
        clock_synced: true,
        type: 'wrong_way',
        priority: 'violation',
        object: { track_id: 1190, class: 'car', score: 0.77, box: [300, 180, 372, 231] },
        rule: { kind: 'zone', id: 'ramp-exit' },
        attributes: { distance_px: 143.5, allowed_direction: [0, 1], heading: [0.06, -0.998] },
        evidence: {
          frame_sha256: 'a3f1c7d0e9a4b6c2d8e5f7a1b3c9d0e2f4a6b8c0d1e3f5a7b9c2d4e6f8a0b1c3',
          crop_sha256: 'b4a2d8e1f0b5c7d3e9f6a8b2c4d0e1f3a5b7c9d1e2f4a6b8c0d3e5f7a9b1c2d4',
          frame_file: '20261126T120004.400Z-1190-frame.jpg',
          crop_file: '20261126T120004.400Z-1190-crop.jpg',
        },
        seq: 1_048_230,
        sent_at: '2026-11-26T12:41:17.212Z',
        replayed: true,
      },
    },
    {
      name: 'flow',
      summary: 'Traffic statistics of a line over one 60 s bin',
      topic: T.events('cam1'),
      payload: {
        schema: EVENT_SCHEMA,
        id: '01937f6f-0f00-7a11-8b22-2123456789ab',
        device: 'box-0042',
        site: 'a7-north',
        camera: 'cam1',
        captured_at: '2026-11-26T12:01:00.000Z',
        mono_ms: 81_294_567.5,
        clock_synced: true,
        type: 'flow',
        priority: 'statistics',
        rule: { kind: 'line', id: 'stop-nb' },
        attributes: {
          bin_start: T0,
          bin_end: '2026-11-26T12:01:00.000Z',
          observed_s: 60,
          occupancy: 0.12,
          in: FLOW_IN,
          out: { volume: 0, volume_by_class: {}, speed_samples: 0 },
        },
        seq: 1_048_260,
        sent_at: '2026-11-26T12:01:00.051Z',
        replayed: false,
      },
    },
  ],
  health: [
    {
      name: 'health',
      summary: 'Periodic health report of a box with one camera, slightly warm',
      topic: T.health,
      payload: {
        schema: HEALTH_SCHEMA,
        ts: T0,
        slow_sampled_at: '2026-11-26T11:59:30.000Z',
        status: 'warn',
        reasons: [{ code: 'temperature_high', severity: 'warn', message: 'SoC at 78.5 °C (warn above 75 °C)' }],
        system: {
          cpu_load_pct: 63.5,
          cpu_core_load_pct: [70.1, 58.2, 61.0, 64.7],
          cpu_cores: 4,
          load_avg_1m: 2.61,
          soc_temp_c: 78.5,
          soc_temp_source: 'thermal_zone0:cpu-thermal',
          throttled: { throttled_now: false, under_voltage_now: false, freq_capped_now: false, soft_temp_limit_now: false, occurred_since_boot: false, raw: '0x0' },
          memory_total_mb: 3794,
          memory_used_mb: 1210,
          memory_available_mb: 2584,
          swap_used_mb: 0,
          disk_path: '/var/lib/roadside',
          disk_total_mb: 29_000,
          disk_free_mb: 21_400,
          uptime_s: 86_400,
          network: { interface: 'eth0', link_up: true, type: 'wired', ip4: '10.20.4.42', ip6: null, speed_mbps: 100 },
          clock: { synced: true, offset_ms: 1.8, source: 'chronyc' },
        },
        agent: { uptime_s: 7200, rss_mb: 312, heap_used_mb: 48, event_loop_lag_ms: 2.1, event_loop_lag_max_ms: 9.4 },
        cameras: [
          {
            id: 'cam1',
            status: 'online',
            camera_fps: 10,
            process_fps: 9.6,
            skipped_fps: 0.4,
            motion_skipped_fps: 0,
            reconnects_last_hour: 0,
            stalls_last_hour: 0,
            last_frame_age_s: 0.08,
          },
        ],
        detector: { state: 'running', inference_ms_mean: 41.2, inference_ms_p95: 55.0, detection_fps: 9.6, restarts: 0, last_inference_age_s: 0.1 },
        outbox: { depth: 3, oldest_unsent_age_s: 0.2, evicted: 0 },
        uplink: { connected: true, state: 'online', publish_rate_per_s: 4.2, session: 42 },
        id: '01937f6e-2b00-7c3d-8e5f-3123456789ab',
        seq: 1_048_212,
        sent_at: '2026-11-26T12:00:00.120Z',
        replayed: false,
      },
    },
  ],
  camera_status: [
    {
      name: 'offline',
      summary: 'The camera refuses the credentials',
      topic: T.cameraStatus('cam1'),
      payload: { camera: 'cam1', state: 'offline', reason: 'rtsp 401 Unauthorized', ts: '2026-11-26T11:58:10.000Z' },
    },
  ],
  command: [
    { name: 'ping', summary: 'ping with a correlation id', command: 'ping', topic: T.command('ping'), payload: { id: 'c-1001' } },
    { name: 'resend', summary: 'Ask for seqs 1048214 to 1048229 again', command: 'resend', topic: T.command('resend'), payload: { id: 'c-1002', from: 1_048_214, to: 1_048_229 } },
    { name: 'set_log_level', summary: 'Turn on debug logging', command: 'set-log-level', topic: T.command('set-log-level'), payload: { id: 7, level: 'debug' } },
    { name: 'rebirth', summary: 'Republish birth and retained states (empty payload means {})', command: 'rebirth', topic: T.command('rebirth'), payload: {} },
  ],
  command_result: [
    {
      name: 'ping_ok',
      summary: 'ping answered',
      command: 'ping',
      topic: T.commandResult('ping'),
      payload: { status: 'ok', data: { uptime_s: 7200, session: 42, seq: 1_048_260, ts: '2026-11-26T12:01:00.300Z' }, id: 'c-1001' },
    },
    {
      name: 'resend_ok',
      summary: '15 of the 16 seqs are still kept and queued; one was evicted',
      command: 'resend',
      topic: T.commandResult('resend'),
      payload: { status: 'ok', data: { queued: 15, missing: 1 }, id: 'c-1002' },
    },
    {
      name: 'resend_error',
      summary: 'Invalid range',
      command: 'resend',
      topic: T.commandResult('resend'),
      payload: { status: 'error', error: { code: 'INVALID_ARGS', message: 'to: to must be >= from' }, id: 'c-1003' },
    },
    {
      name: 'response_topic_refused',
      summary: "The request's MQTT 5 Response Topic was the box's own status topic: refused, the command was not run",
      command: 'set-log-level',
      topic: T.commandResult('set-log-level'),
      payload: responseTopicRefused(T.status, T.reply, 8),
    },
  ],
};

const issues = (err: Parameters<typeof formatIssues>[0]): string => formatIssues(err, 5);

/** Every example against its topic schema (and command examples against the command's own schemas). Returns problems. */
export function exampleProblems(examples: Examples = EXAMPLES): string[] {
  const problems: string[] = [];
  for (const name of Object.keys(TOPICS) as TopicName[]) {
    const list = examples[name] as (Example<unknown> & { command?: CommandName })[];
    if (list.length === 0) problems.push(`${name}: no example`);
    const schema = payloadSchema(name);
    for (const ex of list) {
      const where = `${name} example "${ex.name}"`;
      const r = schema.safeParse(ex.payload);
      if (!r.success) problems.push(`${where}: ${issues(r.error)}`);
      if (FULL_MESSAGE[name]) {
        const d = DeliveryFields.safeParse(ex.payload);
        if (!d.success) problems.push(`${where} (delivery fields): ${issues(d.error)}`);
      }
      if (ex.command !== undefined) {
        const cmd = COMMANDS[ex.command];
        if (name === 'command') {
          const { id: _id, ...args } = ex.payload as Record<string, unknown>;
          const a = cmd.args.safeParse(args);
          if (!a.success) problems.push(`${where} (${ex.command} args): ${issues(a.error)}`);
        } else {
          const resp = ex.payload as CommandResponse;
          if (resp.status === 'ok') {
            const d = cmd.result.safeParse(resp.data);
            if (!d.success) problems.push(`${where} (${ex.command} result): ${issues(d.error)}`);
          }
        }
      }
      if (!topicMatches(TOPICS[name].pattern, ex.topic)) problems.push(`${where}: topic ${ex.topic} does not match ${TOPICS[name].pattern}`);
    }
  }
  return problems;
}

/** True when a concrete topic matches a TOPICS pattern (`{base}` = three levels, `{x}` = one level). */
export function topicMatches(pattern: string, topic: string): boolean {
  const p = pattern.replace('{base}', '{prefix}/{site}/{device}').split('/');
  const t = topic.split('/');
  return p.length === t.length && p.every((level, i) => (/^\{\w+\}$/.test(level) ? (t[i] ?? '') !== '' : level === t[i]));
}
