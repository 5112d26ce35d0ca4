import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['src/**/*.test.ts', 'test/**/*.test.ts'],
    testTimeout: 120_000,
    hookTimeout: 120_000,
    pool: 'forks',
    // Integration suites each start real shards and polars processes; on a 2-core box
    // running them side by side only makes them slower and flakier.
    fileParallelism: false,
  },
});
