// Runs in every test file (vitest setupFiles): servers a test left running are killed when the
// file is done.
import { afterAll } from "vitest"
import { killLeftoverServers } from "./ordo_server.mjs"

afterAll(() => killLeftoverServers())
