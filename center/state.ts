// The receiver's device state as a store keeps it (the PostgreSQL sink): availability, the newest health summary
// and the seq bookkeeping with its open holes and repair tries. A restarted receiver (or another one taking over a
// site) loads the seq state and resumes gap repair where the previous one stopped; everything else it keeps in
// memory only, so receivers stay stateless otherwise.
import type { BirthPayload } from '../contract/birth.js';
import type { Device, DeviceHealthSummary, RepairStats } from './devices.js';
import type { SeqSnapshot } from './seq-tracker.js';

/** Seq bookkeeping of one device: the tracker's snapshot plus the repair figures. */
export type SavedSeqs = SeqSnapshot & RepairStats;

export interface DeviceSnapshot {
  site: string;
  device: string;
  state: Device['availability']['state'];
  state_source: 'status' | 'birth' | null;
  session: number | null;
  /** When the state last changed as seen by this receiver, ms since epoch. */
  state_since: number | null;
  last_seen: number | null;
  birth: BirthPayload | null;
  health: DeviceHealthSummary | null;
  /** null when this receiver does not track seqs (gap mode off). Figures derived from the holes, for queries. */
  seqs: (SavedSeqs & { contiguous: number; missing: number; lost: number }) | null;
}

export interface SavedDeviceSeqs {
  site: string;
  device: string;
  seqs: SavedSeqs;
}

/** A store of device state. */
export interface DeviceStateStore {
  /** Seq state saved by earlier runs for the devices of these sites (every site when undefined). */
  loadSeqs(sites: string[] | undefined): Promise<SavedDeviceSeqs[]>;
  /**
   * How the store reads what changed: the receiver hands over `changed`, which returns the snapshots of the
   * devices changed since its previous call. The store must write them only together with (or after) every row
   * the receiver gave it before that call, so a saved state never claims a seq whose row was not stored.
   */
  track(changed: () => DeviceSnapshot[]): void;
}

export function snapshotDevice(d: Device, repair: RepairStats, trackSeqs: boolean): DeviceSnapshot {
  const a = d.availability;
  return {
    site: d.site,
    device: d.device,
    state: a.state,
    state_source: a.source,
    session: a.session,
    state_since: a.since,
    last_seen: d.last_seen,
    birth: a.birth,
    health: d.health,
    seqs:
      trackSeqs && d.seqs.last > 0
        ? { ...d.seqs.snapshot(), ...repair, contiguous: d.seqs.contiguous, missing: d.seqs.missing, lost: d.seqs.lost }
        : null,
  };
}

/** Takes over saved seq state; only before the device's first outbox message (the tracker must still be empty). */
export function restoreSeqs(d: Device, saved: SavedSeqs, repair: RepairStats): boolean {
  if (d.seqs.last !== 0) return false;
  d.seqs.restore(saved);
  repair.filled_late = saved.filled_late;
  repair.repaired = saved.repaired;
  repair.resend_requests = saved.resend_requests;
  d.changed = true;
  return true;
}
