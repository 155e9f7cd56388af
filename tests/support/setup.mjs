// Runs in every test file (vitest setupFiles): servers a test left running are killed when the
// file is done (and the PostgreSQL cluster they shared, with ORDO_TEST_STORAGE), and a sanitizer's
// report in the output of any server the file started fails it.
import { afterAll } from "vitest"
import { killLeftoverServers, stopSharedPostgres, takeSanitizerReports } from "./ordo_server.mjs"

afterAll(() => {
  killLeftoverServers()
  stopSharedPostgres()
  const reports = takeSanitizerReports()
  if (reports.length) {
    throw new Error(`a sanitizer reported in ${reports.length} server(s):\n${reports.join("\n----\n")}`)
  }
})
