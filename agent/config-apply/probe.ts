// The probation's view of the running modules: camera frames and states, detector runs, uplink connection.
import type { CameraSource } from '../../ingest/index.js';
import type { Detector } from '../../inference/detector/index.js';
import type { ProbationProbe } from './probation.js';

export interface ProbedModules {
  /** A live view (CameraSet.sources). */
  cameras: readonly Pick<CameraSource, 'stats' | 'status'>[];
  detector: Pick<Detector, 'stats'>;
  uplink: { readonly online: boolean; stats(): { last_error: { code: string; message: string } | null } };
}

export function moduleProbe(m: ProbedModules): ProbationProbe {
  return {
    sample: () => {
      const d = m.detector.stats();
      const err = m.uplink.stats().last_error;
      return {
        cameras: m.cameras.map((src) => {
          const st = src.stats();
          const status = src.status();
          return { id: st.camera, frames_total: st.frames_total, last_frame_age_ms: st.last_frame_age_ms, state: status.state, reason: status.reason, detail: status.detail };
        }),
        detector: { state: d.state, runs: d.runs },
        uplink: { online: m.uplink.online, last_error: err ? `${err.code}: ${err.message}` : null },
      };
    },
  };
}
