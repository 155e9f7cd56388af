import { defineConfig } from "vitest/config"

export default defineConfig({
  test: {
    // Test files live outside node_modules; the suites import their helpers from support/.
    include: ["conformance/**/*.test.mjs", "blackbox/**/*.test.mjs", "browser/**/*.test.mjs"],
    setupFiles: ["support/setup.mjs"],
    testTimeout: 30000,
    hookTimeout: 30000,
    reporters: ["default"],
  },
})
