import { defineConfig } from "vitest/config";

/**
 * Two projects: `unit` runs in parallel and imports the sources directly; `e2e` starts real labs
 * (child processes from `dist/`, built once by the global setup) and runs one file at a time,
 * because each lab already uses both cores of a small machine.
 */
export default defineConfig({
  test: {
    reporters: process.env.CI ? ["default"] : ["default"],
    projects: [
      {
        test: {
          name: "unit",
          include: ["test/**/*.test.ts"],
          exclude: ["test/e2e/**", "node_modules/**", "dist/**"],
          testTimeout: 60_000,
          hookTimeout: 60_000,
          pool: "forks",
        },
      },
      {
        test: {
          name: "e2e",
          include: ["test/e2e/**/*.test.ts"],
          globalSetup: ["test/support/build-dist.ts"],
          testTimeout: 600_000,
          hookTimeout: 300_000,
          pool: "forks",
          fileParallelism: false,
        },
      },
    ],
    coverage: {
      provider: "v8",
      include: ["common/**", "config-server/**", "process-server/**", "mobility-agent/**", "master-target/**", "cli/**"],
      reporter: ["text-summary", "text"],
    },
  },
});
