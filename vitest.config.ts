import { defineConfig } from 'vitest/config';
import { ORT_OFFLINE_ENV } from './core/runtime-env.js';

// Test files that load onnxruntime-node directly get its telemetry off too (the agent's own loaders set it: inference/ort.ts).
Object.assign(process.env, ORT_OFFLINE_ENV);

// Two projects: unit tests are in-process and quick; integration tests start real brokers, RTSP servers,
// ffmpeg, Chromium and agent processes, so they get generous timeouts and two forks on a 2-core machine.
// The quick unit group runs first, so a broken basic fails fast.
export default defineConfig({
  test: {
    reporters: ['default'],
    projects: [
      {
        test: {
          name: 'unit',
          include: ['tests/unit/**/*.test.ts', 'tests/hostile/**/*.test.ts'],
          testTimeout: 30_000,
          hookTimeout: 30_000,
          pool: 'threads',
          sequence: { groupOrder: 0 },
        },
      },
      {
        test: {
          name: 'integration',
          include: ['tests/integration/**/*.test.ts'],
          testTimeout: 60_000,
          hookTimeout: 60_000,
          pool: 'forks',
          maxWorkers: 2,
          sequence: { groupOrder: 1 },
        },
      },
    ],
  },
});
