import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    include: ["sdk/**/*.test.ts", "conformance/**/*.test.ts", "fuzz/**/*.test.ts", "bench/**/*.test.ts"],
    testTimeout: 120_000,
    pool: "forks",
  },
});
