import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    include: ["src/**/*.test.ts", "tests/**/*.test.ts"],
    // Integration tests share one moto server per file; keep files in parallel
    // but bounded, the CI machine has 2 cores.
    maxWorkers: 2,
    setupFiles: ["tests/support/setup-env.ts"],
    testTimeout: 60_000,
    hookTimeout: 60_000,
  },
});
