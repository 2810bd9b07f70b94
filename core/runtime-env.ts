/**
 * ONNX Runtime 1.29+ ships telemetry on Linux: at its first session it writes a device id and an event cache
 * (SQLite, megabytes over time) under ~/.cache/Microsoft/DeveloperTools and uploads model hashes, CPU, OS and run
 * figures over HTTPS. A roadside box sends nothing to third parties and writes only inside its own directories;
 * this switch stops all of it (nothing created, nothing sent). ONNX Runtime reads it with getenv when it starts,
 * so it must be in the process environment before the first session (inference/ort.ts sets it in-process too).
 */
export const ORT_OFFLINE_ENV: Readonly<Record<string, string>> = { ORT_DISABLE_TELEMETRY: '1' };

/**
 * The process environment the agent is deployed with (the systemd unit in firmware-scripts/install.sh and the
 * image's ENV in Dockerfile.arm64 carry the same values; tests/unit/firmware/runtime-env.test.ts keeps them equal).
 * Benchmarks start the agent with it, so the memory they report is the memory a box sees. What each value saves,
 * measured: docs/performance.md.
 */
export const AGENT_RUNTIME_ENV: Readonly<Record<string, string>> = {
  // Two malloc arenas instead of one per allocating thread (ONNX Runtime's, libuv's, V8's, the workers').
  MALLOC_ARENA_MAX: '2',
  // Blocks of 64 KiB and more (the camera pipe's 64 KiB reads, frames, model inputs and outputs, a few MB a second)
  // always get their own mapping, returned to the system when freed. Without it glibc raises the threshold after
  // the first such free and serves them from the arenas, which fragment and never shrink (at 128 KiB the pipe's
  // reads still came from the main arena: it grew 23 → 48 MB over 30 minutes, against 24 → 38 MB at 64 KiB).
  MALLOC_MMAP_THRESHOLD_: '65536',
  // A 1 MB young generation per isolate (main, detector worker, outbox sync worker): grown by the camera pipe's
  // churn it reaches 3 × 16 MB in the main isolate. V8 flags are process-wide, so the workers get it too.
  NODE_OPTIONS: '--max-semi-space-size=1',
  ...ORT_OFFLINE_ENV,
};

/**
 * The V8 flags the agent is started with (`node <flags> dist/cli/main.js run`: the unit's ExecStart, the image's
 * ENTRYPOINT, the benchmarks; V8 flags are not allowed in NODE_OPTIONS). Lite mode runs JavaScript in V8's
 * interpreter only, with feedback allocated lazily: no optimising compiler means none of its code pages touched and
 * no optimised code kept, ~9 MB less RSS for the agent with one camera (160 → 149 MB). The agent's JavaScript is
 * plumbing around ffmpeg and ONNX Runtime, so frames/s and cameras per box do not change; its own per-frame work does
 * get slower (post-processing ~0.06 → 0.3 ms a run on a crowded frame, the main thread's share of a frame ~0.2 →
 * 0.5 ms). WebAssembly is off with it (named here so V8 does not warn at every start); the agent uses none.
 * Measured: docs/performance.md.
 */
export const AGENT_NODE_FLAGS: readonly string[] = ['--lite-mode', '--no-expose-wasm'];
