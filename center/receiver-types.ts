// Types of the fleet receiver's options, totals and reports (kept apart so receiver.ts holds the behaviour).
import type { GapMode } from './gap-repair.js';
import type { EventSink } from './sinks.js';
import type { DeviceStateStore } from './state.js';

export interface FleetReceiverOptions {
  /** Broker URL (mqtt://, mqtts://, ws://, wss://), or the nodes of a cluster: the next one at each reconnect. */
  url: string | readonly string[];
  /**
   * MQTT protocol: 5 (default), or 4 = MQTT 3.1.1 for brokers that speak nothing newer (the demo's embedded
   * aedes). With 4, resend responses arrive on the box's `{base}/cmd/resend/result`, and session_expiry_s > 0
   * keeps the session for as long as the broker keeps 3.1.1 sessions; receive_maximum does not apply.
   */
  protocol?: 4 | 5;
  /** First topic level of the fleet. Default "roadside". */
  prefix?: string;
  /** Join this shared-subscription group for events and health (MQTT 5; on 3.1.1 only where the broker allows it, e.g. mosquitto). */
  share?: string;
  /**
   * Receive events and health of these sites only (static sharding between receivers, which keeps per-device
   * gap repair working with any broker). Status and birth are still received for the whole fleet. Default: all.
   */
  sites?: string[];
  /** MQTT client id. Default: roadside-center-<random>. A fixed id plus session_expiry_s > 0 keeps a persistent session. */
  clientId?: string;
  username?: string;
  password?: string;
  /** PEM files: CA bundle for the broker certificate, client certificate and key (mutual TLS). */
  ca?: string;
  cert?: string;
  key?: string;
  /** MQTT 5 Session Expiry Interval, s: the broker queues QoS 1 messages this long while the receiver is away. Default 0 without clientId, 3600 with. */
  session_expiry_s?: number;
  /** repair: detect and repair seq gaps; track: detect only; off: neither. Default repair, or off with `share`. */
  gaps?: GapMode;
  /** A hole must be this old before it is a gap (out-of-order arrival within the in-flight window is normal), ms. Default 3000. */
  grace_ms?: number;
  /** While a box is draining its backlog (replayed messages keep arriving) holes are left to fill; at most this long, ms. Default 300000. */
  max_defer_ms?: number;
  /** Time to wait for a resend response, ms. Default 10000. */
  request_timeout_ms?: number;
  /** After a resend was accepted, time for the resent messages to arrive before asking again, ms (+1 ms per queued row). Default 10000. */
  confirm_ms?: number;
  /** resend requests per hole before it is reported lost. Default 3. */
  max_tries?: number;
  /** resend requests waiting for a response, fleet-wide (no resend storm after a broker restart). Default 64. */
  max_outstanding?: number;
  /** Holes this close (in seqs) are asked for in one request (the seqs between are sent again too). Default 64. */
  coalesce?: number;
  /** Recent message ids remembered per device for duplicate detection by id (~250 bytes each). Default 256. */
  id_window?: number;
  /** Bookkeeping period (gap repair, rates), ms. Default 250. */
  tick_ms?: number;
  /** MQTT 5 Receive Maximum announced to the broker (QoS 1 messages in flight towards this receiver). Default 1000. */
  receive_maximum?: number;
  /** Where accepted events (and, for sinks that keep them, health reports) go. The receiver starts them before it subscribes and closes them when it stops. */
  sinks?: EventSink[];
  /**
   * Keeps device state (availability, seq bookkeeping) beyond this process: the seq state saved by earlier runs is
   * loaded at start, so gap repair resumes after a restart. Usually one of the sinks (the PostgreSQL sink).
   */
  state?: DeviceStateStore;
  /** Clock (tests). */
  now?: () => number;
}

export interface FleetTotals {
  connected: boolean;
  devices: number;
  online: number;
  offline: number;
  stopped: number;
  unknown: number;
  messages: number;
  events: number;
  health_messages: number;
  duplicates: number;
  invalid: number;
  missing: number;
  gaps_open: number;
  filled_late: number;
  repaired: number;
  lost: number;
  resend_requests: number;
  resend_outstanding: number;
  stale_status: number;
  /** Messages per second over the last 5 s. */
  msgs_per_s: number;
  /** Highest 1-second message count seen. */
  peak_msgs_per_s: number;
}

export interface InvalidReport {
  key: string | null;
  topic: string;
  error: string;
}

export interface ReceivedEventMeta {
  key: string;
  site: string;
  device: string;
  topic: string;
  received_at: number;
}
