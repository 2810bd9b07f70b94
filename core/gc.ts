import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';

/**
 * A young-generation collection on demand, for worker threads that receive large native buffers but allocate
 * little JS themselves. onnxruntime-node copies every output tensor into a new ArrayBuffer (1.76 MB a run for
 * NanoDet); V8 frees a dead one only at a collection, and a thread this quiet reaches one only when the dead
 * buffers hit the external-memory limit: 20–35 MB held in between (docs/performance.md). A scavenge of a nearly
 * empty young generation takes ~0.1 ms.
 *
 * V8 hands out `gc` only to contexts created while --expose-gc is set: unless the process runs with it already,
 * set it, take the function from a fresh context, and unset it again, so no other code of the process sees a
 * `gc` it did not ask for.
 */
export function youngCollector(): () => void {
  type Gc = (options: { type: 'minor' }) => void;
  const own = (globalThis as { gc?: Gc }).gc;
  if (own) return () => own({ type: 'minor' });
  setFlagsFromString('--expose-gc');
  try {
    const gc = runInNewContext('gc') as Gc;
    return () => gc({ type: 'minor' });
  } finally {
    setFlagsFromString('--no-expose-gc');
  }
}

/**
 * `youngCollector` once the native buffers received since the last collection reach `budgetBytes`: the dense
 * NanoDet heads (1.76 MB a run) are collected every few runs, the candidate model's few kilobytes a run are left to
 * V8's own scavenges (a forced one every run cost the detector ~0.1 ms on its thread plus V8's helper threads).
 */
export function budgetedYoungCollector(budgetBytes: number): (receivedBytes: number) => void {
  const collect = youngCollector();
  let received = 0;
  return (bytes) => {
    received += bytes;
    if (received < budgetBytes) return;
    received = 0;
    collect();
  };
}
