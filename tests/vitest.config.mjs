import { defineConfig } from "vitest/config"

// The sanitized server is slower: ORDO_TEST_TIME_SCALE (set by the asan tests) scales the limits.
const timeScale = Number(process.env.ORDO_TEST_TIME_SCALE ?? "1") || 1

export default defineConfig({
  test: {
    // Test files live outside node_modules; the suites import their helpers from support/.
    include: ["conformance/**/*.test.mjs", "blackbox/**/*.test.mjs", "browser/**/*.test.mjs"],
    setupFiles: ["support/setup.mjs"],
    testTimeout: 30000 * timeScale,
    hookTimeout: 30000 * timeScale,
    reporters: ["default"],
  },
})
