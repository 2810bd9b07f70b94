import { defineConfig } from 'vitest/config';

// Integration tests start real brokers, RTSP servers and ffmpeg: generous timeouts, limited parallelism (2 cores).
export default defineConfig({
  test: {
    include: ['tests/**/*.test.ts'],
    testTimeout: 60_000,
    hookTimeout: 60_000,
    pool: 'forks',
    maxWorkers: 2,
    reporters: ['default'],
  },
});
