import { z } from 'zod';

/** Schema id carried by every health payload. Bump the number on any incompatible change. */
export const HEALTH_SCHEMA = 'roadside.health/1';

export const HEALTH_STATUSES = ['ok', 'warn', 'error'] as const;
export type HealthStatus = (typeof HEALTH_STATUSES)[number];

/** Stable reason codes; the center matches on these, never on the message. */
export const HEALTH_REASON_CODES = [
  'camera_offline',
  'camera_stalled',
  'camera_starting',
  'detector_stuck',
  'detector_failed',
  'detector_restarting',
  'disk_low',
  'temperature_high',
  'throttled',
  'under_voltage',
  'memory_high',
  'event_loop_lag',
  'clock_unsynced',
  'clock_offset',
  'network_down',
  'uplink_disconnected',
  'outbox_quarantined',
  'figures_unavailable',
  'status_server_unbound',
  'camera_tamper',
] as const;
export type HealthReasonCode = (typeof HEALTH_REASON_CODES)[number];

export const HealthReason = z
  .strictObject({
    code: z.enum(HEALTH_REASON_CODES).describe('Stable reason code'),
    severity: z.enum(['warn', 'error']).describe('error: something the box cannot do its job without (also turns /healthz to 503); warn: degraded'),
    message: z.string().describe('Human-readable explanation'),
    camera: z.string().optional().describe('Camera id, for camera reasons'),
  })
  .describe('Why the status is not ok');
export type HealthReason = z.infer<typeof HealthReason>;

export const CAMERA_STATES = ['starting', 'online', 'offline', 'stalled'] as const;
export type CameraState = (typeof CAMERA_STATES)[number];

const nn = () => z.number().finite().min(0);

export const CameraHealth = z
  .strictObject({
    id: z.string().describe('Camera id'),
    status: z.enum(CAMERA_STATES).describe('starting: first frames not in yet; online: frames arrive; offline: no stream; stalled: connected but no frames'),
    reason: z.string().max(500).optional().describe('Why the camera is not online'),
    camera_fps: nn().describe('Frames per second decoded from the camera (after the fps filter)'),
    process_fps: nn().describe('Frames per second run through the detector'),
    skipped_fps: nn().describe('Frames per second dropped because the detector was busy'),
    motion_skipped_fps: nn().describe('Frames per second not run through the detector because the scene was still'),
    reconnects_last_hour: z.number().int().min(0).describe('Stream reconnects in the last hour'),
    stalls_last_hour: z.number().int().min(0).describe('Stalls (connected, no frames) in the last hour'),
    last_frame_age_s: nn().nullable().describe('Seconds since the last frame; null: none yet'),
  })
  .describe('One camera');
export type CameraHealth = z.infer<typeof CameraHealth>;

export const DETECTOR_STATES = ['starting', 'running', 'restarting', 'stuck', 'failed', 'stopped'] as const;
export type DetectorState = (typeof DETECTOR_STATES)[number];

export const DetectorHealth = z
  .strictObject({
    state: z.enum(DETECTOR_STATES).describe('stuck: an inference has not returned in time; failed: gave up restarting'),
    inference_ms_mean: nn().nullable().describe('Mean inference time over the recent window, ms; null: no inference yet'),
    inference_ms_p95: nn().nullable().describe('95th percentile inference time over the recent window, ms'),
    detection_fps: nn().describe('Inferences per second, all cameras'),
    restarts: z.number().int().min(0).describe('Detector worker restarts since the agent started'),
    last_inference_age_s: nn().nullable().describe('Seconds since the last inference finished; null: none yet'),
  })
  .describe('The detector (ONNX worker)');
export type DetectorHealth = z.infer<typeof DetectorHealth>;

export const OutboxHealth = z
  .strictObject({
    depth: z.number().int().min(0).describe('Messages waiting to be sent'),
    oldest_unsent_age_s: nn().nullable().describe('Age of the oldest unsent message, seconds; null: nothing waiting'),
    evicted: z.number().int().min(0).describe('Messages evicted by the size cap or TTL since the agent started'),
    quarantined_file: z.string().optional().describe('A corrupt outbox file that was moved aside, if any'),
  })
  .describe('The durable outbox');
export type OutboxHealth = z.infer<typeof OutboxHealth>;

export const EvidenceHealth = z
  .strictObject({
    packages: z.number().int().min(0).describe('Violation evidence packages kept on the box'),
    size_mb: nn().describe('Space they take, MB'),
    unacknowledged: z.number().int().min(0).describe('Packages the center has not fetched (or acknowledged) yet'),
    evicted_acknowledged: z.number().int().min(0).describe('Packages deleted for space after the center had them, since the agent started'),
    evicted_unacknowledged: z.number().int().min(0).describe('Packages deleted for space before the center had them (evidence lost), since the agent started'),
    expired: z.number().int().min(0).describe('Packages deleted for age (evidence.max_days), since the agent started'),
  })
  .describe('Violation evidence packages (docs/evidence.md)');
export type EvidenceHealth = z.infer<typeof EvidenceHealth>;

/** The broker node a box uses (mqtt.url, or one of mqtt.urls): the cluster's view of where each box is. */
export const BrokerNode = z
  .strictObject({
    url: z.string().max(500).describe('Broker URL, without credentials'),
    index: z.number().int().min(0).describe('Its place in mqtt.urls, from 0 (0 with a single mqtt.url)'),
    nodes: z.number().int().min(1).describe('Broker URLs configured (mqtt.urls length; 1 with mqtt.url)'),
  })
  .describe('Broker node of the current connection (or of the attempt under way)');
export type BrokerNode = z.infer<typeof BrokerNode>;

export const UplinkHealth = z
  .strictObject({
    connected: z.boolean().describe('Connected to the broker'),
    state: z.string().describe('Uplink state, e.g. "connected", "connecting", "backoff"'),
    publish_rate_per_s: nn().describe('Messages acknowledged per second'),
    session: z.number().int().min(0).describe('Connection session number'),
    last_error: z.string().max(500).optional().describe('Last connection error'),
    broker: BrokerNode.optional().describe('The broker node in use (absent from agents before broker failover)'),
    failovers: z.number().int().min(0).optional().describe('Connections made to another node than the previous connection, since the agent started'),
  })
  .describe('The MQTT uplink');
export type UplinkHealth = z.infer<typeof UplinkHealth>;

export const ThrottleHealth = z
  .strictObject({
    throttled_now: z.boolean().describe('CPU currently throttled'),
    under_voltage_now: z.boolean().describe('Supply under-voltage now'),
    freq_capped_now: z.boolean().describe('ARM frequency capped now'),
    soft_temp_limit_now: z.boolean().describe('Soft temperature limit active now'),
    occurred_since_boot: z.boolean().describe('Any of the above happened since boot'),
    raw: z.string().describe('Raw value, e.g. vcgencmd get_throttled "0x50000"'),
  })
  .describe('SoC throttling (Raspberry Pi vcgencmd get_throttled)');
export type ThrottleHealth = z.infer<typeof ThrottleHealth>;

export const NetworkHealth = z
  .strictObject({
    interface: z.string().describe('Primary (default route) interface'),
    link_up: z.boolean().describe('Link state up'),
    type: z.string().nullable().describe('wired / wireless / virtual'),
    ip4: z.string().nullable().describe('IPv4 address'),
    ip6: z.string().nullable().describe('IPv6 address'),
    speed_mbps: nn().nullable().describe('Link speed, Mbit/s'),
  })
  .describe('Primary network interface');
export type NetworkHealth = z.infer<typeof NetworkHealth>;

export const ClockHealth = z
  .strictObject({
    synced: z.boolean().nullable().describe('System clock synchronised (NTP); null: unknown (no chronyc or timedatectl answered)'),
    offset_ms: z.number().finite().nullable().describe('Local clock minus reference time, ms; null: unknown'),
    source: z.enum(['chronyc', 'timedatectl', 'unknown']).describe('Where the figures came from'),
  })
  .describe('Clock synchronisation');
export type ClockHealth = z.infer<typeof ClockHealth>;

export const SystemHealth = z
  .strictObject({
    cpu_load_pct: nn().max(100).nullable().describe('CPU load since the previous sample, all cores, percent'),
    cpu_core_load_pct: z.array(nn().max(100)).describe('CPU load per core, percent'),
    cpu_cores: z.number().int().min(1).describe('Logical CPU cores'),
    load_avg_1m: nn().describe('1-minute load average'),
    soc_temp_c: z.number().finite().nullable().describe('SoC / CPU temperature, degrees C; null: no sensor exposed'),
    soc_temp_source: z.string().nullable().describe('Sensor the temperature came from, e.g. "thermal_zone0:cpu-thermal", "vcgencmd"'),
    throttled: ThrottleHealth.nullable().describe('null: the platform does not expose throttling'),
    memory_total_mb: nn().nullable().describe('Physical memory, MB'),
    memory_used_mb: nn().nullable().describe('Memory in use (total minus available), MB'),
    memory_available_mb: nn().nullable().describe('Memory available to new work (MemAvailable), MB'),
    swap_used_mb: nn().nullable().describe('Swap in use, MB'),
    disk_path: z.string().describe('Data directory whose file system is measured (device.data_dir)'),
    disk_total_mb: nn().nullable().describe('Size of the data partition, MB; null: not sampled yet or unreadable'),
    disk_free_mb: nn().nullable().describe('Space available on the data partition, MB'),
    uptime_s: nn().nullable().describe('System uptime, seconds'),
    network: NetworkHealth.nullable().describe('null: no default interface, or not sampled yet'),
    clock: ClockHealth,
  })
  .describe('The box');
export type SystemHealth = z.infer<typeof SystemHealth>;

export const AgentProcessHealth = z
  .strictObject({
    uptime_s: nn().describe('Seconds since the agent process started'),
    rss_mb: nn().describe('Resident memory of the agent process, MB'),
    heap_used_mb: nn().describe('V8 heap in use, MB'),
    event_loop_lag_ms: nn().describe('Event-loop delay, 99th percentile since the previous sample, ms'),
    event_loop_lag_max_ms: nn().describe('Largest event-loop delay since the previous sample, ms'),
  })
  .describe('The agent process');
export type AgentProcessHealth = z.infer<typeof AgentProcessHealth>;

/**
 * `{base}/health` body (the uplink adds the DeliveryFields `id`, `seq`, `sent_at`, `replayed`: see
 * HealthMessage). Sent every `health.interval_s` through the outbox with priority `health`.
 */
export const HealthPayload = z
  .strictObject({
    schema: z.literal(HEALTH_SCHEMA).describe('Payload schema id and version'),
    ts: z.iso.datetime({ offset: true }).describe('ISO 8601 time of the sample'),
    slow_sampled_at: z.iso.datetime({ offset: true }).nullable().describe('When disk, network, clock and vcgencmd were last sampled; null: not yet'),
    status: z.enum(HEALTH_STATUSES).describe('ok; warn: degraded; error: the box cannot do its job (see reasons)'),
    reasons: z.array(HealthReason).describe('Every reason the status is not ok; empty when ok'),
    system: SystemHealth,
    agent: AgentProcessHealth,
    cameras: z.array(CameraHealth).describe('Per-camera figures'),
    detector: DetectorHealth.nullable().describe('null: figures unavailable'),
    outbox: OutboxHealth.nullable().describe('null: figures unavailable'),
    uplink: UplinkHealth.nullable().describe('null: figures unavailable'),
    evidence: EvidenceHealth.nullable().optional().describe('Evidence packages; absent on boxes without them, null: figures unavailable'),
  })
  .describe('Periodic health report');
export type HealthPayload = z.infer<typeof HealthPayload>;

/** The health message as it travels on `{base}/health`: the body plus the uplink's delivery fields. */
export const HealthMessage = HealthPayload.extend({
  id: z.string().describe('Unique message id'),
  seq: z.number().int().min(1).describe('Per-device sequence number'),
  sent_at: z.iso.datetime({ offset: true }).describe('ISO 8601 time this copy was sent'),
  replayed: z.boolean().describe('true when sent from the backlog'),
}).describe('Health message on the wire');
export type HealthMessage = z.infer<typeof HealthMessage>;

/** Small, slowly changing health figures for the retained birth message. */
export const HealthSummary = z
  .strictObject({
    schema: z.literal(HEALTH_SCHEMA),
    ts: z.iso.datetime({ offset: true }).nullable().describe('Time of the sample summarised; null: no sample yet'),
    status: z.enum(HEALTH_STATUSES),
    reasons: z.array(z.enum(HEALTH_REASON_CODES)).describe('Reason codes'),
    cpu_cores: z.number().int().min(1),
    memory_total_mb: nn().nullable(),
    disk_total_mb: nn().nullable(),
    disk_free_mb: nn().nullable(),
    soc_temp_c: z.number().finite().nullable(),
    clock_synced: z.boolean().nullable(),
    network_interface: z.string().nullable(),
    ip4: z.string().nullable(),
  })
  .describe('Health summary for the birth message');
export type HealthSummary = z.infer<typeof HealthSummary>;
