// The boxes a center knows: availability from status and birth by session number, camera states, last health,
// seq bookkeeping and invalid-payload counts per device, and the JSON view of one device.
import type { BirthPayload } from '../contract/birth.js';
import type { HealthMessage } from '../contract/health.js';
import type { AgentState, CameraStatusPayload, StatusPayload } from '../contract/status.js';
import { baseTopic, topicsFor, type Topics } from '../contract/topics.js';
import { Dedup } from './dedup.js';
import { SeqTracker } from './seq-tracker.js';

export interface DeviceHealthSummary {
  ts: string;
  seq: number;
  status: HealthMessage['status'];
  reasons: string[];
  soc_temp_c: number | null;
  /** Frames per second through the detector, all cameras. */
  process_fps: number;
  /** Outbox depth (messages waiting on the box). */
  backlog: number | null;
  uplink_session: number | null;
}

/** Gap repair figures of one device (kept by GapRepair). */
export interface RepairStats {
  /** Holes filled without asking (out-of-order arrival). */
  filled_late: number;
  /** Seqs that arrived after a resend request. */
  repaired: number;
  resend_requests: number;
}

export interface DeviceState {
  key: string;
  site: string;
  device: string;
  /** unknown: seen only through events/health so far. */
  state: AgentState | 'unknown';
  /** What the state comes from: the status topic, or a birth newer than the retained status (a late Will overwrote it). */
  state_source: 'status' | 'birth' | null;
  session: number | null;
  state_since: string | null;
  last_seen: string | null;
  agent_version: string | null;
  contract_version: number | null;
  commands: string[];
  cameras: Record<string, { state: CameraStatusPayload['state']; reason?: string; ts: string }>;
  health: DeviceHealthSummary | null;
  events: number;
  health_messages: number;
  seq: {
    first: number | null;
    last: number | null;
    received: number;
    /** Copies of a seq already received (at-least-once delivery, resends). */
    duplicates: number;
    /** New seqs carrying an id already received under another seq. */
    duplicate_ids: number;
    /** A seq received twice with different ids (seq reuse on the box, e.g. after a power cut with synchronous=NORMAL). */
    seq_conflicts: number;
    missing: number;
    gaps_open: number;
    /** Holes filled without asking (out-of-order arrival). */
    filled_late: number;
    /** Seqs that arrived after a resend request. */
    repaired: number;
    /** Seqs given up on. */
    lost: number;
    resend_requests: number;
  };
  invalid: { count: number; last_error: string | null; last_topic: string | null; at: string | null };
  /** status/birth messages ignored because their session was older than the one known (late Wills). */
  stale_status: number;
}

/** What a status or birth did to the availability. */
export type AvailabilityChange = 'changed' | 'same' | 'stale';

/**
 * Availability of one box by session number. The session grows at each connect, so a status of an older session
 * (a Will arriving late) never overrides a newer one; a birth of a newer session than the retained status means
 * the box connected again after it (birth goes out before online), so it is online.
 */
export class Availability {
  state: AgentState | 'unknown' = 'unknown';
  source: 'status' | 'birth' | null = null;
  session: number | null = null;
  /** When the state last changed, ms since epoch. */
  since: number | null = null;
  birth: BirthPayload | null = null;
  /** status/birth messages of an older session, ignored. */
  stale = 0;
  private statusSession = 0;
  private statusState: AgentState | null = null;
  private birthSession = 0;

  onStatus(s: StatusPayload, now: number): AvailabilityChange {
    if (s.session < Math.max(this.statusSession, this.birthSession)) {
      this.stale++;
      return 'stale';
    }
    this.statusSession = s.session;
    this.statusState = s.state;
    return this.apply(now);
  }

  onBirth(b: BirthPayload, now: number): AvailabilityChange {
    if (b.session < this.birthSession) {
      this.stale++;
      return 'stale';
    }
    this.birth = b;
    this.birthSession = b.session;
    return this.apply(now);
  }

  private apply(now: number): AvailabilityChange {
    if (this.birthSession > this.statusSession) return this.set('online', this.birthSession, 'birth', now);
    if (this.statusState) return this.set(this.statusState, this.statusSession, 'status', now);
    return 'same';
  }

  private set(state: AgentState, session: number, source: 'status' | 'birth', now: number): AvailabilityChange {
    const changed = this.state !== state || this.session !== session;
    this.session = session;
    this.source = source;
    if (this.state !== state) this.since = now;
    this.state = state;
    return changed ? 'changed' : 'same';
  }
}

export interface DeviceOptions {
  /** Track seqs (gaps and duplicates by seq); off: duplicates by id only. */
  track_seqs: boolean;
  /** Recent message ids remembered for duplicate detection. */
  id_window: number;
}

export class Device {
  readonly key: string;
  readonly topics: Topics;
  readonly availability = new Availability();
  readonly cameras = new Map<string, CameraStatusPayload>();
  readonly seqs = new SeqTracker();
  readonly dedup: Dedup;
  last_seen: number | null = null;
  /** Something changed since a state store last took a snapshot (any message does: last_seen). */
  changed = true;
  /** Arrival of the last replayed message: while the box drains its backlog, holes are left to fill. */
  last_replayed_at = 0;
  health: DeviceHealthSummary | null = null;
  events = 0;
  health_messages = 0;
  readonly invalid: DeviceState['invalid'] = { count: 0, last_error: null, last_topic: null, at: null };

  constructor(
    prefix: string,
    readonly site: string,
    readonly device: string,
    opts: DeviceOptions,
  ) {
    this.key = `${site}/${device}`;
    this.topics = topicsFor(baseTopic(prefix, site, device));
    this.dedup = new Dedup(opts.track_seqs ? this.seqs : null, opts.id_window);
  }

  get online(): boolean {
    return this.availability.state === 'online';
  }

  recordInvalid(topic: string, error: string, now: number): void {
    this.invalid.count++;
    this.invalid.last_error = error;
    this.invalid.last_topic = topic;
    this.invalid.at = new Date(now).toISOString();
  }

  /** A valid health message; the summary keeps the newest by seq (the backlog arrives oldest-first). */
  recordHealth(seq: number, h: HealthMessage): void {
    this.health_messages++;
    if (this.health && seq <= this.health.seq) return;
    this.health = {
      ts: h.ts,
      seq,
      status: h.status,
      reasons: h.reasons.map((x) => x.code),
      soc_temp_c: h.system.soc_temp_c,
      process_fps: Math.round(h.cameras.reduce((a, c) => a + c.process_fps, 0) * 10) / 10,
      backlog: h.outbox?.depth ?? null,
      uplink_session: h.uplink?.session ?? null,
    };
  }

  view(repair: RepairStats): DeviceState {
    const a = this.availability;
    const tr = this.seqs;
    const cameras: DeviceState['cameras'] = {};
    for (const [id, c] of this.cameras) cameras[id] = { state: c.state, ...(c.reason ? { reason: c.reason } : {}), ts: c.ts };
    return {
      key: this.key,
      site: this.site,
      device: this.device,
      state: a.state,
      state_source: a.source,
      session: a.session,
      state_since: a.since === null ? null : new Date(a.since).toISOString(),
      last_seen: this.last_seen === null ? null : new Date(this.last_seen).toISOString(),
      agent_version: a.birth?.agent_version ?? null,
      contract_version: a.birth?.contract_version ?? null,
      commands: a.birth?.commands ?? [],
      cameras,
      health: this.health,
      events: this.events,
      health_messages: this.health_messages,
      seq: {
        first: tr.first || null,
        last: tr.last || null,
        received: tr.received,
        duplicates: this.dedup.duplicates,
        duplicate_ids: this.dedup.duplicate_ids,
        seq_conflicts: this.dedup.seq_conflicts,
        missing: tr.missing,
        gaps_open: tr.openGaps,
        filled_late: repair.filled_late,
        repaired: repair.repaired,
        lost: tr.lost,
        resend_requests: repair.resend_requests,
      },
      invalid: { ...this.invalid },
      stale_status: a.stale,
    };
  }
}

/** Every device seen, by `site/device`. */
export class DeviceRegistry {
  private readonly byKey = new Map<string, Device>();

  constructor(
    private readonly prefix: string,
    private readonly opts: DeviceOptions,
  ) {}

  get size(): number {
    return this.byKey.size;
  }

  get(key: string): Device | undefined {
    return this.byKey.get(key);
  }

  /** The device, created on first sight. */
  obtain(site: string, device: string): Device {
    const key = `${site}/${device}`;
    let d = this.byKey.get(key);
    if (!d) {
      d = new Device(this.prefix, site, device, this.opts);
      this.byKey.set(key, d);
    }
    return d;
  }

  all(): IterableIterator<Device> {
    return this.byKey.values();
  }

  /** Sorted by key. */
  sorted(): Device[] {
    return [...this.byKey.values()].sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
  }
}
