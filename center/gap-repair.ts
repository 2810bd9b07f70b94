// Gap repair: asks a box to resend the seqs missing at the center (the `resend` command), confirms the repair
// when they arrive, and reports a hole as lost when the box no longer has it, does not answer, or it stays
// unfilled after max_tries requests. Holes are left alone for grace_ms (out-of-order arrival inside the in-flight
// window is normal) and while the box is draining its backlog (replayed messages keep arriving).
import { randomBytes } from 'node:crypto';
import { CommandResponse } from '../contract/command.js';
import { ResendResult } from '../contract/commands.js';
import type { Logger } from '../core/log.js';
import { formatIssues } from '../core/zod-issues.js';
import type { Device, DeviceRegistry, RepairStats } from './devices.js';
import type { ParsedJson } from './payload.js';
import type { Gap } from './seq-tracker.js';

export type GapMode = 'repair' | 'track' | 'off';

export interface GapReport {
  key: string;
  site: string;
  device: string;
  from: number;
  to: number;
  seqs: number;
  state: 'requested' | 'repaired' | 'lost';
  tries: number;
  reason?: string;
}

export interface GapRepairOptions {
  mode: GapMode;
  grace_ms: number;
  max_defer_ms: number;
  request_timeout_ms: number;
  confirm_ms: number;
  max_tries: number;
  max_outstanding: number;
  coalesce: number;
}

/** How resend requests leave (the broker connection). */
export interface ResendChannel {
  /** False while disconnected: nothing is sent or counted then. */
  readonly ready: boolean;
  /** Publishes `{id, from, to}` on the device's resend command topic, correlated by `id`. */
  sendResend(d: Device, req: { id: string; from: number; to: number }): void;
}

export interface GapRepairHooks {
  report(r: GapReport): void;
  invalid(d: Device, topic: string, error: string, now: number): void;
}

interface ResendRequest {
  id: string;
  key: string;
  from: number;
  to: number;
  deadline: number;
}

export class GapRepair {
  private readonly requests = new Map<string, ResendRequest>();
  private readonly statsByKey = new Map<string, RepairStats>();
  private readonly idPrefix = randomBytes(4).toString('hex');
  private counter = 0;

  constructor(
    private readonly o: GapRepairOptions,
    private readonly devices: DeviceRegistry,
    private readonly channel: ResendChannel,
    private readonly hooks: GapRepairHooks,
    private readonly log: Logger,
  ) {}

  /** resend requests waiting for a response. */
  get outstanding(): number {
    return this.requests.size;
  }

  stats(key: string): RepairStats {
    let s = this.statsByKey.get(key);
    if (!s) {
      s = { filled_late: 0, repaired: 0, resend_requests: 0 };
      this.statsByKey.set(key, s);
    }
    return s;
  }

  /** A seq arrived inside a known hole. */
  onFilled(d: Device, gap: Gap, closed: boolean): void {
    if (gap.lost) {
      // Arrived after it was given up on (reported lost): counted as received again.
      this.log.info({ device: d.key, from: gap.lo, to: gap.hi }, 'center: a seq reported lost arrived after all');
      return;
    }
    const s = this.stats(d.key);
    if (gap.tries > 0) s.repaired++;
    else s.filled_late++;
    // One report per request range, when its last missing seq arrived.
    if (closed && gap.tries > 0 && !d.seqs.gaps.some((g) => !g.lost && g.req_from === gap.req_from && g.req_to === gap.req_to && g.tries > 0)) {
      this.hooks.report({ key: d.key, site: d.site, device: d.device, from: gap.req_from, to: gap.req_to, seqs: gap.req_to - gap.req_from + 1, state: 'repaired', tries: gap.tries });
    }
  }

  /** Periodic work: expire unanswered requests, ask for eligible holes, give up on hopeless ones. */
  tick(now: number): void {
    if (this.o.mode === 'off') return;
    for (const req of [...this.requests.values()]) {
      if (now < req.deadline) continue;
      this.requests.delete(req.id);
      const d = this.devices.get(req.key);
      if (!d) continue;
      for (const g of d.seqs.gaps) {
        if (g.request !== req.id) continue;
        g.request = null;
        g.wait_until = now;
        g.reason = `no answer to resend within ${this.o.request_timeout_ms} ms`;
      }
    }
    for (const d of this.devices.all()) if (d.seqs.gaps.length > 0) this.repairDevice(d, now);
  }

  /**
   * A command response: on the receiver's reply topic (MQTT 5, `correlationData` set) or on a box's
   * `{base}/cmd/resend/result` (MQTT 3.1.1 on either side; matched by the id in the payload).
   */
  onReply(topic: string, json: ParsedJson, correlationData: Buffer | undefined, now: number): void {
    const parsed = json.ok ? CommandResponse.safeParse(json.value) : undefined;
    let id = correlationData?.toString('utf8');
    if (id === undefined && parsed?.success && typeof parsed.data.id === 'string') id = parsed.data.id;
    if (id === undefined) return;
    const req = this.requests.get(id);
    if (!req) return; // another receiver's, or already timed out
    this.requests.delete(id);
    const d = this.devices.get(req.key);
    if (!d) return;
    const gaps = d.seqs.gaps.filter((g) => g.request === id);
    if (!parsed?.success) {
      this.hooks.invalid(d, topic, `resend response: ${parsed ? formatIssues(parsed.error, 3) : json.ok ? 'invalid' : json.error}`, now);
      for (const g of gaps) {
        g.request = null;
        g.wait_until = now + this.o.confirm_ms;
      }
      return;
    }
    const resp = parsed.data;
    if (resp.status === 'error') {
      this.log.warn({ device: d.key, from: req.from, to: req.to, code: resp.error.code, message: resp.error.message }, 'center: resend refused');
      for (const g of gaps) {
        g.request = null;
        g.wait_until = now + this.o.confirm_ms;
        g.reason = `resend refused: ${resp.error.code} ${resp.error.message}`;
      }
      return;
    }
    const result = ResendResult.safeParse(resp.data);
    const queued = result.success ? result.data.queued : 1;
    if (queued === 0) {
      // Nothing in the range is kept on the box any more: evicted (caps) or expired (TTL).
      for (const g of gaps) this.markLost(d, g, `the box no longer has seqs ${req.from}-${req.to} (evicted or expired)`);
      return;
    }
    for (const g of gaps) {
      g.request = null;
      g.wait_until = now + this.o.confirm_ms + queued;
      g.reason = null;
    }
  }

  /** The box went offline: its pending requests will not be answered; they do not count as tries. */
  cancel(d: Device): void {
    for (const req of [...this.requests.values()]) {
      if (req.key !== d.key) continue;
      this.requests.delete(req.id);
      for (const g of d.seqs.gaps) {
        if (g.request !== req.id) continue;
        g.request = null;
        g.tries = Math.max(0, g.tries - 1);
      }
    }
  }

  private repairDevice(d: Device, now: number): void {
    const eligible: Gap[] = [];
    const backlogQuiet = now - d.last_replayed_at >= this.o.grace_ms;
    for (const g of d.seqs.gaps) {
      if (g.lost || g.request !== null) continue;
      if (g.jump) {
        this.markLost(d, g, 'seq jump: the box restarted its seq counter far above (e.g. a corrupt outbox was quarantined)');
        continue;
      }
      if (this.o.mode !== 'repair') continue;
      if (now < g.wait_until) continue;
      if (g.tries >= this.o.max_tries) {
        this.markLost(d, g, g.reason ?? `not filled after ${g.tries} resend request(s)`);
        continue;
      }
      const age = now - g.opened_at;
      if (g.tries === 0 && (age < this.o.grace_ms || (!backlogQuiet && age < this.o.max_defer_ms))) continue;
      eligible.push(g);
    }
    if (eligible.length === 0 || !d.online) return;
    // Coalesce close holes into one request range.
    let i = 0;
    while (i < eligible.length && this.requests.size < this.o.max_outstanding) {
      const first = eligible[i] as Gap;
      let j = i;
      while (j + 1 < eligible.length) {
        const next = eligible[j + 1] as Gap;
        const cur = eligible[j] as Gap;
        if (next.lo - cur.hi - 1 > this.o.coalesce || next.hi - first.lo + 1 > 10_000) break;
        j++;
      }
      this.request(d, eligible.slice(i, j + 1), now);
      i = j + 1;
    }
  }

  private request(d: Device, gaps: Gap[], now: number): void {
    if (!this.channel.ready) return;
    const from = (gaps[0] as Gap).lo;
    const to = (gaps[gaps.length - 1] as Gap).hi;
    const id = `${this.idPrefix}-${++this.counter}`;
    this.requests.set(id, { id, key: d.key, from, to, deadline: now + this.o.request_timeout_ms });
    for (const g of gaps) {
      g.request = id;
      g.tries++;
      g.req_from = from;
      g.req_to = to;
    }
    this.stats(d.key).resend_requests++;
    this.channel.sendResend(d, { id, from, to });
    const tries = Math.max(...gaps.map((g) => g.tries));
    this.log.info({ device: d.key, from, to, tries }, 'center: resend requested');
    this.hooks.report({ key: d.key, site: d.site, device: d.device, from, to, seqs: to - from + 1, state: 'requested', tries });
  }

  private markLost(d: Device, g: Gap, reason: string): void {
    g.lost = true;
    g.request = null;
    g.reason = reason;
    const seqs = g.hi - g.lo + 1;
    this.log.warn({ device: d.key, from: g.lo, to: g.hi, seqs, tries: g.tries, reason }, 'center: seqs lost');
    this.hooks.report({ key: d.key, site: d.site, device: d.device, from: g.lo, to: g.hi, seqs, state: 'lost', tries: g.tries, reason });
  }
}
